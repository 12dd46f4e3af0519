using System.Numerics;

namespace IlgpuDdw.Kernels.Reference;

/// <summary>
/// CPU reference of <see cref="LinearKernels"/>: <c>y[b, o] = Σ_i x[b, i] · W[o, i] + bias[o]</c> with x [B, In],
/// W [Out, In], bias [Out] (or empty for no bias), y [B, Out]. Backward references accumulate.
/// </summary>
public static class LinearReference
{
    /// <summary><c>y = x · Wᵀ + bias</c> (overwrites y). An empty <paramref name="bias"/> means no bias.</summary>
    public static void Forward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> weight, ReadOnlySpan<T> bias, int batch, int inFeatures, int outFeatures, Span<T> y)
        where T : IFloatingPointIeee754<T>
    {
        for (int b = 0; b < batch; b++)
            for (int o = 0; o < outFeatures; o++)
            {
                T s = T.Zero;
                for (int i = 0; i < inFeatures; i++) s += x[b * inFeatures + i] * weight[o * inFeatures + i];
                y[b * outFeatures + o] = s + (bias.IsEmpty ? T.Zero : bias[o]);
            }
    }

    /// <summary><c>dInput[b, i] += Σ_o dOutput[b, o] · W[o, i]</c>.</summary>
    public static void BackwardInput<T>(ReadOnlySpan<T> dOutput, ReadOnlySpan<T> weight, int batch, int inFeatures, int outFeatures, Span<T> dInput)
        where T : IFloatingPointIeee754<T>
    {
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < inFeatures; i++)
            {
                T s = T.Zero;
                for (int o = 0; o < outFeatures; o++) s += dOutput[b * outFeatures + o] * weight[o * inFeatures + i];
                dInput[b * inFeatures + i] += s;
            }
    }

    /// <summary><c>dWeight[o, i] += Σ_b dOutput[b, o] · x[b, i]</c>.</summary>
    public static void BackwardWeight<T>(ReadOnlySpan<T> dOutput, ReadOnlySpan<T> x, int batch, int inFeatures, int outFeatures, Span<T> dWeight)
        where T : IFloatingPointIeee754<T>
    {
        for (int o = 0; o < outFeatures; o++)
            for (int i = 0; i < inFeatures; i++)
            {
                T s = T.Zero;
                for (int b = 0; b < batch; b++) s += dOutput[b * outFeatures + o] * x[b * inFeatures + i];
                dWeight[o * inFeatures + i] += s;
            }
    }

    /// <summary><c>dBias[o] += Σ_b dOutput[b, o]</c>.</summary>
    public static void BackwardBias<T>(ReadOnlySpan<T> dOutput, int batch, int outFeatures, Span<T> dBias)
        where T : IFloatingPointIeee754<T>
    {
        for (int o = 0; o < outFeatures; o++)
        {
            T s = T.Zero;
            for (int b = 0; b < batch; b++) s += dOutput[b * outFeatures + o];
            dBias[o] += s;
        }
    }
}
