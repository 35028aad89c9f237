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
