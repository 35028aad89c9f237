using Excise.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Models.Clip;

/// <summary>
/// A Stable Diffusion pipeline's text side as the trainer uses a text encoder: the CLIP tokenizer as SD pipelines call it
/// (padding to the tokenizer's model_max_length, 77, with its pad token; truncation keeping the end token) and
/// <see cref="ClipTextModel"/>'s <c>last_hidden_state</c> as the states, computed without an attention mask, as
/// diffusers' StableDiffusionPipeline encodes prompts for SD 1.x and 2.x.
/// <para>
/// <see cref="TextStates.Mask"/> is all ones here, on purpose. Stable Diffusion passes no mask to the UNet: its
/// cross-attention reads all 77 states, the padding positions included, and those are not noise — causal attention makes
/// each padded state a summary of the whole prompt before it. A mask of the real tokens would show the UNet less than it
/// was trained on. Which positions hold the prompt's own tokens is in <see cref="Tokenizer"/>'s
/// <see cref="TokenizedText.AttentionMask"/>, for anyone who needs it (pooling over words, finding a concept's tokens).
/// </para>
/// </summary>
public sealed class ClipTextEncoder : ITextEncoder
{
    /// <summary>Texts per forward pass: bounds memory for long caption lists (77 × width per text and layer).</summary>
    private const int BatchSize = 16;

    private readonly ClipTextModel model;
    private readonly ClipTokenizer tokenizer;

    /// <param name="weightsSha256">The SHA-256 of the weights <paramref name="model"/> holds: part of <see cref="Id"/>, so
    /// cached states and concept bases made with other weights are not taken for these.</param>
    /// <remarks>The encoder owns <paramref name="model"/> and disposes it; the model stays on its device.</remarks>
    public ClipTextEncoder(ClipTokenizer tokenizer, ClipTextModel model, string weightsSha256)
    {
        if (tokenizer.ModelMaxLength > model.Config.MaxPositionEmbeddings)
            throw new ArgumentException($"The tokenizer pads to {tokenizer.ModelMaxLength} tokens but the text encoder has only {model.Config.MaxPositionEmbeddings} positions (max_position_embeddings).");
        var highestId = new[] { tokenizer.StartId, tokenizer.EndId, tokenizer.PaddingId, tokenizer.UnknownId }.Max();
        if (highestId >= model.Config.VocabSize)
            throw new ArgumentException($"The tokenizer's special token id {highestId} is outside the text encoder's vocabulary ({model.Config.VocabSize}, vocab_size).");
        this.tokenizer = tokenizer;
        this.model = model;
        model.eval();
        MaxLength = tokenizer.ModelMaxLength;
        Id = $"CLIPTextModel (sha256 {weightsSha256[..Math.Min(16, weightsSha256.Length)]}, {tokenizer.Id}, max_length={MaxLength})";
    }

    public string Id { get; }

    public int Width => model.Config.HiddenSize;

    public int MaxLength { get; }

    public ITokenizer Tokenizer => tokenizer;

    public TextStates Encode(IReadOnlyList<string> texts)
    {
        var (length, width) = (MaxLength, Width);
        var states = new float[texts.Count * length * width];
        var device = model.parameters().First().device;
        using var noGrad = no_grad();
        for (int start = 0; start < texts.Count; start += BatchSize)
        {
            using var scope = NewDisposeScope();
            var batch = texts.Skip(start).Take(BatchSize).ToArray();
            var ids = new long[batch.Length * length];
            for (int i = 0; i < batch.Length; i++)
                tokenizer.Tokenize(batch[i], length).InputIds.CopyTo(ids, i * length);
            var output = model.Forward(tensor(ids, [batch.Length, length], ScalarType.Int64).to(device));
            var hidden = output.LastHiddenState.to(ScalarType.Float32).cpu().contiguous();
            hidden.data<float>().CopyTo(states, start * length * width);
        }
        var mask = new float[texts.Count * length];
        Array.Fill(mask, 1f);
        return new TextStates(texts.Count, length, width, states, mask);
    }

    public void Dispose() => model.Dispose();
}
