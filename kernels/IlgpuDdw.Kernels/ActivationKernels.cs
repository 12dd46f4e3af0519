using ILGPU;

namespace IlgpuDdw.Kernels;

/// <summary>
/// Pointwise activations with their backward kernels. Grid-stride loops over n elements (see
/// <see cref="ElementwiseKernels"/>). Forward kernels overwrite <c>y</c>; backward kernels accumulate into
/// <c>dInput</c>. The ReLU family saves its input (the gradient mask is <c>x &gt; 0</c>; at exactly 0 the
/// gradient is 0).
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

    /// <summary><c>dInput += x &gt; 0 ? dOutput : 0</c>.</summary>
    [Kernel]
    public static void ReluBackward(Index1D index, int n, int stride, ArrayView<float> x, ArrayView<float> dOutput, ArrayView<float> dInput)
    {
        for (int i = index; i < n; i += stride)
        {
            if (x[i] > 0f)
                dInput[i] += dOutput[i];
        }
    }
}
