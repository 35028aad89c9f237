namespace Excise.Text;

/// <summary>What to do when a text has more tokens than the encoder's max length.</summary>
public enum TruncationPolicy
{
    /// <summary>Keep the leading tokens (and the closing special token) and report through the warning sink.</summary>
    Warn,
    /// <summary>Refuse: a cut-off concept phrase would silently change what is being learned or erased.</summary>
    Throw,
    /// <summary>Truncate without a word.</summary>
    Allow,
}

/// <summary>Names of the ONNX graph's inputs/outputs. A null input name means the encoder never feeds it.</summary>
public sealed record OnnxTextModelSpec(
    string InputIdsName = "input_ids",
    string? AttentionMaskName = "attention_mask",
    string? TokenTypeIdsName = "token_type_ids",
    string OutputName = "last_hidden_state");

/// <param name="MaxLength">Fixed pad/truncate length of every text.</param>
/// <param name="BatchSize">Texts per ONNX run.</param>
/// <param name="IntraOpThreads">ONNX Runtime intra-op threads; 0 picks min(cores, 4).</param>
/// <param name="Truncation">Policy for texts longer than <paramref name="MaxLength"/>.</param>
/// <param name="Warn">Warning sink for <see cref="TruncationPolicy.Warn"/>; null writes to standard error.</param>
public sealed record TextEncoderOptions(
    int MaxLength = 32,
    int BatchSize = 64,
    int IntraOpThreads = 0,
    TruncationPolicy Truncation = TruncationPolicy.Warn,
    Action<string>? Warn = null)
{
    internal void Validate()
    {
        if (MaxLength < 2) throw new ArgumentOutOfRangeException(nameof(MaxLength), MaxLength, "Text encoder max length must be at least 2.");
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "Text encoder batch size must be at least 1.");
        if (IntraOpThreads < 0) throw new ArgumentOutOfRangeException(nameof(IntraOpThreads), IntraOpThreads, "Use 0 for automatic.");
    }

    internal int ResolvedIntraOpThreads => IntraOpThreads > 0 ? IntraOpThreads : Math.Clamp(Environment.ProcessorCount, 1, 4);
}
