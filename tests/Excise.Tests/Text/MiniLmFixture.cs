using Excise.Text;

namespace Excise.Tests.Text;

/// <summary>One real MiniLM ONNX session shared by the encoder and cache tests (loading it costs about a second).</summary>
public sealed class MiniLmFixture : IDisposable
{
    public OnnxTextEncoder Encoder { get; } = MiniLmTextEncoder.Create(new TextEncoderOptions(MaxLength: 16, BatchSize: 8));

    public void Dispose() => Encoder.Dispose();
}

[CollectionDefinition(Name)]
public sealed class MiniLmCollection : ICollectionFixture<MiniLmFixture>
{
    public const string Name = "MiniLM ONNX";
}
