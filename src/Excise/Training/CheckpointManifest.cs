using System.Text.Json;
using Excise.Serialization;

namespace Excise.Training;

/// <summary>One file of a checkpoint as it was written: its name inside the checkpoint folder, size and SHA-256 (lower-case hex).</summary>
public sealed record ManifestEntry(string Name, long Size, string Sha256);

/// <summary>
/// <c>manifest.json</c>, the last file written into a checkpoint: the step, the config hash and the size and SHA-256
/// of every other file. A checkpoint is trusted only if every file still matches it, so a flipped bit, a truncated
/// file or a missing file is found before any of it is loaded.
/// </summary>
public sealed record CheckpointManifest(int Step, string ConfigHash, IReadOnlyList<ManifestEntry> Files)
{
    public const string FileName = "manifest.json";

    /// <summary>Hashes the listed files as they are on disk now.</summary>
    public static CheckpointManifest Create(string checkpointDir, int step, string configHash, IEnumerable<string> fileNames) =>
        new(step, configHash, fileNames.Select(name => Describe(Path.Combine(checkpointDir, name))).ToList());

    static ManifestEntry Describe(string path)
    {
        return new ManifestEntry(Path.GetFileName(path), new FileInfo(path).Length, Digest.Sha256(path));
    }

    public void Write(string checkpointDir) => AtomicFile.WriteAllText(Path.Combine(checkpointDir, FileName), JsonSerializer.Serialize(this, Json));

    /// <exception cref="InvalidDataException">The manifest is missing or not a manifest.</exception>
    public static CheckpointManifest Read(string checkpointDir)
    {
        var path = Path.Combine(checkpointDir, FileName);
        if (!File.Exists(path)) throw new InvalidDataException($"{path} is missing.");
        try
        {
            var manifest = JsonSerializer.Deserialize<CheckpointManifest>(File.ReadAllText(path), Json);
            if (manifest?.Files is null || manifest.ConfigHash is null || manifest.Files.Any(f => f?.Name is null || f.Sha256 is null))
                throw new InvalidDataException($"{path} is incomplete.");
            return manifest;
        }
        catch (JsonException e) { throw new InvalidDataException($"{path} is not a valid manifest ({e.Message}).", e); }
    }

    /// <summary>Every problem with the files of <paramref name="checkpointDir"/> against this manifest (empty when they all match).</summary>
    public IReadOnlyList<string> Mismatches(string checkpointDir)
    {
        var problems = new List<string>();
        foreach (var expected in Files)
        {
            // A manifest is data read from disk: a name like "../x" must not make us hash files outside the checkpoint.
            if (expected.Name != Path.GetFileName(expected.Name) || expected.Name is "." or "..")
            {
                problems.Add($"the manifest lists an invalid file name '{expected.Name}'");
                continue;
            }
            var path = Path.Combine(checkpointDir, expected.Name);
            if (!File.Exists(path)) { problems.Add($"{path} is missing"); continue; }
            var actual = Describe(path);
            if (actual.Size != expected.Size) problems.Add($"{path} has {actual.Size} bytes, the manifest says {expected.Size}");
            else if (actual.Sha256 != expected.Sha256) problems.Add($"{path} has SHA-256 {actual.Sha256[..16]}…, the manifest says {expected.Sha256[..Math.Min(16, expected.Sha256.Length)]}…");
        }
        return problems;
    }

    static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
}
