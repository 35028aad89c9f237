using System.Diagnostics;
using System.Text.Json;
using Excise.Serialization;
using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Training;

/// <summary>What a checkpoint records besides tensors.</summary>
/// <param name="Extra">What else the run depends on, e.g. the projection arm and the SHA-256 of its concept basis.</param>
/// <param name="Format"><see cref="ManifestFormat"/> for checkpoints that carry a manifest; state files from before manifests read as <see cref="LegacyFormat"/>.</param>
/// <param name="SkippedSteps">Steps whose update was dropped because the loss or gradient was not finite (training.on_nonfinite = skip), since step 0.</param>
/// <param name="ConsecutiveSkips">How many of the steps just before this checkpoint were skipped in a row, so a resumed run stops where an uninterrupted one would.</param>
public sealed record CheckpointState(int Step, string ConfigHash, long OptimizerSteps, long EmaUpdates, long Seed, string Rng, DateTimeOffset SavedAt,
                                     IReadOnlyDictionary<string, string>? Extra = null, int Format = CheckpointState.LegacyFormat,
                                     long SkippedSteps = 0, int ConsecutiveSkips = 0)
{
    public const int LegacyFormat = 1;
    public const int ManifestFormat = 2;
}

/// <summary>The newest checkpoint that passed verification, and why any newer ones were passed over.</summary>
/// <param name="Path">The checkpoint to resume from, or null when none passed.</param>
/// <param name="Rejections">One message per newer checkpoint that failed verification, newest first, each naming the file and the mismatch.</param>
/// <param name="Warning">Set when the chosen checkpoint predates manifests and was checked for structure only.</param>
public sealed record CheckpointSearch(string? Path, int Step, IReadOnlyList<string> Rejections, string? Warning);

/// <summary>A checkpoint could not be written (e.g. the disk is full); the previous checkpoint was not touched.</summary>
public sealed class CheckpointWriteException(string message, int step, int? previousStep, bool diskFull, Exception inner) : IOException(message, inner)
{
    public int Step { get; } = step;
    public int? PreviousStep { get; } = previousStep;
    public bool DiskFull { get; } = diskFull;
}

/// <summary>
/// Checkpoints as folders of safetensors files: <c>model.safetensors</c> (raw weights), <c>ema.safetensors</c>
/// (when EMA is on), <c>training_state.safetensors</c> (optimizer moments, with step, seed and RNG scheme in its
/// metadata), <c>state.json</c>, and last <c>manifest.json</c> with the size and SHA-256 of every other file.
/// A checkpoint is assembled in a temporary folder (each file fsynced), then the folder is renamed into place and
/// the parent directory fsynced, and only then does <c>latest.json</c> point at it: a crash at any moment leaves the
/// previous checkpoint usable. Resuming takes the newest checkpoint whose files match their manifest.
/// </summary>
public sealed class CheckpointStore
{
    readonly string dir;
    public CheckpointStore(string checkpointsDir) => dir = checkpointsDir;
    public string Dir => dir;

    public const string TrainingStateFile = "training_state.safetensors";
    public const string StateFile = "state.json";
    string LatestPath => Path.Combine(dir, "latest.json");
    static string Name(int step) => $"step-{step:D8}";
    const string TempSuffix = ".tmp";

    public string Save(CheckpointState state, IEnumerable<KeyValuePair<string, Tensor>> model,
                       IEnumerable<KeyValuePair<string, Tensor>>? ema, IEnumerable<KeyValuePair<string, Tensor>> optimizer, int keep)
    {
        Directory.CreateDirectory(dir);
        RemoveAbandonedTempFolders();
        state = state with { Format = CheckpointState.ManifestFormat };
        var previous = CompleteCheckpoints().LastOrDefault(c => c.Step != state.Step);
        var final = Path.Combine(dir, Name(state.Step));
        var temp = Path.Combine(dir, $".{Name(state.Step)}.{Environment.ProcessId}{TempSuffix}");
        string current = "";
        try
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
            Directory.CreateDirectory(temp);
            var files = new List<string>();
            void Write(string name, Action<string> write) { current = Path.Combine(temp, name); write(current); files.Add(name); }

            Write("model.safetensors", p => SafetensorsFile.Save(p, model));
            if (ema is not null) Write("ema.safetensors", p => SafetensorsFile.Save(p, ema));
            Write(TrainingStateFile, p => SafetensorsFile.Save(p, optimizer, new Dictionary<string, string>
            {
                ["step"] = state.Step.ToString(), ["optimizer_steps"] = state.OptimizerSteps.ToString(), ["ema_updates"] = state.EmaUpdates.ToString(),
                ["seed"] = state.Seed.ToString(), ["rng"] = state.Rng, ["config_hash"] = state.ConfigHash,
            }.Concat(state.Extra ?? new Dictionary<string, string>()).ToDictionary()));
            Write(StateFile, p => AtomicFile.WriteAllText(p, JsonSerializer.Serialize(state, Json)));
            current = Path.Combine(temp, CheckpointManifest.FileName);
            CheckpointManifest.Create(temp, state.Step, state.ConfigHash, files).Write(temp);

            current = final;
            if (Directory.Exists(final)) DeleteCheckpointFolder(final);   // a resumed run re-saving a step it already had
            Directory.Move(temp, final);
            AtomicFile.SyncDirectory(dir);
            current = LatestPath;
            AtomicFile.WriteAllText(LatestPath, JsonSerializer.Serialize(new { step = state.Step, dir = Name(state.Step) }, Json));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try { if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true); } catch (Exception c) when (c is IOException or UnauthorizedAccessException) { }
            bool full = AtomicFile.IsDiskFull(e);
            var cause = full ? "the disk is full" : "the write failed";
            var kept = previous.Path is null
                ? "There is no earlier checkpoint; the run has to start over."
                : $"The previous checkpoint, step {previous.Step} in {previous.Path}, is intact: free {(full ? "space" : "the problem")} and continue with --resume.";
            throw new CheckpointWriteException($"Could not write the checkpoint for step {state.Step}: {cause} while writing {current} ({Innermost(e).Message}). {kept}",
                state.Step, previous.Path is null ? null : previous.Step, full, e);
        }
        Prune(keep, final);
        return final;
    }

    static Exception Innermost(Exception e) => e.InnerException is null ? e : Innermost(e.InnerException);

    /// <summary>
    /// Keeps the newest <paramref name="keep"/> checkpoints, and never deletes the newest good one: if none of the kept
    /// ones verifies (say a disk corrupted them), the newest older checkpoint that does is spared too.
    /// </summary>
    void Prune(int keep, string justSaved)
    {
        var all = CompleteCheckpoints();
        var doomed = all.SkipLast(keep).ToList();
        if (doomed.Count == 0) return;
        // The checkpoint just saved was hashed a moment ago; re-reading it on every save would double the I/O.
        bool keptOneIsGood = all.TakeLast(keep).Reverse().Any(c => c.Path == justSaved || Problems(c.Path, out _).Count == 0);
        if (!keptOneIsGood && doomed.LastOrDefault(c => Problems(c.Path, out _).Count == 0) is { Path: not null } spare) doomed.Remove(spare);
        foreach (var old in doomed)
            try { DeleteCheckpointFolder(old.Path); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>
    /// Renames the folder out of the checkpoint namespace first, so a kill half-way through the recursive delete leaves
    /// an abandoned temporary (cleaned by the next save), never a step folder with some of its files gone.
    /// </summary>
    void DeleteCheckpointFolder(string path)
    {
        var doomed = Path.Combine(dir, $".{Path.GetFileName(path)}.deleting.{Environment.ProcessId}{TempSuffix}");
        if (Directory.Exists(doomed)) Directory.Delete(doomed, recursive: true);
        Directory.Move(path, doomed);
        Directory.Delete(doomed, recursive: true);
    }

    /// <summary>Temporary folders of checkpoint writes whose process is gone (killed mid-write): they would only fill the disk.</summary>
    void RemoveAbandonedTempFolders()
    {
        foreach (var temp in Directory.GetDirectories(dir, $".step-*{TempSuffix}"))
        {
            var parts = Path.GetFileName(temp).Split('.');
            if (parts.Length < 3 || !int.TryParse(parts[^2], out var pid) || pid == Environment.ProcessId || IsRunning(pid)) continue;
            try { Directory.Delete(temp, recursive: true); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
    }

    static bool IsRunning(int pid)
    {
        try { using var p = Process.GetProcessById(pid); return !p.HasExited; }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException) { return false; }
    }

    /// <summary>Checkpoint folders that were completely written (state.json present), in step order; not yet verified.</summary>
    public IReadOnlyList<(int Step, string Path)> CompleteCheckpoints()
    {
        if (!Directory.Exists(dir)) return [];
        return Directory.GetDirectories(dir, "step-*")
            .Select(p => (Ok: int.TryParse(System.IO.Path.GetFileName(p)["step-".Length..], out var s), Step: s, Path: p))
            .Where(c => c.Ok && File.Exists(System.IO.Path.Combine(c.Path, StateFile)))
            .OrderBy(c => c.Step)
            .Select(c => (c.Step, c.Path))
            .ToList();
    }

    /// <summary>The newest checkpoint that passes verification, or null when there is none.</summary>
    public string? Latest() => FindLatestGood().Path;

    /// <summary>Verifies checkpoints newest first and returns the first good one, with the reasons the newer ones were rejected.</summary>
    public CheckpointSearch FindLatestGood()
    {
        var rejections = new List<string>();
        foreach (var (step, path) in CompleteCheckpoints().Reverse())
        {
            var problems = Problems(path, out var warning);
            if (problems.Count == 0) return new CheckpointSearch(path, step, rejections, warning);
            rejections.Add($"Rejected checkpoint {path}: {string.Join("; ", problems)}.");
        }
        return new CheckpointSearch(null, 0, rejections, null);
    }

    /// <summary>Throws <see cref="InvalidDataException"/> naming every problem unless the checkpoint verifies.</summary>
    public static void Verify(string checkpointDir)
    {
        var problems = Problems(checkpointDir, out _);
        if (problems.Count > 0) throw new InvalidDataException($"Checkpoint {checkpointDir} is damaged: {string.Join("; ", problems)}.");
    }

    /// <summary>
    /// What is wrong with a checkpoint (empty when nothing): its state must be readable, and its files must match its
    /// manifest. A checkpoint written before manifests existed (state format 1) has none; it is accepted, so an upgrade
    /// in the middle of a run loses nothing, after a structural check of its safetensors files (headers and sizes,
    /// which catches truncation but not flipped bits), and <paramref name="warning"/> says so.
    /// </summary>
    public static IReadOnlyList<string> Problems(string checkpointDir, out string? warning)
    {
        warning = null;
        CheckpointState state;
        try { state = ReadState(checkpointDir); }
        catch (Exception e) when (e is InvalidDataException or IOException) { return [e.Message]; }

        if (!File.Exists(Path.Combine(checkpointDir, CheckpointManifest.FileName)))
        {
            if (state.Format >= CheckpointState.ManifestFormat)
                return [$"{Path.Combine(checkpointDir, CheckpointManifest.FileName)} is missing (its state.json says it was written with one)"];
            var problems = new List<string>();
            foreach (var name in new[] { "model.safetensors", TrainingStateFile })
            {
                try { SafetensorsFile.ReadHeader(Path.Combine(checkpointDir, name)); }
                catch (Exception e) when (e is InvalidDataException or IOException) { problems.Add(e.Message); }
            }
            if (problems.Count == 0)
                warning = $"Checkpoint {checkpointDir} predates checkpoint manifests: its files were checked for structure only, not by hash.";
            return problems;
        }

        try
        {
            var manifest = CheckpointManifest.Read(checkpointDir);
            var problems = manifest.Mismatches(checkpointDir).ToList();
            if (manifest.Step != state.Step || manifest.ConfigHash != state.ConfigHash)
                problems.Add($"the manifest is for step {manifest.Step} (config {manifest.ConfigHash}) but state.json says step {state.Step} (config {state.ConfigHash})");
            if (!manifest.Files.Any(f => f.Name == StateFile) || !manifest.Files.Any(f => f.Name == "model.safetensors"))
                problems.Add("the manifest does not cover state.json and model.safetensors");
            return problems;
        }
        catch (Exception e) when (e is InvalidDataException or IOException) { return [e.Message]; }
    }

    public static CheckpointState ReadState(string checkpointDir)
    {
        var path = Path.Combine(checkpointDir, StateFile);
        try
        {
            return JsonSerializer.Deserialize<CheckpointState>(File.ReadAllText(path), Json)
                ?? throw new InvalidDataException($"{path}: empty checkpoint state.");
        }
        catch (JsonException e) { throw new InvalidDataException($"{path}: unreadable checkpoint state ({e.Message}).", e); }
    }

    static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
}
