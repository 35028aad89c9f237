using Excise.Configuration;
using Excise.Diffusion;
using Excise.Training;

namespace Excise.Tests.Configuration;

public class RunConfigTests
{
    [Theory]
    [InlineData("smoke")]
    [InlineData("base")]
    public void ShippedConfigsLoadAndValidate(string name)
    {
        var config = RunConfig.Load(RepositoryPaths.Config(name));
        Assert.Equal(name, config.Name);
        Assert.Equal(384, config.ModelConfig["cross_attention_dim"]!.GetValue<int>());
    }

    [Fact]
    public void SetOverridesNestedFieldsWithTypedValues()
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
    public void UnknownKeyIsRefusedNamingIt()
    {
        var e = Assert.Throws<InvalidDataException>(() => RunConfig.Load(RepositoryPaths.Config("smoke"), ["training.stepz=7"]));
        Assert.Contains("stepz", e.Message);
    }

    [Theory]
    [InlineData("training.learning_rate=-1", "training.learning_rate")]
    [InlineData("training.steps=0", "training.steps")]
    [InlineData("data.image_size=30", "data.image_size")]
    [InlineData("training.caption_dropout=1.5", "training.caption_dropout")]
    public void OutOfRangeValueIsRefusedNamingTheKey(string assignment, string key)
    {
        var e = Assert.Throws<ArgumentException>(() => RunConfig.Load(RepositoryPaths.Config("smoke"), [assignment]));
        Assert.Contains(key, e.Message);
    }

    [Fact]
    public void WrongTypeIsRefused()
    {
        var e = Assert.Throws<InvalidDataException>(() => RunConfig.Load(RepositoryPaths.Config("smoke"), ["training.steps=many"]));
        Assert.Contains("training.steps", e.Message);
    }

    [Fact]
    public void HashIgnoresBookkeepingButNotTheRecipe()
    {
        var a = RunConfig.Load(RepositoryPaths.Config("smoke"));
        var b = RunConfig.Load(RepositoryPaths.Config("smoke"), ["name=other", "training.steps=999", "training.log_every=3", "threads=1"]);
        var c = RunConfig.Load(RepositoryPaths.Config("smoke"), ["training.learning_rate=0.002"]);
        Assert.Equal(a.Hash(), b.Hash());
        Assert.NotEqual(a.Hash(), c.Hash());
    }

    [Fact]
    public void ResolvedConfigRoundTrips()
    {
        var a = RunConfig.Load(RepositoryPaths.Config("base"));
        using var dir = new TempDir();
        File.WriteAllText(dir.File("c.json"), a.ToJson());
        var b = RunConfig.Load(dir.File("c.json"));
        Assert.Equal(a.Hash(), b.Hash());
        Assert.Equal(a.ToJson(), b.ToJson());
    }
}
