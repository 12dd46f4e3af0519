using System.Numerics;

namespace IlgpuDdw.Kernels.Reference;

/// <summary>
/// CPU reference of <see cref="AggregationKernels"/>, generic over float and double. Node outputs
/// <c>ys[i] [batch, sampleSize]</c>, adjacency <c>[batch, nodes + 1, nodes + 1]</c>. Backward references accumulate.
/// </summary>
public static class AggregationReference
{
    /// <summary><c>x[b] = Σ_{i &lt; target} A[b, i, target] · ys[i][b]</c>, sources in index order.</summary>
    public static void Forward<T>(ReadOnlySpan<T> adjacency, IReadOnlyList<T[]> ys, int batch, int nodes, int target, Span<T> x)
        where T : IFloatingPointIeee754<T>
    {
        int sample = x.Length / batch;
        x.Clear();
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < target; i++)
            {
                T a = adjacency[GateReference.Index(nodes, b, i, target)];
                if (a == T.Zero) continue;
                for (int e = b * sample; e < (b + 1) * sample; e++) x[e] += a * ys[i][e];
            }
    }

    /// <summary>
    /// <c>dYs[i][b] += A[b, i, target] · dX[b]</c> for every i &lt; target with a non-null dYs[i] (cut edges skipped);
    /// the dYs[i] with <paramref name="overwrite"/>[i] set are overwritten (as accumulating onto zeros; not read).
    /// </summary>
    public static void BackwardSources<T>(ReadOnlySpan<T> adjacency, ReadOnlySpan<T> dX, int batch, int nodes, int target, IReadOnlyList<T[]?> dYs,
        IReadOnlyList<bool>? overwrite = null)
        where T : IFloatingPointIeee754<T>
    {
        int sample = dX.Length / batch;
        for (int i = 0; i < target; i++)
        {
            var dY = dYs[i];
            if (dY is null) continue;
            if (overwrite is not null && overwrite[i]) Array.Clear(dY);
            for (int b = 0; b < batch; b++)
            {
                T a = adjacency[GateReference.Index(nodes, b, i, target)];
                if (a == T.Zero) continue; // a cut edge adds nothing
                for (int e = b * sample; e < (b + 1) * sample; e++) dY[e] += a * dX[e];
            }
        }
    }

    /// <summary>
    /// <c>dAdjacency[b, i, target] += &lt;ys[i][b], dX[b]&gt;</c> for every i &lt; target whose edge is kept
    /// (A ≠ 0) or whose row is flagged in <paramref name="cutEdgeRows"/> (the kernel's skipping rule; flag every
    /// row for the full derivative).
    /// </summary>
    public static void BackwardAdjacency<T>(ReadOnlySpan<T> adjacency, IReadOnlyList<T[]> ys, ReadOnlySpan<T> dX, int batch, int nodes, int target,
        ReadOnlySpan<bool> cutEdgeRows, Span<T> dAdjacency) where T : IFloatingPointIeee754<T>
    {
        int sample = dX.Length / batch;
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < target; i++)
            {
                int at = GateReference.Index(nodes, b, i, target);
                if (adjacency[at] == T.Zero && !cutEdgeRows[i]) continue;
                T dot = T.Zero;
                for (int e = b * sample; e < (b + 1) * sample; e++) dot += ys[i][e] * dX[e];
                dAdjacency[at] += dot;
            }
    }
}
