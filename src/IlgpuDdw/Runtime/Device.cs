using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace IlgpuDdw.Runtime;

/// <summary>The accelerator family a <see cref="Device"/> runs on.</summary>
public enum DeviceKind
{
    /// <summary>ILGPU's CPU accelerator (a thread simulator; tests and small runs).</summary>
    Cpu,
    /// <summary>An NVIDIA GPU through ILGPU's Cuda accelerator (the fast path).</summary>
    Cuda,
}

/// <summary>What <see cref="Device.ListDevices"/> reports about one accelerator that exists on this machine.</summary>
/// <param name="Spec">The string that selects it (<c>cpu</c>, <c>cuda:0</c>, ...).</param>
/// <param name="Name">The accelerator's name.</param>
/// <param name="MemoryBytes">Device memory in bytes.</param>
/// <param name="WarpSize">Threads per warp.</param>
/// <param name="Multiprocessors">Number of multiprocessors (cores on the CPU accelerator).</param>
public sealed record DeviceInfo(string Spec, string Name, long MemoryBytes, int WarpSize, int Multiprocessors);

/// <summary>
/// Owns an ILGPU <see cref="Context"/> and one <see cref="Accelerator"/>, the <see cref="KernelSet"/> loaded
/// for it, the launch-extent policy (every kernel is a grid-stride loop) and the device-memory accounting and
/// buffer pool used by <see cref="Tensor"/>. Not thread-safe: use one device from one thread at a time.
/// </summary>
public sealed partial class Device : IDisposable
{
    /// <summary>Environment variable consulted when no device is given explicitly.</summary>
    public const string EnvironmentVariable = "DDW_DEVICE";

    private readonly Context _context;
    private readonly Dictionary<long, Stack<MemoryBuffer1D<float, Stride1D.Dense>>> _pool = new();
    private KernelSet? _kernels;
    private bool _disposed;

    private Device(Context context, Accelerator accelerator, DeviceKind kind, string spec)
    {
        _context = context;
        Accelerator = accelerator;
        Kind = kind;
        Spec = spec;
        MaxThreads = kind == DeviceKind.Cpu
            ? accelerator.MaxNumThreads
            : accelerator.NumMultiprocessors * accelerator.MaxNumThreadsPerMultiprocessor;
    }

    /// <summary>The ILGPU accelerator.</summary>
    public Accelerator Accelerator { get; }

    /// <summary>CPU accelerator or Cuda GPU.</summary>
    public DeviceKind Kind { get; }

    /// <summary>The spec this device was created from (<c>cpu</c>, <c>cuda:0</c>).</summary>
    public string Spec { get; }

    /// <summary>The accelerator's name.</summary>
    public string Name => DryRunGpu?.Card ?? Accelerator.Name;

    /// <summary>Most threads one grid-stride launch uses on this device.</summary>
    public int MaxThreads { get; }

    /// <summary>Threads per warp (on a dry run, the modelled GPU's).</summary>
    public int WarpSize => DryRunGpu?.WarpSize ?? Accelerator.WarpSize;

    /// <summary>Most threads one group may hold (on a dry run, the modelled GPU's).</summary>
    public int MaxThreadsPerGroup => DryRunGpu?.MaxThreadsPerGroup ?? Accelerator.MaxNumThreadsPerGroup;

    /// <summary>A group size of whole warps, at most <paramref name="most"/> and what a group may hold (at least one warp).</summary>
    internal int WholeWarps(int most) => Math.Max(WarpSize, Math.Min(most, MaxThreadsPerGroup) / WarpSize * WarpSize);

    /// <summary>
    /// Throws unless <paramref name="groupSize"/> suits a kernel that reduces over its group with a warp-shuffle butterfly,
    /// one shared-memory entry per warp and the same butterfly in the first warp: a positive multiple of the warp size,
    /// within the device's group limit, at most a warp of warps and at most <see cref="BatchNormKernels.MaxWarpsPerGroup"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The group size breaks one of those limits (parameter name "plan").</exception>
    internal void ValidateReductionGroup(string op, int groupSize)
    {
        int warp = WarpSize, limit = MaxThreadsPerGroup;
        int maxWarps = Math.Min(warp, BatchNormKernels.MaxWarpsPerGroup);
        if (groupSize < warp || groupSize % warp != 0 || groupSize > limit || groupSize / warp > maxWarps)
            throw new ArgumentException(
                $"{op}: group size must be a multiple of the warp size {warp}, at most {Math.Min(limit, maxWarps * warp)}; got {groupSize}.", "plan");
    }

    /// <summary>
    /// Whether the convolutions' forward and input-gradient GEMMs default to TF32 tensor cores
    /// (<see cref="Conv2dKernels.ForwardTiledTf32"/>, <see cref="Conv2dKernels.BackwardInputTiledTf32"/>: operands rounded
    /// to TF32, FP32 sums); off by default, when every kernel computes in FP32. The weight gradient and every other op
    /// stay FP32. On the CPU accelerator the TF32 kernels run their exact emulation: the same rounding and tiling,
    /// far slower than the FP32 kernels, for checking the path rather than for speed.
    /// </summary>
    public bool Tf32 { get; set; }

    /// <summary>Every kernel of the library, loaded for this device on first use.</summary>
    public KernelSet Kernels => _kernels ??= new KernelSet(this);

    /// <summary>The stream kernels are launched on.</summary>
    public AcceleratorStream Stream => Accelerator.DefaultStream;

    /// <summary>Device buffers currently handed out to tensors.</summary>
    public int LiveBuffers { get; private set; }

    /// <summary>Bytes currently handed out to tensors.</summary>
    public long LiveBytes { get; private set; }

    /// <summary>Highest <see cref="LiveBytes"/> since creation or the last <see cref="ResetPeak"/>.</summary>
    public long PeakBytes { get; private set; }

    /// <summary>Highest <see cref="LiveBuffers"/> since creation or the last <see cref="ResetPeak"/>.</summary>
    public int PeakBuffers { get; private set; }

    /// <summary>Bytes held in the reuse pool (allocated on the device, not handed out).</summary>
    public long PooledBytes { get; private set; }

    /// <summary>Whether released buffers are kept for reuse (default true). Turning it off trims the pool.</summary>
    public bool PoolingEnabled
    {
        get => _poolingEnabled;
        set { _poolingEnabled = value; if (!value) TrimPool(); }
    }
    private bool _poolingEnabled = true;

    /// <summary>
    /// Creates a device from a spec: <c>cpu</c>, <c>cuda</c> (first GPU), <c>cuda:N</c>, or <c>auto</c> (a Cuda
    /// GPU when present, else the CPU accelerator). A null or empty spec reads <c>DDW_DEVICE</c>, then
    /// falls back to <c>auto</c>.
    /// </summary>
    /// <exception cref="ArgumentException">The spec is malformed or names a device that does not exist; the
    /// message lists the devices that do.</exception>
    public static Device Create(string? spec = null)
    {
        spec = string.IsNullOrWhiteSpace(spec) ? Environment.GetEnvironmentVariable(EnvironmentVariable) : spec;
        spec = string.IsNullOrWhiteSpace(spec) ? "auto" : spec.Trim().ToLowerInvariant();
        if (spec == "auto")
            return CudaCount() > 0 ? CreateCuda(0) : CreateCpu(CpuDeviceConfig());
        if (spec == "cpu")
            return CreateCpu(CpuDeviceConfig());
        if (spec == "cuda" || spec == "gpu")
            return CreateCuda(0);
        if (spec.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(spec.AsSpan(5), out int ordinal))
            return CreateCuda(ordinal);
        throw new ArgumentException(
            $"Unknown device '{spec}'. Use cpu, cuda, cuda:N or auto. Devices here: {DescribeAvailable()}.", nameof(spec));
    }

    /// <summary>Lists the accelerators on this machine (the CPU accelerator always, plus every Cuda GPU).</summary>
    public static IReadOnlyList<DeviceInfo> ListDevices()
    {
        var list = new List<DeviceInfo>();
        using var context = Context.Create(b => b.CPU(CpuDeviceConfig()).Cuda());
        foreach (var d in context.Devices)
        {
            if (d.AcceleratorType == AcceleratorType.CPU)
                list.Add(new DeviceInfo("cpu", d.Name, d.MemorySize, d.WarpSize, d.NumMultiprocessors));
        }
        int n = 0;
        foreach (var d in context.GetCudaDevices())
            list.Add(new DeviceInfo($"cuda:{n++}", d.Name, d.MemorySize, d.WarpSize, d.NumMultiprocessors));
        return list;
    }

    private static string DescribeAvailable() =>
        string.Join(", ", ListDevices().Select(d => $"{d.Spec} ({d.Name})"));

    private static int CudaCount()
    {
        using var context = Context.Create(b => b.Cuda());
        return context.GetCudaDevices().Count;
    }

    /// <summary>
    /// The CPU accelerator's simulated device: warps of 2 threads (the smallest ILGPU allows), one warp per
    /// multiprocessor, one multiprocessor per core. Every simulated thread is an OS thread that each launch wakes
    /// and joins, so few threads is what makes launches cheap: measured on a 2-core machine, a tiny launch takes
    /// 56 µs with this configuration against 474 µs–3.9 ms with 4 warps of 4 threads, and a 1M-element ReLU 1.0 ms
    /// against 9.7 ms (a plain C# loop: 1.9 ms).
    /// </summary>
    private static CPUDevice CpuDeviceConfig() => new(2, 1, Math.Max(1, Environment.ProcessorCount));

    /// <summary>
    /// A CPU accelerator whose groups hold up to <paramref name="threadsPerWarp"/> · <paramref name="warpsPerGroup"/>
    /// threads (one group per core at a time), for tests of explicitly grouped kernels at several warps per group.
    /// Launches cost more than on <c>cpu</c>, whose groups are single warps of 2 threads.
    /// </summary>
    public static Device CreateCpu(int threadsPerWarp, int warpsPerGroup) =>
        CreateCpu(new CPUDevice(threadsPerWarp, warpsPerGroup, Math.Max(1, Environment.ProcessorCount)));

    private static Device CreateCpu(CPUDevice config)
    {
        var context = Context.Create(b => b.CPU(config).EnableAlgorithms().Optimize(OptimizationLevel.O1));
        var accelerator = context.CreateCPUAccelerator(0);
        return new Device(context, accelerator, DeviceKind.Cpu, "cpu");
    }

    private static Device CreateCuda(int ordinal)
    {
        var context = Context.Create(b => b.Cuda().EnableAlgorithms().Optimize(OptimizationLevel.O2).Profiling());
        var devices = context.GetCudaDevices();
        if (ordinal < 0 || ordinal >= devices.Count)
        {
            context.Dispose();
            throw new ArgumentException(
                $"Cuda device {ordinal} was requested but {devices.Count} Cuda GPU(s) exist. Devices here: {DescribeAvailable()}.");
        }
        var accelerator = context.CreateCudaAccelerator(ordinal);
        return new Device(context, accelerator, DeviceKind.Cuda, $"cuda:{ordinal}");
    }

    /// <summary>
    /// The launch extent (number of logical threads) for a grid-stride kernel over <paramref name="work"/>
    /// independent items: on the CPU accelerator at most one thread per simulated hardware thread, on a GPU
    /// enough whole groups to fill every multiprocessor. Always at least 1.
    /// </summary>
    public int Extent(long work)
    {
        if (work <= 1) return 1;
        if (Kind == DeviceKind.Cpu)
            return (int)Math.Min(work, MaxThreads);
        long groups = (work + GpuGroupSize - 1) / GpuGroupSize;
        long max = MaxThreads / GpuGroupSize * 2;
        return (int)(Math.Min(groups, Math.Max(1, max)) * GpuGroupSize);
    }

    /// <summary>Waits for every launched kernel to finish (counted in <see cref="Synchronizations"/>; nothing to wait for on a dry run).</summary>
    public void Synchronize()
    {
        CountSynchronize(SyncKind.Synchronize, 0);
        if (!IsDryRun) Accelerator.Synchronize();
    }

    /// <summary>Resets <see cref="PeakBytes"/> and <see cref="PeakBuffers"/> to the current live values.</summary>
    public void ResetPeak()
    {
        PeakBytes = LiveBytes;
        PeakBuffers = LiveBuffers;
    }

    /// <summary>Frees every pooled (idle) buffer on the device.</summary>
    public void TrimPool()
    {
        foreach (var stack in _pool.Values)
            while (stack.Count > 0) stack.Pop().Dispose();
        _pool.Clear();
        PooledBytes = 0;
    }

    internal MemoryBuffer1D<float, Stride1D.Dense> Rent(long length)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        long key = Math.Max(1, length);
        MemoryBuffer1D<float, Stride1D.Dense> buffer;
        if (_pool.TryGetValue(key, out var stack) && stack.Count > 0)
        {
            buffer = stack.Pop();
            PooledBytes -= key * sizeof(float);
        }
        else
        {
            buffer = Allocate<float>(key);
        }
        LiveBuffers++;
        LiveBytes += key * sizeof(float);
        if (LiveBytes > PeakBytes) PeakBytes = LiveBytes;
        if (LiveBuffers > PeakBuffers) PeakBuffers = LiveBuffers;
        return buffer;
    }

    internal void Return(MemoryBuffer1D<float, Stride1D.Dense> buffer)
    {
        long key = buffer.Length;
        LiveBuffers--;
        LiveBytes -= key * sizeof(float);
        if (_disposed || !_poolingEnabled)
        {
            buffer.Dispose();
            return;
        }
        if (!_pool.TryGetValue(key, out var stack))
            _pool[key] = stack = new Stack<MemoryBuffer1D<float, Stride1D.Dense>>();
        stack.Push(buffer);
        PooledBytes += key * sizeof(float);
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Spec} ({Name})";

    /// <summary>Frees the pool, the accelerator and the context. Tensors still alive become unusable.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        TrimPool();
        _disposed = true;
        Accelerator.Dispose();
        _context.Dispose();
    }
}
