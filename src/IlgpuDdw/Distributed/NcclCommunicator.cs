using ILGPU;
using IlgpuDdw.Runtime;

namespace IlgpuDdw.Distributed;

/// <summary>
/// Collectives between GPUs through NCCL, one rank per GPU. The 128-byte unique id is made by rank 0 and broadcast
/// over the bootstrap communicator (MPI); without one (a bootstrap of one rank), every rank makes it from
/// <c>NCCL_COMM_ID=host:port</c> with <c>RANK</c> and <c>WORLD_SIZE</c>, as NCCL documents.
/// <para>
/// The CUDA context: ILGPU 1.5.3 creates a context of its own, while NCCL works in the device's primary context (its
/// <c>cudaSetDevice</c> makes that current in every call). This engine keeps the two apart: it owns a stream and a
/// staging buffer in the primary context, copies a bucket into the staging buffer with <c>cuMemcpyPeerAsync</c>
/// (context to context on the same GPU), runs the NCCL collective there, copies it back on the same stream, waits for
/// it and makes ILGPU's context current again. Host collectives go to the bootstrap communicator when it has the
/// ranks, otherwise through the staging buffer.
/// </para>
/// </summary>
public sealed unsafe class NcclCommunicator : Communicator
{
    private readonly NcclLibrary _nccl;
    private readonly Communicator? _bootstrap;
    private readonly nint _comm, _stream, _primary, _ilgpuContext;
    private readonly int _ordinal;
    private nint _staging;
    private long _stagingBytes;

    private NcclCommunicator(NcclLibrary nccl, Communicator? bootstrap, int rank, int size, nint comm, nint stream, nint primary, nint ilgpuContext, int ordinal)
    {
        (_nccl, _bootstrap, Rank, Size, _comm, _stream, _primary, _ilgpuContext, _ordinal) = (nccl, bootstrap, rank, size, comm, stream, primary, ilgpuContext, ordinal);
        int v = nccl.Version();
        Engine = $"NCCL {v / 10000}.{v / 100 % 100}.{v % 100}" + (bootstrap is { Size: > 1 } b ? $" over {b.Engine}" : " (NCCL_COMM_ID)");
    }

    /// <summary>
    /// The rank and size NCCL will use: the bootstrap's when it has more than one rank, else <c>RANK</c> and
    /// <c>WORLD_SIZE</c> with <c>NCCL_COMM_ID</c> set.
    /// </summary>
    /// <exception cref="ArgumentException">The device is not a Cuda GPU, or neither the bootstrap nor the environment give the ranks.</exception>
    public static (int Rank, int Size) Ranks(Communicator? bootstrap, Device device, Func<string, string?>? environment = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (device.Kind != DeviceKind.Cuda || device.IsDryRun)
            throw new ArgumentException($"NCCL needs a Cuda device; got {device.Spec}{(device.IsDryRun ? " (dry run)" : "")}.");
        return Ranks(bootstrap, environment);
    }

    /// <summary>The ranks of <see cref="Ranks(Communicator?, Device, Func{string, string?}?)"/> once the device is known to be a GPU.</summary>
    internal static (int Rank, int Size) Ranks(Communicator? bootstrap, Func<string, string?>? environment)
    {
        environment ??= Environment.GetEnvironmentVariable;
        if (bootstrap is { Size: > 1 }) return (bootstrap.Rank, bootstrap.Size);
        if (string.IsNullOrEmpty(environment("NCCL_COMM_ID")))
            throw new ArgumentException("NCCL needs the ranks: start the processes with mpirun / srun, or set NCCL_COMM_ID=host:port, RANK and WORLD_SIZE.");
        if (!int.TryParse(environment("WORLD_SIZE"), out int size) || size < 1)
            throw new ArgumentException($"WORLD_SIZE must be a positive integer; got '{environment("WORLD_SIZE")}'.");
        if (!int.TryParse(environment("RANK"), out int rank) || rank < 0 || rank >= size)
            throw new ArgumentException($"RANK must be in 0..{size - 1}; got '{environment("RANK")}'.");
        return (rank, size);
    }

    /// <summary>Creates the NCCL communicator of <paramref name="device"/> (one GPU per rank; see <see cref="Ranks(Communicator?, Device, Func{string, string?}?)"/>).</summary>
    /// <exception cref="ArgumentException">See <see cref="Ranks(Communicator?, Device, Func{string, string?}?)"/>.</exception>
    /// <exception cref="DistributedException">NCCL or the driver cannot be loaded, or a call fails.</exception>
    public static NcclCommunicator Create(Communicator? bootstrap, Device device)
    {
        var (rank, size) = Ranks(bootstrap, device);
        var nccl = NcclLibrary.Load();
        NcclUniqueId id;
        if (bootstrap is { Size: > 1 })
        {
            id = default;
            if (rank == 0) nccl.Check(nccl.GetUniqueId(out id), "ncclGetUniqueId", rank, size);
            bootstrap.Broadcast(id.AsSpan());
        }
        else nccl.Check(nccl.GetUniqueId(out id), "ncclGetUniqueId", rank, size); // from NCCL_COMM_ID
        device.Accelerator.Bind();
        nint ilgpu = device.Accelerator.NativePtr;
        int ordinal = CudaDriver.CurrentDevice();
        nint primary = CudaDriver.RetainPrimary(ordinal);
        try
        {
            CudaDriver.SetCurrent(primary);
            nint stream = CudaDriver.CreateStream();
            nccl.Check(nccl.CommInitRank(out var comm, size, id, rank), "ncclCommInitRank", rank, size);
            return new NcclCommunicator(nccl, bootstrap, rank, size, comm, stream, primary, ilgpu, ordinal);
        }
        finally
        {
            CudaDriver.SetCurrent(ilgpu);
        }
    }

    /// <inheritdoc/>
    public override int Rank { get; }

    /// <inheritdoc/>
    public override int Size { get; }

    /// <inheritdoc/>
    public override string Engine { get; }

    /// <inheritdoc/>
    public override bool IsThreadSafe => false;

    /// <inheritdoc/>
    public override Communicator Duplicate() =>
        throw new NotSupportedException("An NCCL communicator is not duplicated: its collectives are ordered on its own stream.");

    /// <inheritdoc/>
    public override void Abort(int exitCode)
    {
        _nccl.Abort(_comm);
        _bootstrap?.Abort(exitCode);
    }

    /// <inheritdoc/>
    protected override void AllReduceDevice(Device device, ArrayView<float> values, ReduceOp op) =>
        OnDevice(device, values, staging => _nccl.Check(_nccl.AllReduce(staging, staging, values.Length, NcclLibrary.Float32, NcclLibrary.Op(op), _comm, _stream), "ncclAllReduce", Rank, Size));

    /// <inheritdoc/>
    protected override void BroadcastDevice(Device device, ArrayView<float> values, int root) =>
        OnDevice(device, values, staging => _nccl.Check(_nccl.Broadcast(staging, staging, values.Length, NcclLibrary.Float32, root, _comm, _stream), "ncclBroadcast", Rank, Size));

    private void OnDevice(Device device, ArrayView<float> values, Action<nint> collective)
    {
        device.Stream.Synchronize();
        var contiguous = (IContiguousArrayView)values;
        nint address = contiguous.Buffer.NativePtr + (nint)contiguous.IndexInBytes;
        long bytes = values.LengthInBytes;
        try
        {
            CudaDriver.SetCurrent(_primary);
            var staging = Staging(bytes);
            CudaDriver.CopyPeerAsync(staging, _primary, address, _ilgpuContext, bytes, _stream);
            collective(staging);
            CudaDriver.CopyPeerAsync(address, _ilgpuContext, staging, _primary, bytes, _stream);
            CudaDriver.Synchronize(_stream);
            CheckAsync();
        }
        finally
        {
            CudaDriver.SetCurrent(_ilgpuContext);
        }
    }

    private nint Staging(long bytes)
    {
        if (bytes <= _stagingBytes) return _staging;
        if (_staging != 0) CudaDriver.Free(_staging);
        _staging = CudaDriver.Allocate(bytes);
        _stagingBytes = bytes;
        return _staging;
    }

    private void CheckAsync()
    {
        int error = _nccl.AsyncError(_comm);
        if (error != 0) _nccl.Check(error, "ncclCommGetAsyncError", Rank, Size);
    }

    /// <inheritdoc/>
    protected override void AllReduceCore(Span<byte> bytes, int count, ElementType type, ReduceOp op)
    {
        if (_bootstrap is { Size: > 1 } b) { AllReduceOn(b, bytes, count, type, op); return; }
        int nt = type switch { ElementType.Float => NcclLibrary.Float32, ElementType.Double => NcclLibrary.Float64, ElementType.Int => NcclLibrary.Int32, ElementType.Long => NcclLibrary.Int64, _ => NcclLibrary.Uint8 };
        Host(bytes, staging => _nccl.Check(_nccl.AllReduce(staging, staging, count, nt, NcclLibrary.Op(op), _comm, _stream), "ncclAllReduce", Rank, Size));
    }

    private static void AllReduceOn(Communicator c, Span<byte> bytes, int count, ElementType type, ReduceOp op)
    {
        switch (type)
        {
            case ElementType.Float: c.AllReduce(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes), op); break;
            case ElementType.Double: c.AllReduce(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(bytes), op); break;
            case ElementType.Int: c.AllReduce(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, int>(bytes), op); break;
            case ElementType.Long: c.AllReduce(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(bytes), op); break;
            default: c.AllReduce(bytes, op); break;
        }
    }

    /// <inheritdoc/>
    protected override void BroadcastCore(Span<byte> bytes, int root)
    {
        if (_bootstrap is { Size: > 1 } b) { b.Broadcast(bytes, root); return; }
        int length = bytes.Length;
        Host(bytes, staging => _nccl.Check(_nccl.Broadcast(staging, staging, length, NcclLibrary.Uint8, root, _comm, _stream), "ncclBroadcast", Rank, Size));
    }

    /// <inheritdoc/>
    protected override void AllGatherCore(ReadOnlySpan<byte> send, Span<byte> receive)
    {
        if (_bootstrap is { Size: > 1 } b) { b.AllGather(send, receive); return; }
        receive.Clear(); // each rank fills its block; the byte sum of the blocks is the gather
        send.CopyTo(receive[(Rank * send.Length)..]);
        AllReduceCore(receive, receive.Length, ElementType.Byte, ReduceOp.Sum);
    }

    /// <inheritdoc/>
    protected override void BarrierCore()
    {
        Span<byte> one = [0];
        AllReduceCore(one, 1, ElementType.Byte, ReduceOp.Sum);
    }

    private void Host(Span<byte> bytes, Action<nint> collective)
    {
        try
        {
            CudaDriver.SetCurrent(_primary);
            var staging = Staging(bytes.Length);
            fixed (byte* p = bytes)
            {
                CudaDriver.CopyToDevice(staging, p, bytes.Length);
                collective(staging);
                CudaDriver.Synchronize(_stream);
                CudaDriver.CopyToHost(p, staging, bytes.Length);
            }
            CheckAsync();
        }
        finally
        {
            CudaDriver.SetCurrent(_ilgpuContext);
        }
    }

    /// <inheritdoc/>
    protected override void Release()
    {
        CudaDriver.SetCurrent(_primary);
        _nccl.Destroy(_comm);
        if (_staging != 0) CudaDriver.Free(_staging);
        CudaDriver.DestroyStream(_stream);
        CudaDriver.SetCurrent(_ilgpuContext);
        CudaDriver.ReleasePrimary(_ordinal);
    }
}
