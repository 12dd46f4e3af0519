using System.Runtime.InteropServices;

namespace IlgpuDdw.Distributed;

/// <summary>NCCL's 128-byte communicator id (<c>ncclUniqueId</c>), passed to <c>ncclCommInitRank</c> by value.</summary>
[StructLayout(LayoutKind.Sequential, Size = Length)]
public unsafe struct NcclUniqueId
{
    /// <summary>Bytes of the id (<c>NCCL_UNIQUE_ID_BYTES</c>).</summary>
    public const int Length = 128;

    /// <summary>The id's bytes.</summary>
    public fixed byte Internal[Length];

    /// <summary>The bytes as a span (for broadcasting the id).</summary>
    public Span<byte> AsSpan() => MemoryMarshal.CreateSpan(ref Internal[0], Length);
}

/// <summary>
/// A binding of NCCL (<c>libnccl.so.2</c>) through unmanaged function pointers. NCCL links the CUDA runtime
/// statically and needs only the driver (<c>libcuda.so.1</c>). The library is looked up in
/// <see cref="LibraryVariable"/>, then on the loader path, then in the Python packages that carry it (PyTorch's
/// <c>nvidia-nccl-cu12</c> wheel: <c>site-packages/nvidia/nccl/lib/libnccl.so.2</c>).
/// </summary>
internal sealed unsafe class NcclLibrary
{
    /// <summary>Environment variable naming the NCCL library (a path or a file name).</summary>
    public const string LibraryVariable = "DDW_NCCL_LIBRARY";

    /// <summary>NCCL's data types used here (<c>ncclDataType_t</c>).</summary>
    public const int Uint8 = 1, Int32 = 2, Int64 = 4, Float32 = 7, Float64 = 8;

    /// <summary>NCCL's reductions (<c>ncclRedOp_t</c>).</summary>
    public const int Sum = 0, Max = 2, Min = 3, Avg = 4;

    private readonly delegate* unmanaged<int*, int> _getVersion;
    private readonly delegate* unmanaged<NcclUniqueId*, int> _getUniqueId;
    private readonly delegate* unmanaged<nint*, int, NcclUniqueId, int, int> _commInitRank;
    private readonly delegate* unmanaged<void*, void*, nuint, int, int, nint, nint, int> _allReduce;
    private readonly delegate* unmanaged<void*, void*, nuint, int, int, nint, nint, int> _broadcast;
    private readonly delegate* unmanaged<int> _groupStart;
    private readonly delegate* unmanaged<int> _groupEnd;
    private readonly delegate* unmanaged<nint, int*, int> _commGetAsyncError;
    private readonly delegate* unmanaged<nint, int> _commAbort;
    private readonly delegate* unmanaged<nint, int> _commDestroy;
    private readonly delegate* unmanaged<int, byte*> _getErrorString;

    private NcclLibrary(nint library, string path)
    {
        Path = path;
        nint Export(string name) => NativeLibrary.TryGetExport(library, name, out var a) ? a
            : throw new DistributedException($"The NCCL library {path} has no symbol {name}.");
        _getVersion = (delegate* unmanaged<int*, int>)Export("ncclGetVersion");
        _getUniqueId = (delegate* unmanaged<NcclUniqueId*, int>)Export("ncclGetUniqueId");
        _commInitRank = (delegate* unmanaged<nint*, int, NcclUniqueId, int, int>)Export("ncclCommInitRank");
        _allReduce = (delegate* unmanaged<void*, void*, nuint, int, int, nint, nint, int>)Export("ncclAllReduce");
        _broadcast = (delegate* unmanaged<void*, void*, nuint, int, int, nint, nint, int>)Export("ncclBroadcast");
        _groupStart = (delegate* unmanaged<int>)Export("ncclGroupStart");
        _groupEnd = (delegate* unmanaged<int>)Export("ncclGroupEnd");
        _commGetAsyncError = (delegate* unmanaged<nint, int*, int>)Export("ncclCommGetAsyncError");
        _commAbort = (delegate* unmanaged<nint, int>)Export("ncclCommAbort");
        _commDestroy = (delegate* unmanaged<nint, int>)Export("ncclCommDestroy");
        _getErrorString = (delegate* unmanaged<int, byte*>)Export("ncclGetErrorString");
    }

    /// <summary>The loaded file.</summary>
    public string Path { get; }

    /// <summary>
    /// The files tried, in order: <see cref="LibraryVariable"/> when set (alone), else <c>libnccl.so.2</c> (the loader
    /// path: LD_LIBRARY_PATH, ldconfig) and then every <c>nvidia/nccl/lib/libnccl.so.2</c> under the Python package
    /// folders of the active virtual or conda environment, the user's and the system's.
    /// </summary>
    public static IReadOnlyList<string> Candidates(Func<string, string?> environment, Func<string, IEnumerable<string>> directories)
    {
        if (environment(LibraryVariable) is { Length: > 0 } given) return [given];
        var result = new List<string> { "libnccl.so.2" };
        var roots = new List<string>();
        foreach (var variable in new[] { "VIRTUAL_ENV", "CONDA_PREFIX" })
            if (environment(variable) is { Length: > 0 } prefix) roots.Add(System.IO.Path.Combine(prefix, "lib"));
        if (environment("HOME") is { Length: > 0 } home) roots.Add(System.IO.Path.Combine(home, ".local", "lib"));
        roots.AddRange(["/usr/local/lib", "/usr/lib", "/opt/conda/lib"]);
        foreach (var root in roots)
            foreach (var python in directories(root).Where(d => System.IO.Path.GetFileName(d).StartsWith("python3", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
                foreach (var packages in new[] { "site-packages", "dist-packages" })
                    result.Add(System.IO.Path.Combine(python, packages, "nvidia", "nccl", "lib", "libnccl.so.2"));
        return result;
    }

    /// <summary>Opens the first of <see cref="Candidates"/> that loads.</summary>
    /// <exception cref="DistributedException">None loads (the message names what was tried).</exception>
    public static NcclLibrary Load(Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        var candidates = Candidates(environment, d => Directory.Exists(d) ? Directory.EnumerateDirectories(d) : []);
        foreach (var c in candidates)
        {
            bool file = c.Contains('/');
            if (file && !File.Exists(c)) continue;
            if (NativeLibrary.TryLoad(c, out var handle)) return new NcclLibrary(handle, c);
        }
        throw new DistributedException($"NCCL (libnccl.so.2) was not found (tried {string.Join(", ", candidates)}). Install it (pip install nvidia-nccl-cu12, or the CUDA repository's libnccl2) or set {LibraryVariable}.");
    }

    /// <summary>The text of an <c>ncclResult_t</c> when the library cannot give it.</summary>
    public static string Describe(int result) => result switch
    {
        0 => "success",
        1 => "unhandled CUDA error",
        2 => "system error",
        3 => "internal error",
        4 => "invalid argument",
        5 => "invalid usage",
        6 => "remote error (a peer failed or left)",
        7 => "in progress",
        _ => $"unknown result {result}",
    };

    /// <summary>NCCL's data type of an element type of <see cref="Communicator"/>.</summary>
    public static int DataType(Type t) =>
        t == typeof(float) ? Float32 : t == typeof(double) ? Float64 : t == typeof(int) ? Int32 : t == typeof(long) ? Int64 : t == typeof(byte) ? Uint8
        : throw new NotSupportedException($"NCCL collectives here take float, double, int, long or byte; got {t.Name}.");

    /// <summary>NCCL's reduction of a <see cref="ReduceOp"/>.</summary>
    public static int Op(ReduceOp op) => op switch { ReduceOp.Max => Max, ReduceOp.Min => Min, _ => Sum };

    /// <summary>Throws a <see cref="DistributedException"/> naming <paramref name="call"/> and the rank when <paramref name="result"/> is not success.</summary>
    public void Check(int result, string call, int rank, int size)
    {
        if (result == 0) return;
        string text;
        try { text = Marshal.PtrToStringUTF8((nint)_getErrorString(result)) ?? Describe(result); }
        catch (Exception e) when (e is not OutOfMemoryException) { text = Describe(result); }
        throw new DistributedException($"{call} failed on rank {rank} of {size}: {text} (NCCL result {result}).");
    }

    public int Version() { int v = 0; return _getVersion(&v) == 0 ? v : 0; }

    public int GetUniqueId(out NcclUniqueId id) { NcclUniqueId u; int rc = _getUniqueId(&u); id = u; return rc; }

    public int CommInitRank(out nint comm, int ranks, NcclUniqueId id, int rank) { nint c = 0; int rc = _commInitRank(&c, ranks, id, rank); comm = c; return rc; }

    public int AllReduce(nint send, nint receive, long count, int type, int op, nint comm, nint stream) =>
        _allReduce((void*)send, (void*)receive, (nuint)count, type, op, comm, stream);

    public int Broadcast(nint send, nint receive, long count, int type, int root, nint comm, nint stream) =>
        _broadcast((void*)send, (void*)receive, (nuint)count, type, root, comm, stream);

    public int GroupStart() => _groupStart();

    public int GroupEnd() => _groupEnd();

    public int AsyncError(nint comm) { int e = 0; int rc = _commGetAsyncError(comm, &e); return rc != 0 ? rc : e; }

    public int Abort(nint comm) => _commAbort(comm);

    public int Destroy(nint comm) => _commDestroy(comm);
}

/// <summary>The few CUDA driver calls NCCL's context handling needs (<c>libcuda.so.1</c>).</summary>
internal static unsafe class CudaDriver
{
    private static nint _library;

    private static nint Export(string name)
    {
        if (_library == 0 && !NativeLibrary.TryLoad("libcuda.so.1", out _library))
            throw new DistributedException("The CUDA driver (libcuda.so.1) could not be loaded; NCCL needs an NVIDIA GPU and its driver.");
        return NativeLibrary.TryGetExport(_library, name, out var a) ? a : throw new DistributedException($"libcuda.so.1 has no symbol {name}.");
    }

    public static void Check(int result, string call)
    {
        if (result != 0) throw new DistributedException($"{call} failed: CUDA driver error {result}.");
    }

    public static nint CurrentContext() { nint c = 0; Check(((delegate* unmanaged<nint*, int>)Export("cuCtxGetCurrent"))(&c), "cuCtxGetCurrent"); return c; }

    public static void SetCurrent(nint context) => Check(((delegate* unmanaged<nint, int>)Export("cuCtxSetCurrent"))(context), "cuCtxSetCurrent");

    public static int CurrentDevice() { int d = 0; Check(((delegate* unmanaged<int*, int>)Export("cuCtxGetDevice"))(&d), "cuCtxGetDevice"); return d; }

    public static nint RetainPrimary(int device) { nint c = 0; Check(((delegate* unmanaged<nint*, int, int>)Export("cuDevicePrimaryCtxRetain"))(&c, device), "cuDevicePrimaryCtxRetain"); return c; }

    public static void ReleasePrimary(int device) => ((delegate* unmanaged<int, int>)Export("cuDevicePrimaryCtxRelease"))(device);

    public static nint CreateStream() { nint s = 0; Check(((delegate* unmanaged<nint*, uint, int>)Export("cuStreamCreate"))(&s, 1u /* non-blocking */), "cuStreamCreate"); return s; }

    public static void DestroyStream(nint stream) => ((delegate* unmanaged<nint, int>)Export("cuStreamDestroy_v2"))(stream);

    public static void Synchronize(nint stream) => Check(((delegate* unmanaged<nint, int>)Export("cuStreamSynchronize"))(stream), "cuStreamSynchronize");

    public static nint Allocate(long bytes) { nint p = 0; Check(((delegate* unmanaged<nint*, nuint, int>)Export("cuMemAlloc_v2"))(&p, (nuint)bytes), "cuMemAlloc_v2"); return p; }

    public static void Free(nint pointer) => ((delegate* unmanaged<nint, int>)Export("cuMemFree_v2"))(pointer);

    public static void CopyPeerAsync(nint destination, nint destinationContext, nint source, nint sourceContext, long bytes, nint stream) =>
        Check(((delegate* unmanaged<nint, nint, nint, nint, nuint, nint, int>)Export("cuMemcpyPeerAsync"))(destination, destinationContext, source, sourceContext, (nuint)bytes, stream), "cuMemcpyPeerAsync");

    public static void CopyToDevice(nint destination, void* source, long bytes) =>
        Check(((delegate* unmanaged<nint, void*, nuint, int>)Export("cuMemcpyHtoD_v2"))(destination, source, (nuint)bytes), "cuMemcpyHtoD_v2");

    public static void CopyToHost(void* destination, nint source, long bytes) =>
        Check(((delegate* unmanaged<void*, nint, nuint, int>)Export("cuMemcpyDtoH_v2"))(destination, source, (nuint)bytes), "cuMemcpyDtoH_v2");
}
