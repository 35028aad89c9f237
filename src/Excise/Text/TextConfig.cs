using System.Text.Json.Serialization;

namespace Excise.Text;

public sealed record TextConfig(string Encoder = "minilm", int MaxLength = 32)
{
    /// <summary>Width of the encoder's token states: what the UNet's cross-attention and a concept basis must match.</summary>
    [JsonIgnore] public int Width => Encoder == "minilm" ? MiniLmTextEncoder.Width : throw new ArgumentException($"text.encoder must be 'minilm' (got '{Encoder}').");

    /// <summary>The encoder's id (model and max length): text states and a concept basis made under another id do not fit this run.</summary>
    [JsonIgnore] public string EncoderId => Encoder == "minilm" ? MiniLmTextEncoder.IdFor(MaxLength) : throw new ArgumentException($"text.encoder must be 'minilm' (got '{Encoder}').");

    public void Validate()
    {
        if (Encoder != "minilm") throw new ArgumentException($"text.encoder must be 'minilm' (got '{Encoder}').");
        if (MaxLength is < 4 or > 256) throw new ArgumentException($"text.max_length must be within [4, 256] (got {MaxLength}).");
    }
}
