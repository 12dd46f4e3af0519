using IlgpuDdw.Autograd;
using IlgpuDdw.Nn;
using IlgpuDdw.Runtime;

namespace IlgpuDdw.Wiring;

/// <summary>
/// The wiring of one stage of n nodes (node 0 reads the stage input; node j ≥ 1 and the output node n read
/// aggregates): its parameters (a router per node for dynamic wiring, E = n(n+1)/2 edge logits for dense
/// wiring, nothing for chain) and the three calls a stage makes in its forward pass:
/// <code>
/// var adj = wiring.Begin(tape, batch);                   // chain/dense: every row written now
/// ys.Add(node0(u));  wiring.Route(tape, adj, 0, ys[0]);  // dynamic: router + gate write row 0
/// for j in 1..n−1:
///     ys.Add(nodeJ(wiring.Aggregate(tape, adj, j, ys))); wiring.Route(tape, adj, j, ys[j]);
/// output = wiring.Aggregate(tape, adj, n, ys);
/// </code>
/// As a module it holds <c>edge_logits</c> (dense) or <c>routers.{i}.fc1/fc2</c> (dynamic) and has no forward of its own.
/// </summary>
public sealed class StageWiring : Module
{
    private readonly ModuleList<Router>? _routers;
    private float _tau;
    private GateGradient _gradient;

    /// <summary>
    /// Creates the wiring of a stage with <paramref name="nodes"/> nodes of <paramref name="channels"/> channels.
    /// Router i (out-degree n − i) takes the i-th seed of <paramref name="seeds"/> (default: a sequence based on 0).
    /// </summary>
    /// <exception cref="ArgumentException">Invalid config, nodes &lt; 2 or channels &lt; 1.</exception>
    public StageWiring(Device device, WiringConfig config, int nodes, int channels, SeedSequence? seeds = null) : base(device)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        if (nodes < 2) throw new ArgumentException($"A stage needs at least 2 nodes; got {nodes}.", nameof(nodes));
        if (channels < 1) throw new ArgumentException($"Stage channels {channels} must be at least 1.", nameof(channels));
        Kind = config.Kind;
        Nodes = nodes;
        Channels = channels;
        Reduction = config.Reduction;
        _tau = config.Tau;
        _gradient = config.Gradient;
        if (Kind == WiringKind.Dense)
        {
            EdgeLogits = RegisterParameter("edge_logits", Tensor.Empty(device, Adjacency.EdgeCountOf(nodes)));
            Init.Constant(EdgeLogits, config.InitialEdgeLogit);
        }
        else if (Kind == WiringKind.Dynamic)
        {
            seeds ??= new SeedSequence(0);
            _routers = RegisterModule("routers", new ModuleList<Router>(device,
                Enumerable.Range(0, nodes).Select(i => new Router(device, channels, nodes - i, config.Reduction, seeds, config.InitialEdgeLogit))));
        }
    }

    /// <summary>Chain, dense or dynamic.</summary>
    public WiringKind Kind { get; }

    /// <summary>Nodes n (the output node has index n).</summary>
    public int Nodes { get; }

    /// <summary>Channels of every node output.</summary>
    public int Channels { get; }

    /// <summary>Router reduction r.</summary>
    public int Reduction { get; }

    /// <summary>Gate threshold τ in [0, 1) of this stage (settable, e.g. for a τ warm-up).</summary>
    /// <exception cref="ArgumentException">Set outside [0, 1).</exception>
    public float Tau
    {
        get => _tau;
        set { WiringConfig.ValidateTau(value); _tau = value; }
    }

    /// <summary>Gate gradient mode of this stage (settable).</summary>
    public GateGradient Gradient
    {
        get => _gradient;
        set
        {
            if (!Enum.IsDefined(value)) throw new ArgumentException($"Gate gradient {(int)value} is not one of KeptOnly, StraightThrough.", nameof(value));
            _gradient = value;
        }
    }

    /// <summary>Router i of each node (dynamic wiring), else empty.</summary>
    public IReadOnlyList<Router> Routers => (IReadOnlyList<Router>?)_routers ?? [];

    /// <summary>The E edge logits (dense wiring), else null.</summary>
    public Tensor? EdgeLogits { get; }

    /// <summary>
    /// Starts a forward pass: a zeroed, tape-owned adjacency for <paramref name="batch"/> samples; chain wiring
    /// fills the chain, dense wiring writes every edge (recorded for the logits' gradient).
    /// </summary>
    public Adjacency Begin(Tape tape, int batch)
    {
        ArgumentNullException.ThrowIfNull(tape);
        var adjacency = new Adjacency(tape, Nodes, batch);
        if (Kind == WiringKind.Chain) adjacency.FillChain();
        else if (Kind == WiringKind.Dense) tape.DenseEdges(adjacency, EdgeLogits!);
        return adjacency;
    }

    /// <summary>
    /// After node <paramref name="node"/> (0..n−1) produced <paramref name="nodeOutput"/> <c>[B, C, H, W]</c>:
    /// dynamic wiring runs its router and gate (row <c>node</c> of the adjacency) and returns the router outputs
    /// <c>[B, n − node]</c>; chain and dense wirings do nothing and return null.
    /// </summary>
    public Tensor? Route(Tape tape, Adjacency adjacency, int node, Tensor nodeOutput)
    {
        CheckAdjacency(adjacency);
        return Kind == WiringKind.Dynamic ? tape.Route(adjacency, node, nodeOutput, _routers![Math.Clamp(node, 0, Nodes - 1)], Tau, Gradient) : null;
    }

    /// <summary>The input of node <paramref name="target"/> (1..n; n = stage output): see <see cref="WiringOps.Aggregate"/>.</summary>
    public Tensor Aggregate(Tape tape, Adjacency adjacency, int target, IReadOnlyList<Tensor> nodeOutputs)
    {
        CheckAdjacency(adjacency);
        return tape.Aggregate(adjacency, target, nodeOutputs);
    }

    private void CheckAdjacency(Adjacency adjacency)
    {
        ArgumentNullException.ThrowIfNull(adjacency);
        if (adjacency.Nodes != Nodes)
            throw new ArgumentException($"The adjacency has {adjacency.Nodes} nodes; this stage wiring has {Nodes}.", nameof(adjacency));
    }

}
