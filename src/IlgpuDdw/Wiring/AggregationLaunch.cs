namespace IlgpuDdw.Wiring;

/// <summary>
/// Host side of <see cref="AggregationKernels"/>: validation, the launch geometry per device, and the split
/// of a target's sources into launches of at most <see cref="NodeViews.Capacity"/> views. Shared by the
/// aggregation op, <see cref="Adjacency.AggregateInto"/> and <see cref="AggregationBenchmark"/>.
/// </summary>
internal static class AggregationLaunch
{
    /// <summary>
    /// Validates an aggregation into node <paramref name="target"/> and returns its sources
    /// <c>nodeOutputs[0..target−1]</c>: 1 ≤ target ≤ n, enough node outputs, all of one shape with the
    /// adjacency's batch as first dimension, all on the adjacency's device, rows 0..target−1 written.
    /// </summary>
    public static Tensor[] Sources(string op, Adjacency adjacency, int target, IReadOnlyList<Tensor> nodeOutputs)
    {
        ArgumentNullException.ThrowIfNull(adjacency);
        ArgumentNullException.ThrowIfNull(nodeOutputs);
        adjacency.Tensor.ThrowIfDisposed();
        if (target < 1 || target > adjacency.Nodes)
            throw new ArgumentException($"{op}: target node {target} is outside 1..{adjacency.Nodes} (node 0 reads the stage input; {adjacency.Nodes} is the output node).", nameof(target));
        if (nodeOutputs.Count < target)
            throw new ArgumentException($"{op}: target node {target} reads nodes 0..{target - 1} but only {nodeOutputs.Count} node outputs were given.", nameof(nodeOutputs));
        var sources = new Tensor[target];
        for (int i = 0; i < target; i++)
        {
            var y = nodeOutputs[i] ?? throw new ArgumentException($"{op}: node output {i} is null.", nameof(nodeOutputs));
            y.ThrowIfDisposed();
            if (!ReferenceEquals(y.Device, adjacency.Device))
                throw new ArgumentException($"{op}: node output {i} {y.Describe()} lives on {y.Device}, the adjacency on {adjacency.Device}.", nameof(nodeOutputs));
            if (y.Rank < 2 || y.Dim(0) != adjacency.Batch)
                throw new ArgumentException($"{op}: node output {i} has shape {y.ShapeString}; expected [{adjacency.Batch}, C, ...] (the adjacency's batch first).", nameof(nodeOutputs));
            if (i > 0 && !y.SameShape(sources[0]))
                throw new ArgumentException($"{op}: node output {i} has shape {y.ShapeString} but node output 0 has {sources[0].ShapeString}; a stage's nodes share one shape (channels, height, width).", nameof(nodeOutputs));
            if (!adjacency.IsRowWritten(i))
                throw new InvalidOperationException($"{op}: target node {target} reads row {i} of the adjacency, which no router/gate, dense or chain fill has written yet.");
            sources[i] = y;
        }
        return sources;
    }

    /// <summary>Elements per forward/source-gradient work item: contiguous chunks on the CPU accelerator
    /// (a few work items per simulated thread, at most 2048 floats so a source chunk and the output chunk
    /// stay in cache); one element on a GPU (coalesced; the A branch is uniform over a warp except at sample
    /// boundaries).</summary>
    public static int ChunkLength(Device device, int batch, int sampleSize)
    {
        if (device.Kind != DeviceKind.Cpu) return 1;
        int chunksPerSample = Math.Max(1, (2 * device.MaxThreads + batch - 1) / batch);
        int chunk = (sampleSize + chunksPerSample - 1) / chunksPerSample;
        return Math.Clamp(chunk, Math.Min(64, sampleSize), 2048);
    }

    /// <summary>Parts per sample in the adjacency gradient: enough (sample, source, part) items to fill the
    /// device, each part at least 256 (CPU) or 32 (GPU) elements.</summary>
    public static int Parts(Device device, int batch, int count, int sampleSize)
    {
        int minLength = device.Kind == DeviceKind.Cpu ? 256 : 32;
        long edges = (long)batch * count;
        long wanted = (device.MaxThreads + edges - 1) / edges;
        long most = Math.Max(1, sampleSize / minLength);
        return (int)Math.Clamp(wanted, 1, most);
    }

    /// <summary>
    /// Test hook: a fixed (chunk, parts) geometry instead of the per-device policy (null: the policy), for the calls on
    /// this thread of control only (an <see cref="AsyncLocal{T}"/>), so a verification case never changes the
    /// summation order of a model training at the same time on another thread.
    /// </summary>
    internal static (int Chunk, int Parts)? GeometryOverride
    {
        get => Override.Value;
        set => Override.Value = value;
    }

    private static readonly AsyncLocal<(int Chunk, int Parts)?> Override = new();

    private static IEnumerable<(AggregationShape Shape, NodeViews Views)> Groups(Adjacency adjacency, int target, Tensor[] sources, Func<int, Tensor?> view, int sampleSize)
    {
        var d = adjacency.Device;
        int batch = adjacency.Batch;
        int chunk = GeometryOverride?.Chunk ?? ChunkLength(d, batch, sampleSize);
        for (int first = 0; first < target; first += NodeViews.Capacity)
        {
            int count = Math.Min(NodeViews.Capacity, target - first);
            var views = new NodeViews();
            for (int s = 0; s < NodeViews.Capacity; s++)
                views.Set(s, (view(first + Math.Min(s, count - 1)) ?? sources[first]).View);
            int parts = GeometryOverride?.Parts ?? Parts(d, batch, count, sampleSize);
            yield return (new AggregationShape(batch, sampleSize, adjacency.Size, target, first, count, chunk, parts), views);
        }
    }

    /// <summary>x (overwritten) = Σ_{i &lt; target} A[:, i, target] · y_i.</summary>
    public static void Forward(Adjacency adjacency, int target, Tensor[] sources, Tensor x)
    {
        var d = adjacency.Device;
        int sample = sources[0].Length / adjacency.Batch;
        bool accumulate = false;
        foreach (var (shape, views) in Groups(adjacency, target, sources, i => sources[i], sample))
        {
            int ext = d.Extent(shape.ChunkItems);
            d.Kernels.AggregationForward(d.Stream, ext, shape.ChunkItems, ext, shape, accumulate ? 1 : 0, adjacency.Tensor.View, views, x.View);
            accumulate = true;
        }
    }

    /// <summary>
    /// dSources[i] += A[:, i, target] · dX for every non-null dSources[i]; dSources[i] = A[:, i, target] · dX (every
    /// element written, its contents unread) where <paramref name="overwrite"/>[i] is set (null: accumulate into all).
    /// </summary>
    public static void BackwardSources(Adjacency adjacency, int target, Tensor[] sources, Tensor dX, Tensor?[] dSources, bool[]? overwrite = null)
    {
        var d = adjacency.Device;
        int sample = sources[0].Length / adjacency.Batch;
        foreach (var (shape, views) in Groups(adjacency, target, sources, i => dSources[i], sample))
        {
            int mask = 0, accumulate = 0;
            for (int s = 0; s < shape.Count; s++)
            {
                int i = shape.FirstSource + s;
                if (dSources[i] is null) continue;
                mask |= 1 << s;
                if (overwrite is null || !overwrite[i]) accumulate |= 1 << s;
            }
            if (mask == 0) continue;
            int ext = d.Extent(shape.ChunkItems);
            d.Kernels.AggregationBackwardSources(d.Stream, ext, shape.ChunkItems, ext, shape, mask, accumulate, adjacency.Tensor.View, dX.View, views);
        }
    }

    /// <summary>dAdjacency[:, i, target] += &lt;y_i, dX&gt; for kept edges and for the cut edges of rows that need them.</summary>
    public static void BackwardAdjacency(Adjacency adjacency, int target, Tensor[] sources, Tensor dX, Tensor dAdjacency)
    {
        var d = adjacency.Device;
        int sample = sources[0].Length / adjacency.Batch;
        foreach (var (shape, views) in Groups(adjacency, target, sources, i => sources[i], sample))
        {
            int mask = 0;
            for (int s = 0; s < shape.Count; s++)
                if (adjacency.NeedsCutEdgeGradient(shape.FirstSource + s)) mask |= 1 << s;
            int ext = d.Extent(shape.PartItems);
            if (shape.Parts == 1)
            {
                d.Kernels.AggregationBackwardAdjacency(d.Stream, ext, shape.PartItems, ext, shape, mask, adjacency.Tensor.View, views, dX.View, dAdjacency.View, dAdjacency.View);
                continue;
            }
            using var partial = Tensor.Empty(d, shape.PartItems);
            d.Kernels.AggregationBackwardAdjacency(d.Stream, ext, shape.PartItems, ext, shape, mask, adjacency.Tensor.View, views, dX.View, partial.View, dAdjacency.View);
            int edges = shape.Batch * shape.Count, ext2 = d.Extent(edges);
            d.Kernels.AggregationReduceAdjacencyGradient(d.Stream, ext2, edges, ext2, shape, partial.View, dAdjacency.View);
        }
    }
}
