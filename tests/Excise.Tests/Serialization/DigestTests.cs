using Excise.Serialization;
using Excise.Tests.Data;

namespace Excise.Tests.Serialization;

public sealed class DigestTests
{
    static void WriteBytes(string path, byte fill)
    {
        var bytes = new byte[Digest.RememberedMinimumBytes];
        Array.Fill(bytes, fill);
        bytes[^1] = 7;
        File.WriteAllBytes(path, bytes);
    }

    [Fact]
    public void A_large_files_digest_is_remembered_by_path_size_and_modification_time_across_processes()
    {
        using var dir = new TempDirectory();
        var weights = dir.File("weights.safetensors");
        var cache = dir.File("cache/sha256.tsv");
        WriteBytes(weights, 1);
        var digest = Digest.Sha256(weights);
        Assert.Equal(digest, Digest.Sha256Remembered(weights, cache));
        Assert.Contains(digest, File.ReadAllText(cache));

        // Rewritten in place: a new modification time, so a new digest.
        var written = File.GetLastWriteTimeUtc(weights);
        WriteBytes(weights, 2);
        File.SetLastWriteTimeUtc(weights, written.AddSeconds(1));
        var rewritten = Digest.Sha256(weights);
        Assert.NotEqual(digest, rewritten);
        Assert.Equal(rewritten, Digest.Sha256Remembered(weights, cache));

        // The next process reads the cache file instead of the weights: shown by a copy of the cache, which answers with
        // what it recorded for (path, size, time) even after the bytes were changed behind its back with all three kept —
        // the one change this signature cannot see, as for git's index.
        var nextProcessCache = dir.File("cache/copy.tsv");
        File.Copy(cache, nextProcessCache);
        var time = File.GetLastWriteTimeUtc(weights);
        WriteBytes(weights, 3);
        File.SetLastWriteTimeUtc(weights, time);
        Assert.Equal(rewritten, Digest.Sha256Remembered(weights, nextProcessCache));
        // A cut-short line (another process appending at that moment) is skipped, not an error.
        var torn = dir.File("cache/torn.tsv");
        File.WriteAllText(torn, "abc\t12");
        Assert.Equal(Digest.Sha256(weights), Digest.Sha256Remembered(weights, torn));
    }

    [Fact]
    public void A_small_file_is_hashed_each_time_and_never_cached()
    {
        using var dir = new TempDirectory();
        var config = dir.File("config.json");
        var cache = dir.File("sha256.tsv");
        File.WriteAllText(config, "{}");
        Assert.Equal(Digest.Sha256(config), Digest.Sha256Remembered(config, cache));
        Assert.False(File.Exists(cache));
    }
}
