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
        WriteSplit(DatasetSplit.Train);
        var e = Assert.Throws<InvalidDataException>(() => FashionMnist.Load(DatasetSplit.Train, Custom with { VerifyChecksums = true }));
        string images = _dir.File("train-images-idx3-ubyte");
        Assert.Contains(images, e.Message);
        Assert.Contains(FashionMnist.Sha256["train-images-idx3-ubyte"], e.Message);
        Assert.Contains(Idx.Sha256Hex(File.ReadAllBytes(images)), e.Message);
    }

    [Fact]
    public void Count_Mismatch_And_Bad_Label_Rejected()
    {
        WriteSplit(DatasetSplit.Train, images: 5, labels: 4);
        var e = Assert.Throws<InvalidDataException>(() => FashionMnist.Load(DatasetSplit.Train, Custom));
        Assert.Contains("5 images", e.Message);
        Assert.Contains("4 labels", e.Message);

        WriteSplit(DatasetSplit.Test, lastLabel: 10);
        e = Assert.Throws<InvalidDataException>(() => FashionMnist.Load(DatasetSplit.Test, Custom));
        Assert.Contains("t10k-labels-idx1-ubyte.gz", e.Message);
        Assert.Contains("= 10", e.Message);
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
