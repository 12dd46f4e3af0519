using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using IlgpuDdw.Data;

namespace IlgpuDdw.Tests;

/// <summary>IDX reading: raw and gzip round trips, and every malformed input rejected with a message naming the file.</summary>
public sealed class IdxTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static byte[] Pixels(int n) => Enumerable.Range(0, n).Select(i => (byte)(i * 7 + 3)).ToArray();

    /// <summary>A raw IDX file with the given magic, dimensions and data (sizes not checked: for malformed files).</summary>
    private string RawFile(string name, int magic, uint[] dims, byte[] data)
    {
        var bytes = new byte[4 + 4 * dims.Length + data.Length];
        BinaryPrimitives.WriteInt32BigEndian(bytes, magic);
        for (int i = 0; i < dims.Length; i++) BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(4 + 4 * i), dims[i]);
        data.CopyTo(bytes, 4 + 4 * dims.Length);
        string path = _dir.File(name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static InvalidDataException Rejects(string path, int magic = Idx.ImagesMagic)
    {
        var e = Assert.Throws<InvalidDataException>(() => Idx.Read(path, magic));
        Assert.Contains(path, e.Message);
        return e;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void RoundTrip_Images_And_Labels(bool gzip)
    {
        string images = _dir.File(gzip ? "img.gz" : "img"), labels = _dir.File(gzip ? "lab.gz" : "lab");
        var pixels = Pixels(3 * 5 * 4);
        Idx.Write(images, [3, 5, 4], pixels, gzip);
        Idx.Write(labels, [3], [2, 0, 9], gzip);
        Assert.Equal(gzip, File.ReadAllBytes(images)[0] == 0x1F);

        var x = Idx.Read(images, Idx.ImagesMagic);
        Assert.Equal([3, 5, 4], x.Dimensions);
        Assert.Equal(3, x.Count);
        Assert.Equal(pixels, x.Data.ToArray());
        Assert.Equal(images, x.Source);
        var y = Idx.Read(labels, Idx.LabelsMagic);
        Assert.Equal([3], y.Dimensions);
        Assert.Equal(new byte[] { 2, 0, 9 }, y.Data.ToArray());
    }

    [Fact]
    public void Gzip_Detected_By_Content_Not_Name()
    {
        // A gzip file without .gz and a raw file named .gz both read correctly.
        string a = _dir.File("a"), b = _dir.File("b.gz");
        Idx.Write(a, [2], [1, 2], gzip: true);
        Idx.Write(b, [2], [3, 4], gzip: false);
        Assert.Equal(new byte[] { 1, 2 }, Idx.Read(a, Idx.LabelsMagic).Data.ToArray());
        Assert.Equal(new byte[] { 3, 4 }, Idx.Read(b, Idx.LabelsMagic).Data.ToArray());
    }

    [Fact]
    public void Sha256_Checked_Against_Decompressed_Bytes()
    {
        string raw = _dir.File("l"), gz = _dir.File("l.gz");
        Idx.Write(raw, [4], [1, 2, 3, 4]);
        Idx.Write(gz, [4], [1, 2, 3, 4], gzip: true);
        string hash = Idx.Sha256Hex(File.ReadAllBytes(raw));
        Assert.Equal(4, Idx.Read(gz, Idx.LabelsMagic, hash).Count);
        Assert.Equal(4, Idx.Read(raw, Idx.LabelsMagic, hash.ToUpperInvariant()).Count);

        string wrong = new('0', 64);
        var e = Assert.Throws<InvalidDataException>(() => Idx.Read(gz, Idx.LabelsMagic, wrong));
        Assert.Contains(gz, e.Message);
        Assert.Contains(hash, e.Message);
        Assert.Contains(wrong, e.Message);
        Assert.Equal($"{gz}: structure is valid but SHA-256 differs from the expected file: expected {wrong}, got {hash}", e.Message);
        Assert.Equal(hash, Idx.Read(gz, Idx.LabelsMagic).Sha256());
    }

    [Fact]
    public void Structure_Checked_Before_Checksum()
    {
        // A flipped magic byte also changes the hash: the message must say what is wrong, not only that the hash differs.
        string path = _dir.File("labels");
        Idx.Write(path, [3], [1, 2, 3]);
        string hash = Idx.Sha256Hex(File.ReadAllBytes(path));
        var bytes = File.ReadAllBytes(path);
        bytes[2] ^= 0x01; // 0x0801 -> 0x0901 (signed bytes)
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<InvalidDataException>(() => Idx.Read(path, Idx.LabelsMagic, hash));
        Assert.Equal($"{path}: wrong magic 0x00000901, expected 0x00000801 (unsigned-byte labels, rank 1): " +
            "this is an IDX file of element type 0x09, rank 1", e.Message);
        Assert.DoesNotContain("SHA-256", e.Message);
        // A dropped last byte: truncated, not a checksum mismatch.
        Idx.Write(path, [3], [1, 2, 3]);
        File.WriteAllBytes(path, File.ReadAllBytes(path)[..^1]);
        e = Assert.Throws<InvalidDataException>(() => Idx.Read(path, Idx.LabelsMagic, hash));
        Assert.Equal($"{path}: truncated file: header says 3 items, file has 10 bytes, expected 11", e.Message);
    }

    [Fact]
    public void Sha256Hex_Known_Vector() =>
        Assert.Equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", Idx.Sha256Hex(Encoding.ASCII.GetBytes("abc")));

    [Fact]
    public void Wrong_Magic_Rejected()
    {
        string labels = _dir.File("labels");
        Idx.Write(labels, [3], [1, 2, 3]);
        var e = Rejects(labels, Idx.ImagesMagic);
        Assert.Contains("0x00000801", e.Message);
        Assert.Contains("0x00000803", e.Message);
        Assert.Equal($"{labels}: wrong magic 0x00000801, expected 0x00000803 (unsigned-byte images, rank 3): " +
            "this is an IDX file of unsigned-byte labels, rank 1 (images and labels files swapped?)", e.Message);
        // Another element type (0x0D = float) with rank 3.
        string floats = RawFile("float", 0x00000D03, [1, 1, 1], new byte[4]);
        Assert.Equal($"{floats}: wrong magic 0x00000D03, expected 0x00000803 (unsigned-byte images, rank 3): " +
            "this is an IDX file of element type 0x0D, rank 3", Rejects(floats).Message);
        // Not an IDX file at all.
        string text = _dir.File("text");
        File.WriteAllText(text, "hello, world");
        Assert.Equal($"{text}: wrong magic 0x68656C6C, expected 0x00000803 (unsigned-byte images, rank 3): " +
            "not an IDX file (nor gzip-compressed)", Rejects(text).Message);
    }

    [Fact]
    public void Not_Gzip_Although_Named_Gz_Rejected()
    {
        string path = _dir.File("train-images-idx3-ubyte.gz");
        File.WriteAllText(path, "<html>404 Not Found</html>");
        Assert.Equal($"{path}: wrong magic 0x3C68746D, expected 0x00000803 (unsigned-byte images, rank 3): " +
            "not an IDX file, and not gzip-compressed although named .gz (no 1F 8B signature)", Rejects(path).Message);
        // Valid gzip around something else.
        string inner = _dir.File("inner.gz");
        using (var gz = new GZipStream(File.Create(inner), CompressionLevel.Fastest))
            gz.Write("hello, world"u8);
        Assert.Equal($"{inner}: wrong magic 0x68656C6C, expected 0x00000803 (unsigned-byte images, rank 3): " +
            "the decompressed data is not an IDX file", Rejects(inner).Message);
    }

    [Fact]
    public void Truncated_Header_Rejected()
    {
        string empty = _dir.File("empty");
        File.WriteAllBytes(empty, []);
        Assert.Contains("too short", Rejects(empty).Message);
        Assert.Equal($"{empty}: truncated file: file has 0 bytes, too short for an IDX header", Rejects(empty).Message);
        string partial = _dir.File("partial");
        File.WriteAllBytes(partial, [0, 0, 8, 3, 0, 0, 0, 2, 0]);
        Assert.Contains("truncated", Rejects(partial).Message);
        Assert.Equal($"{partial}: truncated file: file has 9 bytes, too short for the 16-byte header of a rank-3 IDX file", Rejects(partial).Message);
    }

    [Fact]
    public void Truncated_Data_And_Trailing_Bytes_Rejected()
    {
        string shortFile = RawFile("short", Idx.ImagesMagic, [3, 4, 5], Pixels(59));
        var short_ = Rejects(shortFile);
        Assert.Contains("3 items of 4×5", short_.Message);
        Assert.Contains("truncated", short_.Message);
        Assert.Equal($"{shortFile}: truncated file: header says 3 items of 4×5, file has 75 bytes, expected 76", short_.Message);
        string longFile = RawFile("long", Idx.ImagesMagic, [3, 4, 5], Pixels(61));
        var long_ = Rejects(longFile);
        Assert.Contains("file has 77 bytes, expected 76", long_.Message);
        Assert.Equal($"{longFile}: trailing bytes or corrupt header: header says 3 items of 4×5, file has 77 bytes, expected 76", long_.Message);
        // Thousands separators on real sizes.
        string big = RawFile("big", Idx.ImagesMagic, [60000, 28, 28], Pixels(40000));
        Assert.Equal($"{big}: truncated file: header says 60,000 items of 28×28, file has 40,016 bytes, expected 47,040,016", Rejects(big).Message);
    }

    [Fact]
    public void Absurd_Dimensions_Rejected_Without_Allocating()
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Rejects(RawFile("huge", Idx.ImagesMagic, [int.MaxValue, int.MaxValue, int.MaxValue], Pixels(10)));
        Assert.Contains("truncated file or corrupt header", e.Message);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20, "rejecting a huge header must not allocate from it");
        Assert.Contains("beyond", Rejects(RawFile("over", Idx.ImagesMagic, [0xFFFFFFFF, 1, 1], Pixels(4))).Message);
        // A zero dimension with data present is a mismatch, not an overflow.
        Rejects(RawFile("zero", Idx.ImagesMagic, [0, int.MaxValue, int.MaxValue], Pixels(4)));
    }

    [Fact]
    public void Corrupt_Gzip_Rejected()
    {
        string path = _dir.File("c.gz");
        Idx.Write(path, [50, 20, 20], Pixels(50 * 20 * 20), gzip: true);
        var bytes = File.ReadAllBytes(path);
        for (int i = 20; i < bytes.Length - 8; i += 3) bytes[i] ^= 0x5A;
        File.WriteAllBytes(path, bytes);
        Assert.Equal($"{path}: corrupt gzip stream (bad compressed data or CRC)", Rejects(path).Message);
        // One flipped bit in the CRC trailer.
        Idx.Write(path, [50, 20, 20], Pixels(50 * 20 * 20), gzip: true);
        bytes = File.ReadAllBytes(path);
        bytes[^6] ^= 0x01;
        File.WriteAllBytes(path, bytes);
        Assert.Equal($"{path}: corrupt gzip stream (bad compressed data or CRC)", Rejects(path).Message);
    }

    [Fact]
    public void Truncated_Gzip_Rejected()
    {
        string path = _dir.File("t.gz");
        Idx.Write(path, [50, 20, 20], Pixels(50 * 20 * 20), gzip: true);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        Assert.Matches(@"^.*: truncated file: header says 50 items of 20×20, decompressed file has [0-9,]+ bytes, expected 20,016 " +
            @"\(the gzip stream ends early: truncated \.gz file\)$", Rejects(path).Message);
        // A complete gzip stream around a short IDX file: no gzip hint.
        string inner = _dir.File("inner.gz");
        using (var gz = new GZipStream(File.Create(inner), CompressionLevel.Fastest))
        {
            gz.Write(Idx.Header([50, 20, 20]));
            gz.Write(Pixels(100));
        }
        Assert.Equal($"{inner}: truncated file: header says 50 items of 20×20, decompressed file has 116 bytes, expected 20,016", Rejects(inner).Message);
    }

    [Fact]
    public void Decompression_Bomb_Capped()
    {
        string path = _dir.File("bomb.gz");
        using (var gz = new GZipStream(File.Create(path), CompressionLevel.Optimal))
            gz.Write(new byte[4 << 20]);
        var e = Assert.Throws<InvalidDataException>(() => Idx.ReadAllBytes(path, maxBytes: 1 << 20));
        Assert.Contains(path, e.Message);
        Assert.Contains("limit", e.Message);
        string raw = _dir.File("raw");
        File.WriteAllBytes(raw, new byte[2048]);
        Assert.Contains("limit", Assert.Throws<InvalidDataException>(() => Idx.ReadAllBytes(raw, maxBytes: 1024)).Message);
    }

    [Fact]
    public void Write_Rejects_Mismatched_Dimensions()
    {
        var e = Assert.Throws<ArgumentException>(() => Idx.Write(_dir.File("x"), [2, 3], new byte[5]));
        Assert.Contains("6", e.Message);
        Assert.Contains("5", e.Message);
    }
}
