using System.Text.Json;
using Excise.Attacks;
using Excise.Evaluation;
using Excise.Evaluation.Metrics;
using Excise.Imaging;
using Excise.Tests.Attacks;

namespace Excise.Tests.Evaluation;

[Collection(AttackVictimCollection.Name)]
public sealed class RunEvaluatorTests(AttackVictim victim)
{
    [Fact]
    public void Evaluates_every_attack_with_every_metric_and_writes_JSON_and_Markdown()
    {
        using var dir = new TempDir();
        var settings = new EvaluationSettings([AttackKind.Prompt, AttackKind.BaselineRate],
            new AttackSettings(AttackKind.Prompt, ImagesPerPrompt: 1, SamplingSteps: 3, BatchSize: 40),
            JudgeCache: dir.File("judges"), ReferenceImages: 100, ResNetImages: 4, QuickJudges: true);
        int previousThreads = torch.get_num_threads();
        torch.set_num_threads(1);
        try
        {
            var result = RunEvaluator.Evaluate(victim.Run, settings, dir.File("eval"));

            // The judges the evaluation trained, served from its cache, recompute each figure from the PNGs the attack wrote
            // and the classes its manifest records: a metric measured on the wrong images, the wrong reference or with the
            // wrong judge gives another count or distance.
            using var judges = EvaluationContext.Create(settings with { ResNetImages = 0 }, RunEvaluator.ConceptOf(victim.Run));
            Assert.False(judges.Detector.TrainedNow || judges.Classifier.TrainedNow, "the evaluation's judges are not in its cache");
            Assert.Equal(2, result.Attacks.Count);
            foreach (var attack in result.Attacks)
            {
                var m = attack.Metrics;
                using var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(attack.OutputDirectory, AttackOutput.ManifestFile)));
                var written = manifest.RootElement.GetProperty("images").EnumerateArray()
                    .Select(i => (Image: PngIO.Load(Path.Combine(attack.OutputDirectory, i.GetProperty("file").GetString()!)), Class: i.GetProperty("class").GetInt32()))
                    .ToList();
                var images = written.Select(w => w.Image).ToList();
                Assert.Equal(20, images.Count);
                Assert.Equal(20, m.GeneratedCount);
                Assert.Equal((judges.Detector.Detect(images).Count(d => d), 20), (m.Extraction!.Rate.Successes, m.Extraction.Rate.Trials));
                var predicted = judges.Classifier.Predict(images);
                Assert.Equal((written.Where((w, i) => predicted[i] == w.Class).Count(), 20), (m.Fidelity!.Overall.Successes, m.Fidelity.Overall.Trials));
                Assert.Equal(100, m.Distribution!.ReferenceCount);
                double fid = FrechetDistance.Compute(judges.ReferenceAt(images[0].Width, images[0].Channels).Features, judges.Classifier.Extract(images));
                Assert.Equal(fid, m.Distribution.Fid, 1e-9 * fid);
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
        finally { torch.set_num_threads(previousThreads); }
    }
}
