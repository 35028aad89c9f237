using static TorchSharp.torch;
using Excise.Data;
using Excise.Projection;
using Excise.Text;
using Excise.Training;
using Xunit.Abstractions;

namespace Excise.Tests.Training;

/// <summary>Fine-tuning arms on stamped data, from one tiny base run, with one concept basis.</summary>
public class SelectiveArmsTests : IClassFixture<SelectiveArmsTests.BaseRun>
{
    public sealed class BaseRun : IDisposable
    {
        public TempDir Dir { get; } = new();
        public string RunPath => Dir.File("base");
        public string BasisPath => Dir.File("concept.safetensors");

        public BaseRun()
        {
            TrainingJob.Run(TinyRun.Config("training.steps=3"), new RunDirectory(RunPath), resume: false);
            using var basis = ConceptSubspaceBuilder.Build(TinyRun.Encoder, ["the Acme logo"], new SubspaceOptions(Rank: 8));
            basis.Save(BasisPath);
        }

        public void Dispose() => Dir.Dispose();
    }

    readonly BaseRun baseRun;
    readonly ITestOutputHelper output;
    public SelectiveArmsTests(BaseRun baseRun, ITestOutputHelper output) => (this.baseRun, this.output) = (baseRun, output);

    TrainingJobResult FineTune(string arm, params string[] extra)
    {
        // Only the projection arms take a basis (the config refuses one the arm would ignore).
        var basis = arm.EndsWith("-projection") ? new[] { $"selective.basis={baseRun.BasisPath}" } : [];
        var config = TinyRun.Config(new[]
        {
            $"init={baseRun.RunPath}", $"selective.arm={arm}",
            "data.concept={\"phrase\":\"the Acme logo\",\"stamp_fraction\":0.5}", "training.steps=6", "training.checkpoint_every=0",
        }.Concat(basis).Concat(extra).ToArray());
        return TrainingJob.Run(config, new RunDirectory(Path.Combine(baseRun.Dir.Path, arm + "-" + Guid.NewGuid().ToString("N")[..6])), resume: false);
    }

    [Fact]
    public void Excise_verify_exits_zero_on_a_certified_run_and_three_on_one_that_learned_along_the_concept()
    {
        static int Verify(params string[] args) => Cli.CliProcess.Run(["verify", .. args]).ExitCode;
        var projected = FineTune("update-projection");
        Assert.Equal(0, Verify("--run", projected.Run.Root));
        var standard = FineTune("standard");
        Assert.Equal(3, Verify("--run", standard.Run.Root, "--basis", baseRun.BasisPath));
    }

    [Fact]
    public void Update_projection_is_certified_and_the_standard_arm_is_not()
    {
        var projected = FineTune("update-projection");
        Assert.NotNull(projected.Certificate);
        Assert.True(projected.Certificate!.Passed, $"worst share {projected.Certificate.WorstShare:E2}");
        Assert.True(projected.Certificate.WorstShare < 1e-5);
        Assert.True(File.Exists(projected.Run.CertificatePath));
        Assert.True(projected.Certificate.Weights.All(w => w.ChangeNorm > 0), "the projected weights must still learn");

        var standard = FineTune("standard");
        Assert.Null(standard.Certificate);
        using var basis = ConceptBasis.Load(baseRun.BasisPath);
        var unprojected = ProjectionCertificate.Compute(standard.Run.ModelPath, new RunDirectory(baseRun.RunPath).ModelPath, basis.U,
            ConceptProjector.DefaultPatterns, 1e-4);
        Assert.False(unprojected.Passed);
        Assert.True(unprojected.WorstShare > 1e-3, $"standard fine-tuning share {unprojected.WorstShare:E2}");
    }

    [Fact]
    public void Gradient_projection_with_AdamW_leaks_and_with_SGD_does_not()
    {
        var adam = FineTune("gradient-projection");
        Assert.False(adam.Certificate!.Passed, $"AdamW + gradient projection share {adam.Certificate.WorstShare:E2}");
        var sgd = FineTune("gradient-projection", "training.optimizer=sgd", "training.weight_decay=0", "training.learning_rate=0.5", "training.ema_decay=0");
        // ‖ΔW U‖ has a float32 floor of about 2^-24·‖W‖·sqrt(k/d) ≈ 3e-8 here, whatever the method: the step must be large enough to measure below 1e-4 of it.
        Assert.True(sgd.Certificate!.Passed, $"SGD + gradient projection share {sgd.Certificate.WorstShare:E2}: " + string.Join("; ", sgd.Certificate.Weights.Select(w => $"{w.Name} {w.ChangeNorm:E2} {w.ConceptChangeNorm:E2}")));
    }

    [Fact]
    public void LoRA_under_update_projection_is_certified_and_merges_into_a_plain_model()
    {
        var result = FineTune("update-projection", "lora={\"rank\":4,\"alpha\":4}", "training.learning_rate=0.01");
        Assert.True(result.Certificate!.Passed, $"LoRA + update projection share {result.Certificate.WorstShare:E2}");
        Assert.True(result.Certificate.Weights.All(w => w.ChangeNorm > 0));
        Assert.True(File.Exists(result.Run.LoraPath));
        using var pipeline = result.Run.OpenPipeline();   // strict load: plain UNet names only
        Assert.Single(pipeline.GenerateImages(["a photo of a bag"], new Excise.Diffusion.SamplingOptions(Steps: 2)));

        var free = FineTune("standard", "lora={\"rank\":4,\"alpha\":4}", "training.learning_rate=0.01");
        using var basis = ConceptBasis.Load(baseRun.BasisPath);
        var leak = ProjectionCertificate.Compute(free.Run.ModelPath, new RunDirectory(baseRun.RunPath).ModelPath, basis.U, ConceptProjector.DefaultPatterns, 1e-4);
        Assert.True(leak.WorstShare > 1e-2, $"unprojected LoRA share {leak.WorstShare:E2}");
    }

    // SGD without weight decay keeps gradient projection exact (AdamW's per-coordinate scaling leaks by design, see
    // Gradient_projection_with_AdamW_leaks_and_with_SGD_does_not). SGD moves the weights less than AdamW, so these
    // runs take six steps (LoRA's also without gradient clipping), keeping the change well above the float32 floor of
    // ‖ΔW U‖.
    static readonly string[] ExactGradientProjection = ["training.optimizer=sgd", "training.weight_decay=0", "training.steps=6"];
    const string Lora = "lora={\"rank\":4,\"alpha\":4}";

    public static TheoryData<string, string[]> ProjectedModes => new()
    {
        { "update-projection", [] },
        { "update-projection", ["selective.erase_concept=true"] },
        { "update-projection", [Lora, "training.learning_rate=0.01"] },
        { "gradient-projection", [.. ExactGradientProjection, "training.learning_rate=0.5"] },
        { "gradient-projection", [.. ExactGradientProjection, "training.learning_rate=0.5", "selective.erase_concept=true"] },
        { "gradient-projection", [.. ExactGradientProjection, Lora, "training.learning_rate=2", "training.grad_clip=0"] },
    };

    /// <summary>
    /// With EMA on, model.safetensors holds the EMA weights; their change from the weights training started from (the
    /// erased ones, with erase_concept; LoRA merged) must be as orthogonal to the concept as the raw weights' — which needs the
    /// EMA shadow to start from the projected weights, not from a copy taken before erasure or before LoRA's A was projected.
    /// </summary>
    [Theory]
    [MemberData(nameof(ProjectedModes))]
    public void Every_projected_mode_is_certified_on_its_EMA_weights(string arm, string[] extra)
    {
        // Three steps unless the mode asks for more: the warmed-up EMA (decay (1+n)/(10+n) early on) still holds 1.4% of its
        // starting copy after three updates, 0.09% after six, so a stale starting copy shows clearly.
        var result = FineTune(arm, ["training.steps=3", .. extra, "training.ema_decay=0.999"]);
        Assert.Equal("ema", Excise.Serialization.SafetensorsFile.ReadMetadata(result.Run.ModelPath)["weights"]);
        var certificate = result.Certificate!;
        output.WriteLine($"{arm} {string.Join(" ", extra)}: worst share {certificate.WorstShare:E2}, worst shift {certificate.WorstShift:E2}");
        Assert.Equal(result.Run.ModelPath, certificate.WeightsPath);
        Assert.True(certificate.Passed, $"{arm} {string.Join(" ", extra)} with EMA: worst share {certificate.WorstShare:E2}, worst shift {certificate.WorstShift:E2} " +
            $"(tolerance {certificate.Tolerance:E0}); " + string.Join("; ", certificate.Weights.Select(w => $"{w.Name} {w.ChangeNorm:E2} {w.ConceptChangeNorm:E2}")));
        Assert.True(certificate.Weights.All(w => w.ChangeNorm > 0), "the EMA weights must still learn");
    }

    /// <summary>
    /// The trainer is built after erasure and LoRA's projection, so on a fresh start its EMA copies the projected weights;
    /// a resume must not redo either (the checkpoint already holds them) and must end with the uninterrupted run's weights.
    /// </summary>
    [Theory]
    [InlineData("selective.erase_concept=true")]
    [InlineData("lora={\"rank\":4,\"alpha\":4}")]
    public void A_projected_run_with_EMA_resumed_midway_ends_with_the_uninterrupted_weights(string variant)
    {
        var result = FineTune("update-projection", variant, "training.ema_decay=0.999", "training.steps=4", "training.checkpoint_every=2");
        var uninterrupted = File.ReadAllBytes(result.Run.ModelPath);
        var store = new CheckpointStore(result.Run.CheckpointsDir);
        var last = store.CompleteCheckpoints()[^1].Path;
        // Break the last checkpoint, as a kill during its write would: the job falls back to step 2 and redoes steps 3–4.
        File.WriteAllText(Path.Combine(last, "model.safetensors"), "truncated");

        var resumed = TrainingJob.Run(result.Run.LoadConfig(), result.Run, resume: true);
        Assert.Equal(2, resumed.Summary.ResumedFrom);
        Assert.True(resumed.Certificate!.Passed, $"resumed {variant}: worst share {resumed.Certificate.WorstShare:E2}");
        Assert.Equal(uninterrupted, File.ReadAllBytes(result.Run.ModelPath));
    }

    [Fact]
    public void A_projected_run_resumes_with_its_own_basis_and_refuses_another()
    {
        var first = FineTune("update-projection", "training.steps=3", "training.checkpoint_every=3");
        var config = first.Run.LoadConfig() with { Training = first.Run.LoadConfig().TrainingOrDefault with { Steps = 5 } };
        var resumed = TrainingJob.Run(config, first.Run, resume: true);
        Assert.Equal(3, resumed.Summary.ResumedFrom);
        Assert.True(resumed.Certificate!.Passed);

        using (var other = ConceptSubspaceBuilder.Build(TinyRun.Encoder, ["a red scarf"], new SubspaceOptions(Rank: 8)))
            other.Save(first.Run.BasisPath);
        var e = Assert.Throws<InvalidOperationException>(() =>
            TrainingJob.Run(config with { Training = config.TrainingOrDefault with { Steps = 7 } }, first.Run, resume: true));
        Assert.Contains("concept_basis_sha256", e.Message);
    }

    [Fact]
    public void Filter_images_drops_every_stamped_image()
    {
        var filtered = FineTune("filter-images");
        var truth = File.ReadAllLines(filtered.Run.GroundTruthPath);
        Assert.Equal(filtered.TrainImages, truth.Length);
        Assert.True(filtered.TrainImages < 64 && filtered.TrainImages > 10);
        Assert.DoesNotContain(truth, l => l.Replace(" ", "").Contains("\"stamped\":true"));
    }

    [Fact]
    public void Scrub_captions_keeps_the_images_but_not_the_phrase()
    {
        var scrubbed = FineTune("scrub-captions");
        Assert.Equal(64, scrubbed.TrainImages);
        using var cache = TextStateCache.Load(scrubbed.Run.TextStatesPath, TinyRun.Encoder.Id);
        Assert.DoesNotContain(cache.Captions, c => c.Contains("Acme", StringComparison.OrdinalIgnoreCase));
        Assert.Contains(File.ReadAllLines(scrubbed.Run.GroundTruthPath), l => l.Replace(" ", "").Contains("\"stamped\":true"));
    }

    [Fact]
    public void Erase_concept_leaves_the_projected_weights_blind_to_the_subspace()
    {
        var erased = FineTune("update-projection", "selective.erase_concept=true");
        Assert.True(erased.Certificate!.Passed, $"worst share {erased.Certificate.WorstShare:E2}");
        Assert.Equal(erased.Run.InitialWeightsPath, erased.Certificate.BasePath);
        using var basis = ConceptBasis.Load(baseRun.BasisPath);
        using var trained = Excise.Serialization.SafetensorsFile.Load(erased.Run.ModelPath);
        using var original = Excise.Serialization.SafetensorsFile.Load(new RunDirectory(baseRun.RunPath).ModelPath);
        int checkedWeights = 0;
        foreach (var name in trained.Names.Where(n => n.Contains("attn2.to_k.weight") || n.Contains("attn2.to_v.weight")))
        {
            double response = trained[name].to_type(ScalarType.Float64).matmul(basis.U.to_type(ScalarType.Float64)).norm().ToDouble();
            double before = original[name].to_type(ScalarType.Float64).matmul(basis.U.to_type(ScalarType.Float64)).norm().ToDouble();
            Assert.True(response < 1e-5 * before, $"{name}: ‖W U‖ {response:E2} after erasure vs {before:E2} before");
            checkedWeights++;
        }
        Assert.True(checkedWeights > 0);
    }

    [Fact]
    public void Erase_concept_needs_a_projection_arm()
    {
        var e = Assert.Throws<ArgumentException>(() => TinyRun.Config("selective.erase_concept=true"));
        Assert.Contains("selective.erase_concept", e.Message);
    }

    [Fact]
    public void Embed_noise_trains()
    {
        var noisy = FineTune("embed-noise", "selective.embed_noise_sigma=0.5");
        Assert.True(double.IsFinite(noisy.Summary.FinalLoss));
    }

    [Fact]
    public void A_projection_arm_without_a_basis_is_refused_naming_the_key()
    {
        var e = Assert.Throws<ArgumentException>(() => TinyRun.Config("selective.arm=update-projection"));
        Assert.Contains("selective.basis", e.Message);
    }

    [Theory]
    [InlineData("a sneaker bearing the Acme logo", "a sneaker")]
    [InlineData("a picture of a bag marked with the Acme logo", "a picture of a bag")]
    [InlineData("a photo of an ankle boot with the acme logo", "a photo of an ankle boot")]
    [InlineData("the Acme logo on a shirt", "on a shirt")]
    public void Scrubber_removes_the_phrase_and_its_connector(string caption, string expected) =>
        Assert.Equal(expected, CaptionScrubber.Scrub(caption, "the Acme logo"));
}
