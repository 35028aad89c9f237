namespace Excise.Text;

/// <summary>
/// Per-token hidden states of a batch of texts.
/// <see cref="States"/> is [Count, Length, Width] row-major; <see cref="Mask"/> is [Count, Length] with 1 for real tokens
/// and 0 for padding. States at padded positions are whatever the model produced there: they carry no meaning and
/// callers must weight them out with <see cref="Mask"/> (attention key mask, masked pooling).
/// </summary>
public sealed record TextStates(int Count, int Length, int Width, float[] States, float[] Mask)
{
    public ReadOnlySpan<float> StatesOf(int index) => States.AsSpan(index * Length * Width, Length * Width);

    public ReadOnlySpan<float> MaskOf(int index) => Mask.AsSpan(index * Length, Length);

    /// <summary>Mean of the real-token states of one text (the sentence-transformers pooling).</summary>
    public float[] MaskedMean(int index)
    {
        var pooled = new float[Width];
        var states = StatesOf(index);
        var mask = MaskOf(index);
        float weight = 0;
        for (int t = 0; t < Length; t++)
        {
            if (mask[t] == 0) continue;
            weight += mask[t];
            for (int d = 0; d < Width; d++) pooled[d] += mask[t] * states[t * Width + d];
        }
        if (weight > 0)
            for (int d = 0; d < Width; d++) pooled[d] /= weight;
        return pooled;
    }
}

/// <summary>A frozen text encoder: texts in, padded per-token states out.</summary>
public interface ITextEncoder : IDisposable
{
    /// <summary>Model and max length, e.g. "sentence-transformers/all-MiniLM-L6-v2 (onnx, max_length=32)"; cache key.</summary>
    string Id { get; }

    int Width { get; }

    /// <summary>Every text is padded or truncated to exactly this many tokens.</summary>
    int MaxLength { get; }

    ITokenizer Tokenizer { get; }

    /// <summary>Encodes in internal batches; the result has one row per input text, in input order.</summary>
    TextStates Encode(IReadOnlyList<string> texts);
}
