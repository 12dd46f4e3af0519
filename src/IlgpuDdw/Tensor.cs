namespace IlgpuDdw;

/// <summary>
/// A float32 tensor of any rank in device memory (row-major, contiguous). Owns a reference to its storage
/// and releases it on <see cref="Dispose"/>; views made by <see cref="Reshape"/> share the storage, which
/// returns to the device's pool when the last tensor using it is disposed. The gradient is a separate
/// tensor, allocated zeroed on first use (or unzeroed for a backward kernel that overwrites all of it,
/// <see cref="GradForWrite"/>) and disposed with its owner.
/// </summary>
public sealed class Tensor : IDisposable
{
    private sealed class Storage(Device device, MemoryBuffer1D<float, Stride1D.Dense> buffer)
    {
        public readonly Device Device = device;
        public MemoryBuffer1D<float, Stride1D.Dense>? Buffer = buffer;
        public int References = 1;

        public void Release()
        {
            if (--References == 0 && Buffer is not null)
            {
                Device.Return(Buffer);
                Buffer = null;
            }
        }
    }

    private readonly int[] _shape;
    private int _offset;
    private Storage? _storage;
    private Tensor? _grad;
    private (Tensor Flat, int Offset)? _gradSlot;

    private Tensor(Device device, Storage storage, int[] shape, int offset = 0)
    {
        Device = device;
        _storage = storage;
        _shape = shape;
        _offset = offset;
        Length = ShapeLength(shape);
    }

    /// <summary>Allocates an uninitialised tensor (contents unspecified: pooled memory is reused).</summary>
    public static Tensor Empty(Device device, params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(device);
        var s = CheckShape(shape);
        return new Tensor(device, new Storage(device, device.Rent(ShapeLength(s))), s);
    }

    /// <summary>Allocates a tensor filled with zeros.</summary>
    public static Tensor Zeros(Device device, params int[] shape)
    {
        var t = Empty(device, shape);
        t.Fill(0f);
        return t;
    }

    /// <summary>Copies <paramref name="data"/> (row-major) into a new tensor of the given shape.</summary>
    /// <exception cref="ArgumentException">The data length is not the shape's element count.</exception>
    public static Tensor FromArray(Device device, ReadOnlySpan<float> data, params int[] shape)
    {
        var s = CheckShape(shape);
        if (data.Length != ShapeLength(s))
            throw new ArgumentException($"Data has {data.Length} elements but shape {Format(s)} needs {ShapeLength(s)}.", nameof(data));
        var t = Empty(device, s);
        t.CopyFrom(data);
        return t;
    }

    /// <summary>The device the tensor lives on.</summary>
    public Device Device { get; }

    /// <summary>The shape (row-major).</summary>
    public IReadOnlyList<int> Shape => _shape;

    /// <summary>Number of dimensions.</summary>
    public int Rank => _shape.Length;

    /// <summary>Number of elements.</summary>
    public int Length { get; }

    /// <summary>Optional name, shown in error messages.</summary>
    public string? Name { get; set; }

    /// <summary>Whether ops recorded on a tape propagate a gradient to this tensor.</summary>
    public bool RequiresGrad { get; set; }

    /// <summary>Whether <see cref="Dispose"/> has been called.</summary>
    public bool IsDisposed => _storage is null;

    /// <summary>The device view of the elements. Throws <see cref="ObjectDisposedException"/> after dispose.</summary>
    public ArrayView<float> View
    {
        get
        {
            var storage = _storage ?? throw new ObjectDisposedException(nameof(Tensor), $"Tensor {Describe()} was used after it was disposed.");
            var buffer = storage.Buffer ?? throw new InvalidOperationException($"Tensor {Describe()} was read while its storage is dropped for recomputation (Tape.Recompute).");
            return buffer.View.SubView(_offset, Length);
        }
    }

    /// <summary>The gradient, allocated and zeroed on first access; same shape as this tensor.</summary>
    public Tensor Grad
    {
        get
        {
            ThrowIfDisposed();
            if (_grad is null)
            {
                _grad = _gradSlot is { } slot ? slot.Flat.Slice(slot.Offset, _shape) : Empty(Device, _shape);
                _grad.Fill(0f);
            }
            return _grad;
        }
    }

    /// <summary>
    /// The gradient's view for a backward kernel about to contribute to it, with the kernel's <c>accumulate</c> flag:
    /// when no gradient exists yet and none is bound to a flat buffer (<see cref="BindGrad"/>), allocates it without
    /// zeroing it and returns <paramref name="accumulate"/> = 0: the caller's kernel must then write every element of
    /// the gradient exactly once (overwrite, so no zero-fill launch runs). Otherwise returns the existing (or, bound to
    /// a flat buffer, the zeroed) gradient with <paramref name="accumulate"/> = 1. Call it once per launch, just
    /// before it: a second contribution then accumulates. Readers of a gradient use <see cref="Grad"/>.
    /// </summary>
    internal ArrayView<float> GradForWrite(out int accumulate)
    {
        ThrowIfDisposed();
        if (_grad is null && _gradSlot is null)
        {
            _grad = Empty(Device, _shape);
            if (PoisonNewGradients is { } garbage) _grad.Fill(garbage); // verification: an overwrite must not read it
            accumulate = 0;
            return _grad.View;
        }
        accumulate = 1;
        return Grad.View;
    }

    /// <summary>
    /// Verification hook: a value (NaN, 1e30) that <see cref="GradForWrite"/> fills each gradient it allocates for an
    /// overwrite with, so a kernel that reads the old contents or leaves an element unwritten shows; null (the
    /// default): no fill. Per thread of control (an <see cref="AsyncLocal{T}"/>), so a verification case never adds
    /// launches to a training running on another thread.
    /// </summary>
    internal static float? PoisonNewGradients
    {
        get => Poison.Value;
        set => Poison.Value = value;
    }

    private static readonly AsyncLocal<float?> Poison = new();

    /// <summary>
    /// Makes the gradient, when it is first needed, a view of elements [<paramref name="offset"/>,
    /// offset + <see cref="Length"/>) of <paramref name="flat"/> (zeroed then, like any new gradient), so that many
    /// parameters' gradients form one buffer (one all-reduce, one zero-fill, one optimizer launch). A gradient already
    /// allocated is disposed; null restores the default (a tensor of its own).
    /// </summary>
    public void BindGrad(Tensor? flat, int offset = 0)
    {
        ThrowIfDisposed();
        if (flat is not null && (offset < 0 || (long)offset + Length > flat.Length))
            throw new ArgumentOutOfRangeException(nameof(offset), offset, $"the gradient of {Describe()} ({Length} elements) does not fit in {flat.Length} elements");
        DropGrad();
        _gradSlot = flat is null ? null : (flat, offset);
    }

    /// <summary>Stops making new gradients in <paramref name="flat"/> (if bound to it by <see cref="BindGrad"/>); a gradient already there stays.</summary>
    internal void UnbindGrad(Tensor flat)
    {
        if (_gradSlot?.Flat == flat) _gradSlot = null;
    }

    /// <summary>
    /// Moves the elements of <paramref name="tensors"/> (same device, each the only user of its storage) into one new
    /// buffer, in order, and makes each a view of its slice: the tensors stay the same objects with the same values.
    /// Returns the flat tensor (its own reference to the buffer), or null, changing nothing, when a tensor shares
    /// its storage (a view or a slice) or lives on another device.
    /// </summary>
    internal static Tensor? Pack(Device device, IReadOnlyList<Tensor> tensors)
    {
        long total = 0;
        foreach (var t in tensors)
        {
            t.ThrowIfDisposed();
            if (t.Device != device || t._storage!.References != 1 || t._offset != 0 || t._storage.Buffer is null) return null;
            total += t.Length;
        }
        if (tensors.Count == 0 || total > int.MaxValue) return null;
        var flat = Empty(device, (int)total);
        int offset = 0;
        foreach (var t in tensors)
        {
            device.Kernels.Copy(device.Stream, device.Extent(t.Length), t.Length, device.Extent(t.Length), t.View, flat.View.SubView(offset, t.Length));
            offset += t.Length;
        }
        device.Stream.Synchronize(); // the old buffers go back to the pool only after the copies have read them
        offset = 0;
        foreach (var t in tensors)
        {
            t._storage!.Release();
            flat._storage!.References++;
            t._storage = flat._storage;
            t._offset = offset;
            offset += t.Length;
        }
        return flat;
    }

    /// <summary>
    /// The view spanning <paramref name="tensors"/> when they lie one after another in one storage (as
    /// <see cref="Pack"/> or <see cref="BindGrad"/> lays them out), else null.
    /// </summary>
    internal static ArrayView<float>? Span(IReadOnlyList<Tensor?> tensors)
    {
        if (tensors.Count == 0 || tensors[0] is not { _storage.Buffer: { } buffer } first) return null;
        long next = first._offset;
        foreach (var t in tensors)
        {
            if (t is null || t._storage != first._storage || t._offset != next) return null;
            next += t.Length;
        }
        return buffer.View.SubView(first._offset, next - first._offset);
    }

    /// <summary>
    /// A tensor of shape <paramref name="shape"/> viewing this tensor's elements from <paramref name="offset"/> on
    /// (no copy; shares the storage, like <see cref="Reshape"/>).
    /// </summary>
    public Tensor Slice(int offset, params int[] shape)
    {
        ThrowIfDisposed();
        var s = CheckShape(shape);
        if (offset < 0 || (long)offset + ShapeLength(s) > Length)
            throw new ArgumentOutOfRangeException(nameof(offset), offset, $"a slice {Format(s)} from element {offset} does not fit in {Describe()} ({Length} elements)");
        _storage!.References++;
        return new Tensor(Device, _storage, s, _offset + offset);
    }

    /// <summary>The gradient if one was allocated, else null (no gradient has flowed here).</summary>
    public Tensor? GradOrNull => _grad;

    /// <summary>Dimension <paramref name="axis"/> (negative counts from the end).</summary>
    public int Dim(int axis) => _shape[axis < 0 ? _shape.Length + axis : axis];

    /// <summary>Copies the elements to a new host array (synchronises the device; zeros on a dry run).</summary>
    public float[] ToArray()
    {
        var view = View;
        var host = new float[Length];
        Device.Download(view, host.AsSpan());
        return host;
    }

    /// <summary>The gradient's elements, or zeros when no gradient has flowed to this tensor.</summary>
    public float[] GradToArray() => _grad?.ToArray() ?? new float[Length];

    /// <summary>Copies host data (exactly <see cref="Length"/> elements) into the tensor.</summary>
    public void CopyFrom(ReadOnlySpan<float> data)
    {
        if (data.Length != Length)
            throw new ArgumentException($"Data has {data.Length} elements but tensor {Describe()} has {Length}.", nameof(data));
        Device.Upload(View, data);
    }

    /// <summary>Sets every element to <paramref name="value"/>.</summary>
    public void Fill(float value)
    {
        var view = View;
        int ext = Device.Extent(Length);
        Device.Kernels.Fill(Device.Stream, ext, Length, ext, value, view);
    }

    /// <summary>Zeros the gradient if one is allocated.</summary>
    public void ZeroGrad() => _grad?.Fill(0f);

    /// <summary>Frees the gradient tensor (the next access allocates a zeroed one).</summary>
    public void DropGrad()
    {
        _grad?.Dispose();
        _grad = null;
    }

    /// <summary>
    /// A tensor of another shape with the same element count sharing this tensor's storage (no copy). The view
    /// has its own gradient; use <c>Tape.Reshape</c> to make gradients flow between the two.
    /// </summary>
    public Tensor Reshape(params int[] shape)
    {
        ThrowIfDisposed();
        var s = CheckShape(shape);
        if (ShapeLength(s) != Length)
            throw new ArgumentException($"Cannot reshape {Describe()} ({Length} elements) to {Format(s)} ({ShapeLength(s)} elements).", nameof(shape));
        _storage!.References++;
        return new Tensor(Device, _storage, s, _offset) { RequiresGrad = RequiresGrad };
    }

    /// <summary>
    /// Puts <paramref name="buffer"/> (or none) under this tensor and its views and returns the previous one: the
    /// tape's mechanism for <c>Tape.Recompute</c>, which drops an activation's buffer and later gives it a new one.
    /// </summary>
    internal MemoryBuffer1D<float, Stride1D.Dense>? SwapBuffer(MemoryBuffer1D<float, Stride1D.Dense>? buffer)
    {
        ThrowIfDisposed();
        var old = _storage!.Buffer;
        _storage.Buffer = buffer;
        return old;
    }

    /// <summary>Whether two tensors have the same shape.</summary>
    public bool SameShape(Tensor other) => _shape.AsSpan().SequenceEqual(other._shape);

    /// <summary>The shape as text, e.g. <c>[2, 3, 5]</c>.</summary>
    public string ShapeString => Format(_shape);

    internal string Describe() => Name is null ? Format(_shape) : $"'{Name}' {Format(_shape)}";

    internal void ThrowIfDisposed()
    {
        if (_storage is null)
            throw new ObjectDisposedException(nameof(Tensor), $"Tensor {Describe()} was used after it was disposed.");
    }

    /// <summary>Formats a shape as <c>[a, b, c]</c>.</summary>
    public static string Format(IReadOnlyList<int> shape) => "[" + string.Join(", ", shape) + "]";

    private static int[] CheckShape(int[] shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        long n = 1;
        foreach (var d in shape)
        {
            if (d <= 0) throw new ArgumentException($"Shape {Format(shape)} has a non-positive dimension.", nameof(shape));
            n *= d;
            if (n > int.MaxValue) throw new ArgumentException($"Shape {Format(shape)} has more than {int.MaxValue} elements.", nameof(shape));
        }
        return (int[])shape.Clone();
    }

    private static int ShapeLength(int[] shape)
    {
        int n = 1;
        foreach (var d in shape) n *= d;
        return n;
    }

    /// <inheritdoc/>
    public override string ToString() => $"Tensor{Describe()}";

    /// <summary>Releases the storage (and the gradient). Safe to call twice.</summary>
    public void Dispose()
    {
        _grad?.Dispose();
        _grad = null;
        _storage?.Release();
        _storage = null;
    }
}
