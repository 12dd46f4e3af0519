namespace IlgpuDdw.Data;

/// <summary>A dataset split.</summary>
public enum DatasetSplit
{
    /// <summary>The training split (Fashion-MNIST: 60,000 images).</summary>
    Train,

    /// <summary>The test split (Fashion-MNIST: 10,000 images, files prefixed <c>t10k</c>).</summary>
    Test,
}

/// <summary>Options of <see cref="FashionMnist.Load"/>.</summary>
public sealed record FashionMnistOptions
{
    /// <summary>Directory holding the IDX files; null means <see cref="FashionMnist.DefaultDirectory"/>.</summary>
    public string? Directory { get; init; }

    /// <summary>
    /// Check that the files are the published ones (default): first their structure (28×28 images, 60,000 or
    /// 10,000 items), then the SHA-256 of each decompressed file against <see cref="FashionMnist.Sha256"/>. Turn
    /// off only to load custom data in the Fashion-MNIST layout (any image size and count).
    /// </summary>
    public bool VerifyChecksums { get; init; } = true;

    /// <summary>
    /// Keep only the first <c>Count</c> images and labels of the split; null keeps all. More than the split holds
    /// is an <see cref="ArgumentException"/> naming both numbers, never a silent cap.
    /// </summary>
    public int? Count { get; init; }

    /// <summary>Pixel normalisation; default <see cref="FashionMnist.Normalization"/>.</summary>
    public Normalization Normalization { get; init; } = FashionMnist.Normalization;
}

/// <summary>
/// Loader of Fashion-MNIST (Xiao et al. 2017; 28×28 grey images, 10 classes) from the four standard IDX files,
/// raw or gzip-compressed, by default from the Debian package <c>dataset-fashion-mnist</c>.
/// </summary>
public static class FashionMnist
{
    /// <summary>Where <c>apt-get install -y dataset-fashion-mnist</c> puts the gzipped IDX files.</summary>
    public const string DefaultDirectory = "/usr/share/datasets/fashion-mnist";

    /// <summary>The command that installs the data.</summary>
    public const string InstallCommand = "apt-get install -y dataset-fashion-mnist";

    /// <summary>Number of classes.</summary>
    public const int ClassCount = 10;

    /// <summary>Height and width of the images.</summary>
    public const int ImageSize = 28;

    /// <summary>Mean 0.2860 and standard deviation 0.3530 of the training pixels scaled to [0, 1].</summary>
    public static Normalization Normalization => new(0.2860f, 0.3530f);

    /// <summary>The class names, by label.</summary>
    public static IReadOnlyList<string> ClassNames { get; } =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>
    /// SHA-256 (lower-case hex) of each DECOMPRESSED file, by base name (the gzip wrappers differ between
    /// distributions, the IDX bytes do not).
    /// </summary>
    public static IReadOnlyDictionary<string, string> Sha256 { get; } = new Dictionary<string, string>
    {
        ["train-images-idx3-ubyte"] = "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        ["train-labels-idx1-ubyte"] = "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        ["t10k-images-idx3-ubyte"] = "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        ["t10k-labels-idx1-ubyte"] = "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    };

    /// <summary>Base name of the images file of <paramref name="split"/> (a <c>.gz</c> suffix is also accepted on disk).</summary>
    public static string ImagesFileName(DatasetSplit split) => $"{Prefix(split)}-images-idx3-ubyte";

    /// <summary>Base name of the labels file of <paramref name="split"/> (a <c>.gz</c> suffix is also accepted on disk).</summary>
    public static string LabelsFileName(DatasetSplit split) => $"{Prefix(split)}-labels-idx1-ubyte";

    /// <summary>
    /// Loads one split: images normalised to float32 <c>[N, 1, 28, 28]</c>, labels 0..9. The files' structure is
    /// checked first (magic, header against file size, image/label counts, label range and, when verifying, the
    /// published dimensions and counts); the checksums come last, so an error says what is wrong.
    /// </summary>
    /// <param name="split">Train or test.</param>
    /// <param name="options">Directory, checksum verification, count and normalisation; null for the defaults.</param>
    /// <exception cref="FileNotFoundException">A file is missing; the message names the directory searched, the
    /// install command and the <c>--data DIR</c> option.</exception>
    /// <exception cref="InvalidDataException">A file is corrupt, malformed or fails its checksum.</exception>
    /// <exception cref="ArgumentException"><see cref="FashionMnistOptions.Count"/> is negative or more than the split holds.</exception>
    public static ImageDataset Load(DatasetSplit split, FashionMnistOptions? options = null)
    {
        options ??= new FashionMnistOptions();
        if (options.Count is < 0)
            throw new ArgumentException($"count {options.Count} must be >= 0 (null = all)", nameof(options));
        string directory = options.Directory ?? DefaultDirectory;
        string imagesPath = Locate(directory, ImagesFileName(split));
        string labelsPath = Locate(directory, LabelsFileName(split));
        var images = Idx.Read(imagesPath, Idx.ImagesMagic);
        var labels = Idx.Read(labelsPath, Idx.LabelsMagic);
        if (options.VerifyChecksums && (images.Dimensions[1] != ImageSize || images.Dimensions[2] != ImageSize))
            throw new InvalidDataException(
                $"{imagesPath}: wrong dimensions {images.Dimensions[1]}×{images.Dimensions[2]}, expected {ImageSize}×{ImageSize} (Fashion-MNIST images)");
        ImageDataset.CheckIdx(images, labels, ClassCount);
        if (options.VerifyChecksums)
        {
            int published = split == DatasetSplit.Train ? 60_000 : 10_000;
            if (images.Count != published)
                throw new InvalidDataException(
                    $"{imagesPath}: header says {N(images.Count)} images, the published Fashion-MNIST {Name(split)} split has {N(published)}");
            Idx.CheckSha256(images, Sha256[ImagesFileName(split)], $"the published Fashion-MNIST file {ImagesFileName(split)}");
            Idx.CheckSha256(labels, Sha256[LabelsFileName(split)], $"the published Fashion-MNIST file {LabelsFileName(split)}");
        }
        if (options.Count is int n)
        {
            if (n > images.Count)
                throw new ArgumentException(
                    $"requested {N(n)} images but the {Name(split)} split ({imagesPath}) holds {N(images.Count)}", nameof(options));
            images = images with { Dimensions = [n, .. images.Dimensions[1..]], Data = images.Data[..(n * images.Dimensions[1] * images.Dimensions[2])] };
            labels = labels with { Dimensions = [n], Data = labels.Data[..n] };
        }
        return ImageDataset.FromIdx(images, labels, ClassCount, options.Normalization);
    }

    /// <summary>
    /// The path of <paramref name="baseName"/> in <paramref name="directory"/>: the raw file if present, else
    /// <c>baseName.gz</c>.
    /// </summary>
    /// <exception cref="FileNotFoundException">Neither exists (the message says how to get the data).</exception>
    public static string Locate(string directory, string baseName)
    {
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentNullException.ThrowIfNull(baseName);
        string raw = Path.Combine(directory, baseName);
        if (File.Exists(raw)) return raw;
        if (File.Exists(raw + ".gz")) return raw + ".gz";
        string where = Directory.Exists(directory) ? $"in directory '{directory}'" : $"directory '{directory}' does not exist";
        throw new FileNotFoundException(
            $"Fashion-MNIST file '{baseName}' (or '{baseName}.gz') not found: {where}. Install the data with " +
            $"`sudo {InstallCommand}` (it goes to {DefaultDirectory}) or pass `--data DIR` with a directory holding " +
            $"the four IDX files ({string.Join(", ", Sha256.Keys)}, raw or .gz).", raw);
    }

    private static string N(int value) => value.ToString("N0", CultureInfo.InvariantCulture);

    private static string Name(DatasetSplit split) => split == DatasetSplit.Train ? "train" : "test";

    private static string Prefix(DatasetSplit split) => split switch
    {
        DatasetSplit.Train => "train",
        DatasetSplit.Test => "t10k",
        _ => throw new ArgumentOutOfRangeException(nameof(split), split, "unknown split"),
    };
}
