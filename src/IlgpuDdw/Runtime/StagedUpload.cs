using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace IlgpuDdw.Runtime;

/// <summary>
/// Host→device uploads that do not wait for the device: the data is copied into one of two page-locked host buffers
/// (double buffering) and the device copy is queued, asynchronous for page-locked memory on Cuda (ILGPU's
/// <c>CopyFromCPU</c> from pageable memory waits for the stream instead). On Cuda the copy runs on a second stream, so
/// that it overlaps the compute stream's work: host buffer → one of two device staging buffers on the upload stream,
/// the compute stream waits for it on the device (<see cref="CudaStreamEvent"/>, <c>cuStreamWaitEvent</c>) and copies it
/// into the target (a device-to-device copy), and the upload stream waits for that copy before it refills the staging
/// buffer two uploads later. Before a host buffer is overwritten its previous copy must have run: the event recorded
/// after that copy is waited for (only that copy, counted in <see cref="EventWaits"/>), unless a host synchronisation
/// has happened since. On the CPU accelerator copies run when queued. The buffers grow to the largest upload and are
/// freed on dispose.
/// </summary>
/// <typeparam name="T">Element type.</typeparam>
public sealed class StagedUpload<T> : IDisposable where T : unmanaged
{
    private readonly Device _device;
    private readonly PageLockedArray1D<T>?[] _slots = new PageLockedArray1D<T>?[2];
    private readonly long[] _queuedAt = [-1, -1]; // the device's synchronisation count when the slot's copy was queued
    private readonly CudaStreamEvent?[] _copied = new CudaStreamEvent?[2]; // Cuda: recorded on the upload stream after the slot's copy
    private readonly CudaStreamEvent?[] _consumed = new CudaStreamEvent?[2]; // Cuda: recorded on the compute stream after the staging buffer was read
    private readonly MemoryBuffer1D<T, Stride1D.Dense>?[] _staging = new MemoryBuffer1D<T, Stride1D.Dense>?[2]; // Cuda: device staging buffers
    private AcceleratorStream? _uploadStream;
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
        if (CopiesRunLater)
        {
            UploadOnSecondStream(k, data, target);
            return;
        }
        var slot = Slot(k, data.Length);
        data.CopyTo(slot.Span);
        _device.UploadAsync(target, ref slot.Span[0]);
        _queuedAt[k] = _device.Synchronizations;
    }

    /// <summary>
    /// Cuda: host slot <paramref name="k"/> → device staging buffer k on the upload stream (after the compute stream has read
    /// that buffer's previous contents), then, on the compute stream once the copy has run, staging buffer → target.
    /// </summary>
    private void UploadOnSecondStream(int k, ReadOnlySpan<T> data, ArrayView<T> target)
    {
        _device.Accelerator.Bind();
        if (_queuedAt[k] >= 0 && _device.Synchronizations == _queuedAt[k] && _copied[k] is { } previous)
        {
            EventWaits++;
            previous.Synchronize(); // the copy queued from this host buffer, not a stream
        }
        var slot = Slot(k, data.Length);
        data.CopyTo(slot.Span);
        var staging = _staging[k];
        if (staging is null || staging.Length < data.Length)
        {
            if (staging is not null)
            {
                _device.Stream.Synchronize(); // growing a staging buffer (once, for a larger batch): nothing may still read it
                Waits++;
                staging.Dispose();
            }
            staging = _staging[k] = _device.Accelerator.Allocate1D<T>(data.Length);
        }
        _uploadStream ??= _device.Accelerator.CreateStream();
        nint upload = ((CudaStream)_uploadStream).StreamPtr, compute = ((CudaStream)_device.Stream).StreamPtr;
        ArrayView<T> stage = staging.View.SubView(0, data.Length);
        _consumed[k]?.MakeWait(upload); // the compute stream has copied this buffer's previous contents out
        stage.CopyFromCPUUnsafeAsync(_uploadStream, ref slot.Span[0], data.Length);
        (_copied[k] ??= new CudaStreamEvent()).Record(upload);
        _copied[k]!.MakeWait(compute);
        target.CopyFrom(_device.Stream, stage);
        (_consumed[k] ??= new CudaStreamEvent()).Record(compute);
        _queuedAt[k] = _device.Synchronizations;
    }

    /// <summary>Host buffer <paramref name="k"/>, grown to <paramref name="length"/> values.</summary>
    private PageLockedArray1D<T> Slot(int k, int length)
    {
        var slot = _slots[k];
        if (slot is null || slot.Length < length)
        {
            slot?.Dispose();
            slot = _slots[k] = _device.Accelerator.AllocatePageLocked1D<T>(length);
        }
        return slot;
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
        _uploadStream?.Synchronize();
        for (int i = 0; i < _slots.Length; i++)
        {
            _copied[i]?.Dispose();
            _copied[i] = null;
            _consumed[i]?.Dispose();
            _consumed[i] = null;
            _staging[i]?.Dispose();
            _staging[i] = null;
            _slots[i]?.Dispose();
            _slots[i] = null;
        }
        _uploadStream?.Dispose();
        _uploadStream = null;
    }
}
