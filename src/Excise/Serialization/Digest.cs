using System.Security.Cryptography;

namespace Excise.Serialization;

/// <summary>
/// The project's one digest: SHA-256 as lowercase hex, of a file (read in chunks, never whole into memory), bytes or
/// text — and its <see cref="Short"/> form for cache keys and fingerprints. Pinned files (<see cref="Pin"/>) hold a
/// file to its digest.
/// </summary>
public static class Digest
{
    /// <summary>Hex digits a cache key or fingerprint keeps: 64 bits, far from colliding among a machine's runs.</summary>
    public const int ShortLength = 16;

    public static string Sha256(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>Files smaller than this are hashed each time: they take milliseconds, and the cache stays small.</summary>
    public const long RememberedMinimumBytes = 16L << 20;

    /// <summary>
    /// <see cref="Sha256"/> of a large file (weights of several GB), remembered by its full path, length and modification
    /// time, the signature git's index trusts too: a file rewritten in place gets a new modification time and is hashed
    /// again. The memory lasts the process and is kept in <paramref name="cacheFile"/> (default
    /// <see cref="DefaultDigestCache"/>) for the next one, so each command that checks a pinned pipeline folder does not
    /// read it whole again. A cache that cannot be read or written is only slower.
    /// </summary>
    public static string Sha256Remembered(string path, string? cacheFile = null)
    {
        var file = new FileInfo(path);
        if (!file.Exists) throw new FileNotFoundException($"{path} not found.", path);
        if (file.Length < RememberedMinimumBytes) return Sha256(path);
        cacheFile ??= DefaultDigestCache;
        var key = $"{file.Length}\t{file.LastWriteTimeUtc.Ticks}\t{file.FullName}";
        lock (RememberedLock)
        {
            var remembered = RememberedDigests(cacheFile);
            if (remembered.TryGetValue(key, out var known)) return known;
            var digest = Sha256(path);
            remembered[key] = digest;
            try
            {
                Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(cacheFile))!);
                File.AppendAllText(cacheFile, $"{digest}\t{key}\n");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
            return digest;
        }
    }

    /// <summary>$EXCISE_CACHE_HOME, else $XDG_CACHE_HOME/excise, else ~/.cache/excise: sha256.tsv (digest, length, modification ticks, path).</summary>
    public static string DefaultDigestCache =>
        Path.Combine(Environment.GetEnvironmentVariable("EXCISE_CACHE_HOME") is { Length: > 0 } home ? home
            : Path.Combine(Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg ? xdg
                : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "excise"), "sha256.tsv");

    static readonly object RememberedLock = new();
    static readonly Dictionary<string, Dictionary<string, string>> RememberedByCache = new(StringComparer.Ordinal);

    static Dictionary<string, string> RememberedDigests(string cacheFile)
    {
        if (RememberedByCache.TryGetValue(cacheFile, out var known)) return known;
        known = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            if (File.Exists(cacheFile))
                foreach (var line in File.ReadLines(cacheFile))
                {
                    // Lines another process was appending at the same moment may be cut short: skip what does not parse.
                    var parts = line.Split('\t', 4);
                    if (parts.Length == 4 && parts[0].Length == 64 && parts[0].All(Uri.IsHexDigit)) known[$"{parts[1]}\t{parts[2]}\t{parts[3]}"] = parts[0];
                }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        RememberedByCache[cacheFile] = known;
        return known;
    }

    public static string OfBytes(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>The digest of a text's UTF-8 bytes.</summary>
    public static string OfText(string text) => OfBytes(System.Text.Encoding.UTF8.GetBytes(text));

    /// <summary>The first <see cref="ShortLength"/> hex digits of <see cref="OfText"/>: what keys caches and fingerprints outcomes.</summary>
    public static string Short(string text) => OfText(text)[..ShortLength];

    /// <summary>Lowercase hex of a finished hash (an <see cref="IncrementalHash"/> over many parts).</summary>
    public static string Hex(byte[] hash) => Convert.ToHexStringLower(hash);

    /// <summary>Where a pinned file's digest lives: beside it, in <c>sha256sum</c>'s format, so <c>sha256sum -c</c> checks it too.</summary>
    public static string PinPath(string path) => path + ".sha256";

    /// <summary>Pins a file: writes its digest beside it (<see cref="PinPath"/>). Every later <see cref="VerifyPin"/> holds it to these bytes.</summary>
    public static string Pin(string path)
    {
        var digest = Sha256(path);
        AtomicFile.WriteAllText(PinPath(path), $"{digest}  {Path.GetFileName(path)}\n");
        return digest;
    }

    /// <summary>
    /// For a pinned file (one with a <see cref="PinPath"/> beside it), checks that its bytes still have the pinned
    /// digest and refuses them otherwise; returns the digest, or null for an unpinned file (nothing to hold it to).
    /// </summary>
    public static string? VerifyPin(string path)
    {
        var pinPath = PinPath(path);
        if (!File.Exists(pinPath)) return null;
        var text = File.ReadAllText(pinPath).Trim();
        var pinned = text.Split(' ', 2)[0].ToLowerInvariant();
        if (pinned.Length != 64 || !pinned.All(Uri.IsHexDigit))
            throw new InvalidDataException($"{pinPath}: not a SHA-256 pin (expected 64 hex digits and the file name, as sha256sum writes).");
        var actual = Sha256(path);
        if (actual != pinned)
            throw new InvalidDataException(
                $"{path}: its SHA-256 is {actual}, but {Path.GetFileName(pinPath)} pins {pinned}. The file was damaged or replaced; " +
                "restore it (for a file of the repository: git checkout -- <file>) rather than train or sample from weights nobody measured.");
        return actual;
    }
}
