using Excise.Experiment;

namespace Excise.Tests.Experiment;

public sealed class ExperimentPresetTests
{
    static ExperimentPlan Preset(string name) => ExperimentPresets.Get(name, Path.Combine(RepositoryPaths.Root, "configs"));

    [Fact]
    public void Every_preset_is_valid() =>
        Assert.All(ExperimentPresets.Names, name => Preset(name).Validate());

    [Fact]
    public void Full_fine_tunes_seed_0_exactly_as_default_does()
    {
        // docs/experiment.md promises that `--preset full` after `excise demo` (same --out) reuses the default's fine-tunes.
        var (full, standard) = (Preset(ExperimentPresets.Full), Preset(ExperimentPresets.Default));
        Assert.Equal((standard.BaseConfig, standard.FinetuneConfig, standard.Subspace), (full.BaseConfig, full.FinetuneConfig, full.Subspace));
        Assert.Equal(standard.BaseOverrides, full.BaseOverrides);
        Assert.Equal(standard.FinetuneOverrides, full.FinetuneOverrides);
        Assert.Equal(standard.ProjectionOverrides ?? [], full.ProjectionOverrides ?? []);
    }

    [Fact]
    public void Full_has_several_seeds_and_judges_more_images_than_default()
    {
        var (full, standard) = (Preset(ExperimentPresets.Full), Preset(ExperimentPresets.Default));
        Assert.True(full.Seeds >= 3);
        Assert.True(full.Attack.ImagesPerPrompt > standard.Attack.ImagesPerPrompt);
        Assert.True(full.ReferenceImages > standard.ReferenceImages);
    }

    [Fact]
    public void Default_runs_a_subset_of_full_which_runs_every_arm()
    {
        var (full, standard) = (Preset(ExperimentPresets.Full), Preset(ExperimentPresets.Default));
        Assert.Equal(ExperimentPlan.AllArms, full.Arms);
        Assert.Subset(full.Arms.ToHashSet(), standard.Arms.ToHashSet());
        // Every comparison is with standard, and the default answers the paper's question.
        Assert.Equal(Excise.Training.TrainingArm.Standard, standard.Arms[0]);
        Assert.Contains(Excise.Training.TrainingArm.GradientProjection, standard.Arms);
    }
}
