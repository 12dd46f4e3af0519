using ILGPU.Runtime;

namespace IlgpuDdw.Runtime;

/// <summary>
/// Host→device uploads that do not wait for the device: the data is copied into one of two page-locked host buffers
/// (double buffering) and the device copy is queued on the stream, asynchronous for page-locked memory on Cuda (ILGPU's
/// <c>CopyFromCPU</c> from pageable memory waits for the stream instead). Before a buffer is overwritten its previous
/// copy must have run: on Cuda an event recorded after that copy is waited for (the stream is not drained: only the
/// copy queued two uploads ago, counted in <see cref="EventWaits"/>), unless a host synchronisation has happened
/// since; on the CPU accelerator copies run when queued. The buffers grow to the largest upload and are freed on dispose.
/// </summary>
/// <typeparam name="T">Element type.</typeparam>
public sealed class StagedUpload<T> : IDisposable where T : unmanaged
{
    private readonly Device _device;
    private readonly PageLockedArray1D<T>?[] _slots = new PageLockedArray1D<T>?[2];
    private readonly long[] _queuedAt = [-1, -1]; // the device's synchronisation count when the slot's copy was queued
    private readonly ProfilingMarker?[] _copied = new ProfilingMarker?[2]; // Cuda: an event recorded after the slot's copy
    private int _next;
    private bool _disposed;

    /// <summary>Staging for uploads to <paramref name="device"/>.</summary>
    public StagedUpload(Device device) => _device = device ?? throw new ArgumentNullException(nameof(device));

    /// <summary>Host synchronisations this staging had to make itself (a slot reused before its copy was known to have run, with no event to wait for).</summary>
    public int Waits { get; private set; }

    /// <summary>Times an upload waited for the event after the copy queued from its buffer before (Cuda; not a synchronisation of the stream).</summary>
    public int EventWaits { get; private set; }

    /// <summary>Queues the copy of <paramref name="data"/> into <paramref name="target"/> (same length) and returns without waiting.</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public void Upload(ReadOnlySpan<T> data, ArrayView<T> target)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (data.Length != target.Length)
            throw new ArgumentException($"StagedUpload: {data.Length} values for a view of {target.Length}.", nameof(data));
        if (data.IsEmpty) return;
        int k = _next;
        _next ^= 1;
        if (_queuedAt[k] >= 0 && _device.Synchronizations == _queuedAt[k] && CopiesRunLater)
        {
            if (_copied[k] is { } marker)
            {
                EventWaits++;
                marker.Synchronize(); // the copy queued from this slot, not the whole stream
            }
            else
            {
                Waits++;
                _device.Synchronize(); // the copy queued from this slot may not have run yet
            }
        }
        var slot = _slots[k];
        if (slot is null || slot.Length < data.Length)
        {
            slot?.Dispose();
            slot = _slots[k] = _device.Accelerator.AllocatePageLocked1D<T>(data.Length);
        }
        data.CopyTo(slot.Span);
        _device.UploadAsync(target, ref slot.Span[0]);
        _queuedAt[k] = _device.Synchronizations;
        if (CopiesRunLater && _device.Accelerator.Context.Properties.EnableProfiling)
        {
            _copied[k]?.Dispose();
            _copied[k] = _device.Stream.AddProfilingMarker();
        }
    }

    /// <summary>Whether a queued copy may still be pending when the upload returns (Cuda; the CPU accelerator copies at once, a dry run not at all).</summary>
    private bool CopiesRunLater => _device.Accelerator.AcceleratorType == AcceleratorType.Cuda && !_device.IsDryRun;

    /// <summary>Waits for the queued copies and frees the page-locked buffers.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_slots[0] is null && _slots[1] is null) return;
        _device.Stream.Synchronize();
        for (int i = 0; i < _slots.Length; i++)
        {
            _copied[i]?.Dispose();
            _copied[i] = null;
            _slots[i]?.Dispose();
            _slots[i] = null;
        }
    }
}
