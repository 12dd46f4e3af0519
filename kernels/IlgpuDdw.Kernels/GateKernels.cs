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
    /// Flat offset in <c>A [Batch, N, N]</c> of item k = b·outDegree + o of row <c>node</c> (outDegree = nodes − node):
    /// the entry <c>A[b, node, node + 1 + o]</c>.
    /// </summary>
    public static int RowOffset(int k, int nodes, int node)
    {
        int outDegree = nodes - node;
        int size = nodes + 1;
        int b = k / outDegree;
        return (b * size + node) * size + node + 1 + k - b * outDegree;
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
        for (int k = index; k < n; k += stride)
        {
            float v = a[k];
            adjacency[RowOffset(k, nodes, node)] = v > tau ? v : 0f;
        }
    }

    /// <summary>
    /// Backward of <see cref="Forward"/>: <c>dWeights[b, o] += (a[b, o] &gt; tau || A[b, node, node + 1 + o] ≠ 0 ||
    /// straightThrough ≠ 0) ? dAdjacency[b, node, node + 1 + o] : 0</c>. Kept-only (straightThrough = 0): a cut edge
    /// passes no gradient, a kept one, or one forced on (<see cref="ForceOutputEdge"/>, which writes a), passes it;
    /// straight-through: every edge passes its gradient as if kept. Reads the final adjacency. Accumulates when
    /// <paramref name="accumulate"/> ≠ 0, else overwrites every element of dWeights (a blocked edge gets 0; see
    /// <see cref="ElementwiseKernels.Prior"/>). Also the backward of the top-k gate (<see cref="TopKForward"/>) with
    /// straightThrough = 1.
    /// </summary>
    [Kernel]
    public static void Backward(Index1D index, int n, int stride, int nodes, int node, float tau, int straightThrough, int accumulate,
        ArrayView<float> a, ArrayView<float> adjacency, ArrayView<float> dAdjacency, ArrayView<float> dWeights)
    {
        for (int k = index; k < n; k += stride)
        {
            int offset = RowOffset(k, nodes, node);
            if (straightThrough != 0 || a[k] > tau || adjacency[offset] != 0f)
                dWeights[k] = ElementwiseKernels.Prior(accumulate, dWeights, k) + dAdjacency[offset];
            else if (accumulate == 0)
                dWeights[k] = 0f;
        }
    }

    /// <summary>
    /// Continuous threshold gate of row <c>node</c>: <c>A[b, node, node + 1 + o] = max(0, (a − tau) / (1 − tau))</c>
    /// for the n = Batch·outDegree router outputs <c>a [Batch, outDegree]</c>, 0 ≤ tau &lt; 1: no jump at τ (a kept
    /// edge starts at weight 0), 1 at a = 1. Overwrites that row; the backward needs a.
    /// </summary>
    [Kernel]
    public static void ContinuousForward(Index1D index, int n, int stride, int nodes, int node, float tau,
        ArrayView<float> a, ArrayView<float> adjacency)
    {
        for (int k = index; k < n; k += stride)
        {
            float v = a[k];
            adjacency[RowOffset(k, nodes, node)] = v > tau ? (v - tau) / (1f - tau) : 0f;
        }
    }

    /// <summary>
    /// Backward of <see cref="ContinuousForward"/>: <c>dWeights[b, o] += dAdjacency[b, node, node + 1 + o] / (1 − tau)</c>
    /// on every edge, the exact derivative on kept edges (a &gt; τ) and the one-sided (right) derivative on cut ones,
    /// so a cut edge can reopen; an edge forced on (a ≤ τ and A ≠ 0, see <see cref="ForceOutputEdge"/>, which writes
    /// a) passes dA unscaled. Reads the final adjacency. Accumulates when <paramref name="accumulate"/> ≠ 0, else
    /// overwrites every element of dWeights (<see cref="ElementwiseKernels.Prior"/>).
    /// </summary>
    [Kernel]
    public static void ContinuousBackward(Index1D index, int n, int stride, int nodes, int node, float tau, int accumulate,
        ArrayView<float> a, ArrayView<float> adjacency, ArrayView<float> dAdjacency, ArrayView<float> dWeights)
    {
        for (int k = index; k < n; k += stride)
        {
            int offset = RowOffset(k, nodes, node);
            float g = dAdjacency[offset];
            bool forced = a[k] <= tau && adjacency[offset] != 0f;
            dWeights[k] = ElementwiseKernels.Prior(accumulate, dWeights, k) + (forced ? g : g / (1f - tau));
        }
    }

    /// <summary>The lowbias32 integer hash (Wellons): a bijection of 32-bit words with good avalanche.</summary>
    public static uint Hash(uint x)
    {
        x ^= x >> 16;
        x *= 0x7FEB352Du;
        x ^= x >> 15;
        x *= 0x846CA68Bu;
        x ^= x >> 16;
        return x;
    }

    /// <summary>
    /// Logistic noise <c>L = log u − log(1 − u)</c> of item k of row <c>node</c> under <c>key</c>, with
    /// <c>u = (m + ½) / 2²³</c> ∈ [2⁻²⁴, 1 − 2⁻²⁴] and m the top 23 bits of a hash of (key, node, k): a counter-based
    /// stream, the same on every accelerator and in the backward pass.
    /// </summary>
    public static float LogisticNoise(int key, int node, int k)
    {
        uint h = Hash((uint)key ^ Hash((uint)node * 0x9E3779B9u ^ Hash((uint)k)));
        float u = ((h >> 9) + 0.5f) * (1f / 8388608f);
        return MathF.Log(u) - MathF.Log(1f - u);
    }

    /// <summary>
    /// Stochastic binary gate of row <c>node</c> from separate edge weights <c>w [Batch, outDegree]</c> (the router's
    /// sigmoid outputs) and gate logits <c>z [Batch, outDegree]</c>, n = Batch·outDegree: with noise (noise ≠ 0,
    /// training) <c>L = </c><see cref="LogisticNoise"/><c>(key, node, k)</c>, else L = 0 (evaluation);
    /// <c>A[b, node, node + 1 + o] = z + L &gt; 0 ? w : 0</c>, i.e. kept when the Gumbel-sigmoid
    /// <c>g = sigmoid((z + L) / T)</c> exceeds ½ (the hard decision does not depend on T). Overwrites that row; the
    /// backward needs w, z and the key.
    /// </summary>
    [Kernel]
    public static void StochasticForward(Index1D index, int n, int stride, int nodes, int node, int noise, int key,
        ArrayView<float> weights, ArrayView<float> logits, ArrayView<float> adjacency)
    {
        for (int k = index; k < n; k += stride)
        {
            float l = noise != 0 ? LogisticNoise(key, node, k) : 0f;
            adjacency[RowOffset(k, nodes, node)] = logits[k] + l > 0f ? weights[k] : 0f;
        }
    }

    /// <summary>
    /// Backward of <see cref="StochasticForward"/>, with h the hard decision and <c>g = sigmoid((z + L) / T)</c>
    /// (same noise): <c>dWeights += h · dA</c> (exact: A = h·w; an edge forced on, A ≠ 0, counts as kept) and the
    /// straight-through estimate <c>dLogits += dA · w · g(1 − g) / T</c> (h replaced by g in the backward) on every
    /// edge. Reads the final adjacency. Accumulates into dWeights when bit 0 of <paramref name="accumulateMask"/> is set
    /// and into dLogits when bit 1 is, and overwrites every element of a gradient whose bit is clear
    /// (<see cref="ElementwiseKernels.Prior"/>; the launcher has no room for two flags).
    /// </summary>
    [Kernel]
    public static void StochasticBackward(Index1D index, int n, int stride, int nodes, int node, float temperature, int noise, int key,
        int accumulateMask, ArrayView<float> weights, ArrayView<float> logits, ArrayView<float> adjacency, ArrayView<float> dAdjacency,
        ArrayView<float> dWeights, ArrayView<float> dLogits)
    {
        int accumulateWeights = accumulateMask & 1, accumulateLogits = accumulateMask & 2;
        for (int k = index; k < n; k += stride)
        {
            int offset = RowOffset(k, nodes, node);
            float t = logits[k] + (noise != 0 ? LogisticNoise(key, node, k) : 0f);
            float dA = dAdjacency[offset];
            if (t > 0f || adjacency[offset] != 0f)
                dWeights[k] = ElementwiseKernels.Prior(accumulateWeights, dWeights, k) + dA;
            else if (accumulateWeights == 0)
                dWeights[k] = 0f;
            float g = ActivationKernels.Sigmoid(t / temperature);
            dLogits[k] = ElementwiseKernels.Prior(accumulateLogits, dLogits, k) + dA * weights[k] * g * (1f - g) / temperature;
        }
    }

    /// <summary>
    /// Top-k in-edges of node <c>target</c> (1..nodes), one thread per sample (n = Batch): of the column's entries
    /// <c>A[b, i, target]</c>, i &lt; target (every source row written with its raw router outputs, see
    /// <see cref="Forward"/> at tau below 0), keeps the k largest, ties to the lower source index, and zeroes the
    /// rest; 1 ≤ k. Rewrites that column in place. Its backward is <see cref="Backward"/> with straightThrough = 1
    /// on every source row (straight-through to all in-edges).
    /// </summary>
    [Kernel]
    public static void TopKForward(Index1D index, int n, int stride, int nodes, int target, int k, ArrayView<float> adjacency)
    {
        int size = nodes + 1;
        if (k >= target) return;
        for (int b = index; b < n; b += stride)
        {
            int column = b * size * size + target;
            // the entry of rank k − 1 in the order (value descending, source ascending): the last one kept
            int cut = 0;
            for (int i = 0; i < target; i++)
            {
                float v = adjacency[column + i * size];
                int rank = 0;
                for (int j = 0; j < target; j++)
                {
                    float u = adjacency[column + j * size];
                    if (u > v || (u == v && j < i)) rank++;
                }
                if (rank == k - 1) cut = i;
            }
            float c = adjacency[column + cut * size];
            for (int i = 0; i < target; i++)
            {
                float v = adjacency[column + i * size];
                if (!(v > c || (v == c && i <= cut))) adjacency[column + i * size] = 0f;
            }
        }
    }

    /// <summary>
    /// In-edge normalisation of node <c>target</c> (1..nodes), one thread per sample (n = Batch): with
    /// <c>S = Σ_{i &lt; target} A[b, i, target]</c> and <c>s = max(1, S)</c>, rewrites the column in place as
    /// <c>A[b, i, target] / s</c> and saves <c>scale[b] = s</c> (overwrites scale [Batch]): a node's in-edge weights sum
    /// to at most 1, so the aggregate keeps the scale of one input however many edges are kept. Cut edges stay 0; a
    /// column summing to at most 1 (chain wiring, one kept edge) is unchanged.
    /// </summary>
    [Kernel]
    public static void InEdgeNormForward(Index1D index, int n, int stride, int nodes, int target, ArrayView<float> adjacency, ArrayView<float> scale)
    {
        int size = nodes + 1;
        for (int b = index; b < n; b += stride)
        {
            int column = b * size * size + target;
            float sum = 0f;
            for (int i = 0; i < target; i++) sum += adjacency[column + i * size];
            float s = sum > 1f ? sum : 1f;
            scale[b] = s;
            if (s > 1f)
                for (int i = 0; i < target; i++) adjacency[column + i * size] /= s;
        }
    }

    /// <summary>
    /// Backward of <see cref="InEdgeNormForward"/>, one thread per sample (n = Batch), in place on column <c>target</c>
    /// of dA: where <c>s = scale[b] &gt; 1</c>, <c>dA[b, i, target] ← (dA[b, i, target] − Σ_k A'[b, k, target] ·
    /// dA[b, k, target]) / s</c> (the sum over kept edges, A' ≠ 0) with A' the normalised column the adjacency holds; where s = 1 the column passes
    /// unchanged (the one-sided derivative at S = 1). Rewrites every in-edge's gradient, cut ones included (their
    /// gate's straight-through estimate reads it).
    /// </summary>
    [Kernel]
    public static void InEdgeNormBackward(Index1D index, int n, int stride, int nodes, int target, ArrayView<float> adjacency,
        ArrayView<float> scale, ArrayView<float> dAdjacency)
    {
        int size = nodes + 1;
        for (int b = index; b < n; b += stride)
        {
            float s = scale[b];
            if (!(s > 1f)) continue;
            int column = b * size * size + target;
            float dot = 0f;
            for (int i = 0; i < target; i++)
            {
                float v = adjacency[column + i * size];
                if (v != 0f) dot += v * dAdjacency[column + i * size]; // a cut edge's dA may be unwritten: never read it into the sum
            }
            for (int i = 0; i < target; i++) dAdjacency[column + i * size] = (dAdjacency[column + i * size] - dot) / s;
        }
    }

    /// <summary>
    /// Saves the weight of node <c>node</c>'s edge into the stage output (its last out-edge) for every sample, one
    /// thread per sample (n = Batch): <c>fallback[b, node] = weights[b, outDegree − 1]</c>, <c>fallback [Batch, nodes]</c>.
    /// The value <see cref="ForceOutputEdge"/> writes if it forces that edge on. Overwrites.
    /// </summary>
    [Kernel]
    public static void StoreOutputEdge(Index1D index, int n, int stride, int nodes, int node, ArrayView<float> weights, ArrayView<float> fallback)
    {
        int outDegree = nodes - node;
        for (int b = index; b < n; b += stride)
            fallback[b * nodes + node] = weights[b * outDegree + outDegree - 1];
    }

    /// <summary>
    /// Keeps the stage output node connected, one thread per sample (n = Batch): when every in-edge
    /// <c>A[b, i, nodes]</c> is 0, sets the one from the live source with the largest <c>fallback[b, i]</c> (ties to the
    /// lower index) to that value; node 0 is live, node i ≥ 1 is live when one of its in-edges is non-zero. Rewrites
    /// at most one entry per sample. No backward of its own: the gate backwards see the forced entry (A ≠ 0).
    /// </summary>
    [Kernel]
    public static void ForceOutputEdge(Index1D index, int n, int stride, int nodes, ArrayView<float> fallback, ArrayView<float> adjacency)
    {
        int size = nodes + 1;
        for (int b = index; b < n; b += stride)
        {
            int matrix = b * size * size;
            bool connected = false;
            for (int i = 0; i < nodes; i++)
                if (adjacency[matrix + i * size + nodes] != 0f) connected = true;
            if (connected) continue;
            int best = 0;
            float bestValue = fallback[b * nodes];
            for (int i = 1; i < nodes; i++)
            {
                bool live = false;
                for (int j = 0; j < i; j++)
                    if (adjacency[matrix + j * size + i] != 0f) live = true;
                float v = fallback[b * nodes + i];
                if (live && v > bestValue)
                {
                    best = i;
                    bestValue = v;
                }
            }
            adjacency[matrix + best * size + nodes] = bestValue;
        }
    }

    /// <summary>
    /// The live-sample mask of node <paramref name="node"/> (0..nodes − 1), one thread per sample (n = Batch):
    /// <c>live[b] = 1</c> when node is 0 or one of its in-edges <c>A[b, i, node]</c> (i &lt; node) is non-zero, else 0
    /// (the node is off for that sample). Overwrites live [B].
    /// </summary>
    [Kernel]
    public static void NodeLiveMask(Index1D index, int n, int stride, int nodes, int node, ArrayView<float> adjacency, ArrayView<float> live)
    {
        int size = nodes + 1;
        for (int b = index; b < n; b += stride)
        {
            bool on = node == 0;
            for (int i = 0; i < node; i++)
                if (adjacency[(b * size + i) * size + node] != 0f) on = true;
            live[b] = on ? 1f : 0f;
        }
    }

    /// <summary>
    /// Cuts the out-edges of an off node, grid-stride over the n = Batch·(nodes + 1) entries of row
    /// <paramref name="node"/>: <c>A[b, node, k] = 0</c> where <c>live[b] = 0</c> (an off node's output is 0, so its
    /// edges carry nothing and count as cut). No backward: the gradient of such an entry, ⟨y_node[b], dX⟩, is 0.
    /// </summary>
    [Kernel]
    public static void ClearOffRow(Index1D index, int n, int stride, int nodes, int node, ArrayView<float> live, ArrayView<float> adjacency)
    {
        int size = nodes + 1;
        for (int i = index; i < n; i += stride)
        {
            int b = i / size;
            if (live[b] == 0f) adjacency[(b * size + node) * size + i - b * size] = 0f;
        }
    }

    /// <summary>
    /// Backward of an objective term whose value and local gradient were computed on the host (keep-rate and
    /// batch-shaping terms): <c>dInput[i] += dOutput[0] · gradient[i]</c> for i &lt; n. Accumulates when
    /// <paramref name="accumulate"/> ≠ 0, else overwrites (<see cref="ElementwiseKernels.Prior"/>).
    /// </summary>
    [Kernel]
    public static void TermBackward(Index1D index, int n, int stride, int accumulate, ArrayView<float> dOutput, ArrayView<float> gradient,
        ArrayView<float> dInput)
    {
        float d = dOutput[0];
        for (int i = index; i < n; i += stride)
            dInput[i] = ElementwiseKernels.Prior(accumulate, dInput, i) + d * gradient[i];
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
