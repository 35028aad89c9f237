using System.Buffers.Binary;
using System.Text;
using Excise.Serialization;
using static TorchSharp.torch;

namespace Excise.Tests.Serialization;

public class SafetensorsFileTests
{
    [Theory]
    [InlineData(new byte[] { (byte)'P', (byte)'K', 3, 4, 0, 0, 0, 0, (byte)'a', (byte)'r', (byte)'c', (byte)'h', (byte)'i', (byte)'v', (byte)'e', (byte)'/' }, "zip checkpoint")]
    [InlineData(new byte[] { 0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e }, "pickle (protocol 2)")]
    public void PyTorch_pickles_are_refused_with_the_reason_and_the_way_out(byte[] start, string kind)
    {
        using var dir = new TempDir();
        var path = dir.File("model.pth");
        File.WriteAllBytes(path, start.Concat(new byte[64]).ToArray());
        var e = Assert.Throws<InvalidDataException>(() => SafetensorsFile.ReadHeader(path));
        Assert.Contains(kind, e.Message);
        Assert.Contains("arbitrary code", e.Message);
        Assert.Contains("save_file", e.Message);
    }

    [Fact]
    public void A_file_whose_header_length_looks_like_pickle_magic_is_still_read_as_safetensors()
    {
        using var dir = new TempDir();
        var path = dir.File("t.safetensors");
        using var a = zeros(1);
        // Pad the metadata so the header is exactly 0x0280 bytes: its length starts 0x80 0x02, like a pickle.
        for (int padding = 0; padding < 700; padding++)
        {
            SafetensorsFile.Save(path, new Dictionary<string, Tensor> { ["a"] = a }, new Dictionary<string, string> { ["pad"] = new string('x', padding) });
            if (BinaryPrimitives.ReadUInt64LittleEndian(File.ReadAllBytes(path)) == 0x280) break;
        }
        Assert.Equal(0x280UL, BinaryPrimitives.ReadUInt64LittleEndian(File.ReadAllBytes(path)));
        Assert.Single(SafetensorsFile.ReadHeader(path));
    }

    [Fact]
    public void Round_trip_is_bit_exact_with_metadata_and_mixed_dtypes()
    {
        using var dir = new TempDir();
        var path = dir.File("t.safetensors");
        using var a = randn(3, 4);
        using var b = arange(10, dtype: ScalarType.Int64);
        using var c = tensor(new byte[] { 1, 2, 255 });
        SafetensorsFile.Save(path, new Dictionary<string, Tensor> { ["a"] = a, ["b.x"] = b, ["c"] = c },
            new Dictionary<string, string> { ["step"] = "7", ["note"] = "ünïcode" });

        using var loaded = SafetensorsFile.Load(path);
        Assert.Equal(new[] { "a", "b.x", "c" }, loaded.Names);
        Assert.True(loaded["a"].eq(a).all().ToBoolean());
        Assert.True(loaded["b.x"].eq(b).all().ToBoolean());
        Assert.True(loaded["c"].eq(c).all().ToBoolean());
        Assert.Equal("7", loaded.Metadata["step"]);
        Assert.Equal("ünïcode", loaded.Metadata["note"]);
        // Header padded so the payload is 8-byte aligned, like the reference writer.
        var bytes = File.ReadAllBytes(path);
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(bytes) % 8);
    }

    [Fact]
    public void Reads_the_golden_diffusers_file()
    {
        var header = SafetensorsFile.ReadHeader(Path.Combine(RepositoryPaths.Root, "tests", "golden", "mnist32.weights.safetensors"));
        Assert.Equal(208, header.Count);
        Assert.Contains(header, e => e.Name == "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight" && e.Shape.SequenceEqual(new long[] { 32, 384 }));
    }

    public static IEnumerable<object[]> CorruptHeaders() =>
    [
        ["""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}""", "not valid JSON"],
        ["""{"a":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}}""", "unsupported dtype"],
        ["""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,800]}}""", "outside"],
        ["""{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", "needs 12"],
        ["""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", "overlap"],
        ["""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}""", "twice"],
        ["""{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}""", "invalid dimension"],
        ["""[1,2]""", "not a JSON object"],
        ["""{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,10]}}""", "invalid dimension"],
        ["""{"a":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}}""", "invalid dimension"],
        ["""{"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}}""", "overflows 64 bits"],
        ["""{"a":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]}}""", "overflows 64 bits"],
        ["""{"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}""", "outside"],
        ["""{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}""", "outside"],
        ["""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,1e30]}}""", "outside"],
        ["""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}}""", "data_offsets [begin, end]"],
        ["""{"a":{"dtype":"F32","shape":[2]}}""", "data_offsets [begin, end]"],
        ["""{"a":{"dtype":"F32","dtype":"F64","shape":[2],"data_offsets":[0,8]}}""", "lists 'dtype' twice"],
        ["""{"a":7}""", "not an object"],
        ["""{"__metadata__":{"k":"1","k":"2"},"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", "key 'k' is listed twice"],
        ["""{"__metadata__":{"k":1},"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", "not a string"],
        ["""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", "payload has 16 bytes"],
        ["""{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}""", "belong to no tensor"],
        ["""{"a":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,4],"data_offsets":[0,16]}}""", "33 dimensions"],
        ["", "not valid JSON"],
    ];

    [Theory]
    [MemberData(nameof(CorruptHeaders))]
    public void Corrupt_header_is_rejected_naming_the_file(string header, string expected)
    {
        using var dir = new TempDir();
        var path = dir.File("bad.safetensors");
        File.WriteAllBytes(path, WithHeader(header, payloadBytes: 16));
        var e = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Header_length_beyond_the_file_is_rejected_before_allocating()
    {
        using var dir = new TempDir();
        var path = dir.File("huge.safetensors");
        var bytes = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, ulong.MaxValue / 2);
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Load(path));
        Assert.Contains("past the end", e.Message);
        File.WriteAllBytes(path, new byte[3]);
        Assert.Throws<InvalidDataException>(() => SafetensorsFile.Load(path));
    }

    [Fact]
    public void Header_longer_than_the_cap_is_rejected_without_reading_it()
    {
        using var dir = new TempDir();
        var path = dir.File("big-header.safetensors");
        using (var stream = File.Create(path))
        {
            // A sparse file just long enough to hold the declared header, so only the cap can refuse it.
            stream.SetLength(8 + SafetensorsFile.MaxHeaderBytes + 8);
            var length = new byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)SafetensorsFile.MaxHeaderBytes + 8);
            stream.Write(length);
        }
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => SafetensorsFile.ReadHeader(path));
        Assert.Contains("exceeds the 100 MiB limit", e.Message);
        Assert.Contains(path, e.Message);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20, "the header was read before the cap refused it");
    }

    [Fact]
    public void Header_that_is_not_UTF8_is_rejected()
    {
        using var dir = new TempDir();
        var path = dir.File("latin1.safetensors");
        var bytes = WithHeader("""{"a?":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}""", payloadBytes: 1);
        bytes[Array.IndexOf(bytes, (byte)'?')] = 0xFF; // never valid in UTF-8
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Load(path));
        Assert.Contains("not valid UTF-8", e.Message);
    }

    [Fact]
    public void Bool_tensor_with_bytes_other_than_zero_and_one_is_rejected()
    {
        using var dir = new TempDir();
        var path = dir.File("bool.safetensors");
        var bytes = WithHeader("""{"flags":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}}""", payloadBytes: 3);
        bytes[^2] = 1;
        File.WriteAllBytes(path, bytes);
        using (var ok = SafetensorsFile.Load(path)) Assert.Equal(new[] { false, true, false }, ok["flags"].data<bool>().ToArray());
        bytes[^1] = 7;
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Load(path));
        Assert.Contains("'flags'", e.Message);
    }

    [Fact]
    public void Failed_write_leaves_the_previous_file_intact()
    {
        using var dir = new TempDir();
        var path = dir.File("keep.safetensors");
        using var a = ones(4);
        SafetensorsFile.Save(path, new Dictionary<string, Tensor> { ["a"] = a });
        var before = File.ReadAllBytes(path);
        Assert.ThrowsAny<Exception>(() => AtomicFile.Write(path, s => { s.Write(new byte[10]); throw new IOException("disk full (simulated)"); }));
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Single(Directory.GetFiles(dir.Path));
    }

    static byte[] WithHeader(string json, int payloadBytes)
    {
        var h = Encoding.UTF8.GetBytes(json);
        var bytes = new byte[8 + h.Length + payloadBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)h.Length);
        h.CopyTo(bytes, 8);
        return bytes;
    }
}
