using IlgpuDdw.Nn;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Models;

/// <summary>Which nodes count as computed for a sample in <see cref="CostModel.Effective"/>.</summary>
public enum DeadNodeRule
{
    /// <summary>
    /// What <see cref="DdwStage"/> skips at inference (default): node j ≥ 1 is skipped for a sample when every
    /// in-edge of j is cut (the node is off: its output is 0). Node 0 is always computed; routers run for every node
    /// (each node has an output, computed or 0).
    /// </summary>
    InputCut,

    /// <summary>
    /// An oracle bound: a node counts only when a path of kept edges leads from it to the stage output (see
    /// <see cref="CostModel.LiveNodes"/>). A router decides its node's out-edges from the node's own output, so this
    /// cannot be known before the node has run; it measures how much computed work ends up unused.
    /// </summary>
    NoPathToOutput,

    /// <summary>Every node is computed for every sample (dead-node skipping off).</summary>
    None,
}

/// <summary>
/// Exact parameter and multiply-accumulate (MAC) counts of a <see cref="ModelSpec"/> at its input size, per sample.
/// <para>Backbone: parameters are convolution weights and biases, batch-norm gamma and beta (running statistics are
/// buffers, not counted) and linear weights and biases; MACs count convolutions (Cout·Ho·Wo·(Cin/groups)·K²) and linear
/// layers (in·out) only: batch norm, activations, pooling and residual additions count nothing.</para>
/// <para>Wiring extras, for a stage of n nodes at width C and side S (node indices 0..n−1, output node n):</para>
/// <list type="bullet">
/// <item><b>Chain</b>: nothing.</item>
/// <item><b>Dense</b>: one learned scalar per edge (i, j), 0 ≤ i &lt; j ≤ n: n(n+1)/2 parameters; aggregation MACs
/// n(n+1)/2 · C·S² (one multiply-add per element per edge), reported apart from the backbone MACs.</item>
/// <item><b>Dynamic</b>: dense's edges and aggregation MACs, with the weights written by routers instead of learned
/// scalars: router i (0 ≤ i &lt; n) is FC(C → h) + bias, ReLU, FC(h → n−i) + bias, sigmoid with
/// h = max(⌊C/r⌋, 4): C·h + h + h·(n−i) + (n−i) parameters and C·h + h·(n−i) MACs. Its global average pool
/// (C·S² additions) is reported apart as router pooling adds and is not part of any MAC total.</item>
/// </list>
/// <para>A stage with a single node has no edges to learn: it runs as a chain (identity wiring) under every wiring
/// and adds nothing.</para>
/// </summary>
public static class CostModel
{
    /// <summary>Default router reduction r.</summary>
    public const int DefaultRouterReduction = 4;

    /// <summary>Smallest router hidden width.</summary>
    public const int MinRouterHidden = 4;

    /// <summary>Router hidden width h = max(⌊channels / reduction⌋, 4).</summary>
    /// <exception cref="ArgumentException">A value below 1.</exception>
    public static int RouterHiddenWidth(int channels, int reduction = DefaultRouterReduction)
    {
        RequirePositive(channels, nameof(channels));
        RequirePositive(reduction, nameof(reduction));
        return Math.Max(channels / reduction, MinRouterHidden);
    }

    /// <summary>Edges (i, j), 0 ≤ i &lt; j ≤ n, of a stage of <paramref name="nodes"/> nodes: n(n+1)/2, or 0 when n = 1.</summary>
    public static long EdgeCount(int nodes)
    {
        RequirePositive(nodes, nameof(nodes));
        return nodes < 2 ? 0 : (long)nodes * (nodes + 1) / 2;
    }

    /// <summary>Parameters of router <paramref name="node"/> of a stage of <paramref name="nodes"/> nodes at width <paramref name="channels"/>.</summary>
    public static long RouterParameterCount(int channels, int nodes, int node, int reduction = DefaultRouterReduction)
    {
        var (h, degree) = RouterShape(channels, nodes, node, reduction);
        return (long)channels * h + h + (long)h * degree + degree;
    }

    /// <summary>MACs per sample of router <paramref name="node"/> (its two fully connected layers).</summary>
    public static long RouterMacCount(int channels, int nodes, int node, int reduction = DefaultRouterReduction)
    {
        var (h, degree) = RouterShape(channels, nodes, node, reduction);
        return (long)channels * h + (long)h * degree;
    }

    /// <summary>Static per-layer, per-stage and total costs of <paramref name="spec"/> under <paramref name="wiring"/>.</summary>
    /// <exception cref="ArgumentException">Undefined wiring or a reduction below 1.</exception>
    public static ModelCost Compute(ModelSpec spec, WiringKind wiring = WiringKind.Chain, int routerReduction = DefaultRouterReduction)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (!Enum.IsDefined(wiring)) throw new ArgumentException($"Unknown wiring {wiring}.", nameof(wiring));
        RequirePositive(routerReduction, nameof(routerReduction));

        var layers = new List<LayerCost>();
        var (stemParams, stemMacs) = AddLayers(layers, "stem", spec.Stem, spec.InputSize);
        var stages = new List<StageCost>();
        for (int s = 0; s < spec.Stages.Count; s++)
        {
            var stage = spec.Stages[s];
            int inSize = spec.StageInputSizes[s], size = spec.StageOutputSizes[s];
            int n = stage.Nodes.Count, c = stage.OutChannels;
            long parameters = 0;
            var nodeMacs = new long[n];
            for (int k = 0; k < n; k++)
            {
                var node = stage.Nodes[k];
                int nodeIn = k == 0 ? inSize : size;
                var (mp, mm) = AddLayers(layers, $"{stage.Name}.{k}", node.Layers, nodeIn);
                var (sp, sm) = AddLayers(layers, $"{stage.Name}.{k}.shortcut", node.ShortcutLayers, nodeIn);
                parameters += mp + sp;
                nodeMacs[k] = mm + sm;
            }

            long edges = wiring == WiringKind.Chain ? 0 : EdgeCount(n);
            long elements = (long)c * size * size;
            bool routed = wiring == WiringKind.Dynamic && n >= 2;
            long routerParams = 0, routerMacs = 0;
            if (routed)
                for (int i = 0; i < n; i++)
                {
                    routerParams += RouterParameterCount(c, n, i, routerReduction);
                    routerMacs += RouterMacCount(c, n, i, routerReduction);
                }
            stages.Add(new StageCost(stage.Name, n, c, inSize, size, parameters, nodeMacs.Sum(), Array.AsReadOnly(nodeMacs),
                EdgeParameters: wiring == WiringKind.Dense ? edges : 0,
                AggregationMacs: edges * elements,
                RouterParameters: routerParams,
                RouterMacs: routerMacs,
                RouterPoolAdds: routed ? n * elements : 0));
        }
        var (headParams, headMacs) = AddLayers(layers, "head", spec.Head, spec.StageOutputSizes[^1]);
        return new ModelCost(spec.Name, wiring, spec.InputSize, routerReduction, stemParams, stemMacs, stages.AsReadOnly(),
            headParams, headMacs, layers.AsReadOnly());
    }

    /// <summary>
    /// Marks the nodes of one sample's stage that <see cref="DdwStage"/> computes at inference
    /// (<see cref="DeadNodeRule.InputCut"/>): node 0, every node j ≥ 1 with at least one kept in-edge (entry &gt; 0),
    /// and the output node n.
    /// </summary>
    /// <param name="adjacency">(n+1)² entries, row i = node i's out-edges.</param>
    /// <param name="nodes">n.</param>
    /// <param name="computed">n+1 flags, written.</param>
    /// <exception cref="ArgumentException">Lengths do not match <paramref name="nodes"/>.</exception>
    public static void ComputedNodes(ReadOnlySpan<float> adjacency, int nodes, Span<bool> computed)
    {
        RequirePositive(nodes, nameof(nodes));
        int m = nodes + 1;
        if (adjacency.Length != m * m)
            throw new ArgumentException($"A stage of {nodes} nodes needs a {m}×{m} adjacency ({m * m} entries), got {adjacency.Length}.", nameof(adjacency));
        if (computed.Length != m)
            throw new ArgumentException($"computed needs {m} entries for {nodes} nodes, got {computed.Length}.", nameof(computed));
        computed[0] = true;
        computed[nodes] = true;
        for (int j = 1; j < nodes; j++)
        {
            bool any = false;
            for (int i = 0; i < j && !any; i++) any = adjacency[i * m + j] > 0;
            computed[j] = any;
        }
    }

    /// <summary>
    /// Marks the live nodes of one sample's stage adjacency (<see cref="DeadNodeRule.NoPathToOutput"/>). <paramref name="adjacency"/> is (n+1)×(n+1) row-major,
    /// row i holding node i's out-edges; only entries (i, j) with i &lt; j ≤ n are read and an edge is kept when its
    /// entry is &gt; 0. Node n (the output) is live; node i &lt; n is live when a kept edge leads from it to a live
    /// node, i.e. when a path of kept edges leads from it to the output. A node that is not live is dead: its output is
    /// never used, so neither it nor its router nor the aggregation into it needs computing (node 0 is computed
    /// anyway, because it is the stage's entry).
    /// </summary>
    /// <param name="adjacency">(n+1)² entries.</param>
    /// <param name="nodes">n.</param>
    /// <param name="live">n+1 flags, written.</param>
    /// <exception cref="ArgumentException">Lengths do not match <paramref name="nodes"/>.</exception>
    public static void LiveNodes(ReadOnlySpan<float> adjacency, int nodes, Span<bool> live)
    {
        RequirePositive(nodes, nameof(nodes));
        int m = nodes + 1;
        if (adjacency.Length != m * m)
            throw new ArgumentException($"A stage of {nodes} nodes needs a {m}×{m} adjacency ({m * m} entries), got {adjacency.Length}.", nameof(adjacency));
        if (live.Length != m)
            throw new ArgumentException($"live needs {m} entries for {nodes} nodes, got {live.Length}.", nameof(live));
        live[nodes] = true;
        for (int i = nodes - 1; i >= 0; i--)
        {
            bool any = false;
            for (int j = i + 1; j <= nodes && !any; j++) any = adjacency[i * m + j] > 0 && live[j];
            live[i] = any;
        }
    }

    /// <summary>
    /// Mean effective MACs per sample given each stage's per-sample adjacency (<paramref name="rule"/> says which nodes
    /// are computed: <see cref="ComputedNodes"/> or <see cref="LiveNodes"/>). Per sample: the stem and head always; node i's backbone MACs when it is computed (live, or
    /// node 0); the aggregation MACs (C·S²) of each kept edge whose target is the output node or a live node; under
    /// dynamic wiring the router MACs (and pooling adds) of each computed node. Means are over the batch.
    /// </summary>
    /// <param name="spec">The model.</param>
    /// <param name="wiring">Dense or dynamic; under chain wiring the adjacency is ignored (may be null) and the
    /// result equals the static cost with <see cref="EffectiveCost.Batch"/> 0.</param>
    /// <param name="adjacency">One entry per stage: row-major [B, n+1, n+1] (row i = node i's out-edges, entry &gt; 0 = kept),
    /// the same B ≥ 1 for every stage; entries for single-node stages are ignored and may be null.</param>
    /// <param name="routerReduction">Router reduction r.</param>
    /// <param name="rule">Which nodes count as computed (default: what the stage skips at inference).</param>
    /// <exception cref="ArgumentException">Wrong stage count, missing adjacency, a length that is not a positive multiple
    /// of (n+1)², or differing batch sizes.</exception>
    public static EffectiveCost Effective(ModelSpec spec, WiringKind wiring, IReadOnlyList<float[]?>? adjacency,
        int routerReduction = DefaultRouterReduction, DeadNodeRule rule = DeadNodeRule.InputCut)
    {
        var cost = Compute(spec, wiring, routerReduction);
        if (wiring == WiringKind.Chain)
            return new EffectiveCost(spec.Name, wiring, 0, cost.StemMacs,
                cost.Stages.Select(s => new StageEffectiveCost(s.Name, s.Nodes, s.Nodes, 1, s.Macs, 0, 0, 0)).ToArray(),
                cost.HeadMacs, cost.TotalMacs);
        ArgumentNullException.ThrowIfNull(adjacency);
        if (adjacency.Count != spec.Stages.Count)
            throw new ArgumentException($"Model '{spec.Name}' has {spec.Stages.Count} stages but {adjacency.Count} adjacencies were given.", nameof(adjacency));
        int batch = BatchSize(spec, adjacency);
        var rows = new StageEffectiveCost[spec.Stages.Count];
        for (int s = 0; s < rows.Length; s++)
        {
            var st = cost.Stages[s];
            rows[s] = st.Nodes < 2
                ? new StageEffectiveCost(st.Name, st.Nodes, st.Nodes, 1, st.Macs, 0, 0, 0)
                : EffectiveStage(st, adjacency[s]!, batch, wiring == WiringKind.Dynamic, routerReduction, rule);
        }
        return new EffectiveCost(spec.Name, wiring, batch, cost.StemMacs, rows, cost.HeadMacs, cost.TotalMacs);
    }

    private static StageEffectiveCost EffectiveStage(StageCost st, float[] adjacency, int batch, bool routed, int reduction, DeadNodeRule rule)
    {
        int n = st.Nodes, m = n + 1;
        long elements = (long)st.Width * st.Resolution * st.Resolution;
        long computedNodes = 0, keptEdges = 0, macs = 0, aggregation = 0, routerMacs = 0, poolAdds = 0;
        var live = new bool[m];
        for (int b = 0; b < batch; b++)
        {
            var a = adjacency.AsSpan(b * m * m, m * m);
            if (rule == DeadNodeRule.InputCut) ComputedNodes(a, n, live);
            else if (rule == DeadNodeRule.NoPathToOutput) LiveNodes(a, n, live);
            else Array.Fill(live, true);
            for (int i = 0; i < n; i++)
            {
                for (int j = i + 1; j <= n; j++)
                {
                    if (!(a[i * m + j] > 0)) continue;
                    keptEdges++;
                    if (live[j]) aggregation += elements;
                }
                bool computed = live[i] || i == 0;
                if (computed)
                {
                    computedNodes++;
                    macs += st.NodeMacs[i];
                }
                if (routed && (computed || rule != DeadNodeRule.NoPathToOutput))
                {
                    routerMacs += RouterMacCount(st.Width, n, i, reduction);
                    poolAdds += elements;
                }
            }
        }
        double mean(long total) => (double)total / batch;
        return new StageEffectiveCost(st.Name, n, mean(computedNodes), (double)keptEdges / (batch * EdgeCount(n)),
            mean(macs), mean(aggregation), mean(routerMacs), mean(poolAdds));
    }

    private static int BatchSize(ModelSpec spec, IReadOnlyList<float[]?> adjacency)
    {
        int batch = 0;
        for (int s = 0; s < spec.Stages.Count; s++)
        {
            var stage = spec.Stages[s];
            int n = stage.Nodes.Count;
            if (n < 2) continue;
            int square = (n + 1) * (n + 1);
            var a = adjacency[s] ?? throw new ArgumentException($"Stage '{stage.Name}' ({n} nodes) needs an adjacency.", nameof(adjacency));
            if (a.Length == 0 || a.Length % square != 0)
                throw new ArgumentException(
                    $"Stage '{stage.Name}' ({n} nodes) needs B×{n + 1}×{n + 1} adjacency entries (a positive multiple of {square}), got {a.Length}.", nameof(adjacency));
            int b = a.Length / square;
            if (batch != 0 && b != batch)
                throw new ArgumentException($"Stage '{stage.Name}' has an adjacency for {b} samples but an earlier stage has {batch}.", nameof(adjacency));
            batch = b;
        }
        return Math.Max(batch, 1);
    }

    /// <summary>Appends the layers with parameters or MACs under <c>prefix.index</c> and returns their sums.</summary>
    private static (long Parameters, long Macs) AddLayers(List<LayerCost> sink, string prefix, IReadOnlyList<LayerSpec> layers, int inputSize)
    {
        long parameters = 0, macs = 0;
        int size = inputSize;
        for (int i = 0; i < layers.Count; i++)
        {
            var layer = layers[i];
            int outSize = layer.OutputSize(size);
            long p = layer.ParameterCount, m = layer.Macs(size);
            if (p != 0 || m != 0) sink.Add(new LayerCost($"{prefix}.{i}", layer.ToString(), size, outSize, p, m));
            parameters += p;
            macs += m;
            size = outSize;
        }
        return (parameters, macs);
    }

    private static (int Hidden, int Degree) RouterShape(int channels, int nodes, int node, int reduction)
    {
        RequirePositive(nodes, nameof(nodes));
        if (node < 0 || node >= nodes)
            throw new ArgumentException($"node must be in [0, {nodes}), got {node}.", nameof(node));
        return (RouterHiddenWidth(channels, reduction), nodes - node);
    }

    private static void RequirePositive(int value, string name)
    {
        if (value < 1) throw new ArgumentException($"{name} must be at least 1, got {value}.", name);
    }
}
