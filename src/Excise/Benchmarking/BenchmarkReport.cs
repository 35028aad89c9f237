using System.Text.Json;
using System.Text.Json.Serialization;
using Excise.Serialization;

namespace Excise.Benchmarking;

public sealed record MachineInfo(string Os, int LogicalCores, int TorchThreads, string TorchSharp, string Dotnet, string Processor);

/// <summary>Training speed of one model config, with its FLOPs and the share of the machine's matmul peak it reaches.</summary>
public sealed record ModelBenchmark(
    string Name, long Parameters, int Batch, int Tokens,
    double FirstStepSeconds, TimingSummary Step, TimingSummary Forward, TimingSummary Backward, TimingSummary Optimizer,
    double ImagesPerSecond, double TrainingGflopPerStep, double AchievedGflops, double ModelFlopsUtilisation,
    IReadOnlyList<BlockTime> ForwardProfile, double LastLoss);

public sealed record BenchmarkReport(
    DateTimeOffset Date, MachineInfo Machine, MatmulPeakResult? MatmulPeak, IReadOnlyList<ModelBenchmark> Models, TrainerBenchmark? Trainer,
    IReadOnlyList<ProjectionOverhead> Projection, TextEncodingResult? TextEncoding, TrainingLoopComparison? TrainingLoop,
    SamplingBenchmarkResult? Sampling, SolverAccuracyResult? Solvers = null, MetricsCostResult? Metrics = null, ScalingBenchmark? Scaling = null,
    FullSizeUNetBenchmark? FullSize = null, FullSizeUNetBenchmark? FullSizeCheckpointed = null)
{
    public string ToJson() => JsonSerializer.Serialize(this, RecordJson.Options);

    public static BenchmarkReport FromJson(string json, string source = "benchmark report") => RecordJson.Read<BenchmarkReport>(json, source, "a benchmark report");
}
