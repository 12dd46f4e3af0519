using System.Threading.Channels;

namespace IlgpuDdw.Data;

/// <summary>
/// Training-time augmentation, applied per image in this order (as torchvision's
/// <c>RandomCrop(size, padding)</c> then <c>RandomHorizontalFlip()</c>): a random crop of the image padded by
/// <see cref="CropPadding"/> black pixels on each side (the image keeps its size: a uniform shift by
/// −p..p in each direction, exposed borders filled with <see cref="ImageDataset.BackgroundValue"/>), then a
/// horizontal mirror with probability 1/2.
/// </summary>
public sealed record Augmentation
{
    /// <summary>Padding p of the random crop (0 disables it); 2 suits 28×28 images.</summary>
    public int CropPadding { get; init; } = 2;

    /// <summary>Mirror left-right with probability 1/2.</summary>
    public bool HorizontalFlip { get; init; } = true;
}

/// <summary>Options of a <see cref="BatchLoader"/>.</summary>
public sealed record BatchLoaderOptions
{
    /// <summary>Images per batch.</summary>
    public int BatchSize { get; init; } = 64;

    /// <summary>Reshuffle every epoch (seeded); false keeps the dataset order.</summary>
    public bool Shuffle { get; init; } = true;

    /// <summary>Seed of shuffling and augmentation; epoch e uses <see cref="BatchLoader.EpochSeed"/>(Seed, e).</summary>
    public int Seed { get; init; }

    /// <summary>Drop the last batch when it is smaller than <see cref="BatchSize"/>.</summary>
    public bool DropLast { get; init; }

    /// <summary>Augmentation, or null for none (evaluation).</summary>
    public Augmentation? Augmentation { get; init; }

    /// <summary>
    /// Batches prepared ahead by a background task (bounded channel capacity; default 2). 0 prepares each batch
    /// on the consumer's thread when it is asked for.
    /// </summary>
    public int Prefetch { get; init; } = 2;

    /// <summary>
    /// Data-parallel sharding: this loader yields part <see cref="ShardIndex"/> of <see cref="ShardCount"/> of every
    /// batch (a contiguous block of the global batch of <see cref="BatchSize"/>; block sizes differ by at most one),
    /// so the ranks together visit exactly the batches, order and augmentation of one loader. Default 1: the whole batch.
    /// </summary>
    public int ShardCount { get; init; } = 1;

    /// <summary>This loader's part of every batch, 0 ≤ ShardIndex &lt; <see cref="ShardCount"/>.</summary>
    public int ShardIndex { get; init; }
}

/// <summary>
/// One host batch: images <c>[Count, C, H, W]</c> and labels, owned by the consumer (never reused by the loader).
/// </summary>
/// <param name="Epoch">The epoch it belongs to.</param>
/// <param name="Index">Its position in the epoch (0-based).</param>
/// <param name="Indices">The dataset index of each image.</param>
/// <param name="Images">Row-major pixels <c>[Count, C, H, W]</c>, augmented if the loader augments.</param>
/// <param name="Labels">The labels.</param>
/// <param name="Shape">The image shape <c>[Count, C, H, W]</c>.</param>
public sealed record Batch(int Epoch, int Index, int[] Indices, float[] Images, int[] Labels, int[] Shape)
{
    /// <summary>Number of images.</summary>
    public int Count => Labels.Length;
}

/// <summary>
/// Cuts an <see cref="ImageDataset"/> into batches: a seeded permutation per epoch, optional seeded augmentation,
/// optional drop-last, and a background producer that prepares the next batches while the consumer computes on
/// the current one. Every batch is a pure function of (seed, epoch, batch index): the output does not depend on
/// timing or prefetch depth, and an epoch can be resumed at any batch.
/// </summary>
public sealed class BatchLoader : IDisposable
{
    private sealed record CachedOrder(int Epoch, int[] Order);

    private readonly CancellationTokenSource _disposed = new();
    private volatile CachedOrder? _lastOrder; // replaced whole, so readers on any thread see a consistent pair

    /// <summary>Creates a loader over <paramref name="dataset"/>.</summary>
    /// <exception cref="ArgumentException">A non-positive batch size, negative prefetch or negative crop padding.</exception>
    public BatchLoader(ImageDataset dataset, BatchLoaderOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        options ??= new BatchLoaderOptions();
        if (options.BatchSize <= 0)
            throw new ArgumentException($"batch size {options.BatchSize} must be positive", nameof(options));
        if (options.Prefetch < 0)
            throw new ArgumentException($"prefetch {options.Prefetch} must be >= 0", nameof(options));
        if (options.ShardCount < 1 || options.ShardIndex < 0 || options.ShardIndex >= options.ShardCount)
            throw new ArgumentException($"shard {options.ShardIndex} of {options.ShardCount} is not a valid shard", nameof(options));
        if (options.Augmentation is { CropPadding: < 0 } a)
            throw new ArgumentException($"crop padding {a.CropPadding} must be >= 0", nameof(options));
        Dataset = dataset;
        Options = options;
        BatchesPerEpoch = options.DropLast
            ? dataset.Count / options.BatchSize
            : (dataset.Count + options.BatchSize - 1) / options.BatchSize;
    }

    /// <summary>The dataset.</summary>
    public ImageDataset Dataset { get; }

    /// <summary>The options.</summary>
    public BatchLoaderOptions Options { get; }

    /// <summary>Batches per epoch (after drop-last).</summary>
    public int BatchesPerEpoch { get; }

    /// <summary>The seed of epoch <paramref name="epoch"/>: a 64-bit mix of the loader seed and the epoch.</summary>
    public static ulong EpochSeed(int seed, int epoch) =>
        SplitMix64.Mix(SplitMix64.Mix((ulong)(uint)seed) ^ ((ulong)(uint)epoch * 0x9E3779B97F4A7C15UL + 1));

    /// <summary>The dataset indices in the order epoch <paramref name="epoch"/> visits them (a copy).</summary>
    public int[] Order(int epoch)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        return (int[])OrderOf(epoch).Clone();
    }

    private int[] OrderOf(int epoch)
    {
        if (_lastOrder is { } cached && cached.Epoch == epoch) return cached.Order;
        var order = new int[Dataset.Count];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        if (Options.Shuffle)
        {
            var rng = new SplitMix64(EpochSeed(Options.Seed, epoch));
            for (int i = order.Length - 1; i > 0; i--)
            {
                int j = rng.NextInt(i + 1);
                (order[i], order[j]) = (order[j], order[i]);
            }
        }
        _lastOrder = new CachedOrder(epoch, order);
        return order;
    }

    /// <summary>Prepares batch <paramref name="index"/> of epoch <paramref name="epoch"/> on the calling thread.</summary>
    public Batch GetBatch(int epoch, int index)
    {
        ObjectDisposedException.ThrowIf(_disposed.IsCancellationRequested, this);
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        if ((uint)index >= (uint)BatchesPerEpoch)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"must be in 0..{BatchesPerEpoch - 1}");
        return Build(OrderOf(epoch), epoch, index);
    }

    /// <summary>
    /// The batches of epoch <paramref name="epoch"/> from batch <paramref name="startBatch"/> on (to resume an
    /// interrupted epoch). With <see cref="BatchLoaderOptions.Prefetch"/> &gt; 0 a background task prepares up to
    /// that many batches ahead; ending the enumeration early (break, disposing the enumerator, cancellation,
    /// disposing the loader) stops it, so consume with <c>foreach</c> or dispose the enumerator. An exception in the
    /// producer surfaces in the consumer.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired or the loader was disposed.</exception>
    public IEnumerable<Batch> Epoch(int epoch, int startBatch = 0, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed.IsCancellationRequested, this);
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        if (startBatch < 0 || startBatch > BatchesPerEpoch)
            throw new ArgumentOutOfRangeException(nameof(startBatch), startBatch, $"must be in 0..{BatchesPerEpoch}");
        return Options.Prefetch == 0
            ? Synchronous(epoch, startBatch, cancellationToken)
            : Prefetched(epoch, startBatch, cancellationToken);
    }

    /// <summary>Stops every running producer; later calls throw <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        if (!_disposed.IsCancellationRequested) _disposed.Cancel();
    }

    private IEnumerable<Batch> Synchronous(int epoch, int startBatch, CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _disposed.Token);
        var order = OrderOf(epoch);
        for (int b = startBatch; b < BatchesPerEpoch; b++)
        {
            linked.Token.ThrowIfCancellationRequested();
            yield return Build(order, epoch, b);
        }
    }

    private IEnumerable<Batch> Prefetched(int epoch, int startBatch, CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _disposed.Token);
        var channel = Channel.CreateBounded<Batch>(new BoundedChannelOptions(Options.Prefetch)
        {
            SingleReader = true,
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        var token = linked.Token;
        var producer = Task.Run(async () =>
        {
            try
            {
                var order = OrderOf(epoch);
                for (int b = startBatch; b < BatchesPerEpoch; b++)
                    await channel.Writer.WriteAsync(Build(order, epoch, b), token).ConfigureAwait(false);
                channel.Writer.Complete();
            }
            catch (Exception e)
            {
                channel.Writer.TryComplete(e);
            }
        }, CancellationToken.None);
        try
        {
            var reader = channel.Reader;
            while (true)
            {
                token.ThrowIfCancellationRequested();
                if (reader.TryRead(out var batch))
                {
                    yield return batch;
                    continue;
                }
                // Completion with an exception (producer failure or cancellation) rethrows it here.
                if (!reader.WaitToReadAsync(token).AsTask().GetAwaiter().GetResult()) yield break;
            }
        }
        finally
        {
            linked.Cancel();
            producer.GetAwaiter().GetResult(); // never faults: the producer catches everything
        }
    }

    private Batch Build(int[] order, int epoch, int index)
    {
        var ds = Dataset;
        int start = index * Options.BatchSize;
        int count = Math.Min(Options.BatchSize, ds.Count - start);
        if (Options.ShardCount > 1)
        {
            int q = count / Options.ShardCount, r = count % Options.ShardCount, k = Options.ShardIndex;
            start += k * q + Math.Min(k, r);
            count = q + (k < r ? 1 : 0);
        }
        int sample = ds.SampleLength;
        var indices = order.AsSpan(start, count).ToArray();
        var images = new float[count * sample];
        var labels = new int[count];
        ulong epochSeed = EpochSeed(Options.Seed, epoch);
        for (int i = 0; i < count; i++)
        {
            labels[i] = ds.Labels[indices[i]];
            var source = ds.Image(indices[i]);
            var target = images.AsSpan(i * sample, sample);
            if (Options.Augmentation is { } aug)
                Augment(source, target, aug, new SplitMix64(SplitMix64.Mix(epochSeed ^ (ulong)(start + i))));
            else
                source.CopyTo(target);
        }
        return new Batch(epoch, index, indices, images, labels, [count, ds.Channels, ds.Height, ds.Width]);
    }

    /// <summary>
    /// Random crop with padding then random horizontal flip of one image, drawing from <paramref name="rng"/>
    /// (seeded by the image's position in the epoch, so independent of batch size and prefetching).
    /// </summary>
    private void Augment(ReadOnlySpan<float> source, Span<float> target, Augmentation aug, SplitMix64 rng)
    {
        int p = aug.CropPadding, h = Dataset.Height, w = Dataset.Width;
        int dy = p > 0 ? rng.NextInt(2 * p + 1) - p : 0;
        int dx = p > 0 ? rng.NextInt(2 * p + 1) - p : 0;
        bool flip = aug.HorizontalFlip && rng.NextBool();
        float background = Dataset.BackgroundValue;
        for (int c = 0; c < Dataset.Channels; c++)
        {
            for (int y = 0; y < h; y++)
            {
                var row = target.Slice((c * h + y) * w, w);
                int sy = y + dy;
                if ((uint)sy >= (uint)h) { row.Fill(background); continue; }
                var src = source.Slice((c * h + sy) * w, w);
                for (int x = 0; x < w; x++)
                {
                    int sx = (flip ? w - 1 - x : x) + dx;
                    row[x] = (uint)sx < (uint)w ? src[sx] : background;
                }
            }
        }
    }
}
