using System.Numerics;

namespace IlgpuDdw.Kernels.Reference;

/// <summary>
/// CPU reference of <see cref="LinearKernels"/>: <c>y[b, o] = act(Σ_i x[b, i] · W[o, i] + bias[o])</c> with
/// x [B, In], W [Out, In], bias [Out] (or empty for no bias), y [B, Out] and act a <see cref="LinearActivation"/>.
/// The backward references take the saved output y (may be empty for <see cref="LinearActivation.None"/>) and
/// apply <c>dZ = dOutput · act′(y)</c>; they accumulate.
/// </summary>
public static class LinearReference
{
    /// <summary><c>y = act(x · Wᵀ + bias)</c> (overwrites y). An empty <paramref name="bias"/> means no bias.</summary>
    public static void Forward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> weight, ReadOnlySpan<T> bias, int batch, int inFeatures, int outFeatures,
        LinearActivation activation, Span<T> y) where T : IFloatingPointIeee754<T>
    {
        for (int b = 0; b < batch; b++)
            for (int o = 0; o < outFeatures; o++)
            {
                T s = T.Zero;
                for (int i = 0; i < inFeatures; i++) s += x[b * inFeatures + i] * weight[o * inFeatures + i];
                T z = s + (bias.IsEmpty ? T.Zero : bias[o]);
                y[b * outFeatures + o] = activation switch
                {
                    LinearActivation.Relu => z > T.Zero ? z : T.Zero,
                    LinearActivation.Sigmoid => ActivationReference.Sigmoid(z),
                    _ => z,
                };
            }
    }

    /// <summary><c>dZ[k] = dOutput[k] · act′</c> from the saved output y (ReLU: <c>y &gt; 0</c>; sigmoid: <c>y(1 − y)</c>).</summary>
    public static T OutputGradient<T>(LinearActivation activation, ReadOnlySpan<T> y, ReadOnlySpan<T> dOutput, int k) where T : IFloatingPointIeee754<T> =>
        activation switch
        {
            LinearActivation.Relu => y[k] > T.Zero ? dOutput[k] : T.Zero,
            LinearActivation.Sigmoid => dOutput[k] * y[k] * (T.One - y[k]),
            _ => dOutput[k],
        };

    /// <summary><c>dInput[b, i] += Σ_o dZ[b, o] · W[o, i]</c> (with <paramref name="accumulate"/> false: overwrites, as accumulating onto zeros; the old contents are not read).</summary>
    public static void BackwardInput<T>(ReadOnlySpan<T> dOutput, ReadOnlySpan<T> y, ReadOnlySpan<T> weight, int batch, int inFeatures, int outFeatures,
        LinearActivation activation, Span<T> dInput, bool accumulate = true) where T : IFloatingPointIeee754<T>
    {
        if (!accumulate) dInput.Clear();
        AddProduct(OutputGradients(activation, y, dOutput), transposeA: false, weight, batch, outFeatures, inFeatures, dInput);
    }

    /// <summary><c>dWeight[o, i] += Σ_b dZ[b, o] · x[b, i]</c>.</summary>
    public static void BackwardWeight<T>(ReadOnlySpan<T> dOutput, ReadOnlySpan<T> y, ReadOnlySpan<T> x, int batch, int inFeatures, int outFeatures,
        LinearActivation activation, Span<T> dWeight) where T : IFloatingPointIeee754<T> =>
        AddProduct(OutputGradients(activation, y, dOutput), transposeA: true, x, outFeatures, batch, inFeatures, dWeight);

    /// <summary>dZ for every element of dOutput.</summary>
    private static T[] OutputGradients<T>(LinearActivation activation, ReadOnlySpan<T> y, ReadOnlySpan<T> dOutput) where T : IFloatingPointIeee754<T>
    {
        var dz = new T[dOutput.Length];
        for (int k = 0; k < dz.Length; k++) dz[k] = OutputGradient(activation, y, dOutput, k);
        return dz;
    }

    /// <summary>
    /// <c>c[r, j] += Σ_k op(a)[r, k] · b[k, j]</c> for c [rows, cols], b [inner, cols]; op(a) is a [rows, inner], or the
    /// transpose of a stored as [inner, rows]. Each sum runs over k in order, starting from zero.
    /// </summary>
    private static void AddProduct<T>(ReadOnlySpan<T> a, bool transposeA, ReadOnlySpan<T> b, int rows, int inner, int cols, Span<T> c)
        where T : IFloatingPointIeee754<T>
    {
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < cols; j++)
            {
                T s = T.Zero;
                for (int k = 0; k < inner; k++) s += a[transposeA ? k * rows + r : r * inner + k] * b[k * cols + j];
                c[r * cols + j] += s;
            }
    }

    /// <summary><c>dBias[o] += Σ_b dZ[b, o]</c>.</summary>
    public static void BackwardBias<T>(ReadOnlySpan<T> dOutput, ReadOnlySpan<T> y, int batch, int outFeatures, LinearActivation activation, Span<T> dBias)
        where T : IFloatingPointIeee754<T>
    {
        for (int o = 0; o < outFeatures; o++)
        {
            T s = T.Zero;
            for (int b = 0; b < batch; b++) s += OutputGradient(activation, y, dOutput, b * outFeatures + o);
            dBias[o] += s;
        }
    }
}
