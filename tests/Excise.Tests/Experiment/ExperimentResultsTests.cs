using Excise.Experiment;
using Excise.Tests.Reporting;
using Xunit;

namespace Excise.Tests.Experiment;

public class ExperimentResultsTests
{
    [Fact]
    public void A_published_results_file_with_the_flat_setup_of_before_reads_into_the_groups()
    {
        // docs/results/full-2026-12-06.json was written before the setup was grouped; the README's figures come from it.
        var path = Path.Combine(RepositoryPaths.Root, "docs", "results", "full-2026-12-06.json");
        var results = ExperimentResults.FromJson(File.ReadAllText(path), path);
        var setup = results.Setup;
        Assert.Equal("full", setup.Execution.Preset);
        Assert.Equal(3, setup.Execution.Seeds);
        Assert.Equal(18, setup.Execution.ReusedArmRuns);
        Assert.Equal("the Acme logo", setup.Concept.Phrase);
        Assert.Null(setup.Concept.Kind);
        Assert.Equal("logo", setup.ConceptNoun);
        Assert.Equal(6047, setup.Concept.StampedImages);
        Assert.Equal(0.3, setup.Concept.StampFraction);
        Assert.Equal("63b53f9f6407def5e7e6c59b0084f7774c06f75ee563de7ce7badc95e3f4543c", setup.Base.Sha256);
        Assert.True(setup.Base.Shipped);
        Assert.Equal(4500, setup.Base.Steps);
        Assert.Equal(120, setup.Finetune.Steps);
        Assert.Equal(32, setup.Finetune.Batch);
        Assert.Equal(27, setup.Basis.Rank);
        Assert.Equal(60, setup.Basis.Leakage!.Prompts);
        Assert.Equal(["prompt", "paraphrase", "inversion", "inversion-control", "baseline-rate"], setup.Attacks.Names);
        Assert.Equal("ddim", setup.Attacks.Sampler);
        Assert.Equal(150, setup.Attacks.InversionSteps);
        Assert.False(setup.Judges.Quick);
        Assert.True(setup.Judges.QualityMeaningful);
        Assert.Equal(0.9054, setup.Judges.ClassifierAccuracy);
        Assert.NotNull(setup.Judges.DetectorMasks);
        Assert.NotEmpty(setup.Judges.DetectorOffDistribution!);
        Assert.Equal(30, results.Runs.Count);
    }

    [Fact]
    public void Results_written_now_read_back_equal_with_the_setup_in_groups()
    {
        var results = SyntheticResults.Build(qualityMeaningful: true);
        var json = results.ToJson();
        Assert.Contains("\"execution\"", json);
        Assert.DoesNotContain("\"attack_names\"", json);
        var back = ExperimentResults.FromJson(json);
        Assert.Equal(results.Setup.Execution with { Arms = [] }, back.Setup.Execution with { Arms = [] });
        Assert.Equal(results.Setup.Execution.Arms, back.Setup.Execution.Arms);
        Assert.Equal(results.Setup.Concept, back.Setup.Concept);
        Assert.Equal(results.Setup.Base, back.Setup.Base);
        Assert.Equal(results.Setup.Basis, back.Setup.Basis);
        Assert.Equal(results.Setup.Attacks.Names, back.Setup.Attacks.Names);
        Assert.Equal(results.ToJson(), back.ToJson());
    }

    [Fact]
    public void A_file_that_is_not_results_is_refused_naming_it()
    {
        var error = Assert.Throws<InvalidDataException>(() => ExperimentResults.FromJson("{\"setup\": 3}", "runs/x/results.json"));
        Assert.Contains("runs/x/results.json", error.Message);
    }
}
