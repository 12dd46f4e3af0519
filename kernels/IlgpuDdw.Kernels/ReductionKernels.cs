using ILGPU;

namespace IlgpuDdw.Kernels;

/// <summary>
/// Deterministic reductions. A full sum runs as two chunked passes (about √n partial sums, then one), each
/// output owned by one thread that loops over its chunk in order, so results are bit-identical run to run.
/// </summary>
public static class ReductionKernels
{
    /// <summary>
    /// <c>y[k] = scale · Σ x[k·chunk .. min(n, (k+1)·chunk))</c> for k &lt; count. Grid-stride over k.
    /// Overwrites y. Summation in float, in index order.
    /// </summary>
    [Kernel]
    public static void SumChunks(Index1D index, int count, int stride, int chunk, int n, float scale, ArrayView<float> x, ArrayView<float> y)
    {
        for (int k = index; k < count; k += stride)
        {
            int start = k * chunk;
            int end = start + chunk;
            if (end > n) end = n;
            float s = 0f;
            for (int i = start; i < end; i++)
                s += x[i];
            y[k] = s * scale;
        }
    }

    /// <summary>
    /// <c>y[k] = Σ x[i]²</c> over <c>i ∈ [k·chunk, min(n, (k+1)·chunk))</c> for k &lt; count: the partial sums of a
    /// squared L2 norm (finish with <see cref="SumChunks"/>). Grid-stride over k. Overwrites y. Summation in float,
    /// in index order.
    /// </summary>
    [Kernel]
    public static void SumSquaresChunks(Index1D index, int count, int stride, int chunk, int n, ArrayView<float> x, ArrayView<float> y)
    {
        for (int k = index; k < count; k += stride)
        {
            int start = k * chunk;
            int end = start + chunk;
            if (end > n) end = n;
            float s = 0f;
            for (int i = start; i < end; i++)
                s += x[i] * x[i];
            y[k] = s;
        }
    }

    /// <summary>
    /// Backward of sum/mean over all n elements: <c>dInput[i] += scale · dOutput[0]</c> (scale = 1 for sum,
    /// 1/n for mean). Accumulates.
    /// </summary>
    [Kernel]
    public static void SumBackward(Index1D index, int n, int stride, float scale, ArrayView<float> dOutput, ArrayView<float> dInput)
    {
        float g = dOutput[0] * scale;
        for (int i = index; i < n; i += stride)
            dInput[i] += g;
    }
}
