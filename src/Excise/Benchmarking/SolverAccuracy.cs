using Excise.Configuration;
using System.Diagnostics;
using System.Text.Json;
using TorchSharp;
using Excise.Diffusion;
using Excise.Training;
using static TorchSharp.torch;

namespace Excise.Benchmarking;

/// <summary>One sampler at one step count: its time and how far its images land from the reference solution.</summary>
/// <param name="RmseToReference">Root mean square pixel difference to the reference images (pixels in [−1, 1]).</param>
public sealed record SolverPoint(string Sampler, int Steps, double Seconds, double RmseToReference, double MaxErrorToReference);

/// <summary>
/// How close each sampler gets to a many-step solution of the same sampling ODE, from the same noise and prompts, on a
/// trained run. Every solver walks diffusers' "linspace" timesteps here, so all of them start from the same noise
/// level as the reference and differ only in how they integrate.
/// </summary>
public sealed record SolverAccuracyResult(
    string Run, int Images, double GuidanceScale, string ReferenceSampler, int ReferenceSteps, double ReferenceSeconds,
    IReadOnlyList<SolverPoint> Points);

public static class SolverAccuracy
{
    public static IReadOnlyList<(SamplerKind Sampler, int Steps)> Candidates { get; } =
    [
        (SamplerKind.Ddim, 10), (SamplerKind.Ddim, 20), (SamplerKind.Ddim, 50),
        (SamplerKind.DpmSolver2M, 10), (SamplerKind.DpmSolver2M, 20), (SamplerKind.DpmSolver2M, 50),
    ];

    public static SolverAccuracyResult Measure(string runDirectory, int images, int referenceSteps, double guidanceScale, long seed,
                                               Action<string>? log = null)
    {
        log ??= _ => { };
        var run = new RunDirectory(runDirectory);
        var prompts = Prompts(run, images);
        using var pipeline = run.OpenPipeline();
        SamplingOptions Options(SamplerKind sampler, int steps) =>
            new(steps, guidanceScale, Seed: seed, Sampler: sampler, Spacing: TimestepSpacing.Linspace);

        var clock = Stopwatch.StartNew();
        using var reference = pipeline.Generate(prompts, Options(SamplerKind.DpmSolver2M, referenceSteps));
        double referenceSeconds = clock.Elapsed.TotalSeconds;
        log($"solvers: reference dpm++2m × {referenceSteps} steps on {prompts.Count} images in {referenceSeconds:F1} s.");

        var points = new List<SolverPoint>();
        foreach (var (sampler, steps) in Candidates.Where(c => c.Steps < referenceSteps))
        {
            clock.Restart();
            using var scope = NewDisposeScope();
            var result = pipeline.Generate(prompts, Options(sampler, steps));
            double seconds = clock.Elapsed.TotalSeconds;
            var difference = result - reference;
            var point = new SolverPoint(sampler.ToName(), steps, seconds,
                difference.square().mean().sqrt().ToDouble(), difference.abs().max().ToDouble());
            points.Add(point);
            log($"solvers: {point.Sampler} × {steps} steps: {seconds:F1} s, RMSE to the reference {point.RmseToReference:F4} (max {point.MaxErrorToReference:F3}).");
            GC.Collect();
        }
        return new SolverAccuracyResult(run.Root, prompts.Count, guidanceScale, SamplerKind.DpmSolver2M.ToName(), referenceSteps,
                                        referenceSeconds, points);
    }

    /// <summary>The run's own training captions (the first distinct ones, cycled to <paramref name="count"/>), else its preview prompts.</summary>
    public static IReadOnlyList<string> Prompts(RunDirectory run, int count)
    {
        if (count < 1) throw new ArgumentException($"solver images must be ≥ 1 (got {count}).");
        var captions = new List<string>();
        if (File.Exists(run.GroundTruthPath))
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var line in File.ReadLines(run.GroundTruthPath))
            {
                if (captions.Count == count) break;
                if (string.IsNullOrWhiteSpace(line)) continue;
                try
                {
                    using var doc = JsonDocument.Parse(line);
                    if (doc.RootElement.TryGetProperty("caption", out var caption) && caption.GetString() is { Length: > 0 } text && seen.Add(text))
                        captions.Add(text);
                }
                catch (JsonException e) { throw new InvalidDataException($"{run.GroundTruthPath}: not JSON lines ({e.Message}).", e); }
            }
        }
        if (captions.Count == 0 && run.LoadConfig().PreviewOrDefault.Prompts is { Count: > 0 } preview) captions.AddRange(preview);
        if (captions.Count == 0)
            throw new InvalidDataException($"{run.Root} records no training captions (ground_truth.jsonl) and no preview.prompts: nothing to prompt the solvers with.");
        return Enumerable.Range(0, count).Select(i => captions[i % captions.Count]).ToList();
    }
}
