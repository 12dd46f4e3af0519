using System.Numerics;

namespace IlgpuDdw.Kernels.Reference;

/// <summary>
/// CPU references of the pooling kernels (see <see cref="PoolingKernels"/>), generic over float and double.
/// Backward references scatter each output's gradient to its window in output order (the kernels gather; both
/// give the same sums) and accumulate (+=).
/// </summary>
public static class PoolingReference
{
    /// <summary>GlobalAvgPool2d: <c>y[p] = (1/spatial)·Σ x[p·spatial .. (p+1)·spatial)</c> for every plane p = (b, c).</summary>
    public static void GlobalAvgPoolForward<T>(ReadOnlySpan<T> x, int spatial, Span<T> y) where T : IFloatingPointIeee754<T>
    {
        T scale = T.One / T.CreateChecked(spatial);
        for (int p = 0; p < y.Length; p++)
        {
            T sum = T.Zero;
            for (int s = 0; s < spatial; s++) sum += x[p * spatial + s];
            y[p] = sum * scale;
        }
    }

    /// <summary><c>dInput[i] += dOutput[i / spatial] / spatial</c> (with <paramref name="accumulate"/> false: overwrites, as accumulating onto zeros; the old contents are not read).</summary>
    public static void GlobalAvgPoolBackward<T>(ReadOnlySpan<T> dOutput, int spatial, Span<T> dInput, bool accumulate = true) where T : IFloatingPointIeee754<T>
    {
        if (!accumulate) dInput.Clear();
        T scale = T.One / T.CreateChecked(spatial);
        for (int i = 0; i < dInput.Length; i++) dInput[i] += scale * dOutput[i / spatial];
    }

    /// <summary>
    /// Max pooling: y = the maximum over each window's in-bounds inputs (first maximum in row-major order on
    /// ties); <c>argmax</c> = its in-plane index ih·W + iw.
    /// </summary>
    public static void MaxPoolForward<T>(ReadOnlySpan<T> x, Pool2dGeometry g, Span<T> y, Span<int> argmax) where T : IFloatingPointIeee754<T>
    {
        int o = 0;
        for (int p = 0; p < g.Planes; p++)
            for (int oh = 0; oh < g.OutHeight; oh++)
                for (int ow = 0; ow < g.OutWidth; ow++, o++)
                {
                    int best = -1;
                    T bestValue = T.NegativeInfinity;
                    for (int ih = g.ClippedBegin(oh); ih < g.ClippedEnd(oh, g.Height); ih++)
                        for (int iw = g.ClippedBegin(ow); iw < g.ClippedEnd(ow, g.Width); iw++)
                        {
                            T v = x[(p * g.Height + ih) * g.Width + iw];
                            if (best < 0 || v > bestValue || T.IsNaN(v)) { bestValue = v; best = ih * g.Width + iw; }
                        }
                    y[o] = bestValue;
                    argmax[o] = best;
                }
    }

    /// <summary>Max pooling backward: <c>dInput[plane, argmax[o]] += dOutput[o]</c> for every output o (with <paramref name="accumulate"/> false: overwrites, as accumulating onto zeros; the old contents are not read).</summary>
    public static void MaxPoolBackward<T>(ReadOnlySpan<int> argmax, ReadOnlySpan<T> dOutput, Pool2dGeometry g, Span<T> dInput, bool accumulate = true)
        where T : IFloatingPointIeee754<T>
    {
        if (!accumulate) dInput.Clear();
        int perPlane = g.OutHeight * g.OutWidth;
        for (int o = 0; o < g.OutputLength; o++)
            dInput[o / perPlane * g.Height * g.Width + argmax[o]] += dOutput[o];
    }

    /// <summary>Average pooling: <c>y = Σ</c>(in-bounds window inputs) <c>/ divisor</c> (<see cref="Pool2dGeometry.AvgDivisor"/>).</summary>
    public static void AvgPoolForward<T>(ReadOnlySpan<T> x, Pool2dGeometry g, bool countIncludePad, Span<T> y) where T : IFloatingPointIeee754<T>
    {
        int o = 0;
        for (int p = 0; p < g.Planes; p++)
            for (int oh = 0; oh < g.OutHeight; oh++)
                for (int ow = 0; ow < g.OutWidth; ow++, o++)
                {
                    T sum = T.Zero;
                    for (int ih = g.ClippedBegin(oh); ih < g.ClippedEnd(oh, g.Height); ih++)
                        for (int iw = g.ClippedBegin(ow); iw < g.ClippedEnd(ow, g.Width); iw++)
                            sum += x[(p * g.Height + ih) * g.Width + iw];
                    y[o] = sum / T.CreateChecked(g.AvgDivisor(oh, ow, countIncludePad));
                }
    }

    /// <summary>Average pooling backward: every in-bounds input of window o gets <c>dOutput[o] / divisor(o)</c> (with <paramref name="accumulate"/> false: overwrites, as accumulating onto zeros; the old contents are not read).</summary>
    public static void AvgPoolBackward<T>(ReadOnlySpan<T> dOutput, Pool2dGeometry g, bool countIncludePad, Span<T> dInput, bool accumulate = true)
        where T : IFloatingPointIeee754<T>
    {
        if (!accumulate) dInput.Clear();
        int o = 0;
        for (int p = 0; p < g.Planes; p++)
            for (int oh = 0; oh < g.OutHeight; oh++)
                for (int ow = 0; ow < g.OutWidth; ow++, o++)
                {
                    T share = dOutput[o] / T.CreateChecked(g.AvgDivisor(oh, ow, countIncludePad));
                    for (int ih = g.ClippedBegin(oh); ih < g.ClippedEnd(oh, g.Height); ih++)
                        for (int iw = g.ClippedBegin(ow); iw < g.ClippedEnd(ow, g.Width); iw++)
                            dInput[(p * g.Height + ih) * g.Width + iw] += share;
                }
    }
}
