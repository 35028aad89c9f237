using System.Text.Json;
using Excise.Attacks;
using Excise.Evaluation;
using Excise.Tests.Attacks;

namespace Excise.Tests.Evaluation;

[Collection(AttackVictimCollection.Name)]
public sealed class RunEvaluatorTests(AttackVictim victim)
{
    [Fact]
    public void EvaluatesEveryAttackWithEveryMetricAndWritesJsonAndMarkdown()
    {
        using var dir = new TempDir();
        var settings = new EvaluationSettings([AttackKind.Prompt, AttackKind.BaselineRate],
            new AttackSettings(AttackKind.Prompt, ImagesPerPrompt: 1, SamplingSteps: 3, BatchSize: 40),
            JudgeCache: dir.File("judges"), ReferenceImages: 100, ResNetImages: 4, QuickJudges: true);
        int previousThreads = torch.get_num_threads();
        torch.set_num_threads(1);
        RunEvaluation result;
        try { result = RunEvaluator.Evaluate(victim.Run, settings, dir.File("eval")); }
        finally { torch.set_num_threads(previousThreads); }

        Assert.Equal(2, result.Attacks.Count);
        foreach (var attack in result.Attacks)
        {
            var m = attack.Metrics;
            Assert.Equal(20, m.GeneratedCount);
            Assert.Equal(20, m.Extraction!.Rate.Trials);
            Assert.InRange(m.Extraction.Rate.Rate, m.Extraction.Rate.Lower, m.Extraction.Rate.Upper);
            Assert.Equal(20, m.Fidelity!.Overall.Trials);
            Assert.Equal(100, m.Distribution!.ReferenceCount);
            Assert.True(double.IsFinite(m.Distribution.Fid) && m.Distribution.Fid >= 0);
            Assert.Equal(4, m.ResNetDistribution!.GeneratedCount);
            Assert.Equal(20, m.PixelMemorisation!.GeneratedCount);
            Assert.True(File.Exists(Path.Combine(attack.OutputDirectory, "metrics.json")));
        }
        using var json = JsonDocument.Parse(File.ReadAllText(dir.File(Path.Combine("eval", "eval.json"))));
        Assert.Equal(2, json.RootElement.GetProperty("attacks").GetArrayLength());
        var markdown = File.ReadAllText(dir.File(Path.Combine("eval", "eval.md")));
        Assert.Contains("extraction rate", markdown);
        Assert.Contains(result.Attacks[0].Metrics.Extraction!.Rate.Format(), markdown);
    }
}
