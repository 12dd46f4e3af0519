namespace IlgpuDdw.Autograd;

public static partial class Ops
{
    /// <summary>
    /// Zeroes the samples that are off: <c>y[b] = live[b] ≠ 0 ? x[b] : 0</c> for an input with batch first and a [B]
    /// mask; backward <c>dx[b] += live[b] ≠ 0 ? dy[b] : 0</c>. Saves nothing beyond the mask.
    /// </summary>
    /// <exception cref="ArgumentException">The mask does not have B = x.Dim(0) elements, or the tensors are on different devices.</exception>
    public static Tensor MaskSamples(this Tape tape, Tensor x, Tensor live)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(live);
        RequireSameDevice("MaskSamples", tape, x, live);
        if (x.Rank < 1 || live.Length != x.Dim(0))
            throw new ArgumentException($"MaskSamples: the mask must have B = {(x.Rank < 1 ? 0 : x.Dim(0))} elements (input {x.ShapeString}); got shape {live.ShapeString}.", nameof(live));
        var d = tape.Device;
        int n = x.Length, sample = n / Math.Max(1, x.Dim(0)), ext = d.Extent(n);
        var y = tape.NewTensor([.. x.Shape]);
        if (n == 0) return y;
        d.Kernels.MaskSamplesForward(d.Stream, ext, n, ext, sample, live.View, x.View, y.View);
        if (!tape.NeedsGrad(x)) return y;
        tape.Record("MaskSamples", y, () =>
        {
            var dx = x.GradForWrite(out int accumulate);
            d.Kernels.MaskSamplesBackward(d.Stream, ext, n, ext, sample, accumulate, live.View, y.Grad.View, dx);
        });
        return y;
    }
}
