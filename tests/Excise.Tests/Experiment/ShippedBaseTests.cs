using Excise.Experiment;
using Excise.Serialization;
using Excise.Tests.Training;
using Excise.Training;

namespace Excise.Tests.Experiment;

public sealed class ShippedBaseTests
{
    [Fact]
    public void The_default_and_full_presets_fine_tune_from_the_shipped_base_and_quick_trains_its_own()
    {
        var configs = Path.Combine(RepositoryPaths.Root, "configs");
        var shipped = Path.Combine(RepositoryPaths.Root, "models", "base");
        Assert.Equal(shipped, ExperimentPresets.Get(ExperimentPresets.Default, configs).ShippedBase);
        Assert.Equal(shipped, ExperimentPresets.Get(ExperimentPresets.Full, configs).ShippedBase);
        Assert.Null(ExperimentPresets.Get(ExperimentPresets.Quick, configs).ShippedBase);
    }

    /// <summary>
    /// The base the repository ships: its bytes are the pinned ones, its recipe is configs/base.json (so the demo uses it),
    /// and loading it reproduces the fixed-batch loss recorded when it was packed — which a truncated or replaced file,
    /// a changed loader or a changed UNet definition would move by far more than the tolerance.
    /// </summary>
    [Fact]
    public void The_repositorys_base_loads_to_its_recorded_loss_and_is_the_configured_recipe()
    {
        var shipped = Path.Combine(RepositoryPaths.Root, "models", "base");
        var (manifest, loss) = ShippedBase.Verify(shipped);
        Assert.Equal(manifest.FixedBatchLoss, loss, 1e-4 * manifest.FixedBatchLoss);
        var configs = Path.Combine(RepositoryPaths.Root, "configs");
        var plan = ExperimentPresets.Get(ExperimentPresets.Default, configs);
        var configured = RunConfig.Load(plan.BaseConfig, plan.BaseOverrides);
        var log = new List<string>();
        Assert.Equal(shipped, ExperimentRunner.ShippedBase(plan, configured, log.Add)?.Root);
        Assert.Equal(configured.TrainingOrDefault.Steps, manifest.Steps);
    }

    [Fact]
    public void A_shipped_base_is_used_only_when_pinned_and_trained_by_the_configured_recipe()
    {
        using var dir = new TempDir();
        var recipe = TinyRun.Config("training.steps=2", "training.checkpoint_every=0");
        var plan = ExperimentPresets.Get(ExperimentPresets.Quick, Path.Combine(RepositoryPaths.Root, "configs")) with { ShippedBase = dir.File("base") };
        var log = new List<string>();

        Assert.Null(ExperimentRunner.ShippedBase(plan, recipe, log.Add));
        Assert.Contains(log, line => line.StartsWith("No shipped base at"));

        var run = new RunDirectory(dir.File("base"));
        TrainingJob.Run(recipe, run, resume: false);
        var unpinned = Assert.Throws<InvalidDataException>(() => ExperimentRunner.ShippedBase(plan, recipe, log.Add));
        Assert.Contains("pinned", unpinned.Message);

        Digest.Pin(run.ModelPath);
        Assert.Equal(run.Root, ExperimentRunner.ShippedBase(plan, recipe, log.Add)!.Root);
        // The same recipe on other threads is the same base (threads are not part of the recipe)…
        Assert.NotNull(ExperimentRunner.ShippedBase(plan, recipe with { Threads = 1 }, log.Add));
        // …but a changed recipe is not: its base would be other weights.
        var changed = Assert.Throws<ArgumentException>(() => ExperimentRunner.ShippedBase(plan,
            recipe with { Training = recipe.TrainingOrDefault with { Steps = 3 } }, log.Add));
        Assert.Contains("--train-base", changed.Message);
    }

    [Fact]
    public void A_packed_base_reproduces_its_recorded_loss_and_a_changed_one_is_refused()
    {
        using var dir = new TempDir();
        var trained = new RunDirectory(dir.File("trained"));
        TrainingJob.Run(TinyRun.Config("training.steps=3", "training.checkpoint_every=0"), trained, resume: false);
        var manifest = ShippedBase.Pack(trained, dir.File("shipped"), "excise train --config configs/smoke.json …");
        Assert.Equal(Digest.Sha256(trained.ModelPath), manifest.ModelSha256);
        Assert.Equal(2, manifest.Threads);
        var (_, loss) = ShippedBase.Verify(dir.File("shipped"));
        Assert.Equal(manifest.FixedBatchLoss, loss, 12);
        // A model that learned something: the loss is far from the untrained ~1 and from 0.
        Assert.InRange(loss, 0.05, 0.95);

        // Another model under the same pin and manifest: the pin refuses it before any loss is computed.
        var other = new RunDirectory(dir.File("other"));
        TrainingJob.Run(TinyRun.Config("training.steps=1", "training.checkpoint_every=0", "seed=5"), other, resume: false);
        File.Copy(other.ModelPath, Path.Combine(dir.File("shipped"), "model.safetensors"), overwrite: true);
        Assert.Throws<InvalidDataException>(() => ShippedBase.Verify(dir.File("shipped")));
        // Pinned anew, the manifest's recorded hash and loss still say it is not the shipped base.
        Digest.Pin(Path.Combine(dir.File("shipped"), "model.safetensors"));
        Assert.Contains("other weights", Assert.Throws<InvalidDataException>(() => ShippedBase.Verify(dir.File("shipped"))).Message);
    }
}
