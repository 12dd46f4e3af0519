namespace IlgpuDdw.Autograd;

/// <summary>
/// The differentiable ops: each validates its inputs on the host, launches its forward kernel, and records
/// its backward kernels on the tape. This is the one place where a forward meets its backward. Outputs are
/// owned by the tape.
/// </summary>
public static partial class Ops
{
    internal static void RequireSameShape(string op, Tensor a, Tensor b)
    {
        a.ThrowIfDisposed();
        b.ThrowIfDisposed();
        if (!a.SameShape(b))
            throw new ArgumentException($"{op}: shapes {a.ShapeString} and {b.ShapeString} differ.");
    }

    internal static void RequireSameDevice(string op, Tape tape, params Tensor[] tensors)
    {
        foreach (var t in tensors)
        {
            t.ThrowIfDisposed();
            if (!ReferenceEquals(t.Device, tape.Device))
                throw new ArgumentException($"{op}: tensor {t.Describe()} lives on {t.Device}, the tape on {tape.Device}.");
        }
    }

    /// <summary>Accumulates <c>alpha · src</c> into <c>dst</c> (same length).</summary>
    internal static void Accumulate(Tensor src, Tensor dst, float alpha = 1f) => Axpy(src, dst.View, alpha, accumulate: 1);

    /// <summary>
    /// Adds <c>alpha · src</c> to the gradient of <paramref name="target"/> (same length), overwriting it when this is
    /// its first contribution (<see cref="Tensor.GradForWrite"/>): one launch, no zero-fill.
    /// </summary>
    internal static void AccumulateGrad(Tensor src, Tensor target, float alpha = 1f)
    {
        var dTarget = target.GradForWrite(out int accumulate);
        Axpy(src, dTarget, alpha, accumulate);
    }

    private static void Axpy(Tensor src, ArrayView<float> dst, float alpha, int accumulate)
    {
        var d = src.Device;
        int ext = d.Extent(src.Length);
        d.Kernels.Axpy(d.Stream, ext, src.Length, ext, accumulate, alpha, src.View, dst);
    }

    /// <summary>
    /// Runs an op's parameter-gradient launches over a batch of <paramref name="batch"/> samples in gradient groups of
    /// <paramref name="groupSize"/> samples (<see cref="Tape.GradientGroupSize"/>; 0: one group):
    /// <paramref name="launch"/>(first sample, samples, views) accumulates the gradients of samples [first, first +
    /// samples) into one view per target. One group: straight into <paramref name="targets"/>. Several: into zeroed
    /// pooled partials (per target, [groups, length]), group by group, then one
    /// <see cref="Kernels.ReductionKernels.GroupSums"/> per target adds the pairwise tree of its group partials.
    /// </summary>
    internal static void ParameterGradients(Device d, int groupSize, int batch, ArrayView<float>[] targets, Action<int, int, ArrayView<float>[]> launch)
    {
        int groups = groupSize > 0 ? (batch + groupSize - 1) / groupSize : 1;
        if (groups <= 1)
        {
            launch(0, batch, targets);
            return;
        }
        long total = 0;
        foreach (var t in targets) total += t.Length;
        if (groups * total > int.MaxValue)
            throw new ArgumentException($"Gradient groups: {groups} groups of {total} parameter-gradient elements exceed 2^31 − 1 partials; use a larger gradient group size.");
        using var partials = Tensor.Empty(d, (int)(groups * total));
        partials.Fill(0f);
        var slots = new ArrayView<float>[targets.Length];
        for (int k = 0; k < groups; k++)
        {
            long offset = 0;
            for (int j = 0; j < targets.Length; j++)
            {
                slots[j] = partials.View.SubView(offset + k * targets[j].Length, targets[j].Length);
                offset += groups * targets[j].Length;
            }
            int first = k * groupSize;
            launch(first, Math.Min(groupSize, batch - first), slots);
        }
        long start = 0;
        foreach (var t in targets)
        {
            int n = (int)t.Length, ext = d.Extent(n);
            d.Kernels.GroupSums(d.Stream, ext, n, ext, groups, partials.View.SubView(start, groups * t.Length), t);
            start += groups * t.Length;
        }
    }

    /// <summary>Samples [first, first + count) of a batch-major view with <paramref name="sample"/> elements per sample.</summary>
    internal static ArrayView<float> Samples(ArrayView<float> view, int sample, int first, int count) =>
        view.SubView((long)first * sample, (long)count * sample);

    /// <summary><c>y = a + b</c> (same shapes).</summary>
    public static Tensor Add(this Tape tape, Tensor a, Tensor b) =>
        Binary(tape, "Add", a, b, tape.Device.Kernels.AddForward, (dY, _, operand) => AccumulateGrad(dY, operand));

    /// <summary><c>y = a · b</c> elementwise (same shapes).</summary>
    public static Tensor Multiply(this Tape tape, Tensor a, Tensor b) =>
        Binary(tape, "Multiply", a, b, tape.Device.Kernels.MultiplyForward, (dY, other, operand) =>
        {
            var d = dY.Device;
            int ext = d.Extent(dY.Length);
            d.Kernels.MultiplyBackward(d.Stream, ext, dY.Length, ext, dY.View, other.View, operand.Grad.View);
        });

    /// <summary>
    /// A same-shape binary elementwise op: <paramref name="forward"/> writes y from (a, b); <paramref name="backward"/>
    /// (dY, the other operand, the operand) adds to that operand's gradient and runs once per operand that needs it.
    /// </summary>
    private static Tensor Binary(Tape tape, string name, Tensor a, Tensor b,
        Action<AcceleratorStream, Index1D, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>> forward,
        Action<Tensor, Tensor, Tensor> backward)
    {
        RequireSameDevice(name, tape, a, b);
        RequireSameShape(name, a, b);
        var d = tape.Device;
        var y = tape.NewTensor([.. a.Shape]);
        int ext = d.Extent(y.Length);
        forward(d.Stream, ext, y.Length, ext, a.View, b.View, y.View);
        if (tape.NeedsGrad(a, b))
            tape.Record(name, y, () =>
            {
                if (a.RequiresGrad) backward(y.Grad, b, a);
                if (b.RequiresGrad) backward(y.Grad, a, b);
            });
        return y;
    }

    /// <summary>
    /// <c>y[0] = scale · Σ x[0..n)</c> (or <c>Σ x²</c> with <paramref name="squares"/>) as two deterministic chunked
    /// passes (about √n partial sums, then one). Overwrites y[0].
    /// </summary>
    internal static void SumInto(Device d, ArrayView<float> x, int n, float scale, ArrayView<float> y, bool squares = false)
    {
        int chunk = Math.Max(1, (int)Math.Ceiling(Math.Sqrt(n)));
        int count = (n + chunk - 1) / chunk;
        using var partial = Tensor.Empty(d, count);
        int ext = d.Extent(count);
        d.Kernels.SumChunks(d.Stream, ext, count, ext, chunk, n, 1f, squares ? 1 : 0, x, partial.View);
        d.Kernels.SumChunks(d.Stream, 1, 1, 1, count, count, scale, 0, partial.View, y);
    }

    /// <summary>Sum of every element, as a tensor of shape [1].</summary>
    public static Tensor Sum(this Tape tape, Tensor x) => Reduce(tape, x, "Sum", 1f);

    /// <summary>Mean of every element, as a tensor of shape [1].</summary>
    public static Tensor Mean(this Tape tape, Tensor x) => Reduce(tape, x, "Mean", 1f / x.Length);

    private static Tensor Reduce(Tape tape, Tensor x, string name, float scale)
    {
        RequireSameDevice(name, tape, x);
        var d = tape.Device;
        var y = tape.NewTensor(1);
        int n = x.Length;
        SumInto(d, x.View, n, scale, y.View);
        if (tape.NeedsGrad(x))
            tape.Record(name, y, () =>
            {
                int ext = d.Extent(n);
                d.Kernels.SumBackward(d.Stream, ext, n, ext, scale, y.Grad.View, x.Grad.View);
            });
        return y;
    }

    /// <summary>
    /// A view of <paramref name="x"/> with another shape (no copy); its gradient flows back to <paramref name="x"/>.
    /// </summary>
    public static Tensor Reshape(this Tape tape, Tensor x, params int[] shape)
    {
        RequireSameDevice("Reshape", tape, x);
        var y = tape.Own(x.Reshape(shape));
        y.RequiresGrad = false;
        if (tape.NeedsGrad(x))
            tape.Record("Reshape", y, () => AccumulateGrad(y.Grad, x));
        return y;
    }

    /// <summary><c>y = alpha · x</c> (e.g. a loss weight).</summary>
    public static Tensor Scale(this Tape tape, Tensor x, float alpha)
    {
        RequireSameDevice("Scale", tape, x);
        if (!float.IsFinite(alpha)) throw new ArgumentException($"Scale: alpha {alpha} is not finite.", nameof(alpha));
        var d = tape.Device;
        var y = tape.NewTensor([.. x.Shape]);
        Axpy(x, y.View, alpha, accumulate: 0); // y = 0 + alpha·x
        if (tape.NeedsGrad(x))
            tape.Record("Scale", y, () => AccumulateGrad(y.Grad, x, alpha));
        return y;
    }
}
