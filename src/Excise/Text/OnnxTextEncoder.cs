using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Excise.Text;

/// <summary>
/// Runs any ONNX text encoder that maps token ids [B,T] to hidden states [B,T,D] (BERT-like, CLIP text, ...).
/// Only inputs the graph declares are fed (e.g. a CLIP export has no token_type_ids). Every text is padded to
/// <see cref="MaxLength"/>, so a text's inputs do not depend on its batch companions.
/// </summary>
public sealed class OnnxTextEncoder : ITextEncoder
{
    private readonly InferenceSession session;
    private readonly TextEncoderOptions options;
    private readonly OnnxTextModelSpec spec;
    private readonly Dictionary<string, TensorElementType> inputTypes;

    public string Id { get; }
    public int Width { get; }
    public int MaxLength => options.MaxLength;
    public ITokenizer Tokenizer { get; }

    /// <summary>Texts truncated so far (under <see cref="TruncationPolicy.Warn"/> or <see cref="TruncationPolicy.Allow"/>).</summary>
    public int TruncatedTextCount { get; private set; }

    /// <param name="id">Identifies model and settings; should change whenever states would.</param>
    /// <param name="modelSource">File path or resource name, used in error messages.</param>
    public OnnxTextEncoder(string id, ITokenizer tokenizer, byte[] onnxModel, string modelSource,
        OnnxTextModelSpec? spec = null, TextEncoderOptions? options = null)
    {
        Id = id;
        Tokenizer = tokenizer;
        this.spec = spec ?? new OnnxTextModelSpec();
        this.options = options ?? new TextEncoderOptions();
        this.options.Validate();

        using var sessionOptions = new SessionOptions
        {
            IntraOpNumThreads = this.options.ResolvedIntraOpThreads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        try
        {
            session = new InferenceSession(onnxModel, sessionOptions);
        }
        catch (OnnxRuntimeException e)
        {
            throw new InvalidDataException($"{modelSource}: ONNX Runtime cannot load the model: {e.Message}", e);
        }

        try
        {
            inputTypes = ValidateInputs(modelSource);
            Width = ValidateOutput(modelSource);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }


    private Dictionary<string, TensorElementType> ValidateInputs(string modelSource)
    {
        var known = new[] { spec.InputIdsName, spec.AttentionMaskName, spec.TokenTypeIdsName };
        var types = new Dictionary<string, TensorElementType>();
        foreach (var (name, meta) in session.InputMetadata)
        {
            if (!known.Contains(name))
                throw new InvalidDataException(
                    $"{modelSource}: model input '{name}' is not one of the configured inputs ({string.Join(", ", known.Where(k => k != null))}).");
            if (meta.ElementDataType is not (TensorElementType.Int64 or TensorElementType.Int32))
                throw new InvalidDataException($"{modelSource}: model input '{name}' is {meta.ElementDataType}; expected int64 or int32 ids.");
            types[name] = meta.ElementDataType;
        }
        if (!types.ContainsKey(spec.InputIdsName))
            throw new InvalidDataException($"{modelSource}: model has no input '{spec.InputIdsName}' (inputs: {string.Join(", ", session.InputMetadata.Keys)}).");
        return types;
    }

    private int ValidateOutput(string modelSource)
    {
        if (!session.OutputMetadata.TryGetValue(spec.OutputName, out var output))
            throw new InvalidDataException($"{modelSource}: model has no output '{spec.OutputName}' (outputs: {string.Join(", ", session.OutputMetadata.Keys)}).");
        if (output.ElementDataType != TensorElementType.Float || output.Dimensions.Length != 3 || output.Dimensions[2] <= 0)
            throw new InvalidDataException(
                $"{modelSource}: output '{spec.OutputName}' is {output.ElementDataType} [{string.Join(",", output.Dimensions)}]; expected float [B,T,D] with a fixed D.");
        return output.Dimensions[2];
    }

    public TextStates Encode(IReadOnlyList<string> texts)
    {
        ArgumentNullException.ThrowIfNull(texts);
        int count = texts.Count, length = MaxLength;
        var tokenized = new TokenizedText[count];
        for (int i = 0; i < count; i++) tokenized[i] = TokenizeChecked(texts[i]);

        var states = new float[(long)count * length * Width];
        var mask = new float[count * length];
        for (int start = 0; start < count; start += options.BatchSize)
        {
            int batch = Math.Min(options.BatchSize, count - start);
            RunBatch(tokenized.AsSpan(start, batch), states.AsSpan(start * length * Width, batch * length * Width));
            for (int i = 0; i < batch; i++)
                for (int t = 0; t < length; t++)
                    mask[(start + i) * length + t] = tokenized[start + i].AttentionMask[t];
        }
        return new TextStates(count, length, Width, states, mask);
    }

    private TokenizedText TokenizeChecked(string text)
    {
        var tokenized = Tokenizer.Tokenize(text, MaxLength);
        if (!tokenized.Truncated) return tokenized;

        int lastKeptContent = tokenized.RealLength - 2;
        string kept = lastKeptContent > 0 ? text[..tokenized.Offsets[lastKeptContent].End] : "";
        string message = $"Text encoder {Id}: \"{text}\" needs {tokenized.UntruncatedLength} tokens but max length is {MaxLength}; " +
                         $"kept only \"{kept}\".";
        switch (options.Truncation)
        {
            case TruncationPolicy.Throw: throw new ArgumentException(message, nameof(text));
            case TruncationPolicy.Warn: (options.Warn ?? Console.Error.WriteLine)(message); break;
        }
        TruncatedTextCount++;
        return tokenized;
    }

    private void RunBatch(ReadOnlySpan<TokenizedText> batch, Span<float> destination)
    {
        int length = MaxLength;
        long[] shape = [batch.Length, length];
        var inputs = new Dictionary<string, OrtValue>();
        try
        {
            foreach (var (name, type) in inputTypes)
            {
                var values = new long[batch.Length * length];
                for (int i = 0; i < batch.Length; i++)
                    SelectInput(batch[i], name).CopyTo(values, i * length);
                inputs[name] = type == TensorElementType.Int64
                    ? OrtValue.CreateTensorValueFromMemory(values, shape)
                    : OrtValue.CreateTensorValueFromMemory(Array.ConvertAll(values, v => checked((int)v)), shape);
            }

            using var runOptions = new RunOptions();
            using var outputs = session.Run(runOptions, inputs, [spec.OutputName]);
            var hidden = outputs[0];
            var outShape = hidden.GetTensorTypeAndShape().Shape;
            if (outShape.Length != 3 || outShape[0] != batch.Length || outShape[1] != length || outShape[2] != Width)
                throw new InvalidOperationException(
                    $"Text encoder {Id}: output '{spec.OutputName}' has shape [{string.Join(",", outShape)}], expected [{batch.Length},{length},{Width}].");
            hidden.GetTensorDataAsSpan<float>().CopyTo(destination);
        }
        finally
        {
            foreach (var value in inputs.Values) value.Dispose();
        }
    }

    private long[] SelectInput(TokenizedText text, string inputName) =>
        inputName == spec.InputIdsName ? text.InputIds
        : inputName == spec.AttentionMaskName ? text.AttentionMask
        : text.TokenTypeIds;

    public void Dispose() => session.Dispose();
}
