namespace IlgpuDdw;

/// <summary>
/// A one-dimensional int32 tensor in device memory (class labels, indices), created from host data and changed
/// only by <see cref="CopyFrom(ReadOnlySpan{int})"/>. It keeps a host copy of its values so ops can validate them (e.g. every label within the class
/// count) on the host before any kernel reads them. Its buffer is allocated directly on the accelerator,
/// outside the float tensor pool and the device's <see cref="Device.LiveBytes"/> counter.
/// </summary>
public sealed class IntTensor : IDisposable
{
    private readonly int[] _host;
    private MemoryBuffer1D<int, Stride1D.Dense>? _buffer;

    private IntTensor(Device device, int[] host)
    {
        Device = device;
        _host = host;
        _buffer = device.Allocate<int>(Math.Max(1, host.Length));
        device.Upload(_buffer.View.SubView(0, host.Length), host.AsSpan());
    }

    /// <summary>Copies <paramref name="data"/> into a new device tensor (and keeps a host copy).</summary>
    /// <exception cref="ArgumentException">The data is empty.</exception>
    public static IntTensor FromArray(Device device, ReadOnlySpan<int> data)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (data.IsEmpty)
            throw new ArgumentException("An IntTensor needs at least one element.", nameof(data));
        return new IntTensor(device, data.ToArray());
    }

    /// <summary>The device the values live on.</summary>
    public Device Device { get; }

    /// <summary>Number of elements.</summary>
    public int Length => _host.Length;

    /// <summary>The values as given at creation (host copy; no device transfer).</summary>
    public ReadOnlySpan<int> Values => _host;

    /// <summary>Whether <see cref="Dispose"/> has been called.</summary>
    public bool IsDisposed => _buffer is null;

    /// <summary>The device view of the elements. Throws <see cref="ObjectDisposedException"/> after dispose.</summary>
    public ArrayView<int> View =>
        (_buffer ?? throw new ObjectDisposedException(nameof(IntTensor), $"IntTensor [{Length}] was used after it was disposed.")).View.SubView(0, Length);

    /// <summary>
    /// Replaces the values with <paramref name="data"/> (same length), on the host and the device (stream-ordered:
    /// launches already queued read the old values).
    /// </summary>
    /// <exception cref="ArgumentException">The length differs.</exception>
    public void CopyFrom(ReadOnlySpan<int> data)
    {
        var view = View;
        if (data.Length != Length)
            throw new ArgumentException($"IntTensor.CopyFrom: {data.Length} values for a tensor of {Length}.", nameof(data));
        data.CopyTo(_host);
        Device.Upload(view, data);
    }

    /// <summary>A copy of the values (from the host copy).</summary>
    /// <summary>Like <see cref="CopyFrom(ReadOnlySpan{int})"/>, through <paramref name="staging"/>: the device copy is queued, not waited for.</summary>
    internal void CopyFrom(ReadOnlySpan<int> data, StagedUpload<int> staging)
    {
        if (data.Length != Length)
            throw new ArgumentException($"IntTensor.CopyFrom: {data.Length} values for a tensor of {Length}.", nameof(data));
        data.CopyTo(_host);
        staging.Upload(data, View);
    }

    public int[] ToArray() => (int[])_host.Clone();

    /// <summary>Frees the device buffer. Safe to call twice.</summary>
    public void Dispose()
    {
        _buffer?.Dispose();
        _buffer = null;
    }
}
