using Excise.Models;
using Excise.Models.Lora;
using Excise.Serialization;
using Excise.Tests.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Excise.Tests.Models;

public sealed class LoraTests
{
    static UNet2DConditionModel Model()
    {
        var model = TinyRun.Model(TinyRun.Config());
        model.eval();
        return model;
    }

    /// <summary>Denoiser output on fixed inputs with a partly masked prompt, so cross-attention (the adapted path) matters.</summary>
    static Tensor Output(UNet2DConditionModel model)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        using var generator = new Generator(7);
        var sample = randn(new long[] { 2, 1, 32, 32 }, generator: generator);
        var states = randn(new long[] { 2, 5, 384 }, generator: generator);
        var mask = tensor(new float[,] { { 1, 1, 1, 0, 0 }, { 1, 1, 1, 1, 1 } });
        return model.forward(sample, tensor(new[] { 10f, 700f }), states, mask).MoveToOuterDisposeScope();
    }

    /// <summary>Gives every A and B seeded random values, so the adapters actually change the model.</summary>
    static void Randomize(LoraAdapters adapters, ulong seed)
    {
        using var generator = new Generator(seed);
        using var _ = no_grad();
        foreach (var (_, p) in adapters.Parameters()) p.copy_(randn(p.shape, generator: generator).mul_(0.1));
    }

    static double MaxAbsDifference(Tensor a, Tensor b) => (a - b).abs().max().ToDouble();

    [Fact]
    public void Injecting_fresh_adapters_changes_no_output_keeps_base_names_and_freezes_the_base()
    {
        using var model = Model();
        var before = Output(model);
        var plainNames = model.state_dict().Keys.ToList();
        var keyValueWeights = model.CrossAttentionKeyValueWeights().Select(w => w.Name).ToList();

        manual_seed(42);
        var adapters = Lora.Inject(model, new LoraOptions());
        var drawAfterInject = randn(4);
        manual_seed(42);
        Assert.True(randn(4).eq(drawAfterInject).all().ToBoolean(), "Inject must not draw from the global generator");

        Assert.True(before.eq(Output(model)).all().ToBoolean(), "B = 0 must leave the output bit-identical");
        var names = model.state_dict().Keys.ToList();
        Assert.Equal(plainNames, names.Where(n => !n.Contains(".lora_")).ToList());
        var loraNames = adapters.Parameters().Select(p => p.Name).ToList();
        Assert.Equal(names.Where(n => n.Contains(".lora_")).ToList(), loraNames);
        Assert.Equal(keyValueWeights.Select(n => n[..^".weight".Length]), adapters.ModuleNames);
        Assert.Equal(16, loraNames.Count);
        Assert.Contains("down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.lora_A.weight", loraNames);
        Assert.Contains("down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight", names);
        Assert.All(model.named_parameters(), p => Assert.Equal(p.name.Contains(".lora_"), p.parameter.requires_grad));
        Assert.Equal(keyValueWeights, model.CrossAttentionKeyValueWeights().Select(w => w.Name));

        // Every A is PEFT's U(−1/√in, 1/√in) and non-zero; every B is zero.
        foreach (var adapter in adapters.Adapters)
        {
            Assert.Equal(new long[] { 4, 384 }, adapter.Layer.A.shape);
            Assert.True(adapter.Layer.A.abs().max().ToDouble() <= 1 / Math.Sqrt(384));
            Assert.True(adapter.Layer.A.abs().max().ToDouble() > 0.5 / Math.Sqrt(384));
            Assert.True(adapter.Layer.B.eq(0).all().ToBoolean(), adapter.BName);
        }
    }

    [Fact]
    public void A_base_checkpoint_still_loads_into_the_adapted_model_by_name()
    {
        using var dir = new TempDir();
        using var donor = TinyRun.Model(TinyRun.Config("seed=5"));
        donor.SaveSafetensors(dir.File("base.safetensors"));
        using var model = Model();
        Lora.Inject(model, new LoraOptions());

        var fileNames = SafetensorsFile.ReadHeader(dir.File("base.safetensors")).Select(e => e.Name).ToHashSet();
        var own = model.state_dict();
        Assert.All(fileNames, n => Assert.True(own.ContainsKey(n), n));
        model.LoadSafetensors(dir.File("base.safetensors"), strict: false);
        Assert.True(Output(model).eq(Output(donor)).all().ToBoolean(), "adapted model with B = 0 and the donor's base must agree");
    }

    [Fact]
    public void A_LoRA_linear_computes_x_times_W_plus_scaled_BA_transposed()
    {
        manual_seed(3);
        var linear = nn.Linear(384, 32, hasBias: true);
        var layer = new LoraLinear(linear, rank: 4, alpha: 8, seed: 11);
        using var generator = new Generator(1);
        using (no_grad())
        {
            layer.A.copy_(randn(layer.A.shape, generator: generator));
            layer.B.copy_(randn(layer.B.shape, generator: generator));
        }
        var x = randn(new long[] { 3, 7, 384 }, generator: generator);
        using var _ = no_grad();
        var expected = x.matmul((linear.weight + 2.0 * layer.B.matmul(layer.A)).t()) + linear.bias!;
        var actual = layer.forward(x);
        Assert.True(MaxAbsDifference(actual, expected) < 1e-5 * expected.abs().max().ToDouble(), $"max difference {MaxAbsDifference(actual, expected)}");
        Assert.Equal(new[] { "weight", "bias", "lora_A.weight", "lora_B.weight" }, layer.state_dict().Keys);
        Assert.Equal(2.0 * layer.B.to(ScalarType.Float64).matmul(layer.A.to(ScalarType.Float64)), layer.DeltaWeight(), new TensorClose(1e-12));
    }

    [Fact]
    public void Merging_gives_the_adapted_output_and_exactly_a_plain_UNet_state_dict()
    {
        using var model = Model();
        var plainNames = model.state_dict().Keys.ToList();
        var adapters = Lora.Inject(model, new LoraOptions(Rank: 3, Alpha: 6));
        Randomize(adapters, 2);
        var adapted = Output(model);
        var expectedWeights = adapters.MergedWeights();

        Lora.Merge(model);

        var merged = Output(model);
        Assert.True(MaxAbsDifference(merged, adapted) < 1e-5, $"max difference {MaxAbsDifference(merged, adapted)}");
        Assert.Equal(plainNames, model.state_dict().Keys.ToList());
        Assert.Empty(Lora.Adapters(model).Adapters);
        var state = model.state_dict();
        foreach (var (name, weight) in expectedWeights) Assert.True(state[name].eq(weight).all().ToBoolean(), name);
        Assert.Throws<InvalidOperationException>(() => adapters.Parameters());
        Assert.Throws<InvalidOperationException>(() => Lora.Merge(model));

        // The merged model is an ordinary base checkpoint: it loads strictly into a plain UNet.
        using var dir = new TempDir();
        model.SaveSafetensors(dir.File("merged.safetensors"));
        using var plain = TinyRun.Model(TinyRun.Config("seed=9"));
        plain.eval();
        plain.LoadSafetensors(dir.File("merged.safetensors"));
        Assert.True(Output(plain).eq(merged).all().ToBoolean());
    }

    [Fact]
    public void Saved_adapters_reproduce_the_outputs_bit_exactly_in_a_fresh_model()
    {
        using var dir = new TempDir();
        var path = dir.File("adapters.safetensors");
        using var model = Model();
        var adapters = Lora.Inject(model, new LoraOptions(Rank: 2, Alpha: 1, Targets: ["attn2.to_k", @"^up_blocks\..*attn2\.to_v$"]));
        Randomize(adapters, 4);
        Lora.SaveAdapters(adapters, path, new Dictionary<string, string> { ["base_weights"] = "tiny-seed-0" });

        var stored = SafetensorsFile.ReadHeader(path).Select(e => e.Name).ToList();
        Assert.Equal(adapters.Parameters().Select(p => p.Name), stored);
        Assert.All(stored, n => Assert.Matches(@"\.lora_[AB]\.weight$", n));
        var metadata = SafetensorsFile.ReadMetadata(path);
        Assert.Equal("2", metadata[Lora.MetadataKeys.Rank]);
        Assert.Equal("1", metadata[Lora.MetadataKeys.Alpha]);
        Assert.Equal(Lora.ConfigHash(model.Config), metadata[Lora.MetadataKeys.BaseConfigSha256]);
        Assert.Equal("tiny-seed-0", metadata["base_weights"]);

        using var fresh = Model();
        var loaded = Lora.LoadAdapters(fresh, path);
        Assert.Equal(adapters.ModuleNames, loaded.ModuleNames);
        Assert.Equal(2, loaded.Options.Rank);
        Assert.True(Output(fresh).eq(Output(model)).all().ToBoolean(), "loaded adapters must reproduce the outputs bit for bit");

        // Loading again into the now-adapted model overwrites in place.
        Randomize(loaded, 5);
        Lora.LoadAdapters(fresh, path);
        Assert.True(Output(fresh).eq(Output(model)).all().ToBoolean());
    }

    [Fact]
    public void Adapter_files_with_a_missing_or_misshapen_tensor_are_refused_by_name()
    {
        using var dir = new TempDir();
        using var model = Model();
        var adapters = Lora.Inject(model, new LoraOptions());
        Lora.SaveAdapters(adapters, dir.File("good.safetensors"));
        var metadata = SafetensorsFile.ReadMetadata(dir.File("good.safetensors"));
        var tensors = adapters.Parameters().Select(p => new KeyValuePair<string, Tensor>(p.Name, p.Param)).ToList();

        var dropped = tensors[5].Key;
        SafetensorsFile.Save(dir.File("missing.safetensors"), tensors.Where((_, i) => i != 5), metadata);
        var misshapen = tensors[2].Key;
        SafetensorsFile.Save(dir.File("shape.safetensors"), tensors.Select((t, i) => i == 2 ? new(t.Key, zeros(5, 384)) : t), metadata);

        using var fresh = Model();
        var missing = Assert.Throws<InvalidDataException>(() => Lora.LoadAdapters(fresh, dir.File("missing.safetensors")));
        Assert.Contains($"missing: {dropped}", missing.Message);
        Assert.Contains("missing.safetensors", missing.Message);
        Assert.Empty(Lora.Adapters(fresh).Adapters);
        var shape = Assert.Throws<InvalidDataException>(() => Lora.LoadAdapters(fresh, dir.File("shape.safetensors")));
        Assert.Contains($"shape mismatch: {misshapen} is [5, 384]", shape.Message);

        SafetensorsFile.Save(dir.File("plain.safetensors"), tensors);
        Assert.Contains("not an Excise LoRA adapter file", Assert.Throws<InvalidDataException>(() => Lora.LoadAdapters(fresh, dir.File("plain.safetensors"))).Message);

        using var other = new UNet2DConditionModel(GoldenData.Config("mnist32"));
        Assert.Contains("another config", Assert.Throws<InvalidDataException>(() => Lora.LoadAdapters(other, dir.File("good.safetensors"))).Message);
    }

    [Fact]
    public void Bad_options_fail_naming_the_setting_or_the_target()
    {
        using var model = Model();
        Assert.Throws<ArgumentOutOfRangeException>(() => Lora.Inject(model, new LoraOptions(Rank: 0)));
        var tooLarge = Assert.Throws<ArgumentException>(() => Lora.Inject(model, new LoraOptions(Rank: 33)));
        Assert.Contains("attn2.to_k", tooLarge.Message);
        Assert.Contains("at most 32", tooLarge.Message);
        var unmatched = Assert.Throws<ArgumentException>(() => Lora.Inject(model, new LoraOptions(Targets: ["attn2.to_k", "attn3.to_k"])));
        Assert.Contains("'attn3.to_k' matches no attention projection", unmatched.Message);
        Assert.Contains("'attn2.to_k(", Assert.Throws<ArgumentException>(() => Lora.Inject(model, new LoraOptions(Targets: ["attn2.to_k("]))).Message);
        Assert.Empty(Lora.Adapters(model).Adapters);
        Assert.All(model.parameters(), p => Assert.True(p.requires_grad));

        var selected = Lora.Inject(model, new LoraOptions(Targets: [@"^up_blocks\..*attn1\.to_q$"]));
        Assert.NotEmpty(selected.Adapters);
        Assert.All(selected.ModuleNames, n => Assert.Matches(@"^up_blocks\.\d+\.attentions\.\d+\.transformer_blocks\.0\.attn1\.to_q$", n));
        Assert.Contains("already carries", Assert.Throws<InvalidOperationException>(() => Lora.Inject(model, new LoraOptions())).Message);
    }
}

/// <summary>Tensor equality within an absolute tolerance, for Assert.Equal.</summary>
internal sealed class TensorClose(double tolerance) : IEqualityComparer<Tensor>
{
    public bool Equals(Tensor? a, Tensor? b) => a is not null && b is not null && a.shape.SequenceEqual(b.shape)
        && (a - b).abs().max().ToDouble() <= tolerance;
    public int GetHashCode(Tensor t) => 0;
}
