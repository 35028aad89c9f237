using System.Buffers.Binary;
using System.Text;

namespace Excise.Tests.Reliability;

/// <summary>
/// Format-blind mutations of a byte string, each returning a new array and a short description of what it did
/// (the description goes into the failure report, so a crash can be understood without re-running the fuzzer).
/// </summary>
public static class Mutations
{
    /// <summary>Values that break length and count fields: zero, one, sign boundaries, all-ones.</summary>
    public static readonly long[] InterestingIntegers =
        [0, 1, -1, 2, 7, 8, 255, 256, 65535, 65536, int.MaxValue, int.MinValue, (long)int.MaxValue + 1, uint.MaxValue, long.MaxValue, long.MinValue, 1L << 40];

    public static (byte[] Bytes, string What) AnyGeneric(byte[] input, Random random) => random.Next(9) switch
    {
        0 => FlipBits(input, random),
        1 => SetInterestingBytes(input, random),
        2 => Truncate(input, random),
        3 => InsertRandomBytes(input, random),
        4 => DeleteRange(input, random),
        5 => DuplicateChunk(input, random),
        6 => WriteInterestingInteger(input, random),
        7 => SwapChunks(input, random),
        _ => random.Next(4) == 0 ? ([], "emptied the file") : FlipBits(input, random),
    };

    public static (byte[], string) FlipBits(byte[] input, Random random)
    {
        if (input.Length == 0) return (input, "nothing to flip");
        var output = (byte[])input.Clone();
        int flips = 1 + random.Next(8);
        var positions = new List<int>();
        for (int i = 0; i < flips; i++)
        {
            int position = random.Next(output.Length);
            output[position] ^= (byte)(1 << random.Next(8));
            positions.Add(position);
        }
        return (output, $"flipped bits at {string.Join(",", positions)}");
    }

    public static (byte[], string) SetInterestingBytes(byte[] input, Random random)
    {
        if (input.Length == 0) return (input, "nothing to set");
        var output = (byte[])input.Clone();
        byte[] values = [0x00, 0xFF, 0x7F, 0x80, 0x01, (byte)'"', (byte)'{', (byte)'}', (byte)'\\', (byte)',', 0x0A];
        int count = 1 + random.Next(4);
        var changes = new List<string>();
        for (int i = 0; i < count; i++)
        {
            int position = random.Next(output.Length);
            output[position] = random.Next(3) == 0 ? (byte)random.Next(256) : values[random.Next(values.Length)];
            changes.Add($"{position}={output[position]:X2}");
        }
        return (output, $"set bytes {string.Join(",", changes)}");
    }

    public static (byte[], string) Truncate(byte[] input, Random random)
    {
        int length = input.Length == 0 ? 0 : random.Next(3) == 0 ? Math.Max(0, input.Length - 1 - random.Next(8)) : random.Next(input.Length);
        return (input[..length], $"truncated to {length} of {input.Length} bytes");
    }

    public static (byte[], string) InsertRandomBytes(byte[] input, Random random)
    {
        int position = random.Next(input.Length + 1);
        var inserted = new byte[1 + random.Next(random.Next(4) == 0 ? 4096 : 64)];
        random.NextBytes(inserted);
        return ([.. input.AsSpan(0, position), .. inserted, .. input.AsSpan(position)], $"inserted {inserted.Length} random bytes at {position}");
    }

    public static (byte[], string) DeleteRange(byte[] input, Random random)
    {
        if (input.Length == 0) return (input, "nothing to delete");
        int position = random.Next(input.Length);
        int length = 1 + random.Next(Math.Min(64, input.Length - position));
        return ([.. input.AsSpan(0, position), .. input.AsSpan(position + length)], $"deleted {length} bytes at {position}");
    }

    public static (byte[], string) DuplicateChunk(byte[] input, Random random)
    {
        if (input.Length == 0) return (input, "nothing to duplicate");
        int from = random.Next(input.Length);
        int length = 1 + random.Next(Math.Min(256, input.Length - from));
        int to = random.Next(input.Length + 1);
        return ([.. input.AsSpan(0, to), .. input.AsSpan(from, length), .. input.AsSpan(to)], $"copied {length} bytes from {from} to {to}");
    }

    public static (byte[], string) SwapChunks(byte[] input, Random random)
    {
        if (input.Length < 4) return FlipBits(input, random);
        int length = 1 + random.Next(Math.Min(32, input.Length / 2));
        int a = random.Next(input.Length - length + 1), b = random.Next(input.Length - length + 1);
        var output = (byte[])input.Clone();
        input.AsSpan(a, length).CopyTo(output.AsSpan(b));
        input.AsSpan(b, length).CopyTo(output.AsSpan(a));
        return (output, $"swapped {length} bytes at {a} and {b}");
    }

    /// <summary>Writes a boundary integer as 4 or 8 bytes, big- or little-endian, where a length field might be.</summary>
    public static (byte[], string) WriteInterestingInteger(byte[] input, Random random)
    {
        int width = random.Next(2) == 0 ? 4 : 8;
        if (input.Length < width) return SetInterestingBytes(input, random);
        var output = (byte[])input.Clone();
        // Headers live near the start: favour the first 64 bytes.
        int position = random.Next(2) == 0 ? random.Next(Math.Min(64, input.Length - width + 1)) : random.Next(input.Length - width + 1);
        long value = InterestingIntegers[random.Next(InterestingIntegers.Length)];
        bool bigEndian = random.Next(2) == 0;
        var span = output.AsSpan(position, width);
        if (width == 4 && bigEndian) BinaryPrimitives.WriteInt32BigEndian(span, unchecked((int)value));
        else if (width == 4) BinaryPrimitives.WriteInt32LittleEndian(span, unchecked((int)value));
        else if (bigEndian) BinaryPrimitives.WriteInt64BigEndian(span, value);
        else BinaryPrimitives.WriteInt64LittleEndian(span, value);
        return (output, $"wrote {value} as {width} bytes {(bigEndian ? "big" : "little")}-endian at {position}");
    }

    public static T Pick<T>(this Random random, IReadOnlyList<T> values) => values[random.Next(values.Count)];

    public static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);
}
