using ILGPU;

namespace IlgpuDdw.Kernels;

/// <summary>
/// The kernels that write a stage's per-sample adjacency matrix <c>A [Batch, N, N]</c>, N = n + 1: nodes
/// 0..n−1 and the stage output node n; <c>A[b, i, j]</c> (i &lt; j) weights the edge from node i into node j,
/// stored at <c>(b · N + i) · N + j</c>; entries with i ≥ j stay 0. Row i holds node i's n − i out-edges
/// (targets i+1..n); edge o of row i is target i + 1 + o. The stage's E = n(n+1)/2 edges are numbered row by
/// row in that order (the dense edge logits and the concatenated router outputs share it).
/// Grid-stride loops (see <see cref="ElementwiseKernels"/>).
/// </summary>
public static class GateKernels
{
    /// <summary>Flat offset in one sample's N×N matrix of edge e (row-major numbering over i &lt; j ≤ nodes).</summary>
    public static int EdgeOffset(int e, int nodes)
    {
        int i = 0;
        int rem = e;
        while (rem >= nodes - i)
        {
            rem -= nodes - i;
            i++;
        }
        return i * (nodes + 1) + i + 1 + rem;
    }

    /// <summary>
    /// Threshold gate of row <c>node</c> (dynamic wiring): for the n = Batch·outDegree router outputs
    /// <c>a [Batch, outDegree]</c>, <c>A[b, node, node + 1 + o] = a[b, o] &gt; tau ? a[b, o] : 0</c>. Overwrites
    /// that row; the backward needs a.
    /// </summary>
    [Kernel]
    public static void Forward(Index1D index, int n, int stride, int nodes, int node, float tau,
        ArrayView<float> a, ArrayView<float> adjacency)
    {
        int outDegree = nodes - node;
        int size = nodes + 1;
        for (int k = index; k < n; k += stride)
        {
            int b = k / outDegree;
            int o = k - b * outDegree;
            float v = a[k];
            adjacency[(b * size + node) * size + node + 1 + o] = v > tau ? v : 0f;
        }
    }

    /// <summary>
    /// Backward of <see cref="Forward"/>: <c>dWeights[b, o] += (a[b, o] &gt; tau || straightThrough ≠ 0) ?
    /// dAdjacency[b, node, node + 1 + o] : 0</c>. Kept-only (straightThrough = 0): a cut edge passes no
    /// gradient; straight-through: every edge passes its gradient as if kept. Accumulates.
    /// </summary>
    [Kernel]
    public static void Backward(Index1D index, int n, int stride, int nodes, int node, float tau, int straightThrough,
        ArrayView<float> a, ArrayView<float> dAdjacency, ArrayView<float> dWeights)
    {
        int outDegree = nodes - node;
        int size = nodes + 1;
        for (int k = index; k < n; k += stride)
        {
            if (straightThrough != 0 || a[k] > tau)
            {
                int b = k / outDegree;
                int o = k - b * outDegree;
                dWeights[k] += dAdjacency[(b * size + node) * size + node + 1 + o];
            }
        }
    }

    /// <summary>
    /// Dense (static) wiring: <c>A[b, i, j] = sigmoid(logits[e(i, j)])</c> for every edge and every sample;
    /// n = Batch·E items. Overwrites every edge entry; the backward needs the logits.
    /// </summary>
    [Kernel(Launcher = "DenseEdgesForward")]
    public static void DenseForward(Index1D index, int n, int stride, int nodes,
        ArrayView<float> logits, ArrayView<float> adjacency)
    {
        int edges = nodes * (nodes + 1) / 2;
        int square = (nodes + 1) * (nodes + 1);
        for (int k = index; k < n; k += stride)
        {
            int b = k / edges;
            int e = k - b * edges;
            adjacency[b * square + EdgeOffset(e, nodes)] = ActivationKernels.Sigmoid(logits[e]);
        }
    }

    /// <summary>
    /// Backward of <see cref="DenseForward"/>: <c>dLogits[e] += s(1 − s) · Σ_b dAdjacency[b, i, j]</c>,
    /// s = sigmoid(logits[e]), for the n = E edges (one thread per edge, b in order; deterministic). Accumulates.
    /// </summary>
    [Kernel(Launcher = "DenseEdgesBackward")]
    public static void DenseBackward(Index1D index, int n, int stride, int nodes, int batch,
        ArrayView<float> logits, ArrayView<float> dAdjacency, ArrayView<float> dLogits)
    {
        int square = (nodes + 1) * (nodes + 1);
        for (int e = index; e < n; e += stride)
        {
            int offset = EdgeOffset(e, nodes);
            float sum = 0f;
            for (int b = 0; b < batch; b++)
                sum += dAdjacency[b * square + offset];
            float s = ActivationKernels.Sigmoid(logits[e]);
            dLogits[e] += s * (1f - s) * sum;
        }
    }

    /// <summary>
    /// Chain wiring: <c>A[b, j − 1, j] = 1</c> for j = 1..nodes (the stage output reads the last node only);
    /// n = Batch·nodes items. Writes those entries only (the rest must already be 0). No backward.
    /// </summary>
    [Kernel]
    public static void ChainFill(Index1D index, int n, int stride, int nodes, ArrayView<float> adjacency)
    {
        int size = nodes + 1;
        for (int k = index; k < n; k += stride)
        {
            int b = k / nodes;
            int j = k - b * nodes + 1;
            adjacency[(b * size + j - 1) * size + j] = 1f;
        }
    }
}
