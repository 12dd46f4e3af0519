using System.Runtime.InteropServices;
using System.Text;

namespace IlgpuDdw.Distributed;

/// <summary>
/// A thin binding of the MPI C API (no native build): the library is opened with <c>dlopen(RTLD_NOW | RTLD_GLOBAL)</c>
/// (Open MPI's plugins need its symbols global), its functions are called through unmanaged function pointers, and
/// the handle ABI is detected at load. Open MPI's handles (<c>MPI_COMM_WORLD</c>, <c>MPI_FLOAT</c>, <c>MPI_SUM</c>) are
/// the addresses of exported globals (<c>ompi_mpi_comm_world</c>, ...) and <c>MPI_IN_PLACE</c> is 1; MPICH's (and
/// Intel MPI's, MVAPICH's, Cray MPICH's) are int constants and <c>MPI_IN_PLACE</c> is −1. Handles are passed as
/// pointer-sized integers: an MPICH int handle travels in the low half of the register or stack slot, as the C calling
/// convention of x86-64 and AArch64 reads it.
/// </summary>
internal sealed unsafe class MpiLibrary
{
    /// <summary>Environment variable naming the MPI library to load (a path or a file name).</summary>
    public const string LibraryVariable = "DDW_MPI_LIBRARY";

    /// <summary>Library names tried in order when <see cref="LibraryVariable"/> is unset: Open MPI 4/5, MPICH 3/4.</summary>
    public static readonly IReadOnlyList<string> Candidates = ["libmpi.so.40", "libmpi.so.12", "libmpi.so", "libmpich.so.12"];

    public const int ThreadMultiple = 3;

    private readonly nint _library;
    private readonly delegate* unmanaged<int*, byte***, int, int*, int> _initThread;
    private readonly delegate* unmanaged<int*, int> _initialized;
    private readonly delegate* unmanaged<int*, int> _finalized;
    private readonly delegate* unmanaged<int> _finalize;
    private readonly delegate* unmanaged<nint, int*, int> _commRank;
    private readonly delegate* unmanaged<nint, int*, int> _commSize;
    private readonly delegate* unmanaged<nint, nint*, int> _commDup;
    private readonly delegate* unmanaged<nint*, int> _commFree;
    private readonly delegate* unmanaged<nint, nint, int> _commSetErrhandler;
    private readonly delegate* unmanaged<void*, void*, int, nint, nint, nint, int> _allreduce;
    private readonly delegate* unmanaged<void*, int, nint, int, nint, int> _bcast;
    private readonly delegate* unmanaged<void*, int, nint, void*, int, nint, nint, int> _allgather;
    private readonly delegate* unmanaged<nint, int> _barrier;
    private readonly delegate* unmanaged<nint, int, int> _abort;
    private readonly delegate* unmanaged<int, byte*, int*, int> _errorString;
    private readonly delegate* unmanaged<byte*, int*, int> _libraryVersion;

    private MpiLibrary(nint library, string path)
    {
        _library = library;
        Path = path;
        IsOpenMpi = NativeLibrary.TryGetExport(library, "ompi_mpi_comm_world", out var world);
        _initThread = (delegate* unmanaged<int*, byte***, int, int*, int>)Export("MPI_Init_thread");
        _initialized = (delegate* unmanaged<int*, int>)Export("MPI_Initialized");
        _finalized = (delegate* unmanaged<int*, int>)Export("MPI_Finalized");
        _finalize = (delegate* unmanaged<int>)Export("MPI_Finalize");
        _commRank = (delegate* unmanaged<nint, int*, int>)Export("MPI_Comm_rank");
        _commSize = (delegate* unmanaged<nint, int*, int>)Export("MPI_Comm_size");
        _commDup = (delegate* unmanaged<nint, nint*, int>)Export("MPI_Comm_dup");
        _commFree = (delegate* unmanaged<nint*, int>)Export("MPI_Comm_free");
        _commSetErrhandler = (delegate* unmanaged<nint, nint, int>)Export("MPI_Comm_set_errhandler");
        _allreduce = (delegate* unmanaged<void*, void*, int, nint, nint, nint, int>)Export("MPI_Allreduce");
        _bcast = (delegate* unmanaged<void*, int, nint, int, nint, int>)Export("MPI_Bcast");
        _allgather = (delegate* unmanaged<void*, int, nint, void*, int, nint, nint, int>)Export("MPI_Allgather");
        _barrier = (delegate* unmanaged<nint, int>)Export("MPI_Barrier");
        _abort = (delegate* unmanaged<nint, int, int>)Export("MPI_Abort");
        _errorString = (delegate* unmanaged<int, byte*, int*, int>)Export("MPI_Error_string");
        _libraryVersion = (delegate* unmanaged<byte*, int*, int>)Export("MPI_Get_library_version");
        if (IsOpenMpi)
        {
            CommWorld = world;
            InPlace = 1;
            Float = Export("ompi_mpi_float");
            Double = Export("ompi_mpi_double");
            Int = Export("ompi_mpi_int");
            Long = Export("ompi_mpi_long_long_int");
            Byte = Export("ompi_mpi_byte");
            Sum = Export("ompi_mpi_op_sum");
            Max = Export("ompi_mpi_op_max");
            Min = Export("ompi_mpi_op_min");
            ErrorsReturn = Export("ompi_mpi_errors_return");
        }
        else
        {
            (CommWorld, InPlace) = (MpichHandles.CommWorld, -1);
            (Float, Double, Int, Long, Byte) = (MpichHandles.Float, MpichHandles.Double, MpichHandles.Int, MpichHandles.LongLong, MpichHandles.Byte);
            (Sum, Max, Min, ErrorsReturn) = (MpichHandles.Sum, MpichHandles.Max, MpichHandles.Min, MpichHandles.ErrorsReturn);
        }
    }

    /// <summary>MPICH's handle constants (mpi.h of MPICH 3 and 4; Intel MPI, MVAPICH and Cray MPICH share them).</summary>
    internal static class MpichHandles
    {
        public const int CommWorld = 0x44000000;
        public const int Float = 0x4c00040a, Double = 0x4c00080b, Int = 0x4c000405, LongLong = 0x4c000809, Byte = 0x4c00010d;
        public const int Max = 0x58000001, Min = 0x58000002, Sum = 0x58000003;
        public const int ErrorsReturn = 0x54000001;
    }

    /// <summary>The loaded file.</summary>
    public string Path { get; }

    /// <summary>Whether the library has Open MPI's ABI (else MPICH's).</summary>
    public bool IsOpenMpi { get; }

    public nint CommWorld { get; }
    public nint InPlace { get; }
    public nint Float { get; }
    public nint Double { get; }
    public nint Int { get; }
    public nint Long { get; }
    public nint Byte { get; }
    public nint Sum { get; }
    public nint Max { get; }
    public nint Min { get; }
    public nint ErrorsReturn { get; }

    private nint Export(string name) =>
        NativeLibrary.TryGetExport(_library, name, out var address) ? address
            : throw new DistributedException($"The MPI library {Path} has no symbol {name}.");

    private const int RtldNow = 2, RtldGlobal = 0x100;

    [DllImport("libc", EntryPoint = "dlopen")]
    private static extern nint DlOpen([MarshalAs(UnmanagedType.LPUTF8Str)] string file, int mode);

    [DllImport("libc", EntryPoint = "dlerror")]
    private static extern nint DlError();

    /// <summary>Opens the MPI library named by <see cref="LibraryVariable"/> or the first of <see cref="Candidates"/> found.</summary>
    /// <exception cref="DistributedException">No MPI library could be opened (the message lists what was tried).</exception>
    public static MpiLibrary Load(Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        var names = environment(LibraryVariable) is { Length: > 0 } given ? [given] : Candidates;
        var errors = new List<string>();
        foreach (var name in names)
        {
            nint handle;
            try { handle = DlOpen(name, RtldNow | RtldGlobal); }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
                // not glibc: the runtime's loader (no RTLD_GLOBAL)
                if (!NativeLibrary.TryLoad(name, out handle)) { errors.Add($"{name}: not found"); continue; }
            }
            if (handle == 0)
            {
                var message = DlError();
                errors.Add($"{name}: {(message == 0 ? "not found" : Marshal.PtrToStringUTF8(message))}");
                continue;
            }
            return new MpiLibrary(handle, name);
        }
        throw new DistributedException($"No MPI library could be loaded (tried {string.Join("; ", errors)}). Install Open MPI or MPICH (Debian: apt-get install openmpi-bin) or set {LibraryVariable} to the libmpi.so to use.");
    }

    // ---- calls: each returns MPI's error code (0 = MPI_SUCCESS) --------------------------------------------

    public int InitThread(int required, out int provided)
    {
        int p = 0;
        int rc = _initThread(null, null, required, &p);
        provided = p;
        return rc;
    }

    public bool Initialized() { int flag = 0; _initialized(&flag); return flag != 0; }

    public bool Finalized() { int flag = 0; _finalized(&flag); return flag != 0; }

    public int Finalize() => _finalize();

    public int CommRank(nint comm, out int rank) { int r = 0; int rc = _commRank(comm, &r); rank = r; return rc; }

    public int CommSize(nint comm, out int size) { int s = 0; int rc = _commSize(comm, &s); size = s; return rc; }

    public int CommDup(nint comm, out nint copy) { nint c = 0; int rc = _commDup(comm, &c); copy = c; return rc; }

    public int CommFree(nint comm) => _commFree(&comm);

    public int SetErrorsReturn(nint comm) => _commSetErrhandler(comm, ErrorsReturn);

    public int AllReduceInPlace(void* buffer, int count, nint type, nint op, nint comm) => _allreduce((void*)InPlace, buffer, count, type, op, comm);

    public int Bcast(void* buffer, int count, nint type, int root, nint comm) => _bcast(buffer, count, type, root, comm);

    public int AllGather(void* send, int sendCount, void* receive, int receiveCount, nint comm) =>
        _allgather(send, sendCount, Byte, receive, receiveCount, Byte, comm);

    public int Barrier(nint comm) => _barrier(comm);

    public int Abort(nint comm, int code) => _abort(comm, code);

    /// <summary>MPI's text for an error code.</summary>
    public string ErrorString(int code)
    {
        var text = stackalloc byte[1024]; // MPI_MAX_ERROR_STRING is 256 (Open MPI) or 1024 (MPICH)
        int length = 0;
        return _errorString(code, text, &length) == 0 && length > 0 ? Encoding.UTF8.GetString(text, Math.Min(length, 1024)).Trim() : $"error {code}";
    }

    /// <summary>The library's version text (first line), e.g. <c>Open MPI v4.1.4, ...</c>.</summary>
    public string Version()
    {
        var text = stackalloc byte[8192]; // MPI_MAX_LIBRARY_VERSION_STRING: 256 (Open MPI), 8192 (MPICH)
        int length = 0;
        if (_libraryVersion(text, &length) != 0 || length <= 0) return IsOpenMpi ? "Open MPI" : "MPICH ABI";
        var s = Encoding.UTF8.GetString(text, Math.Min(length, 8192)).Trim('\0', ' ', '\n');
        int cut = s.IndexOfAny([',', '\n']);
        return (cut > 0 ? s[..cut] : s).Trim();
    }
}
