using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;
using IlgpuDdw.Runtime;

namespace IlgpuDdw.Distributed;

/// <summary>Reduction of <see cref="Communicator.AllReduce{T}(Span{T}, ReduceOp)"/>.</summary>
public enum ReduceOp
{
    /// <summary>Element-wise sum.</summary>
    Sum,

    /// <summary>Element-wise maximum.</summary>
    Max,

    /// <summary>Element-wise minimum.</summary>
    Min,
}

/// <summary>A collective call failed, a rank stopped, or the MPI or NCCL library could not be used. The message names the call and the rank.</summary>
public sealed class DistributedException(string message, Exception? inner = null) : InvalidOperationException(message, inner);

/// <summary>
/// A group of processes ("ranks") that run the same program on shards of the data and exchange tensors with
/// collectives (MPI's and NCCL's names). <see cref="World"/> is the group the process was started in: under
/// <c>mpirun</c> / <c>srun</c> an <see cref="MpiCommunicator"/> over every rank, otherwise a
/// <see cref="SingleProcess"/> communicator (rank 0 of 1, every collective a no-op: a plain process behaves
/// exactly as without one). Collectives must be called by every rank in the same order; the element types are
/// <see cref="float"/>, <see cref="double"/>, <see cref="int"/>, <see cref="long"/> and <see cref="byte"/>.
/// </summary>
public abstract class Communicator : IDisposable
{
    private static readonly Lock WorldLock = new();
    private static Communicator? _world;

    /// <summary>Environment variable choosing the engine of <see cref="World"/>: <c>mpi</c> (always MPI, even without a launcher: rank 0 of 1), <c>none</c> (one process) or unset (MPI when a launcher's variables are present).</summary>
    public const string EngineVariable = "DDW_DISTRIBUTED";

    /// <summary>This process's rank, 0 ≤ Rank &lt; Size.</summary>
    public abstract int Rank { get; }

    /// <summary>Number of ranks.</summary>
    public abstract int Size { get; }

    /// <summary>The engine and library, e.g. <c>single process</c> or <c>MPI (Open MPI v4.1.4)</c>.</summary>
    public abstract string Engine { get; }

    /// <summary>Whether this is rank 0 (the rank that writes files and reports progress).</summary>
    public bool IsRoot => Rank == 0;

    /// <summary>Whether several threads may call collectives at once (on different communicators).</summary>
    public virtual bool IsThreadSafe => true;

    /// <summary>
    /// The communicator this process was started in (created on first use; MPI is initialised then). Under a
    /// launcher (Open MPI's, MPICH's Hydra, PMIx or PMI as <c>srun --mpi=pmix</c> sets up) or with
    /// <see cref="EngineVariable"/> = <c>mpi</c> it is an <see cref="MpiCommunicator"/>; otherwise
    /// <see cref="SingleProcess"/>. Disposing it finalizes MPI.
    /// </summary>
    /// <exception cref="DistributedException">A launcher is present but MPI cannot be loaded or initialised.</exception>
    public static Communicator World
    {
        get
        {
            lock (WorldLock)
            {
                if (_world is { IsDisposed: false }) return _world;
                _world = Launcher.WantsMpi() ? MpiCommunicator.InitWorld() : new SingleProcess();
                return _world;
            }
        }
    }

    /// <summary>Whether <see cref="World"/> was created (so that a program can finalize it only if it was used).</summary>
    public static bool WorldCreated
    {
        get { lock (WorldLock) return _world is { IsDisposed: false }; }
    }

    /// <summary>Whether <see cref="Dispose"/> was called.</summary>
    public bool IsDisposed { get; private set; }

    /// <summary>Combines <paramref name="values"/> element-wise over every rank, in place; every rank gets the result.</summary>
    public void AllReduce<T>(Span<T> values, ReduceOp op = ReduceOp.Sum) where T : unmanaged
    {
        ThrowIfDisposed();
        var type = TypeOf<T>(); // the same error for one process as for many
        if (Size == 1 || values.IsEmpty) return;
        AllReduceCore(MemoryMarshal.AsBytes(values), values.Length, type, op);
    }

    /// <summary>
    /// Sums <paramref name="values"/> over the ranks in place, adding the ranks' blocks pairwise bottom-up ((r0 + r1) +
    /// (r2 + r3), …: the order of <see cref="Kernels.ReductionKernels.GroupSums"/>), so every rank gets the same bits and
    /// a power-of-two block of gradient groups per rank sums as one process sums them. One or two ranks: the all-reduce
    /// itself (a sum of two values does not depend on the order); more: an all-gather and the tree on every rank.
    /// </summary>
    public void AllReducePairwise(Span<float> values)
    {
        ThrowIfDisposed();
        if (Size <= 2 || values.IsEmpty)
        {
            AllReduce(values);
            return;
        }
        var all = AllGather<float>(values);
        int n = values.Length;
        for (int w = 1; w < Size; w <<= 1)
            for (int r = 0; r + w < Size; r += 2 * w)
            {
                var into = all.AsSpan(r * n, n);
                var from = all.AsSpan((r + w) * n, n);
                for (int i = 0; i < n; i++) into[i] += from[i];
            }
        all.AsSpan(0, n).CopyTo(values);
    }

    /// <summary><see cref="AllReducePairwise(Span{float})"/> of a device buffer (after the work queued on its stream).</summary>
    public void AllReducePairwise(Device device, ArrayView<float> values)
    {
        ArgumentNullException.ThrowIfNull(device);
        ThrowIfDisposed();
        if (Size <= 2)
        {
            AllReduce(device, values);
            return;
        }
        if (values.Length == 0) return;
        DeviceCollective(device, values, bytes => AllReducePairwise(MemoryMarshal.Cast<byte, float>(bytes)));
    }

    /// <summary>Copies <paramref name="data"/> of rank <paramref name="root"/> to every rank.</summary>
    public void Broadcast<T>(Span<T> data, int root = 0) where T : unmanaged
    {
        ThrowIfDisposed();
        CheckRoot(root);
        if (Size == 1 || data.IsEmpty) return;
        BroadcastCore(MemoryMarshal.AsBytes(data), root);
    }

    /// <summary>
    /// Gathers <paramref name="send"/> of every rank into <paramref name="receive"/> (rank r's block at
    /// r·send.Length; the same length on every rank), on every rank.
    /// </summary>
    public void AllGather<T>(ReadOnlySpan<T> send, Span<T> receive) where T : unmanaged
    {
        ThrowIfDisposed();
        if (receive.Length != send.Length * Size)
            throw new ArgumentException($"AllGather on rank {Rank}: receive has {receive.Length} elements, expected {send.Length} × {Size} ranks.", nameof(receive));
        if (Size == 1) { send.CopyTo(receive); return; }
        if (send.IsEmpty) return;
        AllGatherCore(MemoryMarshal.AsBytes(send), MemoryMarshal.AsBytes(receive));
    }

    /// <summary><see cref="AllGather{T}(ReadOnlySpan{T}, Span{T})"/> into a new array.</summary>
    public T[] AllGather<T>(ReadOnlySpan<T> send) where T : unmanaged
    {
        var all = new T[send.Length * Size];
        AllGather(send, all);
        return all;
    }

    /// <summary>Waits until every rank has called it.</summary>
    public void Barrier()
    {
        ThrowIfDisposed();
        if (Size > 1) BarrierCore();
    }

    /// <summary>
    /// Combines a device buffer element-wise over every rank, in place (after the work queued on the device's stream;
    /// the call returns when the result is in <paramref name="values"/>). CPU-accelerator buffers are passed to the
    /// library directly; other device memory goes through a host copy unless the engine reads device memory.
    /// </summary>
    public void AllReduce(Device device, ArrayView<float> values, ReduceOp op = ReduceOp.Sum)
    {
        ArgumentNullException.ThrowIfNull(device);
        ThrowIfDisposed();
        if (Size == 1 || values.Length == 0) return;
        AllReduceDevice(device, values, op);
    }

    /// <summary>The device all-reduce: the host collective over the buffer's bytes (<see cref="DeviceCollective"/>); engines that read device memory override it.</summary>
    protected virtual void AllReduceDevice(Device device, ArrayView<float> values, ReduceOp op) =>
        DeviceCollective(device, values, bytes => AllReduceCore(bytes, (int)values.Length, ElementType.Float, op));

    /// <summary>The device broadcast (see <see cref="AllReduceDevice"/>).</summary>
    protected virtual void BroadcastDevice(Device device, ArrayView<float> values, int root) =>
        DeviceCollective(device, values, bytes => BroadcastCore(bytes, root));

    /// <summary>Copies a device buffer of rank <paramref name="root"/> to every rank (see <see cref="AllReduce(Device, ArrayView{float}, ReduceOp)"/>).</summary>
    public void Broadcast(Device device, ArrayView<float> values, int root = 0)
    {
        ArgumentNullException.ThrowIfNull(device);
        ThrowIfDisposed();
        CheckRoot(root);
        if (Size == 1 || values.Length == 0) return;
        BroadcastDevice(device, values, root);
    }

    /// <summary>Runs a host collective over the bytes of a device view: in place for CPU-accelerator memory, else through a host copy.</summary>
    protected static unsafe void DeviceCollective(Device device, ArrayView<float> values, SpanAction collective)
    {
        device.Stream.Synchronize();
        if (device.Kind == DeviceKind.Cpu && !device.IsDryRun)
        {
            var contiguous = (IContiguousArrayView)values;
            var address = contiguous.Buffer.NativePtr + (nint)contiguous.IndexInBytes;
            collective(new Span<byte>((void*)address, checked((int)values.LengthInBytes)));
            return;
        }
        var host = new float[values.Length];
        values.CopyToCPU(device.Stream, host);
        device.Stream.Synchronize();
        collective(MemoryMarshal.AsBytes(host.AsSpan()));
        values.CopyFromCPU(device.Stream, host);
        device.Stream.Synchronize();
    }

    /// <summary>A collective over a byte span (<see cref="DeviceCollective"/>).</summary>
    protected delegate void SpanAction(Span<byte> bytes);

    /// <summary>
    /// A second communicator over the same ranks whose collectives are independent of this one's (MPI_Comm_dup):
    /// a communication thread uses it while the main thread keeps calling this one.
    /// </summary>
    public abstract Communicator Duplicate();

    /// <summary>Stops every rank of the job with <paramref name="exitCode"/> (MPI_Abort); returns only for one process.</summary>
    public abstract void Abort(int exitCode);

    /// <summary>The element types the engines know.</summary>
    protected internal enum ElementType { Float, Double, Int, Long, Byte }

    /// <summary>Bytes per element of <paramref name="type"/>.</summary>
    protected static int SizeOf(ElementType type) => type switch { ElementType.Double or ElementType.Long => 8, ElementType.Byte => 1, _ => 4 };

    /// <summary>All-reduce of <paramref name="count"/> elements of <paramref name="type"/> in <paramref name="bytes"/>, in place.</summary>
    protected abstract void AllReduceCore(Span<byte> bytes, int count, ElementType type, ReduceOp op);

    /// <summary>Broadcast of <paramref name="bytes"/> from <paramref name="root"/>.</summary>
    protected abstract void BroadcastCore(Span<byte> bytes, int root);

    /// <summary>All-gather of equal-sized byte blocks.</summary>
    protected abstract void AllGatherCore(ReadOnlySpan<byte> send, Span<byte> receive);

    /// <summary>Barrier.</summary>
    protected abstract void BarrierCore();

    /// <summary>Releases the engine's resources (finalizes MPI for the world communicator).</summary>
    protected virtual void Release() { }

    private static ElementType TypeOf<T>() where T : unmanaged =>
        typeof(T) == typeof(float) ? ElementType.Float
        : typeof(T) == typeof(double) ? ElementType.Double
        : typeof(T) == typeof(int) ? ElementType.Int
        : typeof(T) == typeof(long) ? ElementType.Long
        : typeof(T) == typeof(byte) ? ElementType.Byte
        : throw new NotSupportedException($"Collectives take float, double, int, long or byte elements; got {typeof(T).Name}.");

    private void CheckRoot(int root)
    {
        if ((uint)root >= (uint)Size)
            throw new ArgumentOutOfRangeException(nameof(root), root, $"root must be a rank in 0..{Size - 1}");
    }

    /// <summary>Throws when disposed.</summary>
    protected void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(IsDisposed, this);

    /// <inheritdoc/>
    public override string ToString() => $"rank {Rank} of {Size} ({Engine})";

    /// <summary>Releases the communicator (the world communicator finalizes MPI). Safe to call twice.</summary>
    public void Dispose()
    {
        if (IsDisposed) return;
        IsDisposed = true;
        Release();
        GC.SuppressFinalize(this);
    }

    /// <summary>One process: rank 0 of 1; every collective returns at once (the data are already "reduced").</summary>
    public sealed class SingleProcess : Communicator
    {
        /// <inheritdoc/>
        public override int Rank => 0;

        /// <inheritdoc/>
        public override int Size => 1;

        /// <inheritdoc/>
        public override string Engine => "single process";

        /// <inheritdoc/>
        public override Communicator Duplicate() => new SingleProcess();

        /// <inheritdoc/>
        public override void Abort(int exitCode) { }

        /// <inheritdoc/>
        protected override void AllReduceCore(Span<byte> bytes, int count, ElementType type, ReduceOp op) { }

        /// <inheritdoc/>
        protected override void BroadcastCore(Span<byte> bytes, int root) { }

        /// <inheritdoc/>
        protected override void AllGatherCore(ReadOnlySpan<byte> send, Span<byte> receive) => send.CopyTo(receive);

        /// <inheritdoc/>
        protected override void BarrierCore() { }
    }
}
