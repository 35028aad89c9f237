using System.Globalization;
using System.Text.Json;
using Excise.Evaluation.Metrics;
using Excise.Serialization;

namespace Excise.Experiment;

/// <summary>One arm at one stamped share: what it extracts, what it learns unasked, and what it costs in quality.</summary>
/// <param name="Share">The share of fine-tuning images that carry the concept (data.concept.stamp_fraction).</param>
/// <param name="Lift">Named minus unasked, seed by seed: what naming the concept adds.</param>
public sealed record ShareSweepRow(string Arm, double Share, Estimate? Named, Estimate? Unasked, Estimate? Lift, Estimate? InversionGain,
                                   Estimate? Fidelity, Estimate? Fd);

/// <summary>sweep.json: the stamped-share sweep, one row per arm and share, and where each share's experiment is.</summary>
public sealed record ShareSweepResults(IReadOnlyList<double> Shares, IReadOnlyList<string> Arms, int Seeds, IReadOnlyList<ShareSweepRow> Rows,
                                       IReadOnlyList<string> Folders, DateTime CreatedUtc)
{
    public const string FileName = "sweep.json";

    public string ToJson() => JsonSerializer.Serialize(this, RecordJson.Options);

    public static ShareSweepResults Load(string output)
    {
        var path = Path.Combine(output, FileName);
        try { return JsonSerializer.Deserialize<ShareSweepResults>(File.ReadAllText(path), RecordJson.Options) ?? throw new InvalidDataException($"{path}: empty."); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a share sweep ({e.Message}).", e); }
    }
}

/// <summary>Where a sweep is: the share being run (<paramref name="Index"/> of <paramref name="Shares"/>) and that share's experiment.</summary>
public sealed record ShareSweepProgress(int Index, int Shares, double Share, ExperimentProgress Experiment)
{
    /// <summary>The whole sweep's fraction done: finished shares plus the running one's progress.</summary>
    public double Fraction => (Index + Experiment.Done / Experiment.Total) / Shares;
}

/// <summary>
/// How much contaminated data a user can afford: the same experiment at several shares of stamped fine-tuning images,
/// each share in its own folder (<c>OUT/share-0.03/</c>, a whole experiment with its own report), all fine-tuned from
/// the same base and judged by the same judges (the stamp looks the same at every share). Each share's experiment
/// reuses what it finished before, so an interrupted sweep continues where it stopped.
/// </summary>
public static class ShareSweep
{
    public static string Folder(string output, double share) => Path.Combine(output, "share-" + share.ToString("0.####", CultureInfo.InvariantCulture));

    public static void Validate(IReadOnlyList<double> shares)
    {
        if (shares.Count == 0) throw new ArgumentException("A share sweep needs at least one share (e.g. 0.01,0.03,0.1,0.3).");
        foreach (var share in shares)
            if (!(share is > 0 and <= 1)) throw new ArgumentException($"Every stamped share must be in (0, 1] (got {share}).");
        if (shares.Distinct().Count() != shares.Count) throw new ArgumentException("A share is listed twice.");
    }

    /// <param name="writeReport">Writes one share's report into that share's folder (as <see cref="ExperimentRunner.Run"/> takes it).</param>
    /// <param name="group">The ranks of an mpirun job: each share's jobs are fanned out over them; rank 0 alone writes sweep.json.</param>
    public static ShareSweepResults Run(ExperimentPlan plan, ExperimentPaths paths, IReadOnlyList<double> shares, string command,
                                        IProgress<ShareSweepProgress>? progress = null, Action<string>? log = null,
                                        Action<ExperimentResults, string>? writeReport = null, CancellationToken cancel = default,
                                        Distributed.ProcessGroup? group = null)
    {
        Validate(shares);
        log ??= _ => { };
        var ordered = shares.Order().ToList();
        var rows = new List<ShareSweepRow>();
        foreach (var (share, index) in ordered.Select((s, i) => (s, i)))
        {
            var folder = Folder(paths.Output, share);
            log($"Stamped share {share:P0}: the experiment in {folder}.");
            var sharePlan = plan with { FinetuneOverrides = [.. plan.FinetuneOverrides, $"data.concept.stamp_fraction={share.ToString("R", CultureInfo.InvariantCulture)}"] };
            var shareProgress = progress is null ? null : new SyncProgress<ExperimentProgress>(p => progress.Report(new ShareSweepProgress(index, ordered.Count, share, p)));
            var results = ExperimentRunner.Run(sharePlan, paths with { Output = folder }, command, shareProgress, log,
                writeReport is null ? null : r => writeReport(r, folder), cancel, group);
            rows.AddRange(Rows(results, share));
        }
        var sweep = new ShareSweepResults(ordered, plan.Arms.Select(Configuration.EnumNames.ToName).ToList(), plan.Seeds, rows,
            ordered.Select(s => Path.GetRelativePath(paths.Output, Folder(paths.Output, s))).ToList(), DateTime.UtcNow);
        if (group is null || group.IsRoot) AtomicFile.WriteAllText(Path.Combine(paths.Output, ShareSweepResults.FileName), sweep.ToJson());
        return sweep;
    }

    /// <summary>Each arm's row at this share (the never-saw-it floor included: it does not depend on the share).</summary>
    public static IEnumerable<ShareSweepRow> Rows(ExperimentResults results, double share) =>
        results.Summary.Select(arm => new ShareSweepRow(arm.Arm, share,
            arm.Extraction.GetValueOrDefault(ArmComparison.Named), arm.Extraction.GetValueOrDefault(ArmComparison.Unasked),
            arm.Lift, arm.InversionGain, arm.Fidelity, arm.Fd));
}
