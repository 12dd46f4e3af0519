using System.Numerics;

namespace IlgpuDdw.Kernels.Reference;

/// <summary>
/// CPU reference of <see cref="Conv2dKernels"/>, generic over float and double, written straight from the
/// definition: every pass walks the same list of (output, input, weight) index triples of the taps that land
/// inside the input (<see cref="Taps"/>), so the backward passes scatter where the kernels gather. Shapes are
/// those of <see cref="Conv2dGeometry"/>. Backward references accumulate (+=) like the kernels.
/// </summary>
public static class Conv2dReference
{
    /// <summary>
    /// Every multiply-add of the convolution as flat indices into output, input and weight, in the order
    /// b, co, oh, ow, ci, kh, kw; taps that fall into the zero padding are left out.
    /// </summary>
    public static IEnumerable<(int Output, int Input, int Weight)> Taps(Conv2dGeometry g)
    {
        int cinG = g.InPerGroup, coutG = g.OutPerGroup, k = g.KernelSize;
        for (int b = 0; b < g.Batch; b++)
            for (int co = 0; co < g.OutChannels; co++)
                for (int oh = 0; oh < g.OutHeight; oh++)
                    for (int ow = 0; ow < g.OutWidth; ow++)
                    {
                        int y = ((b * g.OutChannels + co) * g.OutHeight + oh) * g.OutWidth + ow;
                        for (int ciL = 0; ciL < cinG; ciL++)
                        {
                            int ci = co / coutG * cinG + ciL;
                            for (int kh = 0; kh < k; kh++)
                            {
                                int ih = oh * g.Stride - g.Padding + kh;
                                if (ih < 0 || ih >= g.Height) continue;
                                for (int kw = 0; kw < k; kw++)
                                {
                                    int iw = ow * g.Stride - g.Padding + kw;
                                    if (iw < 0 || iw >= g.Width) continue;
                                    yield return (y,
                                        ((b * g.InChannels + ci) * g.Height + ih) * g.Width + iw,
                                        ((co * cinG + ciL) * k + kh) * k + kw);
                                }
                            }
                        }
                    }
    }

    /// <summary>
    /// <c>y[b,co,oh,ow] = bias[co] + Σ_{ci_local, kh, kw} w[co,ci_local,kh,kw] · x[b, ci, oh·s − p + kh, ow·s − p + kw]</c>;
    /// an empty <paramref name="bias"/> means no bias. Overwrites <paramref name="output"/>.
    /// </summary>
    public static void Forward<T>(Conv2dGeometry g, ReadOnlySpan<T> input, ReadOnlySpan<T> weight, ReadOnlySpan<T> bias, Span<T> output)
        where T : IFloatingPointIeee754<T>
    {
        int plane = g.OutHeight * g.OutWidth;
        for (int i = 0; i < output.Length; i++)
            output[i] = bias.IsEmpty ? T.Zero : bias[i / plane % g.OutChannels];
        foreach (var (y, x, w) in Taps(g))
            output[y] += weight[w] * input[x];
    }

    /// <summary><c>dInput[x] += Σ dOutput[y] · w[w]</c> over every tap (y, x, w) (with <paramref name="accumulate"/> false: overwrites, as accumulating onto zeros; the old contents are not read).</summary>
    public static void BackwardInput<T>(Conv2dGeometry g, ReadOnlySpan<T> dOutput, ReadOnlySpan<T> weight, Span<T> dInput, bool accumulate = true)
        where T : IFloatingPointIeee754<T>
    {
        if (!accumulate) dInput.Clear();
        foreach (var (y, x, w) in Taps(g))
            dInput[x] += dOutput[y] * weight[w];
    }

    /// <summary><c>dWeight[w] += Σ dOutput[y] · x[x]</c> over every tap (y, x, w).</summary>
    public static void BackwardWeight<T>(Conv2dGeometry g, ReadOnlySpan<T> dOutput, ReadOnlySpan<T> input, Span<T> dWeight)
        where T : IFloatingPointIeee754<T>
    {
        foreach (var (y, x, w) in Taps(g))
            dWeight[w] += dOutput[y] * input[x];
    }

    /// <summary><c>dBias[co] += Σ_{b, oh, ow} dOutput[b, co, oh, ow]</c>.</summary>
    public static void BackwardBias<T>(Conv2dGeometry g, ReadOnlySpan<T> dOutput, Span<T> dBias)
        where T : IFloatingPointIeee754<T>
    {
        int plane = g.OutHeight * g.OutWidth;
        for (int i = 0; i < dOutput.Length; i++)
            dBias[i / plane % g.OutChannels] += dOutput[i];
    }
}
