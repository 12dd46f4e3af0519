namespace IlgpuDdw.Data;

/// <summary>Per-pixel normalisation of 8-bit images: <c>(x / 255 − Mean) / Std</c>.</summary>
/// <param name="Mean">Mean of the pixel values scaled to [0, 1].</param>
/// <param name="Std">Standard deviation of the pixel values scaled to [0, 1]; must be positive.</param>
public readonly record struct Normalization(float Mean, float Std)
{
    /// <summary>No normalisation beyond scaling to [0, 1] (mean 0, std 1).</summary>
    public static Normalization UnitRange => new(0f, 1f);

    /// <summary>The normalised value of the raw pixel <paramref name="pixel"/>.</summary>
    public float Apply(byte pixel) => (pixel / 255f - Mean) / Std;

    internal void Validate()
    {
        if (!float.IsFinite(Mean) || !float.IsFinite(Std) || Std <= 0f)
            throw new ArgumentException($"normalisation mean {Mean} / std {Std}: need finite values and std > 0");
    }
}

/// <summary>
/// An in-memory image classification dataset: float32 images <c>[Count, Channels, Height, Width]</c> (row-major,
/// already normalised) and integer labels in <c>0..ClassCount−1</c>.
/// </summary>
public sealed class ImageDataset
{
    /// <summary>Wraps existing arrays (not copied) after checking their sizes and label range.</summary>
    /// <param name="images">Row-major <c>[count, channels, height, width]</c> pixels.</param>
    /// <param name="labels">One label per image, each in <c>0..classCount−1</c>.</param>
    /// <param name="channels">Channels per image.</param>
    /// <param name="height">Image height.</param>
    /// <param name="width">Image width.</param>
    /// <param name="classCount">Number of classes.</param>
    /// <param name="backgroundValue">The value of a black pixel after normalisation (used as padding by augmentation).</param>
    public ImageDataset(float[] images, int[] labels, int channels, int height, int width, int classCount, float backgroundValue = 0f)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        if (channels <= 0 || height <= 0 || width <= 0 || classCount <= 0)
            throw new ArgumentException($"channels {channels}, height {height}, width {width}, classes {classCount}: all must be positive");
        long sample = (long)channels * height * width;
        if ((long)labels.Length * sample != images.Length)
            throw new ArgumentException(
                $"{labels.Length} labels × {channels}×{height}×{width} = {labels.Length * sample} pixels, but images has {images.Length}");
        int bad = Array.FindIndex(labels, l => (uint)l >= (uint)classCount);
        if (bad >= 0)
            throw new ArgumentException($"label[{bad}] = {labels[bad]} is outside 0..{classCount - 1}", nameof(labels));
        Images = images;
        Labels = labels;
        Channels = channels;
        Height = height;
        Width = width;
        ClassCount = classCount;
        BackgroundValue = backgroundValue;
    }

    /// <summary>
    /// Builds a dataset from IDX arrays: unsigned-byte images <c>[N, H, W]</c> (one channel) and labels <c>[N]</c>,
    /// normalised with <paramref name="normalization"/>.
    /// </summary>
    /// <exception cref="InvalidDataException">Counts differ, or a label is outside <c>0..classCount−1</c> (naming the file).</exception>
    public static ImageDataset FromIdx(IdxArray images, IdxArray labels, int classCount, Normalization normalization)
    {
        normalization.Validate();
        CheckIdx(images, labels, classCount);
        var lut = new float[256];
        for (int v = 0; v < 256; v++) lut[v] = normalization.Apply((byte)v);
        var pixels = images.Data.Span;
        var x = new float[pixels.Length];
        for (int i = 0; i < x.Length; i++) x[i] = lut[pixels[i]];
        var raw = labels.Data.Span;
        var y = new int[raw.Length];
        for (int i = 0; i < y.Length; i++) y[i] = raw[i];
        return new ImageDataset(x, y, 1, images.Dimensions[1], images.Dimensions[2], classCount, lut[0]);
    }

    /// <summary>The checks of <see cref="FromIdx"/>: ranks, equal counts, every label in <c>0..classCount−1</c>.</summary>
    internal static void CheckIdx(IdxArray images, IdxArray labels, int classCount)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        if (images.Dimensions.Length != 3 || labels.Dimensions.Length != 1)
            throw new ArgumentException($"need rank-3 images and rank-1 labels, got ranks {images.Dimensions.Length} and {labels.Dimensions.Length}");
        var ci = CultureInfo.InvariantCulture;
        if (images.Count != labels.Count)
            throw new InvalidDataException(
                $"image/label count mismatch: {images.Source} holds {images.Count.ToString("N0", ci)} images but {labels.Source} holds {labels.Count.ToString("N0", ci)} labels");
        var raw = labels.Data.Span;
        for (int i = 0; i < raw.Length; i++)
            if (raw[i] >= classCount)
                throw new InvalidDataException(
                    $"{labels.Source}: label {raw[i]} at index {i.ToString("N0", ci)} is out of range (classes 0–{classCount - 1})");
    }

    /// <summary>All pixels, row-major <c>[Count, Channels, Height, Width]</c>.</summary>
    public float[] Images { get; }

    /// <summary>The label of each image.</summary>
    public int[] Labels { get; }

    /// <summary>Number of images.</summary>
    public int Count => Labels.Length;

    /// <summary>Channels per image.</summary>
    public int Channels { get; }

    /// <summary>Image height.</summary>
    public int Height { get; }

    /// <summary>Image width.</summary>
    public int Width { get; }

    /// <summary>Number of classes.</summary>
    public int ClassCount { get; }

    /// <summary>The value of a black (raw 0) pixel after normalisation: the padding value of random crops.</summary>
    public float BackgroundValue { get; }

    /// <summary>Floats per image (<c>Channels·Height·Width</c>).</summary>
    public int SampleLength => Channels * Height * Width;

    /// <summary>The dataset's shape <c>[Count, Channels, Height, Width]</c>.</summary>
    public int[] Shape => [Count, Channels, Height, Width];

    /// <summary>The pixels of image <paramref name="index"/>.</summary>
    public ReadOnlySpan<float> Image(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
        return Images.AsSpan(index * SampleLength, SampleLength);
    }

    /// <summary>
    /// The images resized to <paramref name="size"/>² by bilinear interpolation (half-pixel centres, edge pixels
    /// repeated: PyTorch's <c>F.interpolate(mode="bilinear", align_corners=False)</c> without antialiasing), computed on
    /// the host once; labels are shared. Returns this dataset when it already has that size.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="size"/> is below 1.</exception>
    public ImageDataset Resize(int size)
    {
        if (size < 1) throw new ArgumentException($"image size {size}: must be at least 1", nameof(size));
        if (size == Height && size == Width) return this;
        var (y0, y1, wy) = BilinearTaps(Height, size);
        var (x0, x1, wx) = BilinearTaps(Width, size);
        int planes = Count * Channels, inPlane = Height * Width, outPlane = size * size;
        var output = new float[(long)planes * outPlane];
        var input = Images;
        Parallel.For(0, planes, p =>
        {
            int src = p * inPlane, dst = p * outPlane;
            for (int y = 0; y < size; y++)
            {
                int r0 = src + y0[y] * Width, r1 = src + y1[y] * Width;
                float fy = wy[y];
                for (int x = 0; x < size; x++)
                {
                    float top = input[r0 + x0[x]] + wx[x] * (input[r0 + x1[x]] - input[r0 + x0[x]]);
                    float bottom = input[r1 + x0[x]] + wx[x] * (input[r1 + x1[x]] - input[r1 + x0[x]]);
                    output[dst + y * size + x] = top + fy * (bottom - top);
                }
            }
        });
        return new ImageDataset(output, Labels, Channels, size, size, ClassCount, BackgroundValue);
    }

    /// <summary>For each output index: the two input indices and the weight of the second (align_corners = false).</summary>
    private static (int[] Lo, int[] Hi, float[] Weight) BilinearTaps(int inSize, int outSize)
    {
        var lo = new int[outSize];
        var hi = new int[outSize];
        var w = new float[outSize];
        double scale = (double)inSize / outSize;
        for (int o = 0; o < outSize; o++)
        {
            double src = Math.Max(0, (o + 0.5) * scale - 0.5);
            int i = Math.Min((int)src, inSize - 1);
            lo[o] = i;
            hi[o] = Math.Min(i + 1, inSize - 1);
            w[o] = (float)(src - i);
        }
        return (lo, hi, w);
    }

    /// <summary>A copy of the first <paramref name="count"/> images and labels (for small runs).</summary>
    /// <exception cref="ArgumentOutOfRangeException">A negative count, or more images than the dataset holds
    /// (never silently capped; the message gives both numbers).</exception>
    public ImageDataset Subset(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (count > Count)
            throw new ArgumentOutOfRangeException(nameof(count),
                $"requested {count.ToString("N0", CultureInfo.InvariantCulture)} images but the dataset holds {Count.ToString("N0", CultureInfo.InvariantCulture)}");
        return new ImageDataset(Images.AsSpan(0, count * SampleLength).ToArray(), Labels.AsSpan(0, count).ToArray(),
            Channels, Height, Width, ClassCount, BackgroundValue);
    }

    /// <summary>Number of images of each class.</summary>
    public int[] ClassHistogram()
    {
        var h = new int[ClassCount];
        foreach (int l in Labels) h[l]++;
        return h;
    }
}
