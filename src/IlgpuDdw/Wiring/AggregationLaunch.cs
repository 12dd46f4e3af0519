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

    /// <summary>
    /// Test and benchmark hook: what becomes of the per-device default plan (<see cref="AggregationPlan.For(Device, int, int, int)"/>)
    /// of each launch (null: it runs as it is), for the calls on this thread of control only (an <see cref="AsyncLocal{T}"/>),
    /// so a verification case or a benchmark never changes the kernels or the summation order of a model training at the
    /// same time on another thread.
    /// </summary>
    internal static Func<AggregationPlan, AggregationPlan>? PlanOverride
    {
        get => Override.Value;
        set => Override.Value = value;
    }

    private static readonly AsyncLocal<Func<AggregationPlan, AggregationPlan>?> Override = new();

    /// <summary>Runs <paramref name="action"/> with every launch's plan replaced by <paramref name="plan"/> (null: the device's default), restoring the hook after.</summary>
    internal static T WithPlan<T>(AggregationPlan? plan, Func<T> action) =>
        WithPlan(plan is { } fixedPlan ? _ => fixedPlan : null, action);

    /// <summary>Runs <paramref name="action"/> with <see cref="PlanOverride"/> set to <paramref name="change"/>, restoring it after.</summary>
    internal static T WithPlan<T>(Func<AggregationPlan, AggregationPlan>? change, Func<T> action)
    {
        var saved = PlanOverride;
        PlanOverride = change;
        try
        {
            return action();
        }
        finally
        {
            PlanOverride = saved;
        }
    }

    /// <summary>The plan of a launch of <paramref name="count"/> sources: the device's default as <see cref="PlanOverride"/> changes it; validated.</summary>
    private static AggregationPlan PlanFor(Device device, int batch, int count, int sampleSize)
    {
        var plan = AggregationPlan.For(device, batch, count, sampleSize);
        if (PlanOverride is { } change) plan = change(plan);
        plan.Validate(device, "Aggregate");
        return plan;
    }

    /// <summary>
    /// The launches of an aggregation into <paramref name="target"/>: its sources split into groups of at most
    /// <see cref="NodeViews.Capacity"/>, each with its plan and its shape (chunks of plan.Chunk, separate parts plan.Parts).
    /// </summary>
    private static IEnumerable<(AggregationShape Shape, AggregationPlan Plan)> Groups(Adjacency adjacency, int target, int sampleSize)
    {
        int batch = adjacency.Batch;
        for (int first = 0; first < target; first += NodeViews.Capacity)
        {
            int count = Math.Min(NodeViews.Capacity, target - first);
            var plan = PlanFor(adjacency.Device, batch, count, sampleSize);
            yield return (new AggregationShape(batch, sampleSize, adjacency.Size, target, first, count, plan.Chunk, plan.Parts), plan);
        }
    }

    /// <summary>
    /// The views of a launch: slot s is <paramref name="view"/>(FirstSource + s), or source FirstSource where that is null;
    /// slots past the launch's count repeat its last source, so that every slot is a valid view.
    /// </summary>
    private static NodeViews Views(AggregationShape shape, Func<int, Tensor?> view, Tensor[] sources)
    {
        var views = new NodeViews();
        for (int s = 0; s < NodeViews.Capacity; s++)
            views.Set(s, (view(shape.FirstSource + Math.Min(s, shape.Count - 1)) ?? sources[shape.FirstSource]).View);
        return views;
    }

    /// <summary>x (overwritten) = Σ_{i &lt; target} A[:, i, target] · y_i.</summary>
    public static void Forward(Adjacency adjacency, int target, Tensor[] sources, Tensor x)
    {
        var d = adjacency.Device;
        int sample = sources[0].Length / adjacency.Batch;
        bool accumulate = false;
        foreach (var (shape, plan) in Groups(adjacency, target, sample))
        {
            int ext = d.Extent(shape.ChunkItems);
            var launch = plan.Forward == AggregationForward.Registers ? d.Kernels.AggregationForwardRegisters : d.Kernels.AggregationForward;
            launch(d.Stream, ext, shape.ChunkItems, ext, shape, accumulate ? 1 : 0, adjacency.Tensor.View, Views(shape, i => sources[i], sources), x.View);
            accumulate = true;
        }
    }

    /// <summary>
    /// The backward of an aggregation into <paramref name="target"/> from its upstream gradient <paramref name="dX"/>:
    /// dSources[i] += A[:, i, target] · dX for every non-null dSources[i] (dSources[i] = A[:, i, target] · dX, every element
    /// written and its contents unread, where <paramref name="overwrite"/>[i] is set; null: accumulate into all), and, when
    /// <paramref name="dAdjacency"/> is given, dAdjacency[:, i, target] += &lt;y_i, dX&gt; for kept edges and for the cut
    /// edges of rows that need them. Each launch group runs as its plan says: the separate kernels, or one fused pass that
    /// reads dX once (then, with more than one chunk a sample, the reduction of its partials, which come from the pool).
    /// </summary>
    public static void Backward(Adjacency adjacency, int target, Tensor[] sources, Tensor dX, Tensor?[] dSources, bool[]? overwrite, Tensor? dAdjacency)
    {
        var d = adjacency.Device;
        int sample = sources[0].Length / adjacency.Batch;
        foreach (var (shape, plan) in Groups(adjacency, target, sample))
        {
            int gradMask = 0, accumulateMask = 0, cutEdgeMask = 0;
            for (int s = 0; s < shape.Count; s++)
            {
                int i = shape.FirstSource + s;
                if (adjacency.NeedsCutEdgeGradient(i)) cutEdgeMask |= 1 << s;
                if (dSources[i] is null) continue;
                gradMask |= 1 << s;
                if (overwrite is null || !overwrite[i]) accumulateMask |= 1 << s;
            }
            var ys = Views(shape, i => sources[i], sources);
            var dYs = Views(shape, i => dSources[i], sources);
            if (dAdjacency is not null && plan.Backward != AggregationBackward.Separate)
            {
                Fused(d, FusedShape(shape, plan), plan, gradMask, accumulateMask, cutEdgeMask, adjacency.Tensor, dX, ys, dYs, dAdjacency);
                continue;
            }
            if (gradMask != 0)
            {
                int ext = d.Extent(shape.ChunkItems);
                d.Kernels.AggregationBackwardSources(d.Stream, ext, shape.ChunkItems, ext, shape, gradMask, accumulateMask, adjacency.Tensor.View, dX.View, dYs);
            }
            if (dAdjacency is not null)
                SeparateAdjacency(d, shape, cutEdgeMask, adjacency.Tensor, dX, ys, dAdjacency);
        }
    }

    /// <summary>
    /// The shape of a fused backward launch: chunks of plan.Chunk (<see cref="AggregationBackward.FusedChunks"/>) or
    /// ⌈S / plan.GroupsPerSample⌉ elements (<see cref="AggregationBackward.FusedGroups"/>), and one adjacency-gradient part
    /// per chunk (<see cref="AggregationShape.PartsAreChunks"/>).
    /// </summary>
    internal static AggregationShape FusedShape(AggregationShape shape, AggregationPlan plan)
    {
        int chunk = plan.Backward == AggregationBackward.FusedGroups
            ? (shape.SampleSize + plan.GroupsPerSample - 1) / plan.GroupsPerSample
            : plan.Chunk;
        var chunked = new AggregationShape(shape.Batch, shape.SampleSize, shape.Size, shape.Target, shape.FirstSource, shape.Count, chunk, 1);
        return new AggregationShape(shape.Batch, shape.SampleSize, shape.Size, shape.Target, shape.FirstSource, shape.Count, chunk, chunked.ChunksPerSample);
    }

    private static void Fused(Device d, AggregationShape shape, AggregationPlan plan, int gradMask, int accumulateMask, int cutEdgeMask,
        Tensor adjacency, Tensor dX, NodeViews ys, NodeViews dYs, Tensor dAdjacency)
    {
        if (!shape.PartsAreChunks)
            throw new InvalidOperationException($"Aggregate: a fused backward needs one part per chunk; got {shape.Parts} parts and {shape.ChunksPerSample} chunks.");
        using var partial = shape.Parts > 1 ? Tensor.Empty(d, shape.PartItems) : null;
        var partialView = (partial ?? dAdjacency).View; // unread with one part a sample
        if (plan.Backward == AggregationBackward.FusedGroups)
        {
            d.Kernels.AggregationBackwardFusedGroups(d.Stream, new KernelConfig(shape.ChunkItems, plan.GroupSize), shape, gradMask, accumulateMask, cutEdgeMask,
                adjacency.View, dX.View, ys, dYs, partialView, dAdjacency.View);
        }
        else
        {
            int ext = d.Extent(shape.ChunkItems);
            d.Kernels.AggregationBackwardFusedChunks(d.Stream, ext, shape.ChunkItems, ext, shape, gradMask, accumulateMask, cutEdgeMask,
                adjacency.View, dX.View, ys, dYs, partialView, dAdjacency.View);
        }
        if (partial is not null)
            Reduce(d, shape, partial, dAdjacency);
    }

    private static void SeparateAdjacency(Device d, AggregationShape shape, int cutEdgeMask, Tensor adjacency, Tensor dX, NodeViews ys, Tensor dAdjacency)
    {
        int ext = d.Extent(shape.PartItems);
        using var partial = shape.Parts > 1 ? Tensor.Empty(d, shape.PartItems) : null;
        d.Kernels.AggregationBackwardAdjacency(d.Stream, ext, shape.PartItems, ext, shape, cutEdgeMask, adjacency.View, ys, dX.View,
            (partial ?? dAdjacency).View, dAdjacency.View);
        if (partial is not null)
            Reduce(d, shape, partial, dAdjacency);
    }

    /// <summary>dAdjacency += the sum of each edge's <paramref name="partial"/> parts, in order.</summary>
    private static void Reduce(Device d, AggregationShape shape, Tensor partial, Tensor dAdjacency)
    {
        int edges = shape.Batch * shape.Count, ext = d.Extent(edges);
        d.Kernels.AggregationReduceAdjacencyGradient(d.Stream, ext, edges, ext, shape, partial.View, dAdjacency.View);
    }
}
