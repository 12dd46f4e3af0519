using System.Diagnostics;
using IlgpuDdw.Data;
using Xunit.Abstractions;

namespace IlgpuDdw.Tests;

/// <summary>Fashion-MNIST loading: synthetic directories for every error path, and the real data set.</summary>
public sealed class FashionMnistTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private const int N = 5, H = 4, W = 3;

    private static byte[] Pixels(int n) => Enumerable.Range(0, n).Select(i => (byte)(i * 11 % 256)).ToArray();

    /// <summary>Writes a small synthetic split (images raw, labels gzipped, to cover both); labels 3i mod 10.</summary>
    private void WriteSplit(DatasetSplit split, int images = N, int labels = N, byte? lastLabel = null)
    {
        Idx.Write(_dir.File(FashionMnist.ImagesFileName(split)), [images, H, W], Pixels(images * H * W));
        Idx.Write(_dir.File(FashionMnist.LabelsFileName(split) + ".gz"), [labels],
            Enumerable.Range(0, labels).Select(i => i == labels - 1 && lastLabel is { } l ? l : (byte)(i * 3 % 10)).ToArray(), gzip: true);
    }

    private FashionMnistOptions Custom => new() { Directory = _dir.Path, VerifyChecksums = false };

    [Fact]
    public void Missing_Data_Names_Install_Command_Option_And_Directory()
    {
        string missing = Path.Combine(_dir.Path, "nowhere");
        var e = Assert.Throws<FileNotFoundException>(() => FashionMnist.Load(DatasetSplit.Train, new() { Directory = missing }));
        Assert.Contains("apt-get install -y dataset-fashion-mnist", e.Message);
        Assert.Contains("--data DIR", e.Message);
        Assert.Contains(missing, e.Message);
        Assert.Contains("train-images-idx3-ubyte", e.Message);

        // Directory present, labels missing.
        Idx.Write(_dir.File("t10k-images-idx3-ubyte.gz"), [1, 1, 1], [0], gzip: true);
        e = Assert.Throws<FileNotFoundException>(() => FashionMnist.Load(DatasetSplit.Test, Custom));
        Assert.Contains("t10k-labels-idx1-ubyte", e.Message);
        Assert.Contains(_dir.Path, e.Message);
    }

    [Fact]
    public void Locate_Prefers_Raw_And_Accepts_Gz()
    {
        string name = "train-labels-idx1-ubyte";
        File.WriteAllBytes(_dir.File(name + ".gz"), []);
        Assert.Equal(_dir.File(name + ".gz"), FashionMnist.Locate(_dir.Path, name));
        File.WriteAllBytes(_dir.File(name), []);
        Assert.Equal(_dir.File(name), FashionMnist.Locate(_dir.Path, name));
    }

    [Fact]
    public void Synthetic_Split_Loads_Normalised()
    {
        WriteSplit(DatasetSplit.Test);
        var ds = FashionMnist.Load(DatasetSplit.Test, Custom);
        Assert.Equal([N, 1, H, W], ds.Shape);
        Assert.Equal(10, ds.ClassCount);
        var pixels = Pixels(N * H * W);
        for (int i = 0; i < pixels.Length; i++)
            Assert.Equal((pixels[i] / 255f - 0.2860f) / 0.3530f, ds.Images[i], 6);
        Assert.Equal([0, 3, 6, 9, 2], ds.Labels);
        Assert.Equal(-0.2860f / 0.3530f, ds.BackgroundValue, 6);

        var plain = FashionMnist.Load(DatasetSplit.Test, Custom with { Normalization = Normalization.UnitRange });
        Assert.Equal(pixels.Select(p => p / 255f), plain.Images);
        Assert.Equal(0f, plain.BackgroundValue);
    }

    [Fact]
    public void Checksums_Verified_By_Default()
    {
        // Structurally a published test split (10,000 images of 28×28), but not its bytes.
        const int n = 10_000, size = 28 * 28;
        string images = _dir.File("t10k-images-idx3-ubyte"), labels = _dir.File("t10k-labels-idx1-ubyte");
        Idx.Write(images, [n, 28, 28], Pixels(n * size));
        Idx.Write(labels, [n], Enumerable.Range(0, n).Select(i => (byte)(i % 10)).ToArray());
        var e = Assert.Throws<InvalidDataException>(() => FashionMnist.Load(DatasetSplit.Test, Custom with { VerifyChecksums = true }));
        Assert.Contains(images, e.Message);
        Assert.Contains(FashionMnist.Sha256["t10k-images-idx3-ubyte"], e.Message);
        Assert.Contains(Idx.Sha256Hex(File.ReadAllBytes(images)), e.Message);
        Assert.Equal($"{images}: structure is valid but SHA-256 differs from the published Fashion-MNIST file t10k-images-idx3-ubyte: " +
            $"expected {FashionMnist.Sha256["t10k-images-idx3-ubyte"]}, got {Idx.Sha256Hex(File.ReadAllBytes(images))}", e.Message);
        Assert.Equal(n, FashionMnist.Load(DatasetSplit.Test, Custom).Count);
    }

    [Fact]
    public void Count_Mismatch_And_Bad_Label_Rejected()
    {
        WriteSplit(DatasetSplit.Train, images: 5, labels: 4);
        var e = Assert.Throws<InvalidDataException>(() => FashionMnist.Load(DatasetSplit.Train, Custom));
        Assert.Contains("5 images", e.Message);
        Assert.Contains("4 labels", e.Message);
        Assert.Equal($"image/label count mismatch: {_dir.File("train-images-idx3-ubyte")} holds 5 images but " +
            $"{_dir.File("train-labels-idx1-ubyte.gz")} holds 4 labels", e.Message);

        WriteSplit(DatasetSplit.Test, lastLabel: 10);
        e = Assert.Throws<InvalidDataException>(() => FashionMnist.Load(DatasetSplit.Test, Custom));
        Assert.Contains("t10k-labels-idx1-ubyte.gz", e.Message);
        Assert.Contains("label 10 at index 4", e.Message);
        Assert.Equal($"{_dir.File("t10k-labels-idx1-ubyte.gz")}: label 10 at index 4 is out of range (classes 0–9)", e.Message);

        WriteSplit(DatasetSplit.Test, images: 3500, labels: 3500);
        Idx.Write(_dir.File("t10k-labels-idx1-ubyte.gz"), [3500],
            Enumerable.Range(0, 3500).Select(i => i == 3452 ? (byte)11 : (byte)(i % 10)).ToArray(), gzip: true);
        Assert.Equal($"{_dir.File("t10k-labels-idx1-ubyte.gz")}: label 11 at index 3,452 is out of range (classes 0–9)",
            Assert.Throws<InvalidDataException>(() => FashionMnist.Load(DatasetSplit.Test, Custom)).Message);
    }

    [Fact]
    public void Published_Dimensions_And_Counts_Checked_Before_Checksums()
    {
        string images = _dir.File("t10k-images-idx3-ubyte");
        Idx.Write(images, [5, 32, 32], Pixels(5 * 32 * 32));
        Idx.Write(_dir.File("t10k-labels-idx1-ubyte"), [5], [0, 1, 2, 3, 4]);
        var verified = Custom with { VerifyChecksums = true };
        Assert.Equal($"{images}: wrong dimensions 32×32, expected 28×28 (Fashion-MNIST images)",
            Assert.Throws<InvalidDataException>(() => FashionMnist.Load(DatasetSplit.Test, verified)).Message);
        Assert.Equal(32, FashionMnist.Load(DatasetSplit.Test, Custom).Height); // custom data: any size

        Idx.Write(images, [5, 28, 28], Pixels(5 * 28 * 28));
        Assert.Equal($"{images}: header says 5 images, the published Fashion-MNIST test split has 10,000",
            Assert.Throws<InvalidDataException>(() => FashionMnist.Load(DatasetSplit.Test, verified)).Message);

        // The pair and label checks also come before the checksums.
        Idx.Write(_dir.File("t10k-labels-idx1-ubyte"), [5], [0, 1, 2, 3, 12]);
        Assert.Contains("label 12 at index 4 is out of range",
            Assert.Throws<InvalidDataException>(() => FashionMnist.Load(DatasetSplit.Test, verified)).Message);
    }

    /// <summary>Copies the real test split into the temp directory as raw IDX files, each changed by its edit.</summary>
    private (string Images, string Labels) CorruptedRealSplit(Func<byte[], byte[]>? images = null, Func<byte[], byte[]>? labels = null)
    {
        string i = _dir.File("t10k-images-idx3-ubyte"), l = _dir.File("t10k-labels-idx1-ubyte");
        var raw = Idx.ReadAllBytes(Path.Combine(FashionMnist.DefaultDirectory, "t10k-images-idx3-ubyte.gz"));
        File.WriteAllBytes(i, images?.Invoke(raw) ?? raw);
        raw = Idx.ReadAllBytes(Path.Combine(FashionMnist.DefaultDirectory, "t10k-labels-idx1-ubyte.gz"));
        File.WriteAllBytes(l, labels?.Invoke(raw) ?? raw);
        return (i, l);
    }

    private static byte[] Flip(byte[] bytes, int index, byte mask)
    {
        bytes[index] ^= mask;
        return bytes;
    }

    private string LoadFails() =>
        Assert.Throws<InvalidDataException>(() => FashionMnist.Load(DatasetSplit.Test, new() { Directory = _dir.Path })).Message;

    [Fact]
    public void Corrupted_Real_Files_Say_What_Is_Wrong()
    {
        // Flipped magic byte: the checksum also fails, but the message names the magic.
        var (images, labels) = CorruptedRealSplit(images: b => Flip(b, 3, 0x02));
        Assert.Equal($"{images}: wrong magic 0x00000801, expected 0x00000803 (unsigned-byte images, rank 3): " +
            "this is an IDX file of unsigned-byte labels, rank 1 (images and labels files swapped?)", LoadFails());

        // Cut at the end (an interrupted download).
        CorruptedRealSplit(images: b => b[..^1000]);
        Assert.Equal($"{images}: truncated file: header says 10,000 items of 28×28, file has 7,839,016 bytes, expected 7,840,016", LoadFails());

        // Images and labels of different splits.
        CorruptedRealSplit(labels: _ => Idx.ReadAllBytes(Path.Combine(FashionMnist.DefaultDirectory, "train-labels-idx1-ubyte.gz")));
        Assert.Equal($"image/label count mismatch: {images} holds 10,000 images but {labels} holds 60,000 labels", LoadFails());

        // A label byte beyond the classes.
        CorruptedRealSplit(labels: b => { b[8 + 3452] = 11; return b; });
        Assert.Equal($"{labels}: label 11 at index 3,452 is out of range (classes 0–9)", LoadFails());

        // One flipped pixel bit: structure intact, so the checksum has the last word.
        CorruptedRealSplit(images: b => Flip(b, 16 + 12345, 0x10));
        string message = LoadFails();
        Assert.StartsWith($"{images}: structure is valid but SHA-256 differs from the published Fashion-MNIST file t10k-images-idx3-ubyte: " +
            $"expected {FashionMnist.Sha256["t10k-images-idx3-ubyte"]}, got ", message);
        Assert.Equal(Idx.Sha256Hex(File.ReadAllBytes(images)), message[^64..]);

        // The intact copy loads.
        CorruptedRealSplit();
        Assert.Equal(10_000, FashionMnist.Load(DatasetSplit.Test, new() { Directory = _dir.Path }).Count);
    }

    [Fact]
    public void Count_Option_Takes_First_And_Rejects_More_Than_The_Split()
    {
        WriteSplit(DatasetSplit.Test);
        var ds = FashionMnist.Load(DatasetSplit.Test, Custom with { Count = 2 });
        Assert.Equal([2, 1, H, W], ds.Shape);
        Assert.Equal([0, 3], ds.Labels);
        Assert.Equal(FashionMnist.Load(DatasetSplit.Test, Custom).Images[..(2 * H * W)], ds.Images);
        Assert.Equal(N, FashionMnist.Load(DatasetSplit.Test, Custom with { Count = N }).Count);
        var e = Assert.Throws<ArgumentException>(() => FashionMnist.Load(DatasetSplit.Test, Custom with { Count = 100_000 }));
        Assert.Equal($"requested 100,000 images but the test split ({_dir.File("t10k-images-idx3-ubyte")}) holds 5 (Parameter 'options')", e.Message);
        Assert.Throws<ArgumentException>(() => FashionMnist.Load(DatasetSplit.Test, Custom with { Count = -1 }));
    }

    [Fact]
    public void Bad_Normalization_Rejected() =>
        Assert.Contains("std 0", Assert.Throws<ArgumentException>(() =>
        {
            WriteSplit(DatasetSplit.Test);
            FashionMnist.Load(DatasetSplit.Test, Custom with { Normalization = new(0.5f, 0f) });
        }).Message);

    [Fact]
    public void Subset_Takes_First_And_Copies()
    {
        WriteSplit(DatasetSplit.Test);
        var ds = FashionMnist.Load(DatasetSplit.Test, Custom);
        var sub = ds.Subset(2);
        Assert.Equal([2, 1, H, W], sub.Shape);
        Assert.Equal(ds.Images[..(2 * H * W)], sub.Images);
        Assert.Equal([0, 3], sub.Labels);
        sub.Images[0] = 42f;
        Assert.NotEqual(42f, ds.Images[0]);
        Assert.Equal(ds.Image(1).ToArray(), sub.Image(1).ToArray());
        Assert.Throws<ArgumentOutOfRangeException>(() => ds.Subset(N + 1));
        Assert.Equal("requested 100,000 images but the dataset holds 5 (Parameter 'count')",
            Assert.Throws<ArgumentOutOfRangeException>(() => ds.Subset(100_000)).Message);
        Assert.Equal(N, ds.Subset(N).Count);
        Assert.Equal(0, ds.Subset(0).Count);
    }

    /// <summary>
    /// The real data set from the Debian package (CI installs it). A missing directory fails this test with the
    /// install hint: it is never skipped.
    /// </summary>
    [Fact]
    public void Real_FashionMnist_Loads_With_Verified_Checksums()
    {
        var sw = Stopwatch.StartNew();
        ImageDataset train = null!, test = null!;
        Parallel.Invoke(() => train = FashionMnist.Load(DatasetSplit.Train), () => test = FashionMnist.Load(DatasetSplit.Test));
        output.WriteLine($"loaded train + test (checksums verified) in {sw.ElapsedMilliseconds} ms");

        Assert.Equal([60000, 1, 28, 28], train.Shape);
        Assert.Equal([10000, 1, 28, 28], test.Shape);
        Assert.All(train.ClassHistogram(), c => Assert.Equal(6000, c));
        Assert.All(test.ClassHistogram(), c => Assert.Equal(1000, c));

        // The normalisation constants are the training set's statistics: normalised mean ≈ 0, std ≈ 1.
        double sum = 0, sumSq = 0;
        foreach (float v in train.Images) { sum += v; sumSq += (double)v * v; }
        double mean = sum / train.Images.Length, std = Math.Sqrt(sumSq / train.Images.Length - mean * mean);
        output.WriteLine($"normalised train mean {mean:F5}, std {std:F5}");
        Assert.InRange(mean, -2e-3, 2e-3);
        Assert.InRange(std, 0.998, 1.002);
    }
}
