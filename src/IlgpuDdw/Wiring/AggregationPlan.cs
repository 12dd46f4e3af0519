namespace IlgpuDdw.Wiring;

/// <summary>Which kernel computes an aggregation's forward (see <see cref="AggregationKernels"/>).</summary>
public enum AggregationForward
{
    /// <summary><see cref="AggregationKernels.Forward"/>: x read-modify-written once per kept source.</summary>
    Simple,

    /// <summary><see cref="AggregationKernels.ForwardRegisters"/>: each element's sum in a register, x written once.</summary>
    Registers,
}

/// <summary>
/// Which kernels compute an aggregation's backward when the adjacency needs a gradient (without one,
/// <see cref="AggregationKernels.BackwardSources"/> runs alone under every plan).
/// </summary>
public enum AggregationBackward
{
    /// <summary><see cref="AggregationKernels.BackwardSources"/>, then <see cref="AggregationKernels.BackwardAdjacency"/>: dX read twice.</summary>
    Separate,

    /// <summary><see cref="AggregationKernels.BackwardFusedChunks"/>: one pass, a thread per (sample, chunk), dot products per chunk.</summary>
    FusedChunks,

    /// <summary><see cref="AggregationKernels.BackwardFusedGroups"/>: one pass, a group of threads per (sample, chunk), coalesced.</summary>
    FusedGroups,
}

/// <summary>
/// How the aggregations of a stage run: the kernels (<see cref="Forward"/>, <see cref="Backward"/>) and their geometry.
/// <see cref="Chunk"/>: elements per work item of the forward, <see cref="AggregationKernels.BackwardSources"/> and
/// <see cref="AggregationBackward.FusedChunks"/> (whose adjacency-gradient parts are those chunks).
/// <see cref="Parts"/>: parts per sample of <see cref="AggregationKernels.BackwardAdjacency"/> (<see cref="AggregationBackward.Separate"/>).
/// <see cref="GroupsPerSample"/> and <see cref="GroupSize"/>: the (sample, chunk) groups of
/// <see cref="AggregationBackward.FusedGroups"/>, each chunk ⌈S / GroupsPerSample⌉ elements. Every field is used as given
/// (chunk and parts clamped to the sample size); <see cref="For(DeviceKind, int, int, int, int)"/> is the default.
/// </summary>
/// <param name="Forward">The forward kernel.</param>
/// <param name="Backward">The backward kernels when the adjacency needs a gradient.</param>
/// <param name="Chunk">Elements per forward, source-gradient and fused-chunk work item.</param>
/// <param name="Parts">Parts per sample of the separate adjacency gradient.</param>
/// <param name="GroupsPerSample">Chunks (one group each) per sample of the grouped fused backward.</param>
/// <param name="GroupSize">Threads per group of the grouped fused backward.</param>
public readonly record struct AggregationPlan(AggregationForward Forward, AggregationBackward Backward, int Chunk, int Parts,
    int GroupsPerSample, int GroupSize)
{
    /// <summary>Threads per group of the default GPU plan.</summary>
    public const int GpuGroupSize = 256;

    /// <summary>Fewest elements per thread the default GPU plan gives a group of the fused backward (more groups would only add partials).</summary>
    public const int GpuMinValuesPerThread = 8;

    /// <summary>The default plan of <paramref name="device"/> for a launch of <paramref name="count"/> sources of <paramref name="sampleSize"/> elements each.</summary>
    public static AggregationPlan For(Device device, int batch, int count, int sampleSize)
    {
        ArgumentNullException.ThrowIfNull(device);
        return For(device.Kind, device.MaxThreads, batch, count, sampleSize);
    }

    /// <summary>
    /// The default plan on a device of <paramref name="kind"/> running at most <paramref name="maxThreads"/> threads at
    /// once (<see cref="Device.MaxThreads"/>), for a launch of <paramref name="count"/> sources, B = <paramref name="batch"/>,
    /// S = <paramref name="sampleSize"/>.
    /// CPU accelerator: the simple rung (<see cref="AggregationForward.Simple"/>, <see cref="AggregationBackward.Separate"/>),
    /// which measured fastest there (<c>ddw bench aggregation</c> and stage-sized workloads: as fast with every edge kept,
    /// 1.1–1.5× faster at 25–50% kept, because it skips a cut edge for a whole chunk where the register kernels test every slot at every element; the
    /// simulated threads are bound by per-access overhead, not bandwidth), contiguous chunks of 64 to 2048 elements with a
    /// few work items per simulated thread (a source chunk and the output chunk stay in cache), adjacency-gradient parts of
    /// at least 256 elements.
    /// Cuda: the register forward (x written once) with one element per work item (coalesced; the A branch is uniform over
    /// a warp except at sample boundaries), and the fused backward <see cref="AggregationBackward.FusedGroups"/> (dX read once
    /// for both gradients) of <see cref="GpuGroupSize"/> threads, with enough chunks for one full wave of resident groups
    /// (maxThreads / <see cref="GpuGroupSize"/> groups) but no fewer than <see cref="GpuMinValuesPerThread"/> elements a
    /// thread, so that each edge has few partials; separate parts (for a plan that asks for them) of at least 32 elements,
    /// enough to fill the device.
    /// </summary>
    public static AggregationPlan For(DeviceKind kind, int maxThreads, int batch, int count, int sampleSize)
    {
        batch = Math.Max(1, batch);
        count = Math.Max(1, count);
        sampleSize = Math.Max(1, sampleSize);
        maxThreads = Math.Max(1, maxThreads);
        bool cpu = kind == DeviceKind.Cpu;
        int parts = SeparateParts(maxThreads, batch, count, sampleSize, cpu ? 256 : 32);
        if (cpu)
        {
            int chunksPerSample = CeilDiv(2 * maxThreads, batch);
            int chunk = Math.Clamp(CeilDiv(sampleSize, chunksPerSample), Math.Min(64, sampleSize), 2048);
            return new(AggregationForward.Simple, AggregationBackward.Separate, chunk, parts, 1, 1);
        }
        int groups = Math.Clamp(CeilDiv(Math.Max(1, maxThreads / GpuGroupSize), batch), 1,
            Math.Max(1, sampleSize / (GpuGroupSize * GpuMinValuesPerThread)));
        return new(AggregationForward.Registers, AggregationBackward.FusedGroups, 1, parts, groups, GpuGroupSize);
    }

    /// <summary>Parts per sample of the separate adjacency gradient: enough (sample, source, part) items to fill the device, each part at least <paramref name="minLength"/> elements.</summary>
    private static int SeparateParts(int maxThreads, int batch, int count, int sampleSize, int minLength)
    {
        long edges = (long)batch * count;
        long wanted = (maxThreads + edges - 1) / edges;
        long most = Math.Max(1, sampleSize / minLength);
        return (int)Math.Clamp(wanted, 1, most);
    }

    /// <summary>Throws when this plan cannot run on <paramref name="device"/>.</summary>
    /// <exception cref="ArgumentException">An unknown kernel, a chunk, part or group count below 1, or (grouped backward) a
    /// group size that is not a positive multiple of the warp size, exceeds the device's group limit or has more warps
    /// than a warp has lanes (or than <see cref="BatchNormKernels.MaxWarpsPerGroup"/>).</exception>
    internal void Validate(Device device, string op)
    {
        if (!Enum.IsDefined(Forward))
            throw new ArgumentException($"{op}: unknown forward kernel {(int)Forward}.", "plan");
        if (!Enum.IsDefined(Backward))
            throw new ArgumentException($"{op}: unknown backward kernels {(int)Backward}.", "plan");
        if (Chunk < 1 || Parts < 1 || GroupsPerSample < 1)
            throw new ArgumentException($"{op}: chunk, parts and groups per sample must be at least 1; got {Chunk}, {Parts}, {GroupsPerSample}.", "plan");
        if (Backward != AggregationBackward.FusedGroups) return;
        device.ValidateReductionGroup(op, GroupSize);
    }

    private static int CeilDiv(int a, int b) => (a + b - 1) / b;
}
