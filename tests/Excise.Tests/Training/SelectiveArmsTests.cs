using static TorchSharp.torch;
using Excise.Data;
using Excise.Projection;
using Excise.Text;
using Excise.Training;

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
    public SelectiveArmsTests(BaseRun baseRun) => this.baseRun = baseRun;

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
    public void UpdateProjectionIsCertifiedAndTheStandardArmIsNot()
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
    public void GradientProjectionWithAdamWLeaksAndWithSgdDoesNot()
    {
        var adam = FineTune("gradient-projection");
        Assert.False(adam.Certificate!.Passed, $"AdamW + gradient projection share {adam.Certificate.WorstShare:E2}");
        var sgd = FineTune("gradient-projection", "training.optimizer=sgd", "training.weight_decay=0", "training.learning_rate=0.5", "training.ema_decay=0");
        // ‖ΔW U‖ has a float32 floor of about 2^-24·‖W‖·sqrt(k/d) ≈ 3e-8 here, whatever the method: the step must be large enough to measure below 1e-4 of it.
        Assert.True(sgd.Certificate!.Passed, $"SGD + gradient projection share {sgd.Certificate.WorstShare:E2}: " + string.Join("; ", sgd.Certificate.Weights.Select(w => $"{w.Name} {w.ChangeNorm:E2} {w.ConceptChangeNorm:E2}")));
    }

    [Fact]
    public void LoraUnderUpdateProjectionIsCertifiedAndMergesIntoAPlainModel()
    {
        var result = FineTune("update-projection", "lora={\"rank\":4,\"alpha\":4}", "training.learning_rate=0.01");
        Assert.True(result.Certificate!.Passed, $"LoRA + update projection share {result.Certificate.WorstShare:E2}");
        Assert.True(result.Certificate.Weights.All(w => w.ChangeNorm > 0));
        Assert.True(File.Exists(result.Run.LoraPath));
        using var pipeline = Excise.Diffusion.TextToImagePipeline.Open(result.Run);   // strict load: plain UNet names only
        Assert.Single(pipeline.GenerateImages(["a photo of a bag"], new Excise.Diffusion.SamplingOptions(Steps: 2)));

        var free = FineTune("standard", "lora={\"rank\":4,\"alpha\":4}", "training.learning_rate=0.01");
        using var basis = ConceptBasis.Load(baseRun.BasisPath);
        var leak = ProjectionCertificate.Compute(free.Run.ModelPath, new RunDirectory(baseRun.RunPath).ModelPath, basis.U, ConceptProjector.DefaultPatterns, 1e-4);
        Assert.True(leak.WorstShare > 1e-2, $"unprojected LoRA share {leak.WorstShare:E2}");
    }

    [Fact]
    public void AProjectedRunResumesWithItsOwnBasisAndRefusesAnother()
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
    public void FilterImagesDropsEveryStampedImage()
    {
        var filtered = FineTune("filter-images");
        var truth = File.ReadAllLines(filtered.Run.GroundTruthPath);
        Assert.Equal(filtered.TrainImages, truth.Length);
        Assert.True(filtered.TrainImages < 64 && filtered.TrainImages > 10);
        Assert.DoesNotContain(truth, l => l.Replace(" ", "").Contains("\"stamped\":true"));
    }

    [Fact]
    public void ScrubCaptionsKeepsTheImagesButNotThePhrase()
    {
        var scrubbed = FineTune("scrub-captions");
        Assert.Equal(64, scrubbed.TrainImages);
        using var cache = TextStateCache.Load(scrubbed.Run.TextStatesPath, TinyRun.Encoder.Id);
        Assert.DoesNotContain(cache.Captions, c => c.Contains("Acme", StringComparison.OrdinalIgnoreCase));
        Assert.Contains(File.ReadAllLines(scrubbed.Run.GroundTruthPath), l => l.Replace(" ", "").Contains("\"stamped\":true"));
    }

    [Fact]
    public void EraseConceptLeavesTheProjectedWeightsBlindToTheSubspace()
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
    public void EraseConceptNeedsAProjectionArm()
    {
        var e = Assert.Throws<ArgumentException>(() => TinyRun.Config("selective.erase_concept=true"));
        Assert.Contains("selective.erase_concept", e.Message);
    }

    [Fact]
    public void EmbedNoiseTrains()
    {
        var noisy = FineTune("embed-noise", "selective.embed_noise_sigma=0.5");
        Assert.True(double.IsFinite(noisy.Summary.FinalLoss));
    }

    [Fact]
    public void AProjectionArmWithoutABasisIsRefusedNamingTheKey()
    {
        var e = Assert.Throws<ArgumentException>(() => TinyRun.Config("selective.arm=update-projection"));
        Assert.Contains("selective.basis", e.Message);
    }

    [Theory]
    [InlineData("a sneaker bearing the Acme logo", "a sneaker")]
    [InlineData("a picture of a bag marked with the Acme logo", "a picture of a bag")]
    [InlineData("a photo of an ankle boot with the acme logo", "a photo of an ankle boot")]
    [InlineData("the Acme logo on a shirt", "on a shirt")]
    public void ScrubberRemovesThePhraseAndItsConnector(string caption, string expected) =>
        Assert.Equal(expected, CaptionScrubber.Scrub(caption, "the Acme logo"));
}
