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

        FileDigest.Pin(run.ModelPath);
        Assert.Equal(run.Root, ExperimentRunner.ShippedBase(plan, recipe, log.Add)!.Root);
        // The same recipe on other threads is the same base (threads are not part of the recipe)…
        Assert.NotNull(ExperimentRunner.ShippedBase(plan, recipe with { Threads = 1 }, log.Add));
        // …but a changed recipe is not: its base would be other weights.
        var changed = Assert.Throws<ArgumentException>(() => ExperimentRunner.ShippedBase(plan,
            recipe with { Training = recipe.TrainingOrDefault with { Steps = 3 } }, log.Add));
        Assert.Contains("--train-base", changed.Message);
    }
}
