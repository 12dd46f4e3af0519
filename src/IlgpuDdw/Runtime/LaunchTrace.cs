namespace IlgpuDdw.Runtime;

/// <summary>Why the host waited for the device.</summary>
public enum SyncKind
{
    /// <summary>A <see cref="Device.Synchronize"/> call.</summary>
    Synchronize,

    /// <summary>A device-to-host copy (e.g. <c>Tensor.ToArray</c>, a loss read, <c>Ops.Argmax</c>); it waits for the stream.</summary>
    HostRead,

    /// <summary>A host-to-device copy from pageable memory (e.g. <c>Tensor.CopyFrom</c>, an <c>IntTensor</c>); ILGPU waits for the stream.</summary>
    HostWrite,
}

/// <summary>
/// Receives what a <see cref="Device"/> does while it is set as <see cref="Device.Tracer"/>: kernel launches,
/// host synchronisations and device allocations. <see cref="LaunchTrace"/> records them.
/// </summary>
public interface ILaunchTracer
{
    /// <summary>A kernel was launched (or, on a dry run, would have been). Event timings arrive later in the record.</summary>
    void OnLaunch(LaunchRecord launch);

    /// <summary>The host waited for the device; <paramref name="bytes"/> were copied (0 for a plain synchronisation).</summary>
    void OnSynchronize(SyncKind kind, long bytes);

    /// <summary>A device buffer of <paramref name="bytes"/> was allocated (a tensor-pool miss or an int buffer).</summary>
    void OnAllocate(long bytes);
}

/// <summary>One traced kernel launch.</summary>
/// <param name="kernel">The launcher's name.</param>
/// <param name="family">The kernel's class without the <c>Kernels</c> suffix.</param>
/// <param name="explicitlyGrouped">Whether the caller chose the grid.</param>
/// <param name="extent">Threads launched.</param>
/// <param name="groups">Thread groups.</param>
/// <param name="groupSize">Threads per group.</param>
/// <param name="cost">The cost formula's figures, or null.</param>
public sealed class LaunchRecord(string kernel, string family, bool explicitlyGrouped, long extent, long groups, int groupSize, KernelCost? cost)
{
    /// <summary>The launcher's name on <see cref="KernelSet"/> (e.g. <c>Conv2dBackwardWeight</c>), or <c>Type.Method</c> for a custom kernel.</summary>
    public string Kernel { get; } = kernel;

    /// <summary>The kernel's class without the <c>Kernels</c> suffix (e.g. <c>Conv2d</c>).</summary>
    public string Family { get; } = family;

    /// <summary>Whether the caller chose the grid (a <c>KernelConfig</c>) rather than an extent the device groups.</summary>
    public bool ExplicitlyGrouped { get; } = explicitlyGrouped;

    /// <summary>Threads launched: the extent of an implicitly grouped launch, groups × group size of an explicit one.</summary>
    public long Extent { get; } = extent;

    /// <summary>Thread groups (the grid).</summary>
    public long Groups { get; } = groups;

    /// <summary>Threads per group.</summary>
    public int GroupSize { get; } = groupSize;

    /// <summary>Threads of a group that exist: the group size, or the extent when the launch is smaller than one group.</summary>
    public int ThreadsPerGroup => (int)Math.Min(GroupSize, Extent);

    /// <summary>FLOPs, bytes and work items from <see cref="KernelCosts"/>; null when the kernel has no cost formula.</summary>
    public KernelCost? Cost { get; } = cost;

    /// <summary>The work items the kernel loops over (the extent when it has no cost formula).</summary>
    public long WorkItems => Cost?.WorkItems ?? Extent;

    /// <summary>Measured time of the launch in µs (<see cref="Device.Timing"/>); null when not measured (yet).</summary>
    public double? MeasuredUs { get; internal set; }

    /// <summary>The roofline floor of this launch on <paramref name="gpu"/> in µs (0 without a cost formula; TF32 FLOPs at the TF32 peak).</summary>
    public double FloorUs(GpuProfile gpu) => Cost is { } c ? gpu.FloorSeconds(c.Flops, c.Bytes, c.Tf32) * 1e6 : 0;

    internal ProfilingMarker? Start { get; set; }

    internal ProfilingMarker? End { get; set; }

    /// <summary>Reads the event time (blocks until both markers completed) and frees the markers.</summary>
    internal void ResolveMarkers()
    {
        if (Start is null || End is null) return;
        MeasuredUs = End.MeasureFrom(Start).TotalMicroseconds;
        Start.Dispose();
        End.Dispose();
        Start = End = null;
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Kernel} {Groups}×{GroupSize} ({WorkItems} items{(Cost?.Shape is { } s ? ", " + s : "")})";
}

/// <summary>
/// Records every launch, synchronisation and allocation of the devices it is attached to (set it as
/// <see cref="Device.Tracer"/>), and sums them up per kernel against a GPU's roofline with <see cref="Summarize"/>.
/// </summary>
public sealed class LaunchTrace : ILaunchTracer
{
    private readonly List<LaunchRecord> _launches = new();

    /// <summary>The launches in order.</summary>
    public IReadOnlyList<LaunchRecord> Launches => _launches;

    /// <summary><see cref="Device.Synchronize"/> calls.</summary>
    public int SynchronizeCalls { get; private set; }

    /// <summary>Device-to-host copies (each waits for the device).</summary>
    public int HostReads { get; private set; }

    /// <summary>Host-to-device copies from pageable memory (each waits for the device).</summary>
    public int HostWrites { get; private set; }

    /// <summary>Every host synchronisation: <see cref="SynchronizeCalls"/> + <see cref="HostReads"/> + <see cref="HostWrites"/>.</summary>
    public int Synchronizations => SynchronizeCalls + HostReads + HostWrites;

    /// <summary>Device allocations.</summary>
    public int Allocations { get; private set; }

    /// <summary>Bytes of those allocations (what the device would hold, also on a dry run).</summary>
    public long AllocatedBytes { get; private set; }

    /// <summary>Forgets everything recorded so far (e.g. after warm-up).</summary>
    public void Clear()
    {
        _launches.Clear();
        SynchronizeCalls = HostReads = HostWrites = Allocations = 0;
        AllocatedBytes = 0;
    }

    /// <inheritdoc/>
    public void OnLaunch(LaunchRecord launch) => _launches.Add(launch);

    /// <inheritdoc/>
    public void OnSynchronize(SyncKind kind, long bytes)
    {
        switch (kind)
        {
            case SyncKind.HostRead: HostReads++; break;
            case SyncKind.HostWrite: HostWrites++; break;
            default: SynchronizeCalls++; break;
        }
    }

    /// <inheritdoc/>
    public void OnAllocate(long bytes)
    {
        Allocations++;
        AllocatedBytes += bytes;
    }

    /// <summary>The recorded launches per kernel and in total, with roofline floors on <paramref name="gpu"/>.</summary>
    public TraceSummary Summarize(GpuProfile gpu)
    {
        ArgumentNullException.ThrowIfNull(gpu);
        var kernels = _launches.GroupBy(l => l.Kernel).Select(g =>
        {
            var smallest = g.MinBy(l => l.Groups)!;
            bool measured = g.All(l => l.MeasuredUs is not null);
            return new KernelSummary(g.Key, smallest.Family, g.Count(), g.Sum(l => l.WorkItems), smallest.Groups, smallest.ThreadsPerGroup,
                g.Sum(l => l.Cost?.Flops ?? 0), g.Sum(l => l.Cost?.Bytes ?? 0), g.Max(l => l.FloorUs(gpu)), g.Sum(l => l.FloorUs(gpu)),
                measured ? g.Sum(l => l.MeasuredUs!.Value) : null, g.All(l => l.Cost is not null));
        }).OrderBy(k => k.Family, StringComparer.Ordinal).ThenBy(k => k.Kernel, StringComparer.Ordinal).ToArray();
        bool allMeasured = _launches.Count > 0 && _launches.All(l => l.MeasuredUs is not null);
        return new TraceSummary(gpu, kernels, _launches.Count, Synchronizations, SynchronizeCalls, HostReads, HostWrites, Allocations, AllocatedBytes,
            _launches.Sum(l => l.FloorUs(gpu)), allMeasured ? _launches.Sum(l => l.MeasuredUs!.Value) : null,
            _launches.Where(l => IsUnderfilled(l, gpu)).ToArray());
    }

    /// <summary>Launch-shape rule of the GPU path: a launch whose floor exceeds this many µs ...</summary>
    public const double UnderfillFloorUs = 20;

    /// <summary>... must have at least <see cref="GpuProfile.FillGroups"/> groups of at least this many threads.</summary>
    public const int UnderfillMinThreads = 128;

    /// <summary>
    /// Whether <paramref name="launch"/> breaks the launch-shape rule on <paramref name="gpu"/>: floor above
    /// <see cref="UnderfillFloorUs"/> µs with fewer than <see cref="GpuProfile.FillGroups"/> groups of at least
    /// <see cref="UnderfillMinThreads"/> threads.
    /// </summary>
    public static bool IsUnderfilled(LaunchRecord launch, GpuProfile gpu) =>
        launch.FloorUs(gpu) > UnderfillFloorUs && (launch.Groups < gpu.FillGroups || launch.ThreadsPerGroup < UnderfillMinThreads);
}

/// <summary>One kernel's launches in a <see cref="TraceSummary"/>.</summary>
/// <param name="Kernel">Launcher name.</param>
/// <param name="Family">Kernel class without <c>Kernels</c>.</param>
/// <param name="Launches">Number of launches.</param>
/// <param name="WorkItems">Work items, summed.</param>
/// <param name="Groups">The smallest grid among the launches.</param>
/// <param name="ThreadsPerGroup">Threads per group of that smallest launch.</param>
/// <param name="Flops">FLOPs, summed.</param>
/// <param name="Bytes">Minimum bytes, summed.</param>
/// <param name="FloorUs">The largest single-launch roofline floor in µs.</param>
/// <param name="FloorSumUs">The floors of every launch, summed, in µs.</param>
/// <param name="MeasuredUs">Measured time summed over the launches in µs; null unless every launch was measured.</param>
/// <param name="HasCost">Whether the kernel has a cost formula (without one its FLOPs, bytes and floor are 0).</param>
public sealed record KernelSummary(string Kernel, string Family, int Launches, long WorkItems, long Groups, int ThreadsPerGroup,
    double Flops, double Bytes, double FloorUs, double FloorSumUs, double? MeasuredUs, bool HasCost)
{
    /// <summary>Measured time over the summed floor (null when not measured or the floor is 0).</summary>
    public double? MeasuredOverFloor => MeasuredUs is { } m && FloorSumUs > 0 ? m / FloorSumUs : null;
}

/// <summary>A <see cref="LaunchTrace"/> summed up against a GPU's roofline.</summary>
/// <param name="Gpu">The GPU whose roofline gives the floors.</param>
/// <param name="Kernels">Per kernel, by family then name.</param>
/// <param name="Launches">Launches.</param>
/// <param name="Synchronizations">Host synchronisations (calls, reads and writes).</param>
/// <param name="SynchronizeCalls">Of which <see cref="Device.Synchronize"/> calls.</param>
/// <param name="HostReads">Of which device-to-host copies.</param>
/// <param name="HostWrites">Of which host-to-device copies.</param>
/// <param name="Allocations">Device allocations.</param>
/// <param name="AllocatedBytes">Their bytes.</param>
/// <param name="FloorUs">Sum of every launch's floor in µs.</param>
/// <param name="MeasuredUs">Sum of the measured launch times in µs; null unless every launch was measured.</param>
/// <param name="Underfilled">Launches breaking the launch-shape rule (<see cref="LaunchTrace.IsUnderfilled"/>).</param>
public sealed record TraceSummary(GpuProfile Gpu, IReadOnlyList<KernelSummary> Kernels, int Launches, int Synchronizations, int SynchronizeCalls,
    int HostReads, int HostWrites, int Allocations, long AllocatedBytes, double FloorUs, double? MeasuredUs, IReadOnlyList<LaunchRecord> Underfilled);
