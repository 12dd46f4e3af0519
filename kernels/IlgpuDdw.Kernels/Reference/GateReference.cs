using System.Numerics;

namespace IlgpuDdw.Kernels.Reference;

/// <summary>
/// CPU reference of <see cref="GateKernels"/> (threshold, continuous, stochastic and top-k gates, the output-edge
/// fix-up, dense edge weights, chain), generic over float and double. Adjacency layout
/// <c>[batch, nodes + 1, nodes + 1]</c>; router outputs of row <c>node</c> <c>[batch, nodes − node]</c>. Backward
/// references accumulate and read the final adjacency (after any fix-up).
/// </summary>
public static class GateReference
{
    /// <summary>Offset of <c>A[b, i, j]</c>.</summary>
    public static int Index(int nodes, int b, int i, int j) => (b * (nodes + 1) + i) * (nodes + 1) + j;

    /// <summary>
    /// The items of row <c>node</c> in order: k = b·degree + o (the router output's index, degree = nodes − node)
    /// and the offset of <c>A[b, node, node + 1 + o]</c>.
    /// </summary>
    public static IEnumerable<(int K, int At)> Row(int batch, int nodes, int node)
    {
        int degree = nodes - node;
        for (int b = 0; b < batch; b++)
            for (int o = 0; o < degree; o++)
                yield return (b * degree + o, Index(nodes, b, node, node + 1 + o));
    }

    /// <summary><c>A[b, node, node + 1 + o] = a[b, o] &gt; tau ? a[b, o] : 0</c>.</summary>
    public static void Forward<T>(ReadOnlySpan<T> a, int batch, int nodes, int node, T tau, Span<T> adjacency) where T : IFloatingPointIeee754<T>
    {
        foreach (var (k, at) in Row(batch, nodes, node))
        {
            T v = a[k];
            adjacency[at] = v > tau ? v : T.Zero;
        }
    }

    /// <summary>
    /// <c>dA[b, o] += (a &gt; tau || straightThrough || A ≠ 0) ? dAdjacency[b, node, node + 1 + o] : 0</c>; the
    /// adjacency (final, may be empty: no edge forced on) marks edges forced on. With <paramref name="accumulate"/>
    /// false, overwrites dA (as accumulating onto zeros; not read).
    /// </summary>
    public static void Backward<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> dAdjacency, int batch, int nodes, int node, T tau, bool straightThrough, Span<T> dA,
        ReadOnlySpan<T> adjacency = default, bool accumulate = true)
        where T : IFloatingPointIeee754<T>
    {
        if (!accumulate) dA.Clear();
        foreach (var (k, at) in Row(batch, nodes, node))
        {
            if (straightThrough || a[k] > tau || (!adjacency.IsEmpty && adjacency[at] != T.Zero))
                dA[k] += dAdjacency[at];
        }
    }

    /// <summary>
    /// Backward of an objective term with a host-computed local gradient (<see cref="GateKernels.TermBackward"/>):
    /// <c>dInput += dOutput · gradient</c> (overwritten, as onto zeros, with <paramref name="accumulate"/> false).
    /// </summary>
    public static void TermBackward<T>(T dOutput, ReadOnlySpan<T> gradient, Span<T> dInput, bool accumulate = true) where T : IFloatingPointIeee754<T>
    {
        if (!accumulate) dInput.Clear();
        for (int i = 0; i < dInput.Length; i++) dInput[i] += dOutput * gradient[i];
    }

    /// <summary>Continuous gate: <c>A[b, node, node + 1 + o] = max(0, (a − tau) / (1 − tau))</c>.</summary>
    public static void ContinuousForward<T>(ReadOnlySpan<T> a, int batch, int nodes, int node, T tau, Span<T> adjacency) where T : IFloatingPointIeee754<T>
    {
        foreach (var (k, at) in Row(batch, nodes, node))
        {
            T v = a[k];
            adjacency[at] = v > tau ? (v - tau) / (T.One - tau) : T.Zero;
        }
    }

    /// <summary>
    /// <c>dA[b, o] += dAdjacency / (1 − tau)</c> on every edge (one-sided on cut edges); <c>+= dAdjacency</c> on an
    /// edge forced on (a ≤ τ, A ≠ 0). With <paramref name="accumulate"/> false, overwrites dA (as accumulating onto zeros; not read).
    /// </summary>
    public static void ContinuousBackward<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> adjacency, ReadOnlySpan<T> dAdjacency, int batch, int nodes, int node, T tau, Span<T> dA,
        bool accumulate = true)
        where T : IFloatingPointIeee754<T>
    {
        if (!accumulate) dA.Clear();
        foreach (var (k, at) in Row(batch, nodes, node))
        {
            bool forced = a[k] <= tau && adjacency[at] != T.Zero;
            dA[k] += forced ? dAdjacency[at] : dAdjacency[at] / (T.One - tau);
        }
    }

    /// <summary>The noise of item k of row <c>node</c> (<see cref="GateKernels.LogisticNoise"/>), or 0 without noise.</summary>
    public static T Noise<T>(int? key, int node, int k) where T : IFloatingPointIeee754<T> =>
        key is int s ? T.CreateChecked(GateKernels.LogisticNoise(s, node, k)) : T.Zero;

    /// <summary>Stochastic gate: <c>A = z + L &gt; 0 ? w : 0</c>, L the noise of <paramref name="key"/> (null: none).</summary>
    public static void StochasticForward<T>(ReadOnlySpan<T> weights, ReadOnlySpan<T> logits, int batch, int nodes, int node, int? key, Span<T> adjacency)
        where T : IFloatingPointIeee754<T>
    {
        foreach (var (k, at) in Row(batch, nodes, node))
        {
            adjacency[at] = logits[k] + Noise<T>(key, node, k) > T.Zero ? weights[k] : T.Zero;
        }
    }

    /// <summary>
    /// <c>dWeights += h · dA</c> (h: z + L &gt; 0, or forced on) and <c>dLogits += dA · w · g(1 − g) / T</c>,
    /// <c>g = sigmoid((z + L) / T)</c>. With <paramref name="accumulate"/> false both are overwritten (as accumulating onto
    /// zeros; not read).
    /// </summary>
    public static void StochasticBackward<T>(ReadOnlySpan<T> weights, ReadOnlySpan<T> logits, ReadOnlySpan<T> adjacency, ReadOnlySpan<T> dAdjacency,
        int batch, int nodes, int node, T temperature, int? key, Span<T> dWeights, Span<T> dLogits, bool accumulate = true) where T : IFloatingPointIeee754<T>
    {
        if (!accumulate) { dWeights.Clear(); dLogits.Clear(); }
        foreach (var (k, at) in Row(batch, nodes, node))
        {
            T t = logits[k] + Noise<T>(key, node, k);
            if (t > T.Zero || adjacency[at] != T.Zero) dWeights[k] += dAdjacency[at];
            T g = ActivationReference.Sigmoid(t / temperature);
            dLogits[k] += dAdjacency[at] * weights[k] * g * (T.One - g) / temperature;
        }
    }

    /// <summary>
    /// Top-k in-edges of node <paramref name="target"/>: of <c>A[b, i, target]</c>, i &lt; target, keeps the k largest
    /// (ties to the lower i) and zeroes the rest.
    /// </summary>
    public static void TopKForward<T>(int batch, int nodes, int target, int k, Span<T> adjacency) where T : IFloatingPointIeee754<T>
    {
        for (int b = 0; b < batch; b++)
        {
            var values = new T[target];
            for (int i = 0; i < target; i++) values[i] = adjacency[Index(nodes, b, i, target)];
            var order = Enumerable.Range(0, target).OrderByDescending(i => values[i]).ThenBy(i => i).ToArray();
            for (int r = k; r < target; r++) adjacency[Index(nodes, b, order[r], target)] = T.Zero;
        }
    }

    /// <summary>
    /// In-edge normalisation of node <paramref name="target"/>: <c>s = max(1, Σ_{i &lt; target} A[b, i, target])</c>,
    /// <c>A[b, i, target] /= s</c> in place; returns s per sample.
    /// </summary>
    public static T[] InEdgeNormForward<T>(int batch, int nodes, int target, Span<T> adjacency) where T : IFloatingPointIeee754<T>
    {
        var scale = new T[batch];
        for (int b = 0; b < batch; b++)
        {
            T sum = T.Zero;
            for (int i = 0; i < target; i++) sum += adjacency[Index(nodes, b, i, target)];
            scale[b] = T.Max(T.One, sum);
            for (int i = 0; i < target; i++) adjacency[Index(nodes, b, i, target)] /= scale[b];
        }
        return scale;
    }

    /// <summary>
    /// Backward of <see cref="InEdgeNormForward{T}"/> in place on column <paramref name="target"/> of dA, from the
    /// normalised adjacency A' and the scales s: where s &gt; 1, <c>dA_i ← (dA_i − Σ_k A'_k dA_k) / s</c>.
    /// </summary>
    public static void InEdgeNormBackward<T>(ReadOnlySpan<T> adjacency, ReadOnlySpan<T> scale, int batch, int nodes, int target, Span<T> dAdjacency)
        where T : IFloatingPointIeee754<T>
    {
        for (int b = 0; b < batch; b++)
        {
            if (!(scale[b] > T.One)) continue;
            T dot = T.Zero;
            for (int i = 0; i < target; i++)
                if (adjacency[Index(nodes, b, i, target)] != T.Zero) dot += adjacency[Index(nodes, b, i, target)] * dAdjacency[Index(nodes, b, i, target)];
            for (int i = 0; i < target; i++)
            {
                int at = Index(nodes, b, i, target);
                dAdjacency[at] = (dAdjacency[at] - dot) / scale[b];
            }
        }
    }

    /// <summary>
    /// Keeps the output node connected: a sample whose in-edges into node <paramref name="nodes"/> are all 0 gets
    /// the edge from its live source with the largest <c>fallback[b, i]</c> (ties to the lower i) set to that value.
    /// </summary>
    public static void ForceOutputEdge<T>(ReadOnlySpan<T> fallback, int batch, int nodes, Span<T> adjacency) where T : IFloatingPointIeee754<T>
    {
        for (int b = 0; b < batch; b++)
        {
            bool connected = false;
            for (int i = 0; i < nodes; i++) connected |= adjacency[Index(nodes, b, i, nodes)] != T.Zero;
            if (connected) continue;
            int best = -1;
            for (int i = 0; i < nodes; i++)
            {
                bool live = i == 0;
                for (int j = 0; j < i; j++) live |= adjacency[Index(nodes, b, j, i)] != T.Zero;
                if (live && (best < 0 || fallback[b * nodes + i] > fallback[b * nodes + best])) best = i;
            }
            adjacency[Index(nodes, b, best, nodes)] = fallback[b * nodes + best];
        }
    }

    /// <summary>
    /// The live-sample mask of <paramref name="node"/>: <c>live[b] = 1</c> when node is 0 or some <c>A[b, i, node] ≠ 0</c>
    /// (i &lt; node), else 0.
    /// </summary>
    public static void NodeLiveMask<T>(ReadOnlySpan<T> adjacency, int batch, int nodes, int node, Span<T> live) where T : IFloatingPointIeee754<T>
    {
        for (int b = 0; b < batch; b++)
        {
            bool on = node == 0;
            for (int i = 0; i < node; i++) on |= adjacency[Index(nodes, b, i, node)] != T.Zero;
            live[b] = on ? T.One : T.Zero;
        }
    }

    /// <summary>Sets row <paramref name="node"/> of every sample with <c>live[b] = 0</c> to 0 (an off node's out-edges).</summary>
    public static void ClearOffRow<T>(ReadOnlySpan<T> live, int batch, int nodes, int node, Span<T> adjacency) where T : IFloatingPointIeee754<T>
    {
        for (int b = 0; b < batch; b++)
            if (live[b] == T.Zero)
                for (int k = 0; k <= nodes; k++) adjacency[Index(nodes, b, node, k)] = T.Zero;
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
