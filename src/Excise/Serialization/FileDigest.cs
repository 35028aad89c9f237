using System.Security.Cryptography;

namespace Excise.Serialization;

/// <summary>What a file holds, as a lowercase hex SHA-256 of its bytes (read in chunks, never whole into memory).</summary>
public static class FileDigest
{
    public static string Sha256(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }
}
