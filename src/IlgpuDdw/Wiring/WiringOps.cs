using IlgpuDdw.Autograd;
using IlgpuDdw.Kernels;

namespace IlgpuDdw.Wiring;

/// <summary>
/// The wiring ops of a DDW stage on the tape: gate (after a <see cref="Wiring.Router"/>), aggregation and dense edges. Each runs its forward kernel
/// at once and records its backward.
/// </summary>
public static class WiringOps
{
    /// <summary>
    /// The threshold gate of node <paramref name="node"/>: writes row <c>node</c> of the adjacency for every sample,
    /// <c>A[b, node, node + 1 + o] = a[b, o] &gt; τ ? a[b, o] : 0</c>, from the router outputs
    /// <c>a [B, n − node]</c>. Backward: <c>da += dA</c> on kept edges; on cut edges 0 under
    /// <see cref="GateGradient.KeptOnly"/>, <c>dA</c> under <see cref="GateGradient.StraightThrough"/> (the router's
    /// sigmoid then multiplies by a(1 − a)). Saves nothing beyond a.
    /// </summary>
    /// <exception cref="ArgumentException">τ outside [0, 1), node outside 0..n−1, or a not [B, n − node].</exception>
    public static void Gate(this Tape tape, Adjacency adjacency, int node, Tensor weights, float tau, GateGradient gradient)
    {
        ArgumentNullException.ThrowIfNull(tape);
        ArgumentNullException.ThrowIfNull(adjacency);
        ArgumentNullException.ThrowIfNull(weights);
        ValidateGate("Gate", adjacency, node, tau, gradient);
        Ops.RequireSameDevice("Gate", tape, adjacency.Tensor, weights);
        int degree = adjacency.OutDegree(node);
        if (weights.Rank != 2 || weights.Dim(0) != adjacency.Batch || weights.Dim(1) != degree)
            throw new ArgumentException($"Gate: router outputs {weights.Describe()} must be [{adjacency.Batch}, {degree}] (batch, out-degree of node {node} in a {adjacency.Nodes}-node stage).", nameof(weights));
        var d = tape.Device;
        int n = weights.Length, ext = d.Extent(n);
        d.Kernels.GateForward(d.Stream, ext, n, ext, adjacency.Nodes, node, tau, weights.View, adjacency.Tensor.View);
        adjacency.MarkRowWritten(node);
        bool straight = gradient == GateGradient.StraightThrough;
        adjacency.SetCutEdgeGradient(node, straight);
        if (!tape.NeedsGrad(weights)) return;
        var at = adjacency.Tensor;
        tape.Record("Gate", at, () =>
            d.Kernels.GateBackward(d.Stream, ext, n, ext, adjacency.Nodes, node, tau, straight ? 1 : 0, weights.View, at.Grad.View, weights.Grad.View));
    }

    /// <summary>
    /// The distribution step of node <paramref name="node"/>: the <see cref="Wiring.Router"/> on its output, then
    /// <see cref="Gate"/> writes row <c>node</c> of the adjacency. Returns the router outputs
    /// <c>a [B, n − node]</c> (e.g. for a sparsity loss <c>λ · mean(a)</c>).
    /// </summary>
    /// <exception cref="ArgumentException">Any invalid value (τ, node, shapes, router out-degree ≠ n − node).</exception>
    public static Tensor Route(this Tape tape, Adjacency adjacency, int node, Tensor nodeOutput, Router router, float tau, GateGradient gradient)
    {
        ArgumentNullException.ThrowIfNull(adjacency);
        ArgumentNullException.ThrowIfNull(router);
        ArgumentNullException.ThrowIfNull(nodeOutput);
        ValidateGate("Route", adjacency, node, tau, gradient);
        if (router.OutDegree != adjacency.OutDegree(node))
            throw new ArgumentException($"Route: router of node {node} has {router.OutDegree} outputs but node {node} of a {adjacency.Nodes}-node stage has out-degree {adjacency.OutDegree(node)}.", nameof(router));
        if (nodeOutput.Rank < 1 || nodeOutput.Dim(0) != adjacency.Batch)
            throw new ArgumentException($"Route: node output {nodeOutput.Describe()} has batch {(nodeOutput.Rank < 1 ? 0 : nodeOutput.Dim(0))}; the adjacency has {adjacency.Batch}.", nameof(nodeOutput));
        var a = router.Forward(tape, nodeOutput);
        tape.Gate(adjacency, node, a, tau, gradient);
        return a;
    }

    /// <summary>
    /// Aggregation into node <paramref name="target"/> (1 ≤ target ≤ n; n is the stage output node):
    /// <c>x[b] = Σ_{i &lt; target} A[b, i, target] · y_i[b]</c> over <c>nodeOutputs[0..target−1]</c> (one shape,
    /// batch first). Cut edges cost nothing. Backward: <c>dY_i[b] += A[b, i, target] · dX[b]</c> and
    /// <c>dA[b, i, target] += &lt;y_i[b], dX[b]&gt;</c> (kept edges, and cut edges whose row's writer needs them:
    /// straight-through gate, dense edges). Saves nothing: A and the node outputs are alive anyway, and the
    /// aggregate itself is not needed by this backward (see <see cref="Adjacency.AggregateInto"/> to rebuild it).
    /// </summary>
    /// <exception cref="ArgumentException">Bad target, too few or mismatched node outputs.</exception>
    /// <exception cref="InvalidOperationException">A source row of the adjacency has not been written yet.</exception>
    public static Tensor Aggregate(this Tape tape, Adjacency adjacency, int target, IReadOnlyList<Tensor> nodeOutputs)
    {
        ArgumentNullException.ThrowIfNull(tape);
        var sources = AggregationLaunch.Sources("Aggregate", adjacency, target, nodeOutputs);
        Ops.RequireSameDevice("Aggregate", tape, adjacency.Tensor);
        var x = tape.NewTensor([.. sources[0].Shape]);
        AggregationLaunch.Forward(adjacency, target, sources, x);
        var at = adjacency.Tensor;
        if (tape.NeedsGrad([at, .. sources]))
            tape.Record("Aggregate", x, () =>
            {
                var dSources = Array.ConvertAll(sources, y => y.RequiresGrad ? y.Grad : null);
                AggregationLaunch.BackwardSources(adjacency, target, sources, x.Grad, dSources);
                if (at.RequiresGrad)
                    AggregationLaunch.BackwardAdjacency(adjacency, target, sources, x.Grad, at.Grad);
            });
        return x;
    }

    /// <summary>
    /// Dense wiring: writes every edge of every sample, <c>A[b, i, j] = sigmoid(logits[e(i, j)])</c>, from the E =
    /// n(n+1)/2 edge logits (numbered row by row, <see cref="Adjacency.EdgeIndex"/>). Backward:
    /// <c>dLogits[e] += s(1 − s) · Σ_b dA[b, i, j]</c>.
    /// </summary>
    /// <exception cref="ArgumentException">The logits are not <c>[E]</c>.</exception>
    public static void DenseEdges(this Tape tape, Adjacency adjacency, Tensor edgeLogits)
    {
        ArgumentNullException.ThrowIfNull(tape);
        ArgumentNullException.ThrowIfNull(adjacency);
        ArgumentNullException.ThrowIfNull(edgeLogits);
        Ops.RequireSameDevice("DenseEdges", tape, adjacency.Tensor, edgeLogits);
        int edges = adjacency.EdgeCount;
        if (edgeLogits.Rank != 1 || edgeLogits.Length != edges)
            throw new ArgumentException($"DenseEdges: edge logits {edgeLogits.Describe()} must be [{edges}] for a {adjacency.Nodes}-node stage.", nameof(edgeLogits));
        var d = tape.Device;
        int n = adjacency.Batch * edges, ext = d.Extent(n);
        d.Kernels.DenseEdgesForward(d.Stream, ext, n, ext, adjacency.Nodes, edgeLogits.View, adjacency.Tensor.View);
        adjacency.MarkAllRowsWritten();
        for (int i = 0; i < adjacency.Nodes; i++) adjacency.SetCutEdgeGradient(i, true);
        if (!tape.NeedsGrad(edgeLogits)) return;
        var at = adjacency.Tensor;
        int eb = d.Extent(edges);
        tape.Record("DenseEdges", at, () =>
            d.Kernels.DenseEdgesBackward(d.Stream, eb, edges, eb, adjacency.Nodes, adjacency.Batch, edgeLogits.View, at.Grad.View, edgeLogits.Grad.View));
    }

    private static void ValidateGate(string op, Adjacency adjacency, int node, float tau, GateGradient gradient)
    {
        WiringConfig.ValidateTau(tau);
        if (!Enum.IsDefined(gradient))
            throw new ArgumentException($"{op}: gate gradient mode {(int)gradient} is not one of KeptOnly, StraightThrough.", nameof(gradient));
        if (node < 0 || node >= adjacency.Nodes)
            throw new ArgumentException($"{op}: node {node} is outside 0..{adjacency.Nodes - 1} (a {adjacency.Nodes}-node stage).", nameof(node));
    }
}
