namespace IlgpuDdw.Wiring;

/// <summary>
/// The wiring ops of a DDW stage on the tape: the gates (after a <see cref="Wiring.Router"/>; threshold, continuous,
/// stochastic, top-k), the output-edge fix-up, aggregation and dense edges. Each runs its forward kernel at once and
/// records its backward. Every gate writes exact zeros for cut edges, so the dead-node rule (a node whose in-edges
/// are all 0 is off) and evaluation's skipping read the same adjacency training ran on.
/// </summary>
public static class WiringOps
{
    /// <summary>
    /// The threshold gate of node <paramref name="node"/>: writes row <c>node</c> of the adjacency for every sample,
    /// <c>A[b, node, node + 1 + o] = a[b, o] &gt; τ ? a[b, o] : 0</c>, from the router outputs
    /// <c>a [B, n − node]</c>. Backward: <c>da += dA</c> on kept edges (and an edge <see cref="ForceOutputEdge"/>
    /// forced on); on cut edges 0 under <see cref="GateGradient.KeptOnly"/>, <c>dA</c> under
    /// <see cref="GateGradient.StraightThrough"/> (the router's sigmoid then multiplies by a(1 − a)). Saves nothing
    /// beyond a.
    /// </summary>
    /// <exception cref="ArgumentException">τ outside [0, 1), node outside 0..n−1, or a not [B, n − node].</exception>
    public static void Gate(this Tape tape, Adjacency adjacency, int node, Tensor weights, float tau, GateGradient gradient)
    {
        ArgumentNullException.ThrowIfNull(adjacency);
        ValidateGate("Gate", adjacency, node, tau, gradient);
        CheckRow("Gate", tape, adjacency, node, weights, "router outputs");
        bool straight = gradient == GateGradient.StraightThrough;
        ThresholdRow(tape, "Gate", adjacency, node, weights, tau, straight);
    }

    /// <summary>
    /// The continuous threshold gate of node <paramref name="node"/>: <c>A[b, node, node + 1 + o] = max(0, (a − τ)/(1 − τ))</c>
    /// from the router outputs <c>a [B, n − node]</c>. Backward: <c>da += dA/(1 − τ)</c> on every edge (exact on kept
    /// edges, one-sided on cut ones, so a cut edge can reopen); <c>da += dA</c> on an edge forced on. Saves nothing
    /// beyond a.
    /// </summary>
    /// <exception cref="ArgumentException">τ outside [0, 1), node outside 0..n−1, or a not [B, n − node].</exception>
    public static void ContinuousGate(this Tape tape, Adjacency adjacency, int node, Tensor weights, float tau)
    {
        CheckRow("ContinuousGate", tape, adjacency, node, weights, "router outputs");
        WiringConfig.ValidateTau(tau);
        var d = tape.Device;
        var at = adjacency.Tensor;
        GateRow(tape, "ContinuousGate", adjacency, node, weights, cutEdgeGradient: true,
            (n, ext) => d.Kernels.ContinuousForward(d.Stream, ext, n, ext, adjacency.Nodes, node, tau, weights.View, at.View),
            (n, ext) =>
            {
                var dWeights = weights.GradForWrite(out int accumulate);
                d.Kernels.ContinuousBackward(d.Stream, ext, n, ext, adjacency.Nodes, node, tau, accumulate, weights.View, at.View, at.Grad.View, dWeights);
            });
    }

    /// <summary>
    /// The stochastic binary gate of node <paramref name="node"/> from edge weights <c>w [B, n − node]</c> and gate
    /// logits <c>z [B, n − node]</c>: <c>A = z + L &gt; 0 ? w : 0</c>, L the logistic noise of
    /// <paramref name="noiseKey"/> (<see cref="GateKernels.LogisticNoise"/>; null: no noise, kept when z &gt; 0).
    /// Backward: <c>dw += dA</c> on kept edges (exact), straight-through <c>dz += dA · w · g(1 − g)/T</c>,
    /// <c>g = sigmoid((z + L)/T)</c>, on every edge. Saves nothing beyond w and z (the noise is recomputed).
    /// </summary>
    /// <exception cref="ArgumentException">T not positive, node outside 0..n−1, or w or z not [B, n − node].</exception>
    public static void StochasticGate(this Tape tape, Adjacency adjacency, int node, Tensor weights, Tensor logits, float temperature, int? noiseKey)
    {
        CheckRow("StochasticGate", tape, adjacency, node, weights, "edge weights");
        CheckRow("StochasticGate", tape, adjacency, node, logits, "gate logits");
        WiringConfig.ValidateGateTemperature(temperature);
        var d = tape.Device;
        int n = weights.Length, ext = d.Extent(n);
        int noise = noiseKey is null ? 0 : 1, key = noiseKey ?? 0;
        d.Kernels.StochasticForward(d.Stream, ext, n, ext, adjacency.Nodes, node, noise, key, weights.View, logits.View, adjacency.Tensor.View);
        adjacency.MarkRowWritten(node);
        adjacency.SetCutEdgeGradient(node, true);
        if (!tape.NeedsGrad(weights, logits)) return;
        var at = adjacency.Tensor;
        tape.Record("StochasticGate", at, () =>
        {
            using var scratch = weights.RequiresGrad && logits.RequiresGrad ? null : Tensor.Empty(d, n); // overwritten, never read
            int accumulateWeights = 0, accumulateLogits = 0;
            var dW = weights.RequiresGrad ? weights.GradForWrite(out accumulateWeights) : scratch!.View;
            var dZ = logits.RequiresGrad ? logits.GradForWrite(out accumulateLogits) : scratch!.View;
            d.Kernels.StochasticBackward(d.Stream, ext, n, ext, adjacency.Nodes, node, temperature, noise, key,
                (accumulateWeights != 0 ? 1 : 0) | (accumulateLogits != 0 ? 2 : 0), weights.View, logits.View, at.View, at.Grad.View, dW, dZ);
        });
    }

    /// <summary>
    /// The row part of the top-k gate of node <paramref name="node"/>: writes every out-edge with its router output,
    /// <c>A[b, node, node + 1 + o] = a[b, o]</c>; <see cref="TopKInEdges"/> then keeps each target's k largest.
    /// Backward: straight-through, <c>da += dA</c> on every edge.
    /// </summary>
    /// <exception cref="ArgumentException">Node outside 0..n−1, or a not [B, n − node].</exception>
    public static void TopKGate(this Tape tape, Adjacency adjacency, int node, Tensor weights)
    {
        CheckRow("TopKGate", tape, adjacency, node, weights, "router outputs");
        ThresholdRow(tape, "TopKGate", adjacency, node, weights, -1f, straight: true);
    }

    /// <summary>
    /// The column part of the top-k gate: of the in-edges <c>A[b, i, target]</c>, i &lt; target, keeps the
    /// <paramref name="k"/> largest per sample (ties to the lower source) and zeroes the rest, in place. Records
    /// nothing: its straight-through backward is the identity on dA, and the rows' <see cref="TopKGate"/> backward
    /// passes every edge's gradient.
    /// </summary>
    /// <exception cref="ArgumentException">Target outside 1..n or k outside 1..target.</exception>
    /// <exception cref="InvalidOperationException">A source row has not been written.</exception>
    public static void TopKInEdges(this Tape tape, Adjacency adjacency, int target, int k)
    {
        ArgumentNullException.ThrowIfNull(tape);
        ArgumentNullException.ThrowIfNull(adjacency);
        Ops.RequireSameDevice("TopKInEdges", tape, adjacency.Tensor);
        if (target < 1 || target > adjacency.Nodes)
            throw new ArgumentException($"TopKInEdges: target {target} is outside 1..{adjacency.Nodes} (a {adjacency.Nodes}-node stage).", nameof(target));
        if (k < 1 || k > target)
            throw new ArgumentException($"TopKInEdges: k = {k} is outside 1..{target} (the in-degree of node {target}).", nameof(k));
        RequireRowsWritten("TopKInEdges", adjacency, target);
        var d = tape.Device;
        int n = adjacency.Batch, ext = d.Extent(n);
        d.Kernels.TopKForward(d.Stream, ext, n, ext, adjacency.Nodes, target, k, adjacency.Tensor.View);
    }

    /// <summary>
    /// In-edge normalisation of node <paramref name="target"/> (1..n), in place on its column once it is final (after
    /// the top-k and output-edge fix-ups, before <see cref="Aggregate"/>): <c>A[b, i, target] /= s</c>,
    /// <c>s = max(1, Σ_i A[b, i, target])</c>, so the aggregate of many kept inputs keeps the scale of one. Chain wiring
    /// and columns summing to at most 1 are unchanged; cut edges stay exactly 0, so the dead-node rule and skipping see
    /// the same wiring. Backward (<see cref="GateKernels.InEdgeNormBackward"/>, run after the aggregate's):
    /// <c>dA_i ← (dA_i − Σ_k A'_k dA_k) / s</c> where s &gt; 1, so the gates and dense edges below receive the
    /// gradient with respect to their own outputs. Saves s [B].
    /// </summary>
    /// <exception cref="ArgumentException">Target outside 1..n.</exception>
    /// <exception cref="InvalidOperationException">A source row has not been written.</exception>
    public static void NormalizeInEdges(this Tape tape, Adjacency adjacency, int target)
    {
        ArgumentNullException.ThrowIfNull(tape);
        ArgumentNullException.ThrowIfNull(adjacency);
        Ops.RequireSameDevice("NormalizeInEdges", tape, adjacency.Tensor);
        if (target < 1 || target > adjacency.Nodes)
            throw new ArgumentException($"NormalizeInEdges: target {target} is outside 1..{adjacency.Nodes} (a {adjacency.Nodes}-node stage).", nameof(target));
        RequireRowsWritten("NormalizeInEdges", adjacency, target);
        var d = tape.Device;
        var at = adjacency.Tensor;
        var scale = tape.NewTensor(adjacency.Batch);
        int n = adjacency.Batch, ext = d.Extent(n);
        d.Kernels.InEdgeNormForward(d.Stream, ext, n, ext, adjacency.Nodes, target, at.View, scale.View);
        if (tape.NeedsGrad(at))
            tape.Record("NormalizeInEdges", at, () =>
                d.Kernels.InEdgeNormBackward(d.Stream, ext, n, ext, adjacency.Nodes, target, at.View, scale.View, at.Grad.View));
    }

    /// <summary>
    /// Saves node <paramref name="node"/>'s edge into the output node, <c>weights[b, n − node − 1]</c>, as the value
    /// <see cref="ForceOutputEdge"/> writes if it forces that edge on (router output a, or edge weight w of the
    /// stochastic gate). Records nothing.
    /// </summary>
    /// <exception cref="ArgumentException">Node outside 0..n−1, or the weights not [B, n − node].</exception>
    public static void StoreOutputEdge(this Tape tape, Adjacency adjacency, int node, Tensor weights)
    {
        CheckRow("StoreOutputEdge", tape, adjacency, node, weights, "edge weights");
        var d = tape.Device;
        int n = adjacency.Batch, ext = d.Extent(n);
        d.Kernels.StoreOutputEdge(d.Stream, ext, n, ext, adjacency.Nodes, node, weights.View, adjacency.OutputFallback.View);
        adjacency.MarkFallbackStored(node);
    }

    /// <summary>
    /// Never lets the stage output node lose every in-edge: for each sample whose in-edges into node n are all 0,
    /// sets the one from the live source (node 0, or a node with a non-zero in-edge) with the largest stored weight
    /// (<see cref="StoreOutputEdge"/>; ties to the lower source) to that weight. Records nothing: the gates'
    /// backwards treat the forced entry as kept (gradient <c>dA</c> to its weight).
    /// </summary>
    /// <exception cref="InvalidOperationException">A row, or a row's stored output edge, is missing.</exception>
    public static void ForceOutputEdge(this Tape tape, Adjacency adjacency)
    {
        ArgumentNullException.ThrowIfNull(tape);
        ArgumentNullException.ThrowIfNull(adjacency);
        Ops.RequireSameDevice("ForceOutputEdge", tape, adjacency.Tensor);
        RequireRowsWritten("ForceOutputEdge", adjacency, adjacency.Nodes);
        for (int i = 0; i < adjacency.Nodes; i++)
            if (!adjacency.IsFallbackStored(i))
                throw new InvalidOperationException($"ForceOutputEdge: node {i}'s edge into the output node was not stored (call StoreOutputEdge after its gate).");
        var d = tape.Device;
        int n = adjacency.Batch, ext = d.Extent(n);
        d.Kernels.ForceOutputEdge(d.Stream, ext, n, ext, adjacency.Nodes, adjacency.OutputFallback.View, adjacency.Tensor.View);
    }

    /// <summary>
    /// The live-sample mask of node <paramref name="node"/>, a tape-owned <c>[B]</c> tensor: 1 where the node is node 0
    /// or has a non-zero in-edge for the sample, 0 where it is off (its output is then 0: see
    /// <see cref="Ops.BatchNorm2d(Tape, Tensor, Tensor, Tensor, Tensor, Tensor, bool, float, float, BatchNormPlan?, Tensor?)"/>'s live mask). Read it once the node's column is final (after
    /// <see cref="StageWiring.Aggregate"/>).
    /// </summary>
    /// <exception cref="ArgumentException">Node outside 0..n−1.</exception>
    public static Tensor NodeLiveMask(this Tape tape, Adjacency adjacency, int node)
    {
        ArgumentNullException.ThrowIfNull(tape);
        ValidateNode("NodeLiveMask", adjacency, node);
        Ops.RequireSameDevice("NodeLiveMask", tape, adjacency.Tensor);
        var d = tape.Device;
        var live = tape.NewTensor(adjacency.Batch);
        int n = adjacency.Batch, ext = d.Extent(n);
        d.Kernels.NodeLiveMask(d.Stream, ext, n, ext, adjacency.Nodes, node, adjacency.Tensor.View, live.View);
        return live;
    }

    /// <summary>
    /// Cuts the out-edges of node <paramref name="node"/> for the samples where <paramref name="live"/> is 0 (row
    /// <c>node</c>, after its gate), so that an off node's edges count as cut everywhere (liveness of later nodes,
    /// keep rates, the output-edge fix-up, dead-node skipping). Records nothing: the off node's output is 0, so the
    /// gradient of those entries is 0 anyway.
    /// </summary>
    /// <exception cref="ArgumentException">Node outside 0..n−1, or a mask that is not [B].</exception>
    public static void ClearOffRow(this Tape tape, Adjacency adjacency, int node, Tensor live)
    {
        ArgumentNullException.ThrowIfNull(tape);
        ArgumentNullException.ThrowIfNull(live);
        ValidateNode("ClearOffRow", adjacency, node);
        Ops.RequireSameDevice("ClearOffRow", tape, adjacency.Tensor, live);
        if (live.Length != adjacency.Batch)
            throw new ArgumentException($"ClearOffRow: the live mask must have B = {adjacency.Batch} elements; got shape {live.ShapeString}.", nameof(live));
        var d = tape.Device;
        int n = adjacency.Batch * adjacency.Size, ext = d.Extent(n);
        d.Kernels.ClearOffRow(d.Stream, ext, n, ext, adjacency.Nodes, node, live.View, adjacency.Tensor.View);
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
        ValidateGate("Route", adjacency, node, tau, gradient);
        CheckRouter("Route", adjacency, node, nodeOutput, router);
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
    /// aggregate itself is not needed by this backward (see <see cref="Adjacency.AggregateInto"/> to rebuild it). The
    /// kernels are the device's <see cref="AggregationPlan.For(Device, int, int, int)"/>: on Cuda the register forward and a
    /// fused backward that reads dX once for both gradients, on the CPU accelerator the simple kernels.
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
                var dSources = new Tensor?[sources.Length];
                var overwrite = new bool[sources.Length];
                for (int i = 0; i < sources.Length; i++)
                {
                    if (!sources[i].RequiresGrad) continue;
                    sources[i].GradForWrite(out int accumulate); // a gradient this backward is the first to write: overwritten
                    overwrite[i] = accumulate == 0;
                    dSources[i] = sources[i].Grad;
                }
                AggregationLaunch.Backward(adjacency, target, sources, x.Grad, dSources, overwrite, at.RequiresGrad ? at.Grad : null);
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
        int eb = d.Extent(edges), square = (adjacency.Nodes + 1) * (adjacency.Nodes + 1), groupSize = tape.GradientGroupSize;
        tape.Record("DenseEdges", at, () =>
            Ops.ParameterGradients(d, groupSize, adjacency.Batch, [edgeLogits.Grad.View], (first, count, into) =>
                d.Kernels.DenseEdgesBackward(d.Stream, eb, edges, eb, adjacency.Nodes, count, edgeLogits.View, Ops.Samples(at.Grad.View, square, first, count), into[0])));
    }

    private static void ThresholdRow(Tape tape, string op, Adjacency adjacency, int node, Tensor weights, float tau, bool straight)
    {
        var d = tape.Device;
        var at = adjacency.Tensor;
        GateRow(tape, op, adjacency, node, weights, cutEdgeGradient: straight,
            (n, ext) => d.Kernels.GateForward(d.Stream, ext, n, ext, adjacency.Nodes, node, tau, weights.View, at.View),
            (n, ext) =>
            {
                var dWeights = weights.GradForWrite(out int accumulate);
                d.Kernels.GateBackward(d.Stream, ext, n, ext, adjacency.Nodes, node, tau, straight ? 1 : 0, accumulate, weights.View, at.View, at.Grad.View, dWeights);
            });
    }

    /// <summary>
    /// The shared steps of a gate writing row <paramref name="node"/> from the router outputs: the forward launch
    /// (n = weights.Length work items at extent ext), the row's bookkeeping, and the backward recorded when the
    /// router outputs need a gradient.
    /// </summary>
    private static void GateRow(Tape tape, string op, Adjacency adjacency, int node, Tensor weights, bool cutEdgeGradient,
        Action<int, int> forward, Action<int, int> backward)
    {
        int n = weights.Length, ext = tape.Device.Extent(n);
        forward(n, ext);
        adjacency.MarkRowWritten(node);
        adjacency.SetCutEdgeGradient(node, cutEdgeGradient);
        if (tape.NeedsGrad(weights))
            tape.Record(op, adjacency.Tensor, () => backward(n, ext));
    }

    /// <summary>Validates a row op's node and its <c>[B, n − node]</c> input.</summary>
    private static void CheckRow(string op, Tape tape, Adjacency adjacency, int node, Tensor values, string what)
    {
        ArgumentNullException.ThrowIfNull(tape);
        ArgumentNullException.ThrowIfNull(adjacency);
        ArgumentNullException.ThrowIfNull(values);
        ValidateNode(op, adjacency, node);
        Ops.RequireSameDevice(op, tape, adjacency.Tensor, values);
        int degree = adjacency.OutDegree(node);
        if (values.Rank != 2 || values.Dim(0) != adjacency.Batch || values.Dim(1) != degree)
            throw new ArgumentException($"{op}: {what} {values.Describe()} must be [{adjacency.Batch}, {degree}] (batch, out-degree of node {node} in a {adjacency.Nodes}-node stage).", nameof(values));
    }

    /// <summary>Validates that <paramref name="router"/> and <paramref name="nodeOutput"/> fit row <paramref name="node"/>.</summary>
    internal static void CheckRouter(string op, Adjacency adjacency, int node, Tensor nodeOutput, Router router)
    {
        ArgumentNullException.ThrowIfNull(adjacency);
        ArgumentNullException.ThrowIfNull(router);
        ArgumentNullException.ThrowIfNull(nodeOutput);
        ValidateNode(op, adjacency, node);
        if (router.OutDegree != adjacency.OutDegree(node))
            throw new ArgumentException($"{op}: router of node {node} has {router.OutDegree} outputs but node {node} of a {adjacency.Nodes}-node stage has out-degree {adjacency.OutDegree(node)}.", nameof(router));
        if (nodeOutput.Rank < 1 || nodeOutput.Dim(0) != adjacency.Batch)
            throw new ArgumentException($"{op}: node output {nodeOutput.Describe()} has batch {(nodeOutput.Rank < 1 ? 0 : nodeOutput.Dim(0))}; the adjacency has {adjacency.Batch}.", nameof(nodeOutput));
    }

    private static void RequireRowsWritten(string op, Adjacency adjacency, int target)
    {
        for (int i = 0; i < target; i++)
            if (!adjacency.IsRowWritten(i))
                throw new InvalidOperationException($"{op}: row {i} of the adjacency has not been written (node {i}'s gate must run before node {target} reads it).");
    }

    private static void ValidateGate(string op, Adjacency adjacency, int node, float tau, GateGradient gradient)
    {
        WiringConfig.ValidateTau(tau);
        if (!Enum.IsDefined(gradient))
            throw new ArgumentException($"{op}: gate gradient mode {(int)gradient} is not one of KeptOnly, StraightThrough.", nameof(gradient));
        ValidateNode(op, adjacency, node);
    }

    internal static void ValidateNode(string op, Adjacency adjacency, int node)
    {
        if (node < 0 || node >= adjacency.Nodes)
            throw new ArgumentException($"{op}: node {node} is outside 0..{adjacency.Nodes - 1} (a {adjacency.Nodes}-node stage).", nameof(node));
    }
}
