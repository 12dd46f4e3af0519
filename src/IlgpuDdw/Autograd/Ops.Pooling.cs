namespace IlgpuDdw.Autograd;

public static partial class Ops
{
    /// <summary>Largest H·W for which max pooling's float-encoded argmax (an in-plane index) is exact.</summary>
    public const int MaxPoolPlaneLimit = 1 << 24;

    /// <summary>
    /// Global average pooling: [B, C, H, W] → [B, C], <c>y[b, c] = mean over (h, w) of x[b, c, h, w]</c>.
    /// The backward spreads <c>dy[b, c] / (H·W)</c> over the plane.
    /// </summary>
    /// <exception cref="ArgumentException">The input is not rank 4.</exception>
    public static Tensor GlobalAvgPool2d(this Tape tape, Tensor input)
    {
        const string op = "GlobalAvgPool2d";
        RequireSameDevice(op, tape, input);
        RequireNchw(op, input);
        var d = tape.Device;
        int planes = input.Dim(0) * input.Dim(1), spatial = input.Dim(2) * input.Dim(3);
        float scale = 1f / spatial;
        var y = tape.NewTensor(input.Dim(0), input.Dim(1));
        int planeExtent = d.Extent(planes);
        d.Kernels.SumChunks(d.Stream, planeExtent, planes, planeExtent, spatial, input.Length, scale, 0, input.View, y.View);
        if (tape.NeedsGrad(input))
            tape.Record(op, y, () =>
            {
                int ext = d.Extent(input.Length);
                var dInput = input.GradForWrite(out int accumulate);
                d.Kernels.GlobalAvgPoolBackward(d.Stream, ext, input.Length, ext, spatial, scale, accumulate, y.Grad.View, dInput);
            });
        return y;
    }

    /// <summary>
    /// 2-d max pooling over [B, C, H, W] with a square window (PyTorch semantics, floor mode): output
    /// [B, C, ⌊(H + 2p − k)/s⌋ + 1, ⌊(W + 2p − k)/s⌋ + 1]; padding is −∞. The first maximum in row-major window
    /// order wins ties; a NaN propagates. The forward saves each window's argmax (its in-plane index ih·W + iw,
    /// stored as a float in a tape-owned tensor: exact below 2²⁴, so H·W ≤ <see cref="MaxPoolPlaneLimit"/>);
    /// the backward routes each output gradient to its argmax, deterministically (gather, no atomics).
    /// </summary>
    /// <param name="tape">The tape.</param>
    /// <param name="input">[B, C, H, W].</param>
    /// <param name="kernelSize">Window side k ≥ 1.</param>
    /// <param name="stride">Window step s ≥ 1; defaults to <paramref name="kernelSize"/>.</param>
    /// <param name="padding">Implicit padding p with 0 ≤ p ≤ k/2.</param>
    /// <exception cref="ArgumentException">The input is not rank 4, k or s &lt; 1, p outside [0, k/2], the window
    /// does not fit (H + 2p &lt; k or W + 2p &lt; k), or H·W &gt; 2²⁴.</exception>
    public static Tensor MaxPool2d(this Tape tape, Tensor input, int kernelSize, int? stride = null, int padding = 0)
    {
        const string op = "MaxPool2d";
        var g = PoolGeometry(op, tape, input, kernelSize, stride ?? kernelSize, padding);
        if ((long)g.Height * g.Width > MaxPoolPlaneLimit)
            throw new ArgumentException(
                $"{op}: H·W = {(long)g.Height * g.Width} (input {input.ShapeString}) exceeds {MaxPoolPlaneLimit}, the largest plane whose argmax indices are exact.",
                nameof(input));
        var d = tape.Device;
        var y = tape.NewTensor(input.Dim(0), input.Dim(1), g.OutHeight, g.OutWidth);
        var argmax = Tensor.Empty(d, [.. y.Shape]);
        int ext = d.Extent(y.Length);
        d.Kernels.MaxPoolForward(d.Stream, ext, y.Length, ext, g, input.View, y.View, argmax.View);
        if (!tape.NeedsGrad(input))
        {
            argmax.Dispose(); // stream-ordered: a later reuse of the pooled buffer runs after the launch above
            return y;
        }
        tape.Own(argmax);
        tape.Record(op, y, () =>
        {
            int inputExtent = d.Extent(input.Length);
            var dInput = input.GradForWrite(out int accumulate);
            d.Kernels.MaxPoolBackward(d.Stream, inputExtent, input.Length, inputExtent, g, accumulate, argmax.View, y.Grad.View, dInput);
        });
        return y;
    }

    /// <summary>
    /// 2-d average pooling over [B, C, H, W] with a square window (PyTorch semantics, floor mode; output size as
    /// <see cref="MaxPool2d"/>). Padding counts as zeros; the divisor is k² when <paramref name="countIncludePad"/>
    /// (PyTorch's default) and the number of in-bounds inputs otherwise. The backward gathers each input's share of
    /// the windows that contain it (deterministic, no atomics).
    /// </summary>
    /// <param name="tape">The tape.</param>
    /// <param name="input">[B, C, H, W].</param>
    /// <param name="kernelSize">Window side k ≥ 1.</param>
    /// <param name="stride">Window step s ≥ 1; defaults to <paramref name="kernelSize"/>.</param>
    /// <param name="padding">Implicit zero padding p with 0 ≤ p ≤ k/2.</param>
    /// <param name="countIncludePad">Whether padded positions count in the divisor.</param>
    /// <exception cref="ArgumentException">The input is not rank 4, k or s &lt; 1, p outside [0, k/2], or the window
    /// does not fit (H + 2p &lt; k or W + 2p &lt; k).</exception>
    public static Tensor AvgPool2d(this Tape tape, Tensor input, int kernelSize, int? stride = null, int padding = 0, bool countIncludePad = true)
    {
        const string op = "AvgPool2d";
        var g = PoolGeometry(op, tape, input, kernelSize, stride ?? kernelSize, padding);
        var d = tape.Device;
        int includePad = countIncludePad ? 1 : 0;
        var y = tape.NewTensor(input.Dim(0), input.Dim(1), g.OutHeight, g.OutWidth);
        int ext = d.Extent(y.Length);
        d.Kernels.AvgPoolForward(d.Stream, ext, y.Length, ext, g, includePad, input.View, y.View);
        if (tape.NeedsGrad(input))
            tape.Record(op, y, () =>
            {
                int inputExtent = d.Extent(input.Length);
                var dInput = input.GradForWrite(out int accumulate);
                d.Kernels.AvgPoolBackward(d.Stream, inputExtent, input.Length, inputExtent, g, includePad, accumulate, y.Grad.View, dInput);
            });
        return y;
    }

    /// <summary>Validates a pooling's input and window (see <see cref="MaxPool2d"/>) and returns its geometry.</summary>
    private static Pool2dGeometry PoolGeometry(string op, Tape tape, Tensor input, int kernelSize, int stride, int padding)
    {
        RequireSameDevice(op, tape, input);
        RequireNchw(op, input);
        if (kernelSize < 1 || stride < 1)
            throw new ArgumentException($"{op}: kernel size and stride must be ≥ 1; got kernel {kernelSize}, stride {stride}.", nameof(kernelSize));
        if (padding < 0 || padding > kernelSize / 2)
            throw new ArgumentException(
                $"{op}: padding must be in [0, kernel/2] = [0, {kernelSize / 2}]; got padding {padding} with kernel {kernelSize}.", nameof(padding));
        int h = input.Dim(2), w = input.Dim(3);
        if (h + 2 * padding < kernelSize || w + 2 * padding < kernelSize)
            throw new ArgumentException(
                $"{op}: a {kernelSize}×{kernelSize} window with padding {padding} does not fit input {input.ShapeString} (output size would be < 1).",
                nameof(input));
        return new Pool2dGeometry(input.Dim(0) * input.Dim(1), h, w, kernelSize, stride, padding);
    }
}
