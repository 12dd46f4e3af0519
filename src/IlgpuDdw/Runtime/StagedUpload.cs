using ILGPU.Runtime;

namespace IlgpuDdw.Runtime;

/// <summary>
/// Host→device uploads that do not wait for the device: the data is copied into one of two page-locked host buffers
/// (double buffering) and the device copy is queued on the stream, asynchronous for page-locked memory on Cuda (ILGPU's
/// <c>CopyFromCPU</c> from pageable memory waits for the stream instead). A buffer is overwritten only after a host
/// synchronisation has happened since its copy was queued (then that copy has run); if none has, the upload
/// synchronises first, counted like any other. A training loop that reads its status once per step therefore never
/// waits here. The buffers grow to the largest upload and are freed on dispose.
/// </summary>
/// <typeparam name="T">Element type.</typeparam>
public sealed class StagedUpload<T> : IDisposable where T : unmanaged
{
    private readonly Device _device;
    private readonly PageLockedArray1D<T>?[] _slots = new PageLockedArray1D<T>?[2];
    private readonly long[] _queuedAt = [-1, -1]; // the device's synchronisation count when the slot's copy was queued
    private int _next;
    private bool _disposed;

    /// <summary>Staging for uploads to <paramref name="device"/>.</summary>
    public StagedUpload(Device device) => _device = device ?? throw new ArgumentNullException(nameof(device));

    /// <summary>Host synchronisations this staging had to make itself (a slot reused before any other synchronisation).</summary>
    public int Waits { get; private set; }

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
        if (_queuedAt[k] >= 0 && _device.Synchronizations == _queuedAt[k])
        {
            Waits++;
            _device.Synchronize(); // the copy queued from this slot may not have run yet
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
    }

    /// <summary>Waits for the queued copies and frees the page-locked buffers.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_slots[0] is null && _slots[1] is null) return;
        _device.Stream.Synchronize();
        for (int i = 0; i < _slots.Length; i++)
        {
            _slots[i]?.Dispose();
            _slots[i] = null;
        }
    }
}
