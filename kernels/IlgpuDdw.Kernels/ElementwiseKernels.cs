using ILGPU;

namespace IlgpuDdw.Kernels;

/// <summary>
/// Elementwise arithmetic: fill, copy, scaled accumulate, add and multiply, with their backward kernels.
/// Every kernel is a grid-stride loop: thread <c>index</c> handles elements <c>index, index + stride, ...</c>
/// below <c>n</c>; launch it with any extent ≤ n and pass that extent as <c>stride</c>.
/// </summary>
public static class ElementwiseKernels
{
    /// <summary>
    /// What a backward kernel adds its contribution to: <c>gradient[i]</c> when <paramref name="accumulate"/> ≠ 0,
    /// else 0 without reading the element, so <c>gradient[i] = Prior(…) + v</c> overwrites a gradient whose old contents
    /// are garbage with exactly what accumulating onto a zeroed one gives (bitwise, −0 included). The flag of the
    /// backward kernels that write every element of their gradient exactly once (the tensor's <c>GradForWrite</c>).
    /// </summary>
    public static float Prior(int accumulate, ArrayView<float> gradient, int i) => accumulate != 0 ? gradient[i] : 0f;

    /// <summary><c>y[i] = value</c> for i &lt; n. Overwrites.</summary>
    [Kernel]
    public static void Fill(Index1D index, int n, int stride, float value, ArrayView<float> y)
    {
        for (int i = index; i < n; i += stride)
            y[i] = value;
    }

    /// <summary><c>y[i] = x[i]</c> for i &lt; n. Overwrites.</summary>
    [Kernel]
    public static void Copy(Index1D index, int n, int stride, ArrayView<float> x, ArrayView<float> y)
    {
        for (int i = index; i < n; i += stride)
            y[i] = x[i];
    }

    /// <summary>
    /// <c>y[i] += alpha · x[i]</c> for i &lt; n when <paramref name="accumulate"/> ≠ 0, else <c>y[i] = 0 + alpha · x[i]</c>
    /// (overwrites; <see cref="Prior"/>). This is also the backward kernel of add (alpha = 1 into each input's
    /// gradient), of scale and of every view/reshape.
    /// </summary>
    [Kernel]
    public static void Axpy(Index1D index, int n, int stride, int accumulate, float alpha, ArrayView<float> x, ArrayView<float> y)
    {
        for (int i = index; i < n; i += stride)
            y[i] = Prior(accumulate, y, i) + alpha * x[i];
    }

    /// <summary>Forward of add: <c>y[i] = a[i] + b[i]</c>, shapes equal, n elements. Overwrites; saves nothing.</summary>
    [Kernel]
    public static void AddForward(Index1D index, int n, int stride, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y)
    {
        for (int i = index; i < n; i += stride)
            y[i] = a[i] + b[i];
    }

    /// <summary>Forward of multiply: <c>y[i] = a[i] · b[i]</c>. Overwrites; the backward needs a and b.</summary>
    [Kernel]
    public static void MultiplyForward(Index1D index, int n, int stride, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y)
    {
        for (int i = index; i < n; i += stride)
            y[i] = a[i] * b[i];
    }

    /// <summary>
    /// Backward of multiply with respect to one factor: <c>dSelf[i] += dOutput[i] · other[i]</c>.
    /// Accumulates; launched once per factor that requires a gradient.
    /// </summary>
    [Kernel]
    public static void MultiplyBackward(Index1D index, int n, int stride, ArrayView<float> dOutput, ArrayView<float> other, ArrayView<float> dSelf)
    {
        for (int i = index; i < n; i += stride)
            dSelf[i] += dOutput[i] * other[i];
    }

    /// <summary>
    /// Per-sample mask, forward: <c>y[i] = live[b] ≠ 0 ? x[i] : 0</c> with sample <c>b = i / sampleSize</c>, n = B·sampleSize
    /// elements. Overwrites; the backward needs only the mask.
    /// </summary>
    [Kernel]
    public static void MaskSamplesForward(Index1D index, int n, int stride, int sampleSize, ArrayView<float> live, ArrayView<float> x,
        ArrayView<float> y)
    {
        for (int i = index; i < n; i += stride)
            y[i] = live[i / sampleSize] != 0f ? x[i] : 0f;
    }

    /// <summary>
    /// Per-sample mask, backward: <c>dInput[i] += live[b] ≠ 0 ? dOutput[i] : 0</c>. Accumulates when
    /// <paramref name="accumulate"/> ≠ 0, else overwrites every element (an off sample's get 0; <see cref="Prior"/>).
    /// </summary>
    [Kernel]
    public static void MaskSamplesBackward(Index1D index, int n, int stride, int sampleSize, int accumulate, ArrayView<float> live,
        ArrayView<float> dOutput, ArrayView<float> dInput)
    {
        for (int i = index; i < n; i += stride)
        {
            if (live[i / sampleSize] != 0f) dInput[i] = Prior(accumulate, dInput, i) + dOutput[i];
            else if (accumulate == 0) dInput[i] = 0f;
        }
    }
}
