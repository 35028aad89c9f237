using Excise.Configuration;
using System.Text.Json;
using Excise.Attacks;
using Excise.Data;
using Excise.Imaging;
using Excise.Tests.Training;
using Excise.Training;
using static TorchSharp.torch;

namespace Excise.Tests.Attacks;

/// <summary>Every attack kind against one tiny victim: files, counts, prompts, seeds.</summary>
[Collection(AttackVictimCollection.Name)]
public class AttackTests
{
    readonly AttackVictim victim;
    public AttackTests(AttackVictim victim) => this.victim = victim;

    static AttackSettings Cheap(AttackKind kind, long seed = 0) =>
        new(kind, ImagesPerPrompt: 1, SamplingSteps: 2, Seed: seed, BatchSize: 32,
            Inversion: new InversionSettings(Images: 4, Steps: 3, BatchSize: 4, EvaluationDraws: 2));

    static JsonElement Manifest(string dir) => JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, AttackOutput.ManifestFile))).RootElement;

    static void AssertFilesWritten(string dir, AttackResult result)
    {
        var manifest = Manifest(dir);
        var images = manifest.GetProperty("images").EnumerateArray().ToList();
        Assert.Equal(result.Images.Count, images.Count);
        // Each record names the file holding that very image, in the order the attack made them.
        foreach (var (record, made) in images.Zip(result.Images))
        {
            var file = Path.Combine(dir, record.GetProperty("file").GetString()!);
            Assert.True(File.Exists(file), file);
            Assert.True(PngIO.Load(file).SameContentAs(made.Image), $"{file} is not image {made.FileName} of the attack");
            Assert.Equal(made.PromptIndex, record.GetProperty("prompt_index").GetInt32());
        }
        Assert.Equal(result.Prompts.Count, Directory.GetFiles(Path.Combine(dir, AttackOutput.GridsFolder), "*.png").Length);
        Assert.True(File.Exists(Path.Combine(dir, "grid.png")));
        Assert.Equal(result.Prompts.Count, manifest.GetProperty("prompts").GetArrayLength());
        Assert.Equal(result.Timing.Total.TotalSeconds, manifest.GetProperty("timing").GetProperty("total_seconds").GetDouble());
        Assert.Equal(result.Kind.ToName(), manifest.GetProperty("kind").GetString());
        Assert.Equal(result.Kind.ToName(), manifest.GetProperty("settings").GetProperty("kind").GetString());
    }

    [Fact]
    public void Prompt_attack_names_the_concept_for_every_class_and_writes_its_files()
    {
        var dir = victim.Out("prompt");
        var result = AttackRunner.Run(victim.Run, Cheap(AttackKind.Prompt) with { ImagesPerPrompt = 2 }, dir);   // the concept comes from the run's config
        Assert.Equal("the Acme logo", result.Concept);
        Assert.Equal(20, result.Prompts.Count);
        Assert.Equal(40, result.Images.Count);
        Assert.All(result.Prompts, p => Assert.Contains("the Acme logo", p.Text));
        Assert.Equal(Enumerable.Range(0, 10).SelectMany(c => new int?[] { c, c }).Order(), result.Images.Where(i => i.Replicate == 0).Select(i => i.ClassLabel).Order());
        Assert.Contains(result.Prompts, p => p.Text == "an ankle boot with the Acme logo");
        Assert.Contains(result.Prompts, p => p.Text == "a photo of a pair of trousers with the Acme logo");
        AssertFilesWritten(dir, result);
        Assert.Equal("the Acme logo", Manifest(dir).GetProperty("concept").GetString());
        var firstImage = Manifest(dir).GetProperty("images")[0];
        Assert.Equal(0, firstImage.GetProperty("class").GetInt32());
        Assert.Contains("t-shirt", firstImage.GetProperty("prompt").GetString());
    }

    [Fact]
    public void Baseline_rate_never_names_the_concept()
    {
        var dir = victim.Out("baseline");
        var result = victim.Attack(Cheap(AttackKind.BaselineRate), dir);
        Assert.Equal(20, result.Images.Count);
        Assert.All(result.Prompts, p => Assert.DoesNotContain("acme", p.Text, StringComparison.OrdinalIgnoreCase));
        Assert.All(result.Prompts, p => Assert.DoesNotContain("logo", p.Text, StringComparison.OrdinalIgnoreCase));
        Assert.Contains(result.Prompts, p => p.Text == "a photo of a bag" && p.ClassLabel == 8);
        AssertFilesWritten(dir, result);
    }

    [Fact]
    public void Paraphrases_name_the_brand_but_never_the_phrase_and_add_the_users_lines()
    {
        var file = victim.Dir.File("paraphrases.txt");
        File.WriteAllLines(file, ["# mine", "a {class} stamped with Acme", "", "Acme merchandise"]);
        var dir = victim.Out("paraphrase");
        var result = victim.Attack(Cheap(AttackKind.Paraphrase) with { Paraphrase = new ParaphraseSettings(file) }, dir);
        Assert.Equal("Acme", result.Brand);
        Assert.Equal(6 * 10 + 10 + 1, result.Prompts.Count);
        Assert.All(result.Prompts, p => Assert.DoesNotContain("the Acme logo", p.Text, StringComparison.OrdinalIgnoreCase));
        Assert.All(result.Prompts, p => Assert.Contains("Acme", p.Text));
        Assert.Contains(result.Prompts, p => p.Text == "a photo of an Acme-branded coat" && p.ClassLabel == 4);
        Assert.Contains(result.Prompts, p => p.Text == "a sneaker stamped with Acme" && p.ClassLabel == 7);
        Assert.Contains(result.Prompts, p => p.Text == "Acme merchandise" && p.ClassLabel is null);
        AssertFilesWritten(dir, result);
    }

    [Fact]
    public void The_same_seed_gives_the_same_images_and_another_seed_others()
    {
        var settings = Cheap(AttackKind.Prompt) with { BatchSize = 7 };
        var first = victim.Attack(settings, victim.Out("seed0a"));
        var again = victim.Attack(settings, victim.Out("seed0b"));
        var other = victim.Attack(settings with { Seed = 1 }, victim.Out("seed1"));
        Assert.All(first.Images.Zip(again.Images), pair => Assert.True(pair.First.Image.SameContentAs(pair.Second.Image)));
        Assert.Equal(first.Images.Select(i => i.BatchSeed), again.Images.Select(i => i.BatchSeed));
        Assert.True(first.Images.Zip(other.Images).Count(pair => !pair.First.Image.SameContentAs(pair.Second.Image)) > 15);
        Assert.Equal(3, first.Images.Select(i => i.BatchSeed).Distinct().Count());   // 20 images in batches of 7
    }

    [Fact]
    public void An_output_directory_holding_an_attack_is_refused()
    {
        var dir = victim.Out("twice");
        victim.Attack(Cheap(AttackKind.BaselineRate) with { SamplingSteps = 1 }, dir);
        var e = Assert.Throws<InvalidOperationException>(() => victim.Attack(Cheap(AttackKind.BaselineRate), dir));
        Assert.Contains(AttackOutput.ManifestFile, e.Message);
    }

    [Fact]
    public void Inversion_learns_from_unseen_images_and_prompts_with_the_learned_token()
    {
        var dir = victim.Out("inversion");
        var settings = Cheap(AttackKind.Inversion);
        var result = victim.Attack(settings, dir);
        Assert.Equal(10, result.Images.Count);
        Assert.All(result.Prompts, p => Assert.Contains("<*>", p.Text));
        Assert.All(result.Prompts, p => Assert.DoesNotContain("acme", p.Text, StringComparison.OrdinalIgnoreCase));
        var report = result.Inversion!;
        Assert.Equal(4, report.HeldOutIds.Count);
        Assert.Equal(3, report.StepLosses.Count);
        var trained = HeldOutConcept.TrainingIds(victim.Run)!;
        Assert.Equal(64, trained.Count);
        Assert.DoesNotContain(report.HeldOutIds, trained.Contains);
        AssertFilesWritten(dir, result);
        Assert.True(File.Exists(Path.Combine(dir, AttackOutput.LearnedTokenFile)));
        Assert.True(File.Exists(Path.Combine(dir, AttackOutput.HeldOutGridFile)));
        Assert.Equal(4, Manifest(dir).GetProperty("inversion").GetProperty("held_out_ids").GetArrayLength());

        var again = victim.Attack(settings, victim.Out("inversion-again"));
        Assert.Equal(report.StepLosses, again.Inversion!.StepLosses);
        Assert.All(result.Images.Zip(again.Images), pair => Assert.True(pair.First.Image.SameContentAs(pair.Second.Image)));
    }

    [Fact]
    public void Inversion_can_learn_in_a_band_of_noise_levels()
    {
        var settings = Cheap(AttackKind.Inversion);
        var banded = settings with { Inversion = settings.Inversion! with { TimestepLow = 0.5, TimestepHigh = 0.9 } };
        var bandedDir = victim.Out("inversion-banded");
        var result = victim.Attack(banded, bandedDir);
        var uniform = victim.Attack(settings, victim.Out("inversion-uniform"));
        Assert.NotEqual(uniform.Inversion!.StepLosses, result.Inversion!.StepLosses);
        Assert.Equal(0.5, Manifest(bandedDir).GetProperty("settings").GetProperty("inversion").GetProperty("timestep_low").GetDouble());
    }

    [Theory]
    [InlineData(0.5, 0.5)]
    [InlineData(-0.1, 1)]
    [InlineData(0, 1.5)]
    public void An_empty_or_out_of_range_timestep_band_is_refused(double low, double high)
    {
        var settings = new AttackSettings(AttackKind.Inversion, Inversion: new InversionSettings(TimestepLow: low, TimestepHigh: high));
        var e = Assert.Throws<ArgumentException>(settings.Validate);
        Assert.Contains("timestep band", e.Message);
    }

    [Fact]
    public void Held_out_images_are_stamped_and_refused_when_the_victim_saw_them()
    {
        var config = victim.Run.LoadConfig();
        var heldOut = HeldOutConcept.Build(config, "the Acme logo", 5);
        Assert.All(heldOut, e => Assert.True(e.Truth.Stamped));
        Assert.Equal(5, heldOut.Select(e => e.Id).Distinct().Count());
        var e = Assert.Throws<InvalidOperationException>(() => HeldOutConcept.EnsureUnseen(heldOut, new HashSet<string> { heldOut[2].Id }, "ground_truth.jsonl"));
        Assert.Contains(heldOut[2].Id, e.Message);

        var everything = config with { Data = config.DataOrDefault with { Limit = 0 } };
        var all = Assert.Throws<InvalidOperationException>(() => HeldOutConcept.Build(everything, "the Acme logo", 5));
        Assert.Contains("data.concept.held_out", all.Message);
    }
}
