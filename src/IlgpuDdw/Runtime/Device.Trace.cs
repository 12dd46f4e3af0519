using System.Runtime.CompilerServices;
using ILGPU.Runtime.CPU;

namespace IlgpuDdw.Runtime;

/// <summary>How <see cref="KernelSet"/> times traced launches (see <see cref="Device.Timing"/>).</summary>
public enum LaunchTiming
{
    /// <summary>No timing: launches are only recorded.</summary>
    None,

    /// <summary>
    /// Cuda only: a profiling marker (CUDA event) before and after each launch on its stream; nothing waits, and
    /// <see cref="Device.CompleteTimings"/> reads the times once the work is done.
    /// </summary>
    Events,

    /// <summary>
    /// Any real device: wait for the device before and after each launch and time it with a stopwatch. Waiting
    /// after every launch changes the timing of the whole step (no overlap, launch latency exposed).
    /// </summary>
    Synchronized,
}

/// <summary>
/// Dry runs, launch tracing and the counting of device allocations and host synchronisations.
/// </summary>
public sealed partial class Device
{
    /// <summary>
    /// Threads per group of every implicitly grouped launch on a GPU (the Cuda path loads such kernels with this
    /// group size, and <see cref="Extent"/> sizes GPU launches in whole groups of it).
    /// </summary>
    public const int GpuGroupSize = 256;

    private readonly List<LaunchRecord> _pendingTimings = new();

    private Device(Context context, Accelerator placeholderAccelerator, GpuProfile gpu)
    {
        _context = context;
        Accelerator = placeholderAccelerator;
        Kind = DeviceKind.Cuda;
        Spec = $"dry-run:{gpu.Name}";
        DryRunGpu = gpu;
        MaxThreads = gpu.Multiprocessors * gpu.MaxThreadsPerMultiprocessor;
    }

    /// <summary>
    /// A device that executes nothing: it records, through <see cref="Tracer"/>, the launches the Cuda path would
    /// make on <paramref name="gpu"/> (its kernel variants, extents and group sizes, <see cref="Kind"/> is
    /// <see cref="DeviceKind.Cuda"/>), counts allocations and synchronisations as a real device would, and holds
    /// no tensor memory: every buffer is a placeholder without storage (its accounting in
    /// <see cref="LiveBytes"/> and <see cref="PeakBytes"/> is the size the GPU would allocate). Host reads return
    /// zeros and host writes are dropped, so code that reads device data to decide what to do next sees zeros: a
    /// loss or keep rate reads 0, and a dynamic stage's dead-node skipping at inference finds every node dead (the
    /// training step itself reads nothing back).
    /// Its <see cref="Accelerator"/> is a CPU accelerator used only to make the placeholders: do not launch on it.
    /// </summary>
    public static Device CreateDryRun(GpuProfile gpu)
    {
        ArgumentNullException.ThrowIfNull(gpu);
        var context = Context.Create(b => b.CPU(new CPUDevice(2, 1, 1)));
        return new Device(context, context.CreateCPUAccelerator(0), gpu);
    }

    /// <summary>The GPU a dry-run device models (see <see cref="CreateDryRun"/>); null on a real device.</summary>
    public GpuProfile? DryRunGpu { get; }

    /// <summary>Whether this device only records launches (see <see cref="CreateDryRun"/>).</summary>
    public bool IsDryRun => DryRunGpu is not null;

    /// <summary>
    /// Receives every launch made through <see cref="Kernels"/> (including kernels loaded with
    /// <see cref="KernelSet.Load{TLauncher}"/>), every host synchronisation and every device allocation; null
    /// (default) traces nothing and launches go straight to ILGPU.
    /// </summary>
    public ILaunchTracer? Tracer { get; set; }

    /// <summary>How traced launches are timed (default <see cref="LaunchTiming.None"/>).</summary>
    /// <exception cref="ArgumentException">Events on a device that is not a real Cuda GPU, or any timing on a dry run.</exception>
    public LaunchTiming Timing
    {
        get => _timing;
        set
        {
            CheckTiming(value);
            _timing = value;
        }
    }
    private LaunchTiming _timing;

    /// <summary>Throws when this device cannot time launches as <paramref name="timing"/> says.</summary>
    /// <exception cref="ArgumentException">Events on a device that is not a real Cuda GPU, or any timing on a dry run.</exception>
    public void CheckTiming(LaunchTiming timing)
    {
        if (timing != LaunchTiming.None && IsDryRun)
            throw new ArgumentException($"A dry run executes nothing and cannot time launches (timing {timing}).", nameof(timing));
        if (timing == LaunchTiming.Events && Kind != DeviceKind.Cuda)
            throw new ArgumentException($"Event timing needs a Cuda device; {Spec} is not one (use Synchronized).", nameof(timing));
    }

    /// <summary>Device allocations since creation: tensor-pool misses and int buffers (pool hits are not allocations).</summary>
    public int Allocations { get; private set; }

    /// <summary>Host synchronisations since creation: <see cref="Synchronize"/> calls, host reads and host writes.</summary>
    public int Synchronizations { get; private set; }

    /// <summary>Bytes of real device memory allocated since creation (pool misses and int buffers; 0 on a dry run).</summary>
    public long AllocatedBytes { get; private set; }

    /// <summary>
    /// Waits for the device and fills <see cref="LaunchRecord.MeasuredUs"/> of every launch timed with
    /// <see cref="LaunchTiming.Events"/> since the last call. The wait is not counted as a synchronisation.
    /// </summary>
    public void CompleteTimings()
    {
        if (_pendingTimings.Count == 0) return;
        Accelerator.Synchronize();
        foreach (var r in _pendingTimings) r.ResolveMarkers();
        _pendingTimings.Clear();
    }

    internal void AddPendingTiming(LaunchRecord record) => _pendingTimings.Add(record);

    private void CountSynchronize(SyncKind kind, long bytes)
    {
        Synchronizations++;
        Tracer?.OnSynchronize(kind, bytes);
    }

    /// <summary>A new device buffer (a storage-less placeholder on a dry run), counted as an allocation.</summary>
    internal MemoryBuffer1D<T, Stride1D.Dense> Allocate<T>(long length) where T : unmanaged
    {
        long bytes = length * Unsafe.SizeOf<T>();
        Allocations++;
        Tracer?.OnAllocate(bytes);
        if (IsDryRun)
            return new Placeholder<T>(Accelerator, length);
        AllocatedBytes += bytes;
        return Accelerator.Allocate1D<T>(length);
    }

    /// <summary>Copies host data into <paramref name="target"/>; ILGPU waits for the stream (pageable memory), so it counts as a synchronisation. Dropped on a dry run.</summary>
    internal void Upload<T>(ArrayView<T> target, ReadOnlySpan<T> data) where T : unmanaged
    {
        CountSynchronize(SyncKind.HostWrite, (long)data.Length * Unsafe.SizeOf<T>());
        if (!IsDryRun)
            target.CopyFromCPU(Stream, data);
    }

    /// <summary>
    /// Queues a copy of <c>target.Length</c> elements from page-locked host memory starting at <paramref name="source"/>
    /// into <paramref name="target"/> without waiting (<see cref="StagedUpload{T}"/>; not a synchronisation). The memory
    /// must stay unchanged until the stream has run the copy. Dropped on a dry run.
    /// </summary>
    internal void UploadAsync<T>(ArrayView<T> target, ref T source) where T : unmanaged
    {
        if (!IsDryRun)
            target.CopyFromCPUUnsafeAsync(Stream, ref source, target.Length);
    }

    /// <summary>Copies <paramref name="source"/> to the host and waits for it (zeros on a dry run).</summary>
    internal void Download<T>(ArrayView<T> source, Span<T> host) where T : unmanaged
    {
        CountSynchronize(SyncKind.HostRead, (long)host.Length * Unsafe.SizeOf<T>());
        if (IsDryRun)
        {
            host.Clear();
            return;
        }
        source.CopyToCPU(Stream, host);
    }

    /// <summary>A buffer of <c>length</c> elements with no storage (a null base address): views of it may be
    /// made and passed around, never read or written.</summary>
    private sealed class Placeholder<T>(Accelerator accelerator, long length)
        : MemoryBuffer1D<T, Stride1D.Dense>(accelerator, new ArrayView1D<T, Stride1D.Dense>(
            new ArrayView<T>(CPUMemoryBuffer.Create(accelerator, IntPtr.Zero, length, Unsafe.SizeOf<T>()), 0, length), length, default))
        where T : unmanaged;
}
