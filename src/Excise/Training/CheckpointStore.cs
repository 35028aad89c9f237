using System.Text.Json;
using Excise.Serialization;
using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Training;

/// <summary>What a checkpoint records besides tensors.</summary>
/// <param name="Extra">What else the run depends on, e.g. the projection arm and the SHA-256 of its concept basis.</param>
public sealed record CheckpointState(int Step, string ConfigHash, long OptimizerSteps, long EmaUpdates, long Seed, string Rng, DateTimeOffset SavedAt,
                                     IReadOnlyDictionary<string, string>? Extra = null);

/// <summary>
/// Checkpoints as folders of safetensors files: <c>model.safetensors</c> (raw weights), <c>ema.safetensors</c>
/// (when EMA is on), <c>training_state.safetensors</c> (optimizer moments, with step, seed and RNG scheme in its
/// metadata) and <c>state.json</c>, the manifest whose presence marks the checkpoint complete. A checkpoint is assembled in a
/// temporary folder, flushed, then renamed into place, and only then does <c>latest.json</c> point at it:
/// a crash at any moment leaves the previous checkpoint usable.
/// </summary>
public sealed class CheckpointStore
{
    readonly string dir;
    public CheckpointStore(string checkpointsDir) => dir = checkpointsDir;

    public const string TrainingStateFile = "training_state.safetensors";
    string LatestPath => Path.Combine(dir, "latest.json");
    static string Name(int step) => $"step-{step:D8}";

    public string Save(CheckpointState state, IEnumerable<KeyValuePair<string, Tensor>> model,
                       IEnumerable<KeyValuePair<string, Tensor>>? ema, IEnumerable<KeyValuePair<string, Tensor>> optimizer, int keep)
    {
        Directory.CreateDirectory(dir);
        var final = Path.Combine(dir, Name(state.Step));
        var temp = Path.Combine(dir, $".{Name(state.Step)}.{Environment.ProcessId}.tmp");
        if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
        Directory.CreateDirectory(temp);
        try
        {
            SafetensorsFile.Save(Path.Combine(temp, "model.safetensors"), model);
            if (ema is not null) SafetensorsFile.Save(Path.Combine(temp, "ema.safetensors"), ema);
            SafetensorsFile.Save(Path.Combine(temp, TrainingStateFile), optimizer, new Dictionary<string, string>
            {
                ["step"] = state.Step.ToString(), ["optimizer_steps"] = state.OptimizerSteps.ToString(), ["ema_updates"] = state.EmaUpdates.ToString(),
                ["seed"] = state.Seed.ToString(), ["rng"] = state.Rng, ["config_hash"] = state.ConfigHash,
            }.Concat(state.Extra ?? new Dictionary<string, string>()).ToDictionary());
            AtomicFile.WriteAllText(Path.Combine(temp, "state.json"), JsonSerializer.Serialize(state, Json));
            if (Directory.Exists(final)) Directory.Delete(final, recursive: true);
            Directory.Move(temp, final);
            AtomicFile.WriteAllText(LatestPath, JsonSerializer.Serialize(new { step = state.Step, dir = Name(state.Step) }, Json));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try { if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true); } catch (IOException) { }
            throw new IOException($"Could not write checkpoint for step {state.Step} in {dir}: {e.Message}. The previous checkpoint is intact.", e);
        }
        Prune(keep);
        return final;
    }

    void Prune(int keep)
    {
        foreach (var old in CompleteCheckpoints().SkipLast(keep))
            try { Directory.Delete(old.Path, recursive: true); } catch (IOException) { }
    }

    /// <summary>Complete checkpoints (state.json present) in step order.</summary>
    public IReadOnlyList<(int Step, string Path)> CompleteCheckpoints()
    {
        if (!Directory.Exists(dir)) return [];
        return Directory.GetDirectories(dir, "step-*")
            .Select(p => (Ok: int.TryParse(System.IO.Path.GetFileName(p)["step-".Length..], out var s), Step: s, Path: p))
            .Where(c => c.Ok && File.Exists(System.IO.Path.Combine(c.Path, "state.json")))
            .OrderBy(c => c.Step)
            .Select(c => (c.Step, c.Path))
            .ToList();
    }

    /// <summary>The newest complete checkpoint, or null when there is none.</summary>
    public string? Latest()
    {
        if (File.Exists(LatestPath))
        {
            try
            {
                using var doc = JsonDocument.Parse(File.ReadAllText(LatestPath));
                var path = Path.Combine(dir, doc.RootElement.GetProperty("dir").GetString()!);
                if (File.Exists(Path.Combine(path, "state.json"))) return path;
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException) { }
        }
        var all = CompleteCheckpoints();
        return all.Count > 0 ? all[^1].Path : null;
    }

    public static CheckpointState ReadState(string checkpointDir)
    {
        var path = Path.Combine(checkpointDir, "state.json");
        try
        {
            return JsonSerializer.Deserialize<CheckpointState>(File.ReadAllText(path), Json)
                ?? throw new InvalidDataException($"{path}: empty checkpoint state.");
        }
        catch (JsonException e) { throw new InvalidDataException($"{path}: unreadable checkpoint state ({e.Message}).", e); }
    }

    static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
}
