using System.Diagnostics;
using System.Text;
using Xunit.Abstractions;

namespace Excise.Tests.Reliability;

/// <summary>
/// Seeded fuzzing of every loader that reads a user's file: safetensors, IDX (gzip and raw), PNG, imagefolder
/// metadata.jsonl and run configs. Each mutated file must be accepted, or rejected with one of the exception types the
/// CLI reports as a message (with a non-empty message naming the file); anything else — another exception type, a
/// hang, a managed allocation far beyond the file's size, a native crash of the test host — is a bug in the loader.
///
/// The suite runs 2,000 files. Full scale, reproducible from the seed:
/// <code>EXCISE_FUZZ_FILES=10000 EXCISE_FUZZ_SEED=1 dotnet test tests/Excise.Tests -c Release --filter "FullyQualifiedName~LoaderFuzzTests" --logger "console;verbosity=detailed"</code>
/// Failing inputs are saved under $TMPDIR/excise-fuzz-failures/ with what was done to them.
/// </summary>
public sealed class LoaderFuzzTests(ITestOutputHelper output)
{
    const int SuiteFiles = 2_000;
    static readonly TimeSpan PerLoaderTimeout = TimeSpan.FromSeconds(20);
    /// <summary>A loader may allocate a few times its input plus fixed overhead; beyond this it believed a length field.</summary>
    const long AllocationAllowance = 64L << 20;

    enum Outcome { Accepted, Rejected, Bug }

    sealed record LoaderResult(string Loader, Outcome Outcome, Exception? Error, TimeSpan Elapsed, long AllocatedBytes, string? Problem);

    sealed class FormatTally(string name)
    {
        public string Name { get; } = name;
        public int Files, Accepted, Rejected, Bugs;
        public TimeSpan Slowest;
        public long MostAllocated;
        /// <summary>Rejection messages with paths and numbers blanked, counted: shows which checks the mutations reach.</summary>
        public Dictionary<string, int> Reasons { get; } = new();
    }

    static string ReasonOf(Exception error, string workspace)
    {
        var text = error.Message.Split('\n')[0].Replace(workspace, "…");
        text = System.Text.RegularExpressions.Regex.Replace(text, @"'[^']*'|""[^""]*""", "'…'");
        text = System.Text.RegularExpressions.Regex.Replace(text, @"-?\d+(\.\d+)?(E[+-]?\d+)?", "#");
        return $"{error.GetType().Name}: {(text.Length > 110 ? text[..110] + "…" : text)}";
    }

    static int Setting(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), out var value) && value > 0 ? value : fallback;

    static string WorkspaceFor(int seed)
    {
        // A fixed path (not a random temp folder) so the seed files, which embed it, are the same bytes on every run.
        var path = Path.Combine(Path.GetTempPath(), $"excise-fuzz-{seed}");
        if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
        return path;
    }

    static List<FuzzFormat> Formats(string workspace) =>
    [
        new SafetensorsFuzzFormat(Path.Combine(workspace, "safetensors")),
        new IdxFuzzFormat(Path.Combine(workspace, "idx")),
        new PngFuzzFormat(Path.Combine(workspace, "png")),
        new ImageFolderFuzzFormat(Path.Combine(workspace, "imagefolder")),
        new RunConfigFuzzFormat(Path.Combine(workspace, "config")),
    ];

    [Fact]
    public void Every_seed_is_accepted_unmutated()
    {
        var workspace = WorkspaceFor(0);
        var formats = Formats(workspace);
        try
        {
            foreach (var format in formats)
                foreach (var seed in format.Seeds())
                {
                    format.Write(seed);
                    foreach (var loader in format.Loaders(seed)) loader.Run();
                }
        }
        finally
        {
            foreach (var format in formats) format.Dispose();
            Directory.Delete(workspace, recursive: true);
        }
    }

    [Fact]
    public void Mutated_files_are_accepted_or_rejected_with_a_message()
    {
        int files = Setting("EXCISE_FUZZ_FILES", SuiteFiles), seed = Setting("EXCISE_FUZZ_SEED", 1);
        var workspace = WorkspaceFor(seed);
        var failures = Path.Combine(Path.GetTempPath(), "excise-fuzz-failures");
        var formats = Formats(workspace);
        var tallies = formats.Select(f => new FormatTally(f.Name)).ToArray();
        var bugs = new List<string>();
        var clock = Stopwatch.StartNew();
        try
        {
            for (int index = 0; index < files; index++)
            {
                int formatIndex = index % formats.Count;
                var format = formats[formatIndex];
                var tally = tallies[formatIndex];
                // One generator per file, from (seed, index) alone: any file can be regenerated without the ones before it.
                var random = new Random(unchecked(seed * 1_000_003 + index));
                var input = format.Next(random);
                format.Write(input);
                var results = format.Loaders(input).Select(loader => Run(format, input, loader)).ToList();

                tally.Files++;
                tally.Slowest = results.Max(r => r.Elapsed) is var slowest && slowest > tally.Slowest ? slowest : tally.Slowest;
                tally.MostAllocated = Math.Max(tally.MostAllocated, results.Max(r => r.AllocatedBytes));
                var bug = results.FirstOrDefault(r => r.Outcome == Outcome.Bug);
                if (bug is not null)
                {
                    tally.Bugs++;
                    Directory.CreateDirectory(failures);
                    var saved = Path.Combine(failures, $"{format.Name.Replace(' ', '-')}-seed{seed}-file{index}{Path.GetExtension(input.FileName)}");
                    File.WriteAllBytes(saved, input.Bytes);
                    bugs.Add($"[{format.Name} #{index}, seed '{input.Seed}', {input.Mutation}] {bug.Loader}: {bug.Problem}" +
                             $"{Environment.NewLine}    {bug.Error?.GetType().Name}: {bug.Error?.Message.Split('\n')[0]}{Environment.NewLine}    saved as {saved}");
                    if (results.Any(r => r.Problem?.StartsWith("hung") == true)) break;   // the hung loader still runs; stop here
                }
                else if (results.FirstOrDefault(r => r.Outcome == Outcome.Rejected) is { } rejected)
                {
                    tally.Rejected++;
                    var reason = ReasonOf(rejected.Error!, workspace);
                    tally.Reasons[reason] = tally.Reasons.GetValueOrDefault(reason) + 1;
                }
                else tally.Accepted++;
            }
        }
        finally
        {
            foreach (var format in formats) format.Dispose();
            try { Directory.Delete(workspace, recursive: true); } catch (IOException) { }
        }
        clock.Stop();

        var report = new StringBuilder();
        report.AppendLine($"Fuzzed {tallies.Sum(t => t.Files)} files (EXCISE_FUZZ_FILES={files}, EXCISE_FUZZ_SEED={seed}) in {clock.Elapsed.TotalSeconds:F1} s; peak working set {Process.GetCurrentProcess().PeakWorkingSet64 >> 20} MiB.");
        report.AppendLine($"{"format",-16}{"files",7}{"accepted",10}{"rejected",10}{"crashes",9}{"slowest ms",12}{"max alloc MiB",15}");
        foreach (var t in tallies)
            report.AppendLine($"{t.Name,-16}{t.Files,7}{t.Accepted,10}{t.Rejected,10}{t.Bugs,9}{t.Slowest.TotalMilliseconds,12:F0}{t.MostAllocated / 1048576.0,15:F1}");
        report.AppendLine($"{"total",-16}{tallies.Sum(t => t.Files),7}{tallies.Sum(t => t.Accepted),10}{tallies.Sum(t => t.Rejected),10}{tallies.Sum(t => t.Bugs),9}");
        foreach (var t in tallies)
        {
            var byType = t.Reasons.GroupBy(kv => kv.Key.Split(':')[0]).Select(g => $"{g.Sum(kv => kv.Value)} {g.Key}");
            report.AppendLine($"{t.Name}: rejected with {string.Join(", ", byType)}; {t.Reasons.Count} distinct messages, the most frequent:");
            foreach (var (reason, count) in t.Reasons.OrderByDescending(kv => kv.Value).Take(6)) report.AppendLine($"  {count,6}  {reason}");
        }
        foreach (var bug in bugs.Take(40)) report.AppendLine(bug);
        output.WriteLine(report.ToString());

        Assert.True(bugs.Count == 0, $"{bugs.Count} mutated file(s) were not handled:{Environment.NewLine}{string.Join(Environment.NewLine, bugs.Take(10))}");
        Assert.All(tallies, t => Assert.True(t.Accepted > 0 || t.Files < 20, $"{t.Name}: no mutated file was accepted, so the mutations never get past the first check"));
        Assert.All(tallies, t => Assert.True(t.Rejected > 0 || t.Files < 20, $"{t.Name}: no mutated file was rejected"));
    }

    static LoaderResult Run(FuzzFormat format, FuzzCase input, FuzzLoader loader)
    {
        var task = Task.Run(() =>
        {
            var clock = Stopwatch.StartNew();
            long before = GC.GetAllocatedBytesForCurrentThread();
            Exception? error = null;
            try { loader.Run(); }
            catch (Exception e) { error = e; }
            return (Error: error, Elapsed: clock.Elapsed, Allocated: GC.GetAllocatedBytesForCurrentThread() - before);
        });
        if (!task.Wait(PerLoaderTimeout))
            return new LoaderResult(loader.Name, Outcome.Bug, null, PerLoaderTimeout, 0, $"hung for more than {PerLoaderTimeout.TotalSeconds} s");
        var (error, elapsed, allocated) = task.Result;
        string? problem = null;
        if (allocated > AllocationAllowance + 16L * input.Bytes.Length)
            problem = $"allocated {allocated >> 20} MiB for a {input.Bytes.Length}-byte input";
        else if (error is not null && !format.RejectionTypes.Contains(error.GetType()))
            problem = $"threw {error.GetType().FullName}, not one of {string.Join(", ", format.RejectionTypes.Select(t => t.Name))}";
        else if (error is not null && string.IsNullOrWhiteSpace(error.Message))
            problem = "rejected with an empty message";
        else if (error is not null && format.MessageMustName(input) is { Count: > 0 } names && !names.Any(error.Message.Contains))
            problem = $"rejection does not name the file ({string.Join(" or ", names)})";
        var outcome = problem is not null ? Outcome.Bug : error is null ? Outcome.Accepted : Outcome.Rejected;
        return new LoaderResult(loader.Name, outcome, error, elapsed, allocated, problem);
    }
}
