using System.Runtime.InteropServices;

namespace IlgpuDdw.Runtime;

/// <summary>
/// The CUDA driver's events between streams (<c>cuEventCreate</c>, <c>cuEventRecord</c>, <c>cuStreamWaitEvent</c>,
/// <c>cuEventSynchronize</c>, <c>cuEventDestroy</c>), which ILGPU 1.5.3 does not expose: one stream waits on the device for
/// work queued on another, without the host waiting. Used by <see cref="StagedUpload{T}"/>'s upload stream. The calling
/// thread must have the accelerator's context current (<c>Accelerator.Bind()</c>).
/// </summary>
internal sealed unsafe class CudaStreamEvent : IDisposable
{
    private nint _event;

    /// <summary>Creates an event without timing (<c>CU_EVENT_DISABLE_TIMING</c>).</summary>
    public CudaStreamEvent()
    {
        nint e = 0;
        Check(((delegate* unmanaged<nint*, uint, int>)Export("cuEventCreate"))(&e, 2u), "cuEventCreate");
        _event = e;
    }

    /// <summary>Records the event behind the work queued so far on <paramref name="stream"/> (a <c>CUstream</c>).</summary>
    public void Record(nint stream) => Check(((delegate* unmanaged<nint, nint, int>)Export("cuEventRecord"))(_event, stream), "cuEventRecord");

    /// <summary>Makes the work queued on <paramref name="stream"/> from now on wait, on the device, for this event's last record.</summary>
    public void MakeWait(nint stream) => Check(((delegate* unmanaged<nint, nint, uint, int>)Export("cuStreamWaitEvent"))(stream, _event, 0u), "cuStreamWaitEvent");

    /// <summary>Waits on the host until the work before the event's last record has run.</summary>
    public void Synchronize() => Check(((delegate* unmanaged<nint, int>)Export("cuEventSynchronize"))(_event), "cuEventSynchronize");

    /// <summary>Destroys the event (released by the driver once no stream waits on it).</summary>
    public void Dispose()
    {
        if (_event == 0) return;
        ((delegate* unmanaged<nint, int>)Export("cuEventDestroy_v2"))(_event);
        _event = 0;
    }

    private static nint _library;

    private static nint Export(string name)
    {
        if (_library == 0 && !NativeLibrary.TryLoad("libcuda.so.1", out _library) && !NativeLibrary.TryLoad("nvcuda.dll", out _library))
            throw new InvalidOperationException("The CUDA driver (libcuda.so.1) could not be loaded.");
        return NativeLibrary.TryGetExport(_library, name, out var address) ? address
            : throw new InvalidOperationException($"The CUDA driver has no symbol {name}.");
    }

    private static void Check(int result, string call)
    {
        if (result != 0) throw new InvalidOperationException($"{call} failed: CUDA driver error {result}.");
    }
}
