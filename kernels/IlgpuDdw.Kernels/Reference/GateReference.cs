using System.Numerics;

namespace IlgpuDdw.Kernels.Reference;

/// <summary>
/// CPU reference of <see cref="GateKernels"/> (threshold gate, dense edge weights, chain), generic over float
/// and double. Adjacency layout <c>[batch, nodes + 1, nodes + 1]</c>. Backward references accumulate.
/// </summary>
public static class GateReference
{
    /// <summary>Offset of <c>A[b, i, j]</c>.</summary>
    public static int Index(int nodes, int b, int i, int j) => (b * (nodes + 1) + i) * (nodes + 1) + j;

    /// <summary><c>A[b, node, node + 1 + o] = a[b, o] &gt; tau ? a[b, o] : 0</c>.</summary>
    public static void Forward<T>(ReadOnlySpan<T> a, int batch, int nodes, int node, T tau, Span<T> adjacency) where T : IFloatingPointIeee754<T>
    {
        int degree = nodes - node;
        for (int b = 0; b < batch; b++)
            for (int o = 0; o < degree; o++)
            {
                T v = a[b * degree + o];
                adjacency[Index(nodes, b, node, node + 1 + o)] = v > tau ? v : T.Zero;
            }
    }

    /// <summary><c>dA[b, o] += (a &gt; tau || straightThrough) ? dAdjacency[b, node, node + 1 + o] : 0</c>.</summary>
    public static void Backward<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> dAdjacency, int batch, int nodes, int node, T tau, bool straightThrough, Span<T> dA)
        where T : IFloatingPointIeee754<T>
    {
        int degree = nodes - node;
        for (int b = 0; b < batch; b++)
            for (int o = 0; o < degree; o++)
            {
                int k = b * degree + o;
                if (straightThrough || a[k] > tau)
                    dA[k] += dAdjacency[Index(nodes, b, node, node + 1 + o)];
            }
    }

    /// <summary><c>A[b, i, j] = sigmoid(logits[e(i, j)])</c> for every edge and sample.</summary>
    public static void DenseForward<T>(ReadOnlySpan<T> logits, int batch, int nodes, Span<T> adjacency) where T : IFloatingPointIeee754<T>
    {
        int edges = nodes * (nodes + 1) / 2;
        for (int b = 0; b < batch; b++)
            for (int e = 0; e < edges; e++)
                adjacency[b * (nodes + 1) * (nodes + 1) + GateKernels.EdgeOffset(e, nodes)] = ActivationReference.Sigmoid(logits[e]);
    }

    /// <summary><c>dLogits[e] += s(1 − s) · Σ_b dAdjacency[b, i, j]</c>.</summary>
    public static void DenseBackward<T>(ReadOnlySpan<T> logits, ReadOnlySpan<T> dAdjacency, int batch, int nodes, Span<T> dLogits)
        where T : IFloatingPointIeee754<T>
    {
        int edges = nodes * (nodes + 1) / 2;
        for (int e = 0; e < edges; e++)
        {
            T sum = T.Zero;
            for (int b = 0; b < batch; b++) sum += dAdjacency[b * (nodes + 1) * (nodes + 1) + GateKernels.EdgeOffset(e, nodes)];
            T s = ActivationReference.Sigmoid(logits[e]);
            dLogits[e] += s * (T.One - s) * sum;
        }
    }

    /// <summary><c>A[b, j − 1, j] = 1</c> for j = 1..nodes.</summary>
    public static void ChainFill<T>(int batch, int nodes, Span<T> adjacency) where T : IFloatingPointIeee754<T>
    {
        for (int b = 0; b < batch; b++)
            for (int j = 1; j <= nodes; j++)
                adjacency[Index(nodes, b, j - 1, j)] = T.One;
    }
}
