using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using IlgpuDdw.Data;
using IlgpuDdw.IO;

namespace IlgpuDdw.Tests;

/// <summary>safetensors: round trips, the spec's layout, atomic saves, and every malformed file rejected cleanly.</summary>
public sealed class SafeTensorsTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static KeyValuePair<string, SafeTensor> T(string name, SafeTensor t) => new(name, t);

    private static SafeTensor F32(int[] shape) =>
        SafeTensor.FromFloat32(shape, Enumerable.Range(0, shape.Aggregate(1, (a, b) => a * b)).Select(i => i * 0.25f - 1f).ToArray());

    /// <summary>A file made of a declared header length, header text and buffer bytes (for malformed files).</summary>
    private string Raw(string header, byte[] buffer, ulong? declaredLength = null, string name = "raw.safetensors")
    {
        var json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + buffer.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, declaredLength ?? (ulong)json.Length);
        json.CopyTo(bytes, 8);
        buffer.CopyTo(bytes, 8 + json.Length);
        string path = _dir.File(name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static string Entry(string name, string dtype, string shape, long begin, long end) =>
        $"\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape},\"data_offsets\":[{begin},{end}]}}";

    private static string Rejects(string path, params string[] fragments)
    {
        var e = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path));
        Assert.Contains(path, e.Message);
        foreach (var f in fragments) Assert.Contains(f, e.Message);
        return e.Message;
    }

    [Fact]
    public void RoundTrip_Tensors_And_Metadata()
    {
        string path = _dir.File("model.safetensors");
        var w = F32([3, 5]);
        var tensors = new[]
        {
            T("layer.weight", w), T("layer.bias", F32([5])), T("step", SafeTensor.FromInt64([], [long.MaxValue])),
            T("counts", SafeTensor.FromInt64([2, 2], [1, -2, 3, long.MinValue])), T("empty", F32([0, 4])),
        };
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["epoch"] = "3", ["note"] = "ünïcode \"quoted\"" };
        SafeTensors.Save(path, tensors, metadata);

        var file = SafeTensors.Load(path);
        Assert.Equal(metadata, file.Metadata);
        Assert.Equal(tensors.Select(t => t.Key), file.Tensors.Keys);
        foreach (var (name, t) in tensors)
        {
            var r = file.Tensors[name];
            Assert.Equal(t.DType, r.DType);
            Assert.Equal(t.Shape, r.Shape);
            Assert.Equal(t.Data, r.Data);
        }
        Assert.Equal(w.ToFloat32(), file.Tensors["layer.weight"].ToFloat32());
        Assert.Equal([long.MaxValue], file.Tensors["step"].ToInt64());
        Assert.Equal(1, file.Tensors["step"].ElementCount);
        Assert.Empty(file.Tensors["empty"].ToFloat32());
        Assert.Throws<InvalidOperationException>(() => file.Tensors["step"].ToFloat32());
    }

    [Fact]
    public void Layout_Follows_The_Spec()
    {
        string path = _dir.File("layout.safetensors");
        SafeTensors.Save(path, [T("a", SafeTensor.FromFloat32([2], [1f, -2f])), T("b", SafeTensor.FromInt64([1], [7]))],
            new Dictionary<string, string> { ["k"] = "v" });
        var bytes = File.ReadAllBytes(path);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0UL, (8 + n) % 8);                       // buffer 8-byte aligned, header padded with spaces
        string header = Encoding.UTF8.GetString(bytes, 8, (int)n);
        Assert.StartsWith("{", header);
        Assert.EndsWith("}", header.TrimEnd(' '));          // only spaces after the JSON object
        using var doc = JsonDocument.Parse(header);
        var root = doc.RootElement;
        Assert.Equal("v", root.GetProperty("__metadata__").GetProperty("k").GetString());
        Assert.Equal("F32", root.GetProperty("a").GetProperty("dtype").GetString());
        Assert.Equal([0, 8], root.GetProperty("a").GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()));
        Assert.Equal("I64", root.GetProperty("b").GetProperty("dtype").GetString());
        Assert.Equal([8, 16], root.GetProperty("b").GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()));
        var buffer = bytes.AsSpan(8 + (int)n);
        Assert.Equal(16, buffer.Length);
        Assert.Equal(1f, BinaryPrimitives.ReadSingleLittleEndian(buffer));
        Assert.Equal(-2f, BinaryPrimitives.ReadSingleLittleEndian(buffer[4..]));
        Assert.Equal(7L, BinaryPrimitives.ReadInt64LittleEndian(buffer[8..]));
    }

    [Fact]
    public void Empty_Metadata_Written_Without_Key_And_Read_As_Empty()
    {
        string path = _dir.File("nometa.safetensors");
        SafeTensors.Save(path, [T("x", F32([2]))]);
        // The only metadata written is the checksum map, which Load consumes.
        Assert.Equal([SafeTensors.ChecksumKey], Header(path).GetProperty("__metadata__").EnumerateObject().Select(p => p.Name));
        Assert.Empty(SafeTensors.Load(path).Metadata);
        SafeTensors.Save(path, []);
        Assert.DoesNotContain("__metadata__", File.ReadAllText(path));
        SafeTensors.Save(path, [T("x", F32([2]))], new Dictionary<string, string>());
        Assert.Empty(SafeTensors.Load(path).Metadata);
        // No tensors at all is a valid file too.
        SafeTensors.Save(path, [], new Dictionary<string, string> { ["only"] = "metadata" });
        var file = SafeTensors.Load(path);
        Assert.Empty(file.Tensors);
        Assert.Equal("metadata", file.Metadata["only"]);
    }

    [Fact]
    public void Reads_Foreign_Files_Unsorted_Padded_With_Extra_Fields()
    {
        // Entries listed out of offset order, an unknown field, header padded with spaces: all allowed.
        var buffer = new byte[12];
        BinaryPrimitives.WriteSingleLittleEndian(buffer, 5f);
        BinaryPrimitives.WriteSingleLittleEndian(buffer.AsSpan(4), 6f);
        BinaryPrimitives.WriteSingleLittleEndian(buffer.AsSpan(8), 7f);
        string header = "{" + Entry("late", "F32", "[1]", 8, 12) + "," + Entry("early", "F32", "[2,1]", 0, 8)
            + ",\"__metadata__\":{\"a\":\"b\"}}      ";
        var file = SafeTensors.Load(Raw(header, buffer));
        Assert.Equal([7f], file.Tensors["late"].ToFloat32());
        Assert.Equal([5f, 6f], file.Tensors["early"].ToFloat32());
        Assert.Equal([2, 1], file.Tensors["early"].Shape);
        Assert.Equal("b", file.Metadata["a"]);
        // Other dtypes are read as raw bytes.
        var bf = SafeTensors.Load(Raw("{" + Entry("h", "BF16", "[3]", 0, 6) + "}", new byte[6], name: "bf16.safetensors"));
        Assert.Equal(SafeTensorDType.BFloat16, bf.Tensors["h"].DType);
        Assert.Equal(3, bf.Tensors["h"].ElementCount);
    }

    /// <summary>The parsed JSON header of a file (a clone, valid after the document is gone).</summary>
    private static JsonElement Header(string path)
    {
        var bytes = File.ReadAllBytes(path);
        using var doc = JsonDocument.Parse(bytes.AsMemory(8, (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes)));
        return doc.RootElement.Clone();
    }

    // ---- checksums ---------------------------------------------------------------------------------------

    [Fact]
    public void Checksums_Written_As_Sha256_Of_Each_Tensors_Bytes()
    {
        string path = _dir.File("sums.safetensors");
        var a = F32([2, 3]);
        var b = SafeTensor.FromInt64([2], [5, -6]);
        SafeTensors.Save(path, [T("a", a), T("b.weight", b)], new Dictionary<string, string> { ["epoch"] = "4" });
        var meta = Header(path).GetProperty("__metadata__");
        Assert.Equal("4", meta.GetProperty("epoch").GetString());
        using var map = JsonDocument.Parse(meta.GetProperty(SafeTensors.ChecksumKey).GetString()!);
        Assert.Equal(["a", "b.weight"], map.RootElement.EnumerateObject().Select(p => p.Name));
        Assert.Equal(Idx.Sha256Hex(a.Data), map.RootElement.GetProperty("a").GetString());
        Assert.Equal(Idx.Sha256Hex(b.Data), map.RootElement.GetProperty("b.weight").GetString());

        var file = SafeTensors.Load(path);
        Assert.True(file.ChecksumsVerified);
        Assert.Equal(new Dictionary<string, string> { ["epoch"] = "4" }, file.Metadata);
        Assert.Contains("reserved", Assert.Throws<ArgumentException>(() =>
            SafeTensors.Save(path, [T("a", a)], new Dictionary<string, string> { [SafeTensors.ChecksumKey] = "{}" })).Message);
    }

    [Fact]
    public void Flipped_Data_Byte_Fails_The_Tensors_Checksum()
    {
        string path = _dir.File("flip.safetensors");
        SafeTensors.Save(path, [T("stem.0.weight", F32([2, 3])), T("stem.1.bias", F32([3]))]);
        string recorded = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(F32([3]).Data));
        var bytes = File.ReadAllBytes(path);
        bytes[^5] ^= 0x04; // inside stem.1.bias, data_offsets [24, 36]
        File.WriteAllBytes(path, bytes);
        string actual = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes.AsSpan(bytes.Length - 12)));
        Assert.Equal($"{path}: tensor 'stem.1.bias': checksum mismatch (file corrupted?): SHA-256 of its 12 bytes at data_offsets [24, 36] " +
            $"is {actual}, the header records {recorded}", Rejects(path, "stem.1.bias", "checksum mismatch (file corrupted?)"));
    }

    [Fact]
    public void Files_Without_Checksums_Load_Unverified()
    {
        // As PyTorch writes them: no metadata, or metadata without the checksum map.
        var buffer = new byte[8];
        BinaryPrimitives.WriteSingleLittleEndian(buffer, 1.5f);
        BinaryPrimitives.WriteSingleLittleEndian(buffer.AsSpan(4), -2f);
        var plain = SafeTensors.Load(Raw("{" + Entry("w", "F32", "[2]", 0, 8) + "}", buffer));
        Assert.False(plain.ChecksumsVerified);
        Assert.Equal([1.5f, -2f], plain.Tensors["w"].ToFloat32());
        var pt = SafeTensors.Load(Raw("{\"__metadata__\":{\"format\":\"pt\"}," + Entry("w", "F32", "[2]", 0, 8) + "}", buffer, name: "pt.safetensors"));
        Assert.False(pt.ChecksumsVerified);
        Assert.Equal("pt", pt.Metadata["format"]);
        // A flipped byte in such a file goes unnoticed: nothing to check it against.
        buffer[0] ^= 1;
        Assert.False(SafeTensors.Load(Raw("{" + Entry("w", "F32", "[2]", 0, 8) + "}", buffer, name: "flipped.safetensors")).ChecksumsVerified);
    }

    [Fact]
    public void Malformed_Checksum_Map_Rejected()
    {
        string Sums(string map) => "{\"__metadata__\":{\"tensor_sha256\":" + JsonSerializer.Serialize(map) + "}," + Entry("w", "F32", "[1]", 0, 4) + "}";
        string hex = Idx.Sha256Hex(new byte[4]);
        Assert.True(SafeTensors.Load(Raw(Sums($"{{\"w\":\"{hex}\"}}"), new byte[4], name: "ok")).ChecksumsVerified);
        Rejects(Raw(Sums("[1]"), new byte[4], name: "array"), "'tensor_sha256' is a JSON Array");
        Rejects(Raw(Sums("{\"w\":"), new byte[4], name: "json"), "'tensor_sha256' is not valid JSON");
        Rejects(Raw(Sums("{\"w\":\"abc\"}"), new byte[4], name: "short"), "tensor 'w' is \"abc\", not 64 hex digits");
        Assert.Equal($"{_dir.File("missing")}: tensor 'w' has no checksum in metadata 'tensor_sha256' (file corrupted?)",
            Rejects(Raw(Sums("{}"), new byte[4], name: "missing")));
        Assert.Equal($"{_dir.File("stray")}: metadata 'tensor_sha256' has a checksum for tensor 'v', which the file does not hold (file corrupted?)",
            Rejects(Raw(Sums($"{{\"w\":\"{hex}\",\"v\":\"{hex}\"}}"), new byte[4], name: "stray")));
    }

    // ---- malformed files ---------------------------------------------------------------------------------

    [Fact]
    public void Truncated_File_Rejected()
    {
        string tiny = _dir.File("tiny");
        File.WriteAllBytes(tiny, [1, 2, 3]);
        Rejects(tiny, "too short");
        string path = _dir.File("cut.safetensors");
        SafeTensors.Save(path, [T("x", F32([4, 4]))]);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^4]);
        long fileLength = bytes.Length - 4;
        Assert.Equal($"{path}: tensor 'x': data_offsets [0, 64] are out of range for a byte buffer of 60 bytes " +
            $"(the file has {fileLength} bytes, this tensor needs {fileLength + 4}: truncated file?)", Rejects(path, "out of range"));
        // Cut inside the header.
        File.WriteAllBytes(path, bytes[..40]);
        Rejects(path, "header length", "beyond the file's 32 bytes");
    }

    [Fact]
    public void Header_Length_Beyond_File_Rejected() =>
        Assert.Equal($"{_dir.File("raw.safetensors")}: header length 1000 reaches beyond the file's 2 bytes after the length (truncated or not a safetensors file)",
            Rejects(Raw("{}", [], declaredLength: 1000), "header length 1000", "beyond"));

    [Fact]
    public void Huge_Declared_Header_Rejected_Without_Allocating()
    {
        // Length near 2^64: beyond the file.
        long before = GC.GetAllocatedBytesForCurrentThread();
        Rejects(Raw("{}", [], declaredLength: ulong.MaxValue - 3), "beyond");
        // A sparse 200 MB file declaring a 150 MB header: within the file, beyond the 100 MB cap.
        string path = Raw("{}", [], declaredLength: 150_000_000, name: "sparse.safetensors");
        using (var f = new FileStream(path, FileMode.Open)) f.SetLength(200_000_000);
        Rejects(path, "exceeds the limit of 100000000");
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20, "rejecting a huge header must not allocate from it");
    }

    [Fact]
    public void Invalid_Json_Rejected()
    {
        Rejects(Raw("{\"x\": [1, 2", []), "not valid JSON");
        Rejects(Raw("[1, 2, 3]", [], name: "array"), "not '{'");
        Rejects(Raw("{\"x\": 1}   ", [], name: "number"), "'x'", "not an object");
        Rejects(Raw("{" + Entry("x", "F32", "[1]", 0, 4) + ",\"x\":{}}", new byte[4], name: "dup"), "'x' appears twice");
        Rejects(Raw("{\"__metadata__\":{\"a\":1}}", [], name: "meta"), "metadata 'a'", "not a string");
        Rejects(Raw("{\"x\":{\"dtype\":\"F32\",\"shape\":[1]}}", [], name: "nooffsets"), "data_offsets");
        Rejects(Raw("{\"x\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", new byte[4], name: "float"), "1.5");
    }

    [Fact]
    public void Offsets_Out_Of_Range_Rejected()
    {
        Rejects(Raw("{" + Entry("x", "F32", "[2]", 0, 8) + "}", new byte[4]), "'x'", "out of range");
        Assert.Equal($"{_dir.File("reversed")}: tensor 'x': data_offsets [4, 0] are out of range (need 0 <= begin <= end)",
            Rejects(Raw("{" + Entry("x", "F32", "[1]", 4, 0) + "}", new byte[4], name: "reversed"), "out of range"));
        Rejects(Raw("{" + Entry("x", "F32", "[1]", -4, 0) + "}", new byte[4], name: "negative"), "out of range");
    }

    [Fact]
    public void Overlapping_Offsets_Rejected() =>
        Assert.Equal($"{_dir.File("raw.safetensors")}: tensor 'b' data_offsets [4, 12] overlap tensor 'a' [0, 8]", Rejects(Raw("{" + Entry("a", "F32", "[2]", 0, 8) + "," + Entry("b", "F32", "[2]", 4, 12) + "}", new byte[12]),
            "overlap", "'a'", "'b'"));

    [Fact]
    public void Holes_And_Trailing_Bytes_Rejected()
    {
        // The spec: "The byte buffer needs to be entirely indexed, and cannot contain holes."
        Rejects(Raw("{" + Entry("a", "F32", "[1]", 0, 4) + "," + Entry("b", "F32", "[1]", 8, 12) + "}", new byte[12]),
            "[4, 8)", "holes");
        Rejects(Raw("{" + Entry("a", "F32", "[1]", 0, 4) + "}", new byte[9], name: "trailing"), "9 bytes", "cover 4");
    }

    [Fact]
    public void Unknown_Dtype_Rejected() =>
        Rejects(Raw("{" + Entry("x", "F31", "[1]", 0, 4) + "}", new byte[4]), "unknown dtype \"F31\"", "F32");

    [Fact]
    public void Shape_Byte_Count_Mismatch_Rejected()
    {
        Assert.Equal($"{_dir.File("raw.safetensors")}: tensor 'x': shape [3] of F32 needs 12 bytes, not the 8 bytes of data_offsets [0, 8]",
            Rejects(Raw("{" + Entry("x", "F32", "[3]", 0, 8) + "}", new byte[8]), "[3]", "12 bytes", "8 bytes"));
        // A shape whose product overflows 64 bits.
        Rejects(Raw("{" + Entry("x", "F32", "[2147483647,2147483647,2147483647]", 0, 8) + "}", new byte[8], name: "overflow"),
            "more than 2^63 bytes");
        Rejects(Raw("{" + Entry("x", "F32", "[4294967296]", 0, 8) + "}", new byte[8], name: "bigdim"), "beyond");
    }

    [Fact]
    public void Negative_Dimension_Rejected()
    {
        Rejects(Raw("{" + Entry("x", "F32", "[-1,-2]", 0, 8) + "}", new byte[8]), "negative");
        Assert.Contains("negative", Assert.Throws<ArgumentException>(() => SafeTensor.FromFloat32([-1], [])).Message);
    }

    // ---- atomic saves ------------------------------------------------------------------------------------

    private string Existing(out byte[] original)
    {
        string path = _dir.File("ckpt.safetensors");
        SafeTensors.Save(path, [T("w", F32([2, 3]))], new Dictionary<string, string> { ["epoch"] = "1" });
        original = File.ReadAllBytes(path);
        return path;
    }

    private void Untouched(string path, byte[] original)
    {
        Assert.Equal(original, File.ReadAllBytes(path));
        Assert.Equal([Path.GetFileName(path)], Directory.GetFiles(_dir.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void Save_Replaces_An_Existing_File()
    {
        string path = Existing(out _);
        SafeTensors.Save(path, [T("v", F32([4]))], new Dictionary<string, string> { ["epoch"] = "2" });
        var file = SafeTensors.Load(path);
        Assert.Equal("2", file.Metadata["epoch"]);
        Assert.Equal(["v"], file.Tensors.Keys);
        Assert.Single(Directory.GetFiles(_dir.Path));
    }

    [Fact]
    public void Invalid_Tensors_Fail_Before_Writing()
    {
        string path = Existing(out var original);
        var e = Assert.Throws<ArgumentException>(() => SafeTensors.Save(path, [T("w", SafeTensor.FromFloat32([2, 3], new float[5]))]));
        Assert.Contains("[2, 3]", e.Message);
        Assert.Contains("5", e.Message);
        Assert.Throws<ArgumentException>(() => SafeTensors.Save(path, [T("w", F32([1])), T("w", F32([1]))]));
        Assert.Throws<ArgumentException>(() => SafeTensors.Save(path, [T("__metadata__", F32([1]))]));
        Assert.Throws<ArgumentException>(() => SafeTensors.Save(path, [T("", F32([1]))]));
        Untouched(path, original);
    }

    /// <summary>A stream that fails after <see cref="_budget"/> bytes, as a full disk would.</summary>
    private sealed class FailingStream(Stream inner, long budget) : Stream
    {
        private long _budget = budget;
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (buffer.Length > _budget) throw new IOException("No space left on device (injected)");
            _budget -= buffer.Length;
            inner.Write(buffer);
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(8)]
    [InlineData(100)]
    public void Failure_Mid_Write_Leaves_Existing_File_Untouched(long budget)
    {
        string path = Existing(out var original);
        var e = Assert.Throws<IOException>(() => SafeTensors.Save(path, [T("big", F32([64, 64])), T("b", F32([3]))],
            new Dictionary<string, string> { ["epoch"] = "2" }, wrap: s => new FailingStream(s, budget)));
        Assert.Contains("injected", e.Message);
        Untouched(path, original);
        Assert.Equal("1", SafeTensors.Load(path).Metadata["epoch"]);
    }

    [Fact]
    public void Failure_Without_Existing_File_Leaves_Nothing()
    {
        string path = _dir.File("new.safetensors");
        Assert.Throws<IOException>(() => SafeTensors.Save(path, [T("x", F32([16]))], null, wrap: s => new FailingStream(s, 20)));
        Assert.Empty(Directory.GetFiles(_dir.Path));
    }
}
