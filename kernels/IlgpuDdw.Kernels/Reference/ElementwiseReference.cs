using System.Numerics;

namespace IlgpuDdw.Kernels.Reference;

/// <summary>
/// CPU references of the elementwise and reduction kernels, generic over float and double. They
/// are the ground truth for the kernel tests and, in double, for the finite-difference gradient checks.
/// Backward references accumulate (+=) like the kernels.
/// </summary>
public static class ElementwiseReference
{
    /// <summary>
    /// <c>target[i] += tree over g of partials[g·n + i]</c>, the group partials added pairwise bottom-up (pairs (0, 1),
    /// (2, 3), …, then pairs of pairs; an odd last one carried up), written as recursion over the largest aligned
    /// power-of-two halves: the definition <see cref="ReductionKernels.GroupSums"/> computes level by level.
    /// </summary>
    public static void GroupSums<T>(ReadOnlySpan<T> partials, int groups, Span<T> target) where T : IFloatingPointIeee754<T>
    {
        int n = target.Length;
        for (int i = 0; i < n; i++) target[i] += Tree(partials, n, i, 0, groups);
    }

    // groups [lo, hi): the left subtree is the largest power-of-two block that leaves something on the right
    private static T Tree<T>(ReadOnlySpan<T> partials, int n, int i, int lo, int hi) where T : IFloatingPointIeee754<T>
    {
        if (hi - lo == 1) return partials[lo * n + i];
        int half = 1;
        while (2 * half < hi - lo) half *= 2;
        return Tree(partials, n, i, lo, lo + half) + Tree(partials, n, i, lo + half, hi);
    }

    /// <summary><c>y = a + b</c>.</summary>
    public static void AddForward<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) where T : IFloatingPointIeee754<T>
    {
        for (int i = 0; i < y.Length; i++) y[i] = a[i] + b[i];
    }

    /// <summary>
    /// <c>dA += dOutput; dB += dOutput</c> (with <paramref name="accumulate"/> false both are overwritten, as accumulating
    /// onto zeros; the old contents are not read).
    /// </summary>
    public static void AddBackward<T>(ReadOnlySpan<T> dOutput, Span<T> dA, Span<T> dB, bool accumulate = true) where T : IFloatingPointIeee754<T>
    {
        if (!accumulate) { dA.Clear(); dB.Clear(); }
        for (int i = 0; i < dOutput.Length; i++) { dA[i] += dOutput[i]; dB[i] += dOutput[i]; }
    }

    /// <summary><c>y = a · b</c>.</summary>
    public static void MultiplyForward<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) where T : IFloatingPointIeee754<T>
    {
        for (int i = 0; i < y.Length; i++) y[i] = a[i] * b[i];
    }

    /// <summary><c>dA += dOutput · b; dB += dOutput · a</c>.</summary>
    public static void MultiplyBackward<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, ReadOnlySpan<T> dOutput, Span<T> dA, Span<T> dB) where T : IFloatingPointIeee754<T>
    {
        for (int i = 0; i < dOutput.Length; i++) { dA[i] += dOutput[i] * b[i]; dB[i] += dOutput[i] * a[i]; }
    }

    /// <summary><c>y[i] = live[i / sampleSize] ≠ 0 ? x[i] : 0</c>.</summary>
    public static void MaskSamplesForward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> live, int sampleSize, Span<T> y) where T : IFloatingPointIeee754<T>
    {
        for (int i = 0; i < y.Length; i++) y[i] = live[i / sampleSize] != T.Zero ? x[i] : T.Zero;
    }

    /// <summary>
    /// <c>dInput[i] += live[i / sampleSize] ≠ 0 ? dOutput[i] : 0</c> (with <paramref name="accumulate"/> false:
    /// overwrites, as accumulating onto zeros; the old contents are not read).
    /// </summary>
    public static void MaskSamplesBackward<T>(ReadOnlySpan<T> dOutput, ReadOnlySpan<T> live, int sampleSize, Span<T> dInput, bool accumulate = true)
        where T : IFloatingPointIeee754<T>
    {
        if (!accumulate) dInput.Clear();
        for (int i = 0; i < dOutput.Length; i++)
            if (live[i / sampleSize] != T.Zero) dInput[i] += dOutput[i];
    }

    /// <summary>Σ x (in index order).</summary>
    public static T Sum<T>(ReadOnlySpan<T> x) where T : IFloatingPointIeee754<T>
    {
        T s = T.Zero;
        foreach (var v in x) s += v;
        return s;
    }

    /// <summary><c>Σ x²</c>, the squared L2 norm (the trainer's gradient-norm guard).</summary>
    public static T SumOfSquares<T>(ReadOnlySpan<T> x) where T : IFloatingPointIeee754<T>
    {
        T s = T.Zero;
        foreach (var v in x) s += v * v;
        return s;
    }

    /// <summary>Σ x / n.</summary>
    public static T Mean<T>(ReadOnlySpan<T> x) where T : IFloatingPointIeee754<T> => Sum(x) / T.CreateChecked(x.Length);

    /// <summary>Backward of sum (scale 1) or mean (scale 1/n): <c>dInput += scale · dOutput</c>.</summary>
    public static void SumBackward<T>(T dOutput, T scale, Span<T> dInput) where T : IFloatingPointIeee754<T>
    {
        for (int i = 0; i < dInput.Length; i++) dInput[i] += dOutput * scale;
    }
}
