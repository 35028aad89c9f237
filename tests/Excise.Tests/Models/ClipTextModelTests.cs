using System.Text.Json;
using Excise.Models.Clip;
using Excise.Serialization;
using Excise.Text;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Excise.Tests.Models;

/// <summary>
/// Our CLIP text encoder with transformers' weights reproduces transformers' <c>CLIPTextModel</c> (tests/golden/clip-text-tiny.*,
/// transformers 4.46; tolerances from the CLIP section of tests/golden/README.md), and the plausible bugs break that.
/// </summary>
public sealed class ClipTextModelTests(ITestOutputHelper output)
{
    private const string Name = "clip-text-tiny";
    // README: max|Δ| ≤ tol × max|stored|; 4e-6 for last_hidden_state, 2e-6 for pooler_output, 5e-6 for the rest.
    private const double LastHiddenStateTolerance = 4e-6;
    private const double PoolerTolerance = 2e-6;
    private const double IntermediateTolerance = 5e-6;
    private static readonly string[] GoldenCaseNames = ["caption_acme", "special_literal", "long_caption"];

    [Fact]
    public void Last_hidden_state_pooled_output_and_every_layer_equal_transformers_within_the_golden_tolerance()
    {
        using var scope = NewDisposeScope();
        var model = LoadedModel();
        var io = GoldenData.Io(Name);

        var observed = new Dictionary<string, Tensor>();
        ClipTextOutput result;
        using (no_grad())
            result = model.Forward(Ids(io), observer: (key, value) => observed[key] = value.detach().clone());

        AssertWithin("last_hidden_state", result.LastHiddenState, io["last_hidden_state"], LastHiddenStateTolerance);
        AssertWithin("pooler_output", result.PoolerOutput, io["pooler_output"], PoolerTolerance);
        Assert.True(GoldenData.Identical(observed["hidden_states.0"], io["hidden_states.0"]), "hidden_states.0 (one add) is not bit-exact");
        foreach (var key in io.Keys.Where(k => k.StartsWith("hidden_states.", StringComparison.Ordinal) || k.StartsWith("act.", StringComparison.Ordinal)))
            AssertWithin(key, observed[key.StartsWith("act.", StringComparison.Ordinal) ? key["act.".Length..] : key], io[key], IntermediateTolerance);

        // The pooled row is the final-LayerNorm state at the first end token: positions 12, 4 (a literal <|endoftext|> in the text) and 76.
        var index = io["pooler_index"].to_type(ScalarType.Int64);
        Assert.Equal([12L, 4L, 76L], index.data<long>().ToArray());
        Assert.True(GoldenData.Identical(result.PoolerOutput, result.LastHiddenState[arange(3), index]));
    }

    [Fact]
    public void The_tokenizer_and_the_encoder_together_reproduce_transformers_from_the_case_texts()
    {
        using var scope = NewDisposeScope();
        var tokenizer = ClipTokenizer.FromFolder(Path.Combine(GoldenData.Directory, "clip-tokenizer"));
        var texts = CaseTexts();
        var ids = stack(texts.Select(t => tensor(tokenizer.Tokenize(t, ClipTokenizer.ContextLength).InputIds)).ToArray());
        var io = GoldenData.Io(Name);
        Assert.True(GoldenData.Identical(ids, Ids(io)), "the tokenizer's ids differ from the golden input_ids");

        using var _ = no_grad();
        var result = LoadedModel().Forward(ids);
        AssertWithin("last_hidden_state (from text)", result.LastHiddenState, io["last_hidden_state"], LastHiddenStateTolerance);
        AssertWithin("pooler_output (from text)", result.PoolerOutput, io["pooler_output"], PoolerTolerance);
    }

    [Fact]
    public void Exact_GELU_instead_of_quick_GELU_moves_the_output_far_beyond_the_tolerance()
    {
        using var scope = NewDisposeScope();
        var io = GoldenData.Io(Name);
        var wrong = new ClipTextModel(GoldenConfig() with { HiddenAct = ClipActivation.Gelu });
        wrong.LoadSafetensors(GoldenData.WeightsPath(Name));
        wrong.eval();
        using var _ = no_grad();
        var delta = MaxAbs(wrong.Forward(Ids(io)).LastHiddenState - io["last_hidden_state"]);
        var tolerance = LastHiddenStateTolerance * MaxAbs(io["last_hidden_state"]);
        output.WriteLine($"erf GELU variant: last_hidden_state max|Δ| = {delta:E2} (tolerance {tolerance:E2}; README: 3.2e-2)");
        Assert.True(delta > 100 * tolerance, $"erf GELU moved the output only {delta:E2}");
    }

    [Fact]
    public void Changing_a_later_token_leaves_every_earlier_position_unchanged_because_the_mask_is_causal()
    {
        using var scope = NewDisposeScope();
        var model = LoadedModel();
        var ids = Ids(GoldenData.Io(Name));
        var changed = ids.clone();
        changed[.., 30] = tensor(500L);
        using var _ = no_grad();
        var before = model.Forward(ids).LastHiddenState;
        var after = model.Forward(changed).LastHiddenState;
        var earlier = MaxAbs(after[.., ..30] - before[.., ..30]);
        var later = MaxAbs(after[.., 30..] - before[.., 30..]);
        output.WriteLine($"token 30 changed: positions < 30 max|Δ| = {earlier:E2}, positions ≥ 30 max|Δ| = {later:E2}");
        Assert.Equal(0.0, earlier);
        Assert.True(later > 1e-2, $"positions from 30 on moved only {later:E2}");
    }

    [Fact]
    public void A_padding_mask_changes_only_the_padded_positions_as_transformers_applies_it()
    {
        using var scope = NewDisposeScope();
        var model = LoadedModel();
        var io = GoldenData.Io(Name);
        var tokenizer = ClipTokenizer.FromFolder(Path.Combine(GoldenData.Directory, "clip-tokenizer"));
        var mask = stack(CaseTexts().Select(t => tensor(tokenizer.Tokenize(t, ClipTokenizer.ContextLength).AttentionMask)).ToArray());
        using var _ = no_grad();
        var masked = model.Forward(Ids(io), mask).LastHiddenState;
        var reference = io["last_hidden_state"];
        var keep = mask.to_type(ScalarType.Bool).unsqueeze(-1);
        var real = MaxAbs((masked - reference).masked_fill(keep.logical_not(), 0));
        var padded = MaxAbs((masked - reference).masked_fill(keep, 0));
        var tolerance = LastHiddenStateTolerance * MaxAbs(reference);
        output.WriteLine($"with the padding mask: real positions max|Δ| = {real:E2}, padded positions max|Δ| = {padded:E2} (README: 2.5)");
        Assert.True(real <= tolerance, $"real positions moved {real:E2}: a padding mask must not reach keys a causal query cannot see");
        Assert.True(padded > 100 * tolerance, $"padded positions moved only {padded:E2}");
        Assert.True(masked.isfinite().all().ToBoolean());
    }

    [Fact]
    public void The_legacy_end_token_id_2_pools_at_the_highest_id_which_is_the_end_token_here()
    {
        using var scope = NewDisposeScope();
        var io = GoldenData.Io(Name);
        var legacy = new ClipTextModel(GoldenConfig() with { EosTokenId = 2 });
        legacy.LoadSafetensors(GoldenData.WeightsPath(Name));
        using var _ = no_grad();
        var pooled = legacy.Forward(Ids(io)).PoolerOutput;
        AssertWithin("pooler_output (legacy rule)", pooled, io["pooler_output"], PoolerTolerance);
    }

    [Fact]
    public void Loading_refuses_a_missing_or_unexpected_tensor_naming_it_and_ignores_the_legacy_position_ids()
    {
        using var scope = NewDisposeScope();
        using var dir = new TempDir();
        using var contents = SafetensorsFile.Load(GoldenData.WeightsPath(Name));
        const string dropped = "text_model.encoder.layers.1.mlp.fc2.bias";

        var missing = dir.File("missing.safetensors");
        SafetensorsFile.Save(missing, contents.Tensors.Where(p => p.Key != dropped));
        var error = Assert.Throws<InvalidDataException>(() => new ClipTextModel(GoldenConfig()).LoadSafetensors(missing));
        Assert.Contains($"missing: {dropped}", error.Message);

        var extra = dir.File("extra.safetensors");
        SafetensorsFile.Save(extra, contents.Tensors.Append(new("text_model.encoder.layers.2.mlp.fc1.weight", zeros(37, 32))));
        error = Assert.Throws<InvalidDataException>(() => new ClipTextModel(GoldenConfig()).LoadSafetensors(extra));
        Assert.Contains("unexpected: text_model.encoder.layers.2.mlp.fc1.weight", error.Message);

        var legacy = dir.File("legacy.safetensors");
        SafetensorsFile.Save(legacy, contents.Tensors.Append(new("text_model.embeddings.position_ids", arange(77).unsqueeze(0).to_type(ScalarType.Float32))));
        var model = new ClipTextModel(GoldenConfig());
        model.LoadSafetensors(legacy);
        using var _ = no_grad();
        AssertWithin("last_hidden_state (legacy file)", model.Forward(Ids(GoldenData.Io(Name))).LastHiddenState,
            GoldenData.Io(Name)["last_hidden_state"], LastHiddenStateTolerance);
    }

    [Fact]
    public void The_config_reader_takes_the_golden_config_and_refuses_an_unknown_activation_or_model_type_naming_the_key()
    {
        var config = GoldenConfig();
        Assert.Equal((1114, 32, 37, 2, 4, 77, 1e-5, ClipActivation.QuickGelu, 1113),
            (config.VocabSize, config.HiddenSize, config.IntermediateSize, config.NumHiddenLayers, config.NumAttentionHeads,
             config.MaxPositionEmbeddings, config.LayerNormEps, config.HiddenAct, config.EosTokenId));
        Assert.Equal(ClipActivation.Gelu, ClipTextConfig.FromTransformersJson("""{"model_type": "clip_text_model", "hidden_act": "gelu"}""").HiddenAct);

        var act = Assert.Throws<NotSupportedException>(() => ClipTextConfig.FromTransformersJson("""{"model_type": "clip_text_model", "hidden_act": "gelu_new"}"""));
        Assert.Contains("'hidden_act'", act.Message);
        Assert.Contains("gelu_new", act.Message);
        var type = Assert.Throws<NotSupportedException>(() => ClipTextConfig.FromTransformersJson("""{"model_type": "clip", "hidden_act": "quick_gelu"}"""));
        Assert.Contains("'model_type'", type.Message);
        var heads = Assert.Throws<InvalidDataException>(() => ClipTextConfig.FromTransformersJson("""{"hidden_size": 32, "num_attention_heads": 5}"""));
        Assert.Contains("'num_attention_heads'", heads.Message);
    }

    private ClipTextModel LoadedModel()
    {
        var model = new ClipTextModel(GoldenConfig());
        model.LoadSafetensors(GoldenData.WeightsPath(Name));
        model.eval();
        return model;
    }

    private static ClipTextConfig GoldenConfig() => ClipTextConfig.FromTransformersJson(File.ReadAllText(GoldenData.ConfigPath(Name)));

    private static Tensor Ids(Dictionary<string, Tensor> io) => io["input_ids"].to_type(ScalarType.Int64);

    private static string[] CaseTexts()
    {
        using var document = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(GoldenData.Directory, "clip-tokenizer.cases.json")));
        var texts = document.RootElement.GetProperty("cases").EnumerateArray()
            .ToDictionary(c => c.GetProperty("name").GetString()!, c => c.GetProperty("text").GetString()!);
        return GoldenCaseNames.Select(n => texts[n]).ToArray();
    }

    private void AssertWithin(string what, Tensor actual, Tensor expected, double relative) =>
        GoldenData.AssertWithin(output, what, actual, expected, relative);

    private static double MaxAbs(Tensor t) => GoldenData.MaxAbs(t);
}

/// <summary>A fresh CLIP text encoder is a function of the seed alone: explicit initialisation, no heap-dependent tensor.</summary>
[Collection(GlobalTorchRngCollection.Name)]
public sealed class ClipTextModelSeedTests
{
    [Fact]
    public void Same_seed_gives_identical_CLIP_weights_and_layer_norms_start_at_identity()
    {
        using var scope = NewDisposeScope();
        var config = ClipTextConfig.FromTransformersJson(File.ReadAllText(GoldenData.ConfigPath("clip-text-tiny")));
        torch.manual_seed(11);
        var first = new ClipTextModel(config).state_dict();
        torch.manual_seed(11);
        var second = new ClipTextModel(config).state_dict();
        torch.manual_seed(12);
        var other = new ClipTextModel(config).state_dict();

        Assert.Equal(36, first.Count);
        foreach (var (key, value) in first)
        {
            Assert.True(GoldenData.Identical(value, second[key]), $"{key} differs under the same seed");
            Assert.True(value.isfinite().all().ToBoolean(), $"{key} is not finite");
        }
        Assert.False(GoldenData.Identical(first["text_model.embeddings.token_embedding.weight"], other["text_model.embeddings.token_embedding.weight"]));
        foreach (var (key, value) in first.Where(p => p.Key.Contains("layer_norm", StringComparison.Ordinal)))
            Assert.True(value.eq(key.EndsWith(".weight", StringComparison.Ordinal) ? 1.0 : 0.0).all().ToBoolean(), $"{key} does not start at identity");
        foreach (var (key, value) in first.Where(p => p.Key.EndsWith("proj.bias", StringComparison.Ordinal) || p.Key.Contains(".mlp.fc", StringComparison.Ordinal) && p.Key.EndsWith(".bias", StringComparison.Ordinal)))
            Assert.Equal(0.0, value.abs().max().ToDouble());
        Assert.Equal(0.02, first["text_model.embeddings.token_embedding.weight"].std().ToDouble(), 2);
    }
}
