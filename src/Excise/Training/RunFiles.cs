using System.Text.Json;
using System.Text.Json.Serialization;
using Excise.Serialization;

namespace Excise.Training;

/// <summary>summary.json: what a finished training run reports about itself, written once at its end and read by the experiment.</summary>
/// <param name="ResumedFromStep">The step the last invocation started at (0: trained in one go).</param>
/// <param name="Init">The weights it fine-tuned from (null: trained from scratch).</param>
/// <param name="ProjectionShareOfTraining">The projector's share of the training time (0 for arms without one).</param>
/// <param name="CertificatePassed">Whether the projection certificate held (null: the arm has none).</param>
/// <param name="CertificateWorstShare">The worst share of learned K/V change inside the concept subspace (null: no certificate).</param>
/// <param name="Ranks">The data-parallel ranks that trained it (null, and not written: one process).</param>
/// <param name="AllreduceSeconds">Rank 0's time in the gradient allreduce, waiting for the slower rank included (null, and not written: one process).</param>
public sealed record RunSummary(
    string Name,
    string ConfigHash,
    int Steps,
    int ResumedFromStep,
    long SkippedNonfiniteSteps,
    double FinalLoss,
    [property: JsonPropertyName("mean_loss_last_100")] double MeanLossLast100,
    double ElapsedSeconds,
    double MedianSecondsPerStep,
    double ImagesPerSecond,
    double PeakRssMb,
    int TrainImages,
    int DistinctCaptions,
    double TextEncodeSeconds,
    string Arm,
    string? Init,
    double ProjectionSeconds,
    double ProjectionShareOfTraining,
    bool? CertificatePassed,
    double? CertificateWorstShare,
    int Threads,
    string Machine,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Ranks = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? AllreduceSeconds = null)
{
    static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = true,
                                                         NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public void Save(RunDirectory run) => AtomicFile.WriteAllText(run.SummaryPath, JsonSerializer.Serialize(this, Json));

    public static RunSummary Load(RunDirectory run)
    {
        if (!File.Exists(run.SummaryPath)) throw new FileNotFoundException($"{run.Root} has no summary.json: the run has not finished.", run.SummaryPath);
        try
        {
            return JsonSerializer.Deserialize<RunSummary>(File.ReadAllText(run.SummaryPath), Json)
                ?? throw new InvalidDataException($"{run.SummaryPath}: empty.");
        }
        catch (JsonException e) { throw new InvalidDataException($"{run.SummaryPath}: not a run summary ({e.Message}).", e); }
    }
}

/// <summary>One line of metrics.jsonl: the training log, appended every training.log_every steps and at every skipped step.</summary>
/// <param name="Loss">The mean loss of the applied steps since the last line (null: every step of the window was skipped).</param>
/// <param name="LossLast">The last step's loss (null: that step was skipped).</param>
/// <param name="GradNorm">The last step's gradient norm before clipping (null when not finite: JSON has no NaN).</param>
/// <param name="SecondsPerStep">The median of the last 20 steps' times.</param>
public sealed record MetricsLine(
    int Step,
    double? Loss,
    double? LossLast,
    [property: JsonPropertyName("lr")] double LearningRate,
    double? GradNorm,
    long SkippedSteps,
    [property: JsonPropertyName("sec_per_step")] double SecondsPerStep,
    [property: JsonPropertyName("images_per_sec")] double ImagesPerSecond,
    double RssMb,
    [property: JsonPropertyName("elapsed_s")] double ElapsedSeconds)
{
    static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public void AppendTo(TextWriter writer)
    {
        writer.WriteLine(JsonSerializer.Serialize(this, Json));
        writer.Flush();
    }

    /// <summary>Every intact line of a run's log, in order; a line cut short by a kill (the last one) is left out, never trusted.</summary>
    public static IReadOnlyList<MetricsLine> ReadAll(RunDirectory run)
    {
        if (!File.Exists(run.MetricsPath)) return [];
        return File.ReadLines(run.MetricsPath).Select(Parse).OfType<MetricsLine>().ToList();
    }

    /// <summary>Keeps the lines up to <paramref name="step"/> (a resume from that step's checkpoint logs the rest again).</summary>
    public static void TruncateAfter(RunDirectory run, int step)
    {
        if (!File.Exists(run.MetricsPath)) return;
        var kept = File.ReadLines(run.MetricsPath).Where(text => Parse(text) is { } line && line.Step <= step).Select(text => text + "\n");
        AtomicFile.WriteAllText(run.MetricsPath, string.Concat(kept));
    }

    static MetricsLine? Parse(string text)
    {
        try { return JsonSerializer.Deserialize<MetricsLine>(text, Json); }
        catch (JsonException) { return null; }
    }
}
