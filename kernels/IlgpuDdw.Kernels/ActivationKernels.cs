using ILGPU;

namespace IlgpuDdw.Kernels;

/// <summary>
/// Pointwise activations with their backward kernels. Grid-stride loops over n elements (see
/// <see cref="ElementwiseKernels"/>). Forward kernels overwrite <c>y</c>; backward kernels accumulate into
/// <c>dInput</c> when <c>accumulate</c> ≠ 0 and otherwise overwrite it: every element is written once, as
/// <c>0 + v</c>, which is bitwise what accumulating onto a zeroed gradient gives (−0 included), and the old contents
/// (garbage from the pool) are never read. The ReLU family saves its input (the gradient mask is computed from x; at a kink the
/// gradient is 0); sigmoid saves its output (σ' = y·(1 − y)).
/// </summary>
public static class ActivationKernels
{
    /// <summary><c>y = max(x, 0)</c>.</summary>
    [Kernel]
    public static void ReluForward(Index1D index, int n, int stride, ArrayView<float> x, ArrayView<float> y)
    {
        for (int i = index; i < n; i += stride)
        {
            float v = x[i];
            y[i] = v > 0f ? v : 0f;
        }
    }

    /// <summary><c>dInput (+)= x &gt; 0 ? dOutput : 0</c> (overwrites when <paramref name="accumulate"/> = 0).</summary>
    [Kernel]
    public static void ReluBackward(Index1D index, int n, int stride, int accumulate, ArrayView<float> x, ArrayView<float> dOutput, ArrayView<float> dInput)
    {
        for (int i = index; i < n; i += stride)
        {
            if (x[i] > 0f)
                dInput[i] = ElementwiseKernels.Prior(accumulate, dInput, i) + dOutput[i];
            else if (accumulate == 0)
                dInput[i] = 0f;
        }
    }

    /// <summary><c>y = min(max(x, 0), 6)</c>. Saves x for the backward.</summary>
    [Kernel]
    public static void Relu6Forward(Index1D index, int n, int stride, ArrayView<float> x, ArrayView<float> y)
    {
        for (int i = index; i < n; i += stride)
        {
            float v = x[i];
            y[i] = v > 0f ? (v < 6f ? v : 6f) : 0f;
        }
    }

    /// <summary>
    /// <c>dInput (+)= (0 &lt; x &lt; 6) ? dOutput : 0</c> (zero at both kinks, like PyTorch's hardtanh; overwrites when
    /// <paramref name="accumulate"/> = 0).
    /// </summary>
    [Kernel]
    public static void Relu6Backward(Index1D index, int n, int stride, int accumulate, ArrayView<float> x, ArrayView<float> dOutput, ArrayView<float> dInput)
    {
        for (int i = index; i < n; i += stride)
        {
            float v = x[i];
            if (v > 0f && v < 6f)
                dInput[i] = ElementwiseKernels.Prior(accumulate, dInput, i) + dOutput[i];
            else if (accumulate == 0)
                dInput[i] = 0f;
        }
    }

    /// <summary>
    /// The logistic function <c>1 / (1 + e^(−x))</c>, evaluated as <c>e^x / (1 + e^x)</c> for x &lt; 0 so no
    /// exponential overflows. Every sigmoid of the device code (this family, the fused sigmoid of
    /// <see cref="LinearKernels"/>, dense edge weights) calls this one helper, so equal inputs give bitwise equal
    /// outputs.
    /// </summary>
    public static float Sigmoid(float x)
    {
        if (x >= 0f)
            return 1f / (1f + MathF.Exp(-x));
        float e = MathF.Exp(x);
        return e / (1f + e);
    }

    /// <summary><c>y = </c><see cref="Sigmoid(float)"/><c>(x)</c>. Saves y for the backward.</summary>
    [Kernel]
    public static void SigmoidForward(Index1D index, int n, int stride, ArrayView<float> x, ArrayView<float> y)
    {
        for (int i = index; i < n; i += stride)
            y[i] = Sigmoid(x[i]);
    }

    /// <summary><c>dInput (+)= dOutput · y · (1 − y)</c> with y the saved forward output (overwrites when <paramref name="accumulate"/> = 0).</summary>
    [Kernel]
    public static void SigmoidBackward(Index1D index, int n, int stride, int accumulate, ArrayView<float> y, ArrayView<float> dOutput, ArrayView<float> dInput)
    {
        for (int i = index; i < n; i += stride)
        {
            float s = y[i];
            dInput[i] = ElementwiseKernels.Prior(accumulate, dInput, i) + dOutput[i] * s * (1f - s);
        }
    }
}
