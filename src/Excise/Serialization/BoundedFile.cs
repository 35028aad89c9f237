namespace Excise.Serialization;

/// <summary>
/// Reads a whole file only if it is a regular file within a size limit, so a path to a device (/dev/zero), a pipe or
/// a huge file fails with a message instead of exhausting memory.
/// </summary>
public static class BoundedFile
{
    public static byte[] ReadAllBytes(string path, long maxBytes, string what)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: {what} not found.", path);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        if (!stream.CanSeek) throw NotRegular(path, what);
        long length = stream.Length;
        if (length > maxBytes) throw new InvalidDataException($"{path}: {what} has {length:N0} bytes, more than the {maxBytes >> 20} MiB Excise reads.");
        var bytes = new byte[length];
        stream.ReadExactly(bytes);
        // A device reports length 0 and then keeps delivering bytes.
        if (stream.ReadByte() != -1) throw NotRegular(path, what);
        return bytes;
    }

    static InvalidDataException NotRegular(string path, string what) =>
        new($"{path}: {what} is not a regular file (a device or a pipe, or it grew while being read).");
}
