using ILGPU;

namespace IlgpuDdw.Kernels;

/// <summary>
/// Deterministic reductions. A full sum runs as two chunked passes (about √n partial sums, then one), each
/// output owned by one thread that loops over its chunk in order, so results are bit-identical run to run.
/// </summary>
public static class ReductionKernels
{
    /// <summary>Sum over the warp by a butterfly of shuffles (every lane gets the same value; a fixed order).</summary>
    internal static float WarpSum(float value)
    {
        for (int offset = 1; offset < Warp.WarpSize; offset <<= 1)
            value += Warp.ShuffleXor(value, offset);
        return value;
    }

    /// <summary>
    /// <c>y[k] = scale · Σ x[i]</c> (or <c>Σ x[i]²</c> when <paramref name="squares"/> ≠ 0: a squared L2 norm's partials)
    /// over <c>i ∈ [k·chunk, min(n, (k+1)·chunk))</c> for k &lt; count. Grid-stride over k. Overwrites y. Summation in
    /// float, in index order.
    /// </summary>
    [Kernel]
    public static void SumChunks(Index1D index, int count, int stride, int chunk, int n, float scale, int squares, ArrayView<float> x, ArrayView<float> y)
    {
        for (int k = index; k < count; k += stride)
        {
            int start = k * chunk;
            int end = start + chunk;
            if (end > n) end = n;
            float s = 0f;
            for (int i = start; i < end; i++)
                s += squares != 0 ? x[i] * x[i] : x[i];
            y[k] = s * scale;
        }
    }

    /// <summary>
    /// Gradient groups: <c>target[i] += tree(partials[0·n + i], …, partials[(groups − 1)·n + i])</c> for i &lt; n, where
    /// the tree adds the group partials pairwise bottom-up (level w = 1, 2, 4, …: slot k, a multiple of 2w, adds slot
    /// k + w when there is one), so any aligned power-of-two block of groups is one subtree: ranks that each hold such
    /// a block and add their subtree sums pairwise get this result bit for bit. Grid-stride over i; works in place
    /// (destroys the partials). Accumulates into target.
    /// </summary>
    [Kernel]
    public static void GroupSums(Index1D index, int n, int stride, int groups, ArrayView<float> partials, ArrayView<float> target)
    {
        for (int i = index; i < n; i += stride)
        {
            for (int w = 1; w < groups; w <<= 1)
                for (int k = 0; k + w < groups; k += 2 * w)
                    partials[(long)k * n + i] += partials[(long)(k + w) * n + i];
            target[i] += partials[i];
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
