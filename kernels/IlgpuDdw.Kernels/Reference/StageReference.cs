using System.Numerics;

namespace IlgpuDdw.Kernels.Reference;

/// <summary>
/// Reference of one stage's wiring with the node blocks left out: given node outputs <c>ys[0..n−1]</c>
/// (each <c>[batch, channels, spatial]</c>), builds the adjacency (dynamic: router of node i on y_i then the
/// gate writes row i; dense: sigmoid of the edge logits; chain: ones on the chain) and every aggregate
/// <c>x_j</c> (j = 1..n, n = the output node). <see cref="Backward"/> differentiates
/// <c>L = Σ_j &lt;g_j, x_j&gt;</c> in the order the tape runs the ops. Generic over float (kernel checks) and
/// double (finite differences).
/// </summary>
public sealed class StageReference<T> where T : IFloatingPointIeee754<T>
{
    /// <summary>Creates a stage of <paramref name="nodes"/> nodes (chain wiring unless routers or logits are set).</summary>
    public StageReference(int nodes, int batch, int channels, int spatial)
    {
        Nodes = nodes;
        Batch = batch;
        Channels = channels;
        Spatial = spatial;
        Adjacency = new T[batch * (nodes + 1) * (nodes + 1)];
        Aggregates = new T[nodes + 1][];
        RouterStates = new RouterActivations<T>[nodes];
    }

    /// <summary>Nodes n (the output node is n).</summary>
    public int Nodes { get; }
    public int Batch { get; }
    /// <summary>Channels of every node output.</summary>
    public int Channels { get; }
    /// <summary>H·W of every node output.</summary>
    public int Spatial { get; }
    /// <summary>Dynamic wiring: router i (out-degree n − i) for each node i.</summary>
    public RouterWeights<T>[]? Routers { get; init; }
    /// <summary>Dense wiring: the E = n(n+1)/2 edge logits.</summary>
    public T[]? DenseLogits { get; init; }
    /// <summary>Gate threshold (dynamic).</summary>
    public T Tau { get; init; } = T.CreateChecked(0.5);
    /// <summary>Straight-through gate gradient (dynamic) instead of kept-only.</summary>
    public bool StraightThrough { get; init; }

    /// <summary>The adjacency after <see cref="Forward"/>.</summary>
    public T[] Adjacency { get; }
    /// <summary><c>Aggregates[j]</c> = x_j after <see cref="Forward"/> (index 0 unused).</summary>
    public T[]?[] Aggregates { get; }
    /// <summary>Each router's saved activations after <see cref="Forward"/> (dynamic).</summary>
    public RouterActivations<T>[] RouterStates { get; }

    private int Sample => Channels * Spatial;

    /// <summary>Runs the wiring forward on the node outputs.</summary>
    public void Forward(IReadOnlyList<T[]> ys)
    {
        Array.Clear(Adjacency);
        if (DenseLogits is not null)
            GateReference.DenseForward<T>(DenseLogits, Batch, Nodes, Adjacency);
        else if (Routers is null)
            GateReference.ChainFill<T>(Batch, Nodes, Adjacency);
        for (int j = 1; j <= Nodes; j++)
        {
            if (Routers is not null)
            {
                int i = j - 1;
                RouterStates[i] = RouterReference.Forward(ys[i], Batch, Routers[i], Spatial);
                GateReference.Forward<T>(RouterStates[i].Output, Batch, Nodes, i, Tau, Adjacency);
            }
            var x = new T[Batch * Sample];
            AggregationReference.Forward<T>(Adjacency, ys, Batch, Nodes, j, x);
            Aggregates[j] = x;
        }
    }

    /// <summary><c>Σ_j &lt;g_j, x_j&gt;</c> with <c>gs[j − 1]</c> the upstream gradient of x_j.</summary>
    public T Loss(IReadOnlyList<T[]> gs)
    {
        T s = T.Zero;
        for (int j = 1; j <= Nodes; j++)
            for (int e = 0; e < gs[j - 1].Length; e++) s += gs[j - 1][e] * Aggregates[j]![e];
        return s;
    }

    /// <summary>Rows whose cut edges need an adjacency gradient (straight-through gate, dense edges).</summary>
    public bool[] CutEdgeRows() => Enumerable.Repeat(DenseLogits is not null || (Routers is not null && StraightThrough), Nodes).ToArray();

    /// <summary>
    /// Gradients of <see cref="Loss"/> after <see cref="Forward"/>: with respect to every node output, every
    /// router parameter (dynamic), the edge logits (dense) and the adjacency (entries the kernels compute).
    /// </summary>
    public StageGradients<T> Backward(IReadOnlyList<T[]> ys, IReadOnlyList<T[]> gs)
    {
        // As the kernels run: the first aggregation backward to reach a node output (the output node's) overwrites its
        // gradient, the later ones accumulate; the buffers start as NaN, which an overwrite never reads.
        var dYs = Enumerable.Range(0, Nodes).Select(_ => Enumerable.Repeat(T.NaN, Batch * Sample).ToArray()).ToArray();
        var written = new bool[Nodes];
        var dAdjacency = new T[Adjacency.Length];
        var cutRows = CutEdgeRows();
        for (int j = Nodes; j >= 1; j--)
        {
            var overwrite = Enumerable.Range(0, Nodes).Select(i => i < j && !written[i]).ToArray();
            AggregationReference.BackwardSources<T>(Adjacency, gs[j - 1], Batch, Nodes, j, dYs, overwrite);
            for (int i = 0; i < j; i++) written[i] = true;
            if (Routers is not null || DenseLogits is not null) // chain: A is a constant, nothing needs dA
                AggregationReference.BackwardAdjacency<T>(Adjacency, ys, gs[j - 1], Batch, Nodes, j, cutRows, dAdjacency);
        }
        RouterWeights<T>[]? dRouters = null;
        if (Routers is not null)
        {
            dRouters = new RouterWeights<T>[Nodes];
            for (int i = Nodes - 1; i >= 0; i--)
            {
                var p = Routers[i];
                var dA = Enumerable.Repeat(T.NaN, Batch * p.OutDegree).ToArray(); // overwritten, like the gate's kernel does
                GateReference.Backward<T>(RouterStates[i].Output, dAdjacency, Batch, Nodes, i, Tau, StraightThrough, dA, accumulate: false);
                dRouters[i] = RouterWeights<T>.Zeros(p.Channels, p.Hidden, p.OutDegree);
                RouterReference.Backward(RouterStates[i], dA, Batch, p, Spatial, dYs[i], dRouters[i]);
            }
        }
        T[]? dLogits = null;
        if (DenseLogits is not null)
        {
            dLogits = new T[DenseLogits.Length];
            GateReference.DenseBackward<T>(DenseLogits, dAdjacency, Batch, Nodes, dLogits);
        }
        return new StageGradients<T>(dYs, dRouters, dLogits, dAdjacency);
    }
}

/// <summary>Gradients computed by <see cref="StageReference{T}.Backward"/>.</summary>
/// <param name="NodeOutputs">d L / d y_i for each node.</param>
/// <param name="Routers">d L / d router parameters (dynamic), else null.</param>
/// <param name="DenseLogits">d L / d edge logits (dense), else null.</param>
/// <param name="Adjacency">d L / d A (kept edges, and cut edges of flagged rows; all 0 for chain wiring, whose A is a constant).</param>
public sealed record StageGradients<T>(T[][] NodeOutputs, RouterWeights<T>[]? Routers, T[]? DenseLogits, T[] Adjacency);
