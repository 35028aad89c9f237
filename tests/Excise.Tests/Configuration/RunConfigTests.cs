using Excise.Configuration;
using Excise.Diffusion;
using Excise.Projection;
using Excise.Training;

namespace Excise.Tests.Configuration;

public class RunConfigTests
{
    [Theory]
    [InlineData("smoke")]
    [InlineData("base")]
    public void Shipped_configs_load_and_validate(string name)
    {
        var config = RunConfig.Load(RepositoryPaths.Config(name));
        Assert.Equal(name, config.Name);
        Assert.Equal(384, config.ModelConfig["cross_attention_dim"]!.GetValue<int>());
    }

    [Fact]
    public void Set_overrides_nested_fields_with_typed_values()
    {
        var config = RunConfig.Load(RepositoryPaths.Config("smoke"),
            ["training.steps=7", "training.learning_rate=3e-4", "diffusion.schedule=cosine", "data.concept.phrase=the Zeta mark", "model.block_out_channels=[8,16]"]);
        Assert.Equal(7, config.TrainingOrDefault.Steps);
        Assert.Equal(3e-4, config.TrainingOrDefault.LearningRate);
        Assert.Equal(BetaSchedule.Cosine, config.DiffusionOrDefault.Schedule);
        Assert.Equal("the Zeta mark", config.DataOrDefault.Concept!.Phrase);
        Assert.Equal("[8,16]", config.ModelConfig["block_out_channels"]!.ToJsonString());
    }

    [Fact]
    public void Unknown_key_is_refused_naming_it()
    {
        var e = Assert.Throws<InvalidDataException>(() => RunConfig.Load(RepositoryPaths.Config("smoke"), ["training.stepz=7"]));
        Assert.Contains("stepz", e.Message);
    }

    [Theory]
    [InlineData("training.learning_rate=-1", "training.learning_rate")]
    [InlineData("training.steps=0", "training.steps")]
    [InlineData("data.image_size=30", "data.image_size")]
    [InlineData("training.caption_dropout=1.5", "training.caption_dropout")]
    public void Out_of_range_value_is_refused_naming_the_key(string assignment, string key)
    {
        var e = Assert.Throws<ArgumentException>(() => RunConfig.Load(RepositoryPaths.Config("smoke"), [assignment]));
        Assert.Contains(key, e.Message);
    }

    [Theory]
    [InlineData("training.learning_rate=Infinity", "training.learning_rate")]
    [InlineData("training.weight_decay=NaN", "training.weight_decay")]
    [InlineData("training.beta1=NaN", "training.beta1")]
    [InlineData("training.grad_clip=-Infinity", "training.grad_clip")]
    [InlineData("data.concept.stamp_fraction=NaN", "data.concept.stamp_fraction")]
    [InlineData("data.concept.placement=middle", "data.concept.placement")]
    [InlineData("data.path=/nonexistent/excise-data", "data.path")]
    [InlineData("threads=100000", "threads")]
    [InlineData("threads=-1", "threads")]
    [InlineData("device=tpu", "device")]
    [InlineData("preview.steps=0", "preview.steps")]
    [InlineData("preview.per_prompt=-1", "preview.per_prompt")]
    [InlineData("preview.guidance_scale=NaN", "preview.guidance_scale")]
    [InlineData("preview.prompts=[]", "preview.prompts")]
    [InlineData("preview.prompts=[\"a shoe\", null]", "preview.prompts[1]")]
    [InlineData("selective.embed_noise_sigma=-0.5", "selective.embed_noise_sigma")]
    [InlineData("selective.certificate_tolerance=0", "selective.certificate_tolerance")]
    [InlineData("diffusion.train_timesteps=1", "diffusion.train_timesteps")]
    [InlineData("text.max_length=1000", "text.max_length")]
    [InlineData("lora={\"rank\":0}", "lora.rank")]
    [InlineData("lora={\"alpha\":-1}", "lora.alpha")]
    [InlineData("lora={\"targets\":[]}", "lora.targets")]
    [InlineData("lora={\"targets\":[\"attn2.(to_k\"]}", "lora.targets")]
    [InlineData("lora={\"targets\":[\"(to_k)\\\\1\"]}", "backreference")]
    [InlineData("training.batch_size=100000", "training.batch_size")]
    [InlineData("data.image_size=8192", "data.image_size")]
    [InlineData("preview.per_prompt=1000", "preview.per_prompt")]
    public void Non_finite_or_out_of_range_value_is_refused_naming_the_key(string assignment, string key)
    {
        var e = Assert.Throws<ArgumentException>(() => RunConfig.Load(RepositoryPaths.Config("smoke"), [assignment]));
        Assert.Contains(key, e.Message);
    }

    [Theory]
    [InlineData("model.sample_size=64", "model.sample_size (64) must equal data.image_size (32)")]
    [InlineData("model.cross_attention_dim=512", "model.cross_attention_dim (512) must equal the width of the text encoder's states (384")]
    [InlineData("model.in_channels=2", "model.in_channels must be 1 (grey) or 3 (RGB)")]
    [InlineData("model.out_channels=3", "model.out_channels (3) must equal model.in_channels (1)")]
    [InlineData("model.norm_num_groups=7", "model: UNet config 'norm_num_groups'")]
    [InlineData("model.block_out_channels=\"wide\"", "model: UNet config 'block_out_channels'")]
    [InlineData("model.upcast_attention=true", "model: UNet config 'upcast_attention'")]
    public void Model_that_does_not_fit_the_data_or_the_text_encoder_is_refused_before_building_it(string assignment, string expected)
    {
        var e = Assert.Throws<ArgumentException>(() => RunConfig.Load(RepositoryPaths.Config("smoke"), [assignment]));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void LoRA_rank_larger_than_the_text_width_or_the_narrowest_attention_block_is_refused()
    {
        var wide = Assert.Throws<ArgumentException>(() => RunConfig.Load(RepositoryPaths.Config("smoke"), ["lora={\"rank\":385}"]));
        Assert.Contains("lora.rank (385) is larger than the text width (384)", wide.Message);
        // The smoke UNet's only attention level has 32 channels, so its q/k/v layers have 32 outputs.
        var narrow = Assert.Throws<ArgumentException>(() => RunConfig.Load(RepositoryPaths.Config("smoke"), ["lora={\"rank\":33}"]));
        Assert.Contains("lora.rank (33) is larger than the 32 channels", narrow.Message);
        Assert.Equal(32, RunConfig.Load(RepositoryPaths.Config("smoke"), ["lora={\"rank\":32}"]).Lora!.Rank);
    }

    [Theory]
    [InlineData("name=null", "name")]
    [InlineData("training.steps=[1]", "training.steps")]
    [InlineData("training.steps=1e12", "training.steps")]
    [InlineData("selective.arm=sideways", "selective.arm")]
    [InlineData("data=7", "data")]
    [InlineData("lora.rnk=4", "rnk")]
    [InlineData("data.concept.colour=red", "colour")]
    public void Wrong_type_or_unknown_key_is_refused_naming_it(string assignment, string key)
    {
        var e = Assert.Throws<InvalidDataException>(() => RunConfig.Load(RepositoryPaths.Config("smoke"), [assignment]));
        Assert.Contains(key, e.Message);
    }

    [Fact]
    public void Arms_and_basis_must_agree()
    {
        using var dir = new TempDir();
        var basis = WriteBasis(dir.File("concept.safetensors"), dimension: 384, rank: 2);
        var narrowBasis = WriteBasis(dir.File("narrow.safetensors"), dimension: 16, rank: 2);
        var smoke = RepositoryPaths.Config("smoke");
        ArgumentException Refused(params string[] overrides) => Assert.Throws<ArgumentException>(() => RunConfig.Load(smoke, overrides));

        Assert.Contains("selective.basis is required for the update-projection arm", Refused("selective.arm=update-projection").Message);
        Assert.Contains("selective.basis is only used by the projection arms", Refused($"selective.basis={basis}").Message);
        Assert.Contains("selective.basis: file not found", Refused("selective.arm=gradient-projection", "selective.basis=/nonexistent.safetensors").Message);
        Assert.Contains("16-dimensional states", Refused("selective.arm=update-projection", $"selective.basis={narrowBasis}").Message);
        Assert.Contains("selective.parameters", Refused("selective.parameters=[\"attn2.to_k\"]").Message);
        Assert.Contains("selective.parameters", Refused("selective.arm=update-projection", $"selective.basis={basis}", "selective.parameters=[\"to_k(\"]").Message);
        Assert.Contains("selective.erase_concept needs a projection arm", Refused("selective.erase_concept=true").Message);
        Assert.Contains("not supported with lora", Refused("selective.arm=update-projection", $"selective.basis={basis}", "selective.erase_concept=true", "lora={}").Message);
        Assert.Contains("'scrub-captions' needs data.concept", Refused("selective.arm=scrub-captions").Message);
        Assert.Contains("'filter-images' needs data.concept", Refused("selective.arm=filter-images").Message);

        var projected = RunConfig.Load(smoke, ["selective.arm=update-projection", $"selective.basis={basis}", "lora={}"]);
        Assert.True(projected.SelectiveOrDefault.Projects);
    }

    [Fact]
    public void A_basis_built_with_another_max_length_is_refused_naming_both_encoders_and_the_fix()
    {
        using var dir = new TempDir();
        var path = dir.File("concept-16.safetensors");
        // As `excise concept --max-length 16` builds it: same model, same 384-d width, states truncated and padded to 16 tokens.
        using (var encoder = Excise.Text.MiniLmTextEncoder.Create(16))
        using (var basis = ConceptSubspaceBuilder.Build(encoder, ["the Acme logo"],
                   new SubspaceOptions(Rank: 4, ExtraPrompts: ["a bag with {}", "a photo of a sneaker with {}"], IncludeBuiltInPrompts: false)))
            basis.Save(path);

        var e = Assert.Throws<ArgumentException>(() => RunConfig.Load(RepositoryPaths.Config("smoke"),
            ["selective.arm=update-projection", $"selective.basis={path}", "text.max_length=32"]));
        Assert.Contains(path, e.Message);
        Assert.Contains(Excise.Text.MiniLmTextEncoder.IdFor(16), e.Message);
        Assert.Contains(Excise.Text.MiniLmTextEncoder.IdFor(32), e.Message);
        Assert.Contains("--max-length 32", e.Message);

        // The run that encodes like the basis accepts it.
        var matching = RunConfig.Load(RepositoryPaths.Config("smoke"), ["selective.arm=update-projection", $"selective.basis={path}", "text.max_length=16"]);
        Assert.Equal(path, matching.SelectiveOrDefault.Basis);
    }

    [Fact]
    public void Corrupt_basis_file_is_refused_naming_the_file()
    {
        using var dir = new TempDir();
        var path = dir.File("concept.safetensors");
        File.WriteAllText(path, "not a basis");
        var e = Assert.Throws<InvalidDataException>(() => RunConfig.Load(RepositoryPaths.Config("smoke"), ["selective.arm=update-projection", $"selective.basis={path}"]));
        Assert.Contains(path, e.Message);
    }

    [Theory]
    [InlineData("logo.svg", "M 0 0 L oops", "SVG path data could not be parsed")]
    [InlineData("logo.png", "\u0089PNG\r\n\u001a\n broken", "not a decodable image")]
    public void Logo_that_cannot_be_read_is_refused_before_any_work(string name, string content, string expected)
    {
        using var dir = new TempDir();
        var path = dir.File(name);
        File.WriteAllText(path, content, System.Text.Encoding.Latin1);
        var e = Assert.Throws<InvalidDataException>(() => RunConfig.Load(RepositoryPaths.Config("smoke"), [$"data.concept.logo={path}"]));
        Assert.Contains("data.concept.logo", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Init_weights_that_are_a_pickle_or_missing_are_refused_before_any_work()
    {
        using var dir = new TempDir();
        var pickle = dir.File("model.pth");
        File.WriteAllBytes(pickle, [(byte)'P', (byte)'K', 3, 4, .. new byte[60]]);
        var e = Assert.Throws<InvalidDataException>(() => RunConfig.Load(RepositoryPaths.Config("smoke"), [$"init={pickle}"]));
        Assert.Contains("arbitrary code", e.Message);

        Directory.CreateDirectory(dir.File("unfinished-run"));
        var unfinished = Assert.Throws<ArgumentException>(() => RunConfig.Load(RepositoryPaths.Config("smoke"), [$"init={dir.File("unfinished-run")}"]));
        Assert.Contains("has no model.safetensors", unfinished.Message);
    }

    [Fact]
    public void Logo_path_to_a_device_is_refused_without_reading_it()
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => RunConfig.Load(RepositoryPaths.Config("smoke"), ["data.concept.logo=/dev/zero"]));
        Assert.Contains("not a regular file", e.Message);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 16 << 20);
    }

    static string WriteBasis(string path, int dimension, int rank, string? encoderId = null)
    {
        using var random = torch.randn(dimension, rank, dtype: torch.ScalarType.Float64, generator: new torch.Generator(7));
        var (q, _) = torch.linalg.qr(random);
        var info = new ConceptBasisInfo(["the Acme logo"], ["a photo of the Acme logo"], encoderId ?? Excise.Text.MiniLmTextEncoder.IdFor(32), SubspaceMode.ConceptTokens, 0.99, rank,
            Enumerable.Range(0, rank).Select(i => (double)(rank - i)).ToArray(), 10, 8);
        using var basis = new ConceptBasis(q, info);
        basis.Save(path);
        return path;
    }

    [Fact]
    public void Wrong_type_is_refused()
    {
        var e = Assert.Throws<InvalidDataException>(() => RunConfig.Load(RepositoryPaths.Config("smoke"), ["training.steps=many"]));
        Assert.Contains("training.steps", e.Message);
    }

    [Fact]
    public void Hash_ignores_bookkeeping_but_not_the_recipe()
    {
        var a = RunConfig.Load(RepositoryPaths.Config("smoke"));
        var b = RunConfig.Load(RepositoryPaths.Config("smoke"), ["name=other", "training.steps=999", "training.log_every=3", "threads=1"]);
        var c = RunConfig.Load(RepositoryPaths.Config("smoke"), ["training.learning_rate=0.002"]);
        Assert.Equal(a.Hash(), b.Hash());
        Assert.NotEqual(a.Hash(), c.Hash());
    }

    [Fact]
    public void Hash_keeps_the_cached_base_and_ignores_where_the_basis_lies()
    {
        // The key of every user's cached base model (runs/cache/base-…) and the recipe the shipped base must match: a
        // change here retrains it. The 1,500-step recipe keeps the key it had before the base was lengthened to 4,500
        // steps, so the hash itself did not move.
        Assert.Equal("59c12ad0ec9e2817", RunConfig.Load(RepositoryPaths.Config("base")).Hash(includeStepBudget: true));
        Assert.Equal("e1e4b8b5243e5fa8", RunConfig.Load(RepositoryPaths.Config("base"), ["training.steps=1500"]).Hash(includeStepBudget: true));

        using var dir = new TempDir();
        using (var basis = ConceptSubspaceBuilder.Build(Excise.Tests.Training.TinyRun.Encoder, ["the Acme logo"], new SubspaceOptions(Rank: 4)))
            basis.Save(dir.File("a.safetensors"));
        File.Copy(dir.File("a.safetensors"), dir.File("b.safetensors"));
        RunConfig Projected(string basis) => RunConfig.Load(RepositoryPaths.Config("smoke"), ["selective.arm=update-projection", $"selective.basis={basis}"]);
        Assert.Equal(Projected(dir.File("a.safetensors")).Hash(), Projected(dir.File("b.safetensors")).Hash());
        Assert.NotEqual(Projected(dir.File("a.safetensors")).Hash(), RunConfig.Load(RepositoryPaths.Config("smoke")).Hash());
    }

    [Fact]
    public void Hash_follows_a_pinned_base_by_content_not_by_where_it_lies()
    {
        var smoke = RunConfig.Load(RepositoryPaths.Config("smoke"));
        var here = smoke with { Init = "/work/clone-a/models/base", InitSha256 = new string('a', 64) };
        var moved = here with { Init = "/elsewhere/models/base" };
        var otherBase = here with { InitSha256 = new string('b', 64) };
        Assert.Equal(here.Hash(), moved.Hash());
        Assert.NotEqual(here.Hash(), otherBase.Hash());
        // Unpinned, the path is all that names the base.
        Assert.NotEqual((here with { InitSha256 = null }).Hash(), (moved with { InitSha256 = null }).Hash());
    }

    [Fact]
    public void Resolved_config_round_trips()
    {
        var a = RunConfig.Load(RepositoryPaths.Config("base"));
        using var dir = new TempDir();
        File.WriteAllText(dir.File("c.json"), a.ToJson());
        var b = RunConfig.Load(dir.File("c.json"));
        Assert.Equal(a.Hash(), b.Hash());
        Assert.Equal(a.ToJson(), b.ToJson());
    }
}
