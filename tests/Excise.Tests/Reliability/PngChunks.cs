using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace Excise.Tests.Reliability;

/// <summary>Reads and writes PNG chunks with correct CRCs, so tests can forge a file a decoder will get past its CRC check with.</summary>
public static class PngChunks
{
    public static readonly byte[] Signature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    public sealed record Entry(string Type, byte[] Data);

    /// <summary>The chunks of a well-formed PNG (the seeds; mutated files are never parsed).</summary>
    public static List<Entry> Parse(byte[] png)
    {
        var chunks = new List<Entry>();
        int position = Signature.Length;
        while (position + 12 <= png.Length)
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(position));
            var type = Encoding.ASCII.GetString(png, position + 4, 4);
            chunks.Add(new Entry(type, png[(position + 8)..(position + 8 + length)]));
            position += 12 + length;
        }
        return chunks;
    }

    public static byte[] Chunk(string type, byte[] data)
    {
        var bytes = new byte[12 + data.Length];
        BinaryPrimitives.WriteInt32BigEndian(bytes, data.Length);
        Encoding.ASCII.GetBytes(type, bytes.AsSpan(4));
        data.CopyTo(bytes, 8);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(8 + data.Length), Crc32(bytes.AsSpan(4, 4 + data.Length)));
        return bytes;
    }

    public static byte[] Assemble(IEnumerable<Entry> chunks) => [.. Signature, .. chunks.SelectMany(c => Chunk(c.Type, c.Data))];

    /// <summary>The same PNG with IHDR's width and height replaced (CRC recomputed).</summary>
    public static byte[] WithSize(byte[] png, uint width, uint height)
    {
        var chunks = Parse(png);
        var header = chunks[0].Data.ToArray();
        BinaryPrimitives.WriteUInt32BigEndian(header, width);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(4), height);
        chunks[0] = chunks[0] with { Data = header };
        return Assemble(chunks);
    }

    public static byte[] Deflate(byte[] data)
    {
        using var output = new MemoryStream();
        using (var zlib = new ZLibStream(output, CompressionLevel.Optimal)) zlib.Write(data);
        return output.ToArray();
    }

    public static byte[] Inflate(byte[] data)
    {
        using var zlib = new ZLibStream(new MemoryStream(data), CompressionMode.Decompress);
        using var output = new MemoryStream();
        zlib.CopyTo(output);
        return output.ToArray();
    }

    static readonly uint[] CrcTable = Enumerable.Range(0, 256).Select(n =>
    {
        uint c = (uint)n;
        for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
        return c;
    }).ToArray();

    public static uint Crc32(ReadOnlySpan<byte> bytes)
    {
        uint crc = 0xFFFFFFFF;
        foreach (var b in bytes) crc = CrcTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
        return crc ^ 0xFFFFFFFF;
    }
}
