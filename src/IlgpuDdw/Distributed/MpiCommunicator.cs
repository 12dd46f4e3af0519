namespace IlgpuDdw.Distributed;

/// <summary>
/// Collectives over MPI (Open MPI or MPICH, detected when the library loads; see <see cref="MpiLibrary"/>).
/// <see cref="InitWorld"/> calls <c>MPI_Init_thread(MPI_THREAD_MULTIPLE)</c>; without a launcher MPI makes the
/// process a "singleton", rank 0 of 1. Errors come back as codes (<c>MPI_ERRORS_RETURN</c>) and are thrown as
/// <see cref="DistributedException"/> naming the call and the rank. A rank that dies makes the launcher end the job;
/// a rank that raises should call <see cref="Communicator.Abort"/> so that the others do not wait for it.
/// </summary>
public sealed unsafe class MpiCommunicator : Communicator
{
    private readonly MpiLibrary _mpi;
    private readonly nint _comm;
    private readonly bool _world;
    private readonly int _threadLevel;

    private MpiCommunicator(MpiLibrary mpi, nint comm, bool world, int threadLevel)
    {
        _mpi = mpi;
        _comm = comm;
        _world = world;
        _threadLevel = threadLevel;
        Check(mpi.CommRank(comm, out int rank), "MPI_Comm_rank", -1, 0);
        Check(mpi.CommSize(comm, out int size), "MPI_Comm_size", rank, 0);
        Rank = rank;
        Size = size;
        Engine = $"MPI ({mpi.Version()})";
    }

    /// <summary>
    /// Loads MPI, initialises it with <c>MPI_THREAD_MULTIPLE</c> (or uses the initialisation already done by the
    /// process) and returns the communicator of every rank (<c>MPI_COMM_WORLD</c>). Disposing it finalizes MPI.
    /// </summary>
    /// <exception cref="DistributedException">The library cannot be loaded or initialised.</exception>
    public static MpiCommunicator InitWorld()
    {
        var mpi = MpiLibrary.Load();
        int level = MpiLibrary.ThreadMultiple;
        if (!mpi.Initialized())
        {
            int rc = mpi.InitThread(MpiLibrary.ThreadMultiple, out level);
            if (rc != 0)
                throw new DistributedException($"MPI_Init_thread failed on rank {Launcher.Announced()?.Rank.ToString() ?? "?"} ({mpi.Path}): {mpi.ErrorString(rc)}.");
        }
        var world = new MpiCommunicator(mpi, mpi.CommWorld, world: true, level);
        world.Check(mpi.SetErrorsReturn(mpi.CommWorld), "MPI_Comm_set_errhandler", 0);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => world.Dispose();
        return world;
    }

    /// <inheritdoc/>
    public override int Rank { get; }

    /// <inheritdoc/>
    public override int Size { get; }

    /// <inheritdoc/>
    public override string Engine { get; }

    /// <summary>The file of the MPI library in use.</summary>
    public string LibraryPath => _mpi.Path;

    /// <summary>Whether the library has Open MPI's handle ABI (else MPICH's).</summary>
    public bool IsOpenMpi => _mpi.IsOpenMpi;

    /// <summary>The thread level MPI provides (3 = <c>MPI_THREAD_MULTIPLE</c>).</summary>
    public int ThreadLevel => _threadLevel;

    /// <inheritdoc/>
    public override bool IsThreadSafe => _threadLevel >= MpiLibrary.ThreadMultiple;

    /// <inheritdoc/>
    public override Communicator Duplicate()
    {
        ThrowIfDisposed();
        Check(_mpi.CommDup(_comm, out var copy), "MPI_Comm_dup", 0);
        Check(_mpi.SetErrorsReturn(copy), "MPI_Comm_set_errhandler", 0);
        return new MpiCommunicator(_mpi, copy, world: false, _threadLevel);
    }

    /// <inheritdoc/>
    public override void Abort(int exitCode)
    {
        Console.Out.Flush();
        Console.Error.Flush();
        _mpi.Abort(_mpi.CommWorld, exitCode);
    }

    /// <inheritdoc/>
    protected override void AllReduceCore(Span<byte> bytes, int count, ElementType type, ReduceOp op)
    {
        fixed (byte* p = bytes)
            Check(_mpi.AllReduceInPlace(p, count, Handle(type), op switch { ReduceOp.Max => _mpi.Max, ReduceOp.Min => _mpi.Min, _ => _mpi.Sum }, _comm),
                "MPI_Allreduce", bytes.Length);
    }

    /// <inheritdoc/>
    protected override void BroadcastCore(Span<byte> bytes, int root)
    {
        fixed (byte* p = bytes)
            Check(_mpi.Bcast(p, bytes.Length, _mpi.Byte, root, _comm), "MPI_Bcast", bytes.Length);
    }

    /// <inheritdoc/>
    protected override void AllGatherCore(ReadOnlySpan<byte> send, Span<byte> receive)
    {
        fixed (byte* s = send)
        fixed (byte* r = receive)
            Check(_mpi.AllGather(s, send.Length, r, send.Length, _comm), "MPI_Allgather", receive.Length);
    }

    /// <inheritdoc/>
    protected override void BarrierCore() => Check(_mpi.Barrier(_comm), "MPI_Barrier", 0);

    /// <inheritdoc/>
    protected override void Release()
    {
        if (_mpi.Finalized()) return;
        if (_world) _mpi.Finalize();
        else _mpi.CommFree(_comm);
    }

    private nint Handle(ElementType type) => type switch
    {
        ElementType.Float => _mpi.Float,
        ElementType.Double => _mpi.Double,
        ElementType.Int => _mpi.Int,
        ElementType.Long => _mpi.Long,
        _ => _mpi.Byte,
    };

    private void Check(int rc, string call, int bytes) => Check(rc, call, Rank, Size, bytes);

    private void Check(int rc, string call, int rank, int bytes) => Check(rc, call, rank, 0, bytes);

    private void Check(int rc, string call, int rank, int size, int bytes)
    {
        if (rc == 0) return;
        string where = rank < 0 ? "" : size > 0 ? $" on rank {rank} of {size}" : $" on rank {rank}";
        throw new DistributedException($"{call} failed{where}{(bytes > 0 ? $" ({bytes} bytes)" : "")}: {_mpi.ErrorString(rc)} (MPI error {rc}).");
    }
}
