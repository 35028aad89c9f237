using System.Text.Json;
using Excise.Models.Clip;
using Excise.Pipelines;
using Excise.Tests.Data;
using Excise.Tests.Models;
using Excise.Text;
using static TorchSharp.torch;

namespace Excise.Tests.Pipelines;

/// <summary>A pipeline's tokenizer and CLIP text model as the trainer's <see cref="ITextEncoder"/>: the states are
/// <c>last_hidden_state</c> for the ids Stable Diffusion pipelines feed it (77 tokens, no mask).</summary>
public sealed class ClipTextEncoderTests
{
    private static readonly string[] GoldenCaseNames = ["caption_acme", "special_literal", "long_caption"];

    [Fact]
    public void States_of_the_golden_texts_equal_the_text_models_last_hidden_state_on_the_golden_ids()
    {
        using var dir = new TempDirectory();
        var pipeline = StableDiffusionPipelineFolder.Open(TinyPipeline.Write(dir.File("sd")));
        using var encoder = pipeline.LoadTextEncoder();
        using var scope = NewDisposeScope();
        var io = GoldenData.Io("clip-text-tiny");
        var goldenIds = io["input_ids"].to_type(ScalarType.Int64);

        using var model = pipeline.LoadTextModel();
        Tensor expected;
        using (no_grad()) expected = model.Forward(goldenIds).LastHiddenState;

        // The three texts in one call run the model on exactly the golden ids: the same numbers, bit for bit.
        var states = encoder.Encode(CaseTexts());
        Assert.Equal((3, 77, 32), (states.Count, states.Length, states.Width));
        Assert.Equal((77, 32), (encoder.MaxLength, encoder.Width));
        Assert.True(GoldenData.Identical(expected, tensor(states.States, [3, 77, 32])), "states differ from last_hidden_state on the golden ids");
        var delta = (expected - io["last_hidden_state"]).abs().max().ToDouble();
        Assert.True(delta <= 4e-6 * io["last_hidden_state"].abs().max().ToDouble(), $"max|Δ| {delta:E2} against transformers");

        // More texts than one internal batch: each row lands in its own place (a batch of 16 may round differently, so
        // within 1e-6 of the row's scale; a misplaced row is off by the whole state).
        var many = encoder.Encode(Enumerable.Repeat(CaseTexts(), 7).SelectMany(t => t).ToList());
        var encoded = tensor(many.States, [21, 77, 32]);
        for (int row = 0; row < 21; row++)
            Assert.True((expected[row % 3] - encoded[row]).abs().max().ToDouble() <= 1e-6 * expected.abs().max().ToDouble(), $"row {row} differs from its text's states");

        // Stable Diffusion's UNet reads all 77 states, padding included: the mask keeps every position.
        Assert.All(many.Mask, m => Assert.Equal(1f, m));
        Assert.Same(pipeline.Tokenizer, encoder.Tokenizer);
    }

    [Fact]
    public void The_id_names_the_weights_so_states_cached_from_other_weights_are_not_reused()
    {
        using var dir = new TempDirectory();
        var root = TinyPipeline.Write(dir.File("sd"));
        string first;
        using (var encoder = StableDiffusionPipelineFolder.Open(root).LoadTextEncoder()) first = encoder.Id;
        Assert.Contains("max_length=77", first);
        Assert.Contains(Excise.Serialization.Digest.Sha256(Path.Combine(root, "text_encoder", "model.safetensors"))[..16], first);

        using (var scope = NewDisposeScope())
        using (var contents = Excise.Serialization.SafetensorsFile.Load(Path.Combine(root, "text_encoder", "model.safetensors")))
        {
            var changed = contents.Names.Select(n => KeyValuePair.Create(n, n.EndsWith("final_layer_norm.bias", StringComparison.Ordinal) ? contents[n] + 1 : contents[n])).ToList();
            Excise.Serialization.SafetensorsFile.Save(Path.Combine(root, "text_encoder", "model.safetensors"), changed);
        }
        using var other = StableDiffusionPipelineFolder.Open(root).LoadTextEncoder();
        Assert.NotEqual(first, other.Id);
    }

    [Fact]
    public void A_tokenizer_longer_than_the_text_models_positions_is_refused()
    {
        using var dir = new TempDirectory();
        var pipeline = StableDiffusionPipelineFolder.Open(TinyPipeline.Write(dir.File("sd")));
        var shortModel = new ClipTextModel(pipeline.TextEncoderConfig with { MaxPositionEmbeddings = 16 });
        var error = Assert.Throws<ArgumentException>(() => new ClipTextEncoder(pipeline.Tokenizer, shortModel, "0123456789abcdef"));
        Assert.Contains("max_position_embeddings", error.Message);
        shortModel.Dispose();
    }

    private static string[] CaseTexts()
    {
        using var document = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(GoldenData.Directory, "clip-tokenizer.cases.json")));
        var texts = document.RootElement.GetProperty("cases").EnumerateArray()
            .ToDictionary(c => c.GetProperty("name").GetString()!, c => c.GetProperty("text").GetString()!);
        return GoldenCaseNames.Select(n => texts[n]).ToArray();
    }
}
