using IlgpuDdw.Nn;

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
/// As a module it holds <c>edge_logits</c> (dense) or <c>routers.{i}.fc1/fc2</c> (dynamic; plus <c>routers.{i}.gate</c>
/// for the stochastic gate) and has no forward of its own. Dynamic wiring runs the gate of <see cref="Gate"/>: each
/// row's gate in <see cref="Route"/>; the top-k selection of a node's in-edges and the output-edge fix-up in
/// <see cref="Aggregate"/>, just before the aggregate reads the column.
/// </summary>
public sealed class StageWiring : Module
{
    private readonly ModuleList<Router>? _routers;
    private float _tau;
    private GateGradient _gradient;
    private float _temperature;
    private float _topKFraction;
    private int? _noiseKey;

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
        Gate = config.Gate;
        _temperature = config.GateTemperature;
        _topKFraction = config.TopKFraction;
        ForcesOutputEdge = config.ForcesOutputEdge;
        NormalizesInEdges = config.NormalizesInEdges;
        if (Kind == WiringKind.Dense)
        {
            EdgeLogits = RegisterParameter("edge_logits", Tensor.Empty(device, Adjacency.EdgeCountOf(nodes)));
            Init.Constant(EdgeLogits, config.InitialEdgeLogit);
        }
        else if (Kind == WiringKind.Dynamic)
        {
            seeds ??= new SeedSequence(0);
            NoiseSeed = seeds.BaseSeed;
            bool gateHead = Gate == GateKind.Stochastic;
            _routers = RegisterModule("routers", new ModuleList<Router>(device,
                Enumerable.Range(0, nodes).Select(i => new Router(device, channels, nodes - i, config.Reduction, seeds, config.InitialEdgeLogit, gateHead))));
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

    /// <summary>The gate of dynamic wiring (fixed: the stochastic gate's routers have a second head).</summary>
    public GateKind Gate { get; }

    /// <summary>Temperature T of the stochastic gate's straight-through gradient (settable).</summary>
    /// <exception cref="ArgumentException">Set to a value that is not positive and finite.</exception>
    public float GateTemperature
    {
        get => _temperature;
        set { WiringConfig.ValidateGateTemperature(value); _temperature = value; }
    }

    /// <summary>Fraction of each node's in-edges the top-k gate keeps (settable).</summary>
    /// <exception cref="ArgumentException">Set outside (0, 1].</exception>
    public float TopKFraction
    {
        get => _topKFraction;
        set { WiringConfig.ValidateTopKFraction(value); _topKFraction = value; }
    }

    /// <summary>Whether the output node's strongest live in-edge is forced on for samples that lost them all (see <see cref="WiringConfig.ForceOutputEdge"/>).</summary>
    public bool ForcesOutputEdge { get; set; }

    /// <summary>Whether each node's in-edges are normalised to sum to at most 1 before it aggregates (see <see cref="WiringConfig.NormalizeInEdges"/>).</summary>
    public bool NormalizesInEdges { get; }

    /// <summary>Seed of the stochastic gate's noise stream (the base seed of this stage's seed sequence).</summary>
    public int NoiseSeed { get; }

    /// <summary>
    /// Whether the stochastic gate draws noise in training mode (default true; the trainer turns it off for the
    /// last part of training). Evaluation mode never draws noise.
    /// </summary>
    public bool GateNoise { get; set; } = true;

    /// <summary>
    /// The counter of the noise stream: a training-mode forward pass of the stochastic gate draws the noise of
    /// (<see cref="NoiseSeed"/>, NoiseStep) and then increments it. The trainer sets it to the step before each
    /// step, so a resumed run draws the same noise.
    /// </summary>
    public int NoiseStep { get; set; }

    /// <summary>The noise key of (seed, step): <c>Hash(seed ⊕ Hash(step))</c> (<see cref="GateKernels.Hash"/>).</summary>
    public static int NoiseKey(int seed, int step) => unchecked((int)GateKernels.Hash((uint)seed ^ GateKernels.Hash((uint)step)));

    /// <summary>
    /// The soft keep indicator of this stage's gate, <c>p = sigmoid((x − Offset) · Scale)</c> of its keep inputs:
    /// for the stochastic gate x is the gate logit z with offset 0 and scale 1 (p is the keep probability under the
    /// noise); for the other gates x is the router output a with offset τ and scale 1/<paramref name="temperature"/>.
    /// </summary>
    public (float Offset, float Scale) SoftKeep(float temperature) => Gate == GateKind.Stochastic ? (0f, 1f) : (Tau, 1f / temperature);

    /// <summary>Router i of each node (dynamic wiring), else empty.</summary>
    public IReadOnlyList<Router> Routers => (IReadOnlyList<Router>?)_routers ?? [];

    /// <summary>The E edge logits (dense wiring), else null.</summary>
    public Tensor? EdgeLogits { get; }

    /// <summary>
    /// Dense wiring: which of the E edges (<see cref="Adjacency.EdgeIndex"/> order) are kept; null (default) keeps all.
    /// A pruned edge carries 0 in the forward pass (a static pruning of the dense DAG); its logit still receives a
    /// gradient but has no effect. Not stored in checkpoints.
    /// </summary>
    /// <exception cref="InvalidOperationException">Set on a wiring that is not dense.</exception>
    /// <exception cref="ArgumentException">Set to an array whose length is not E.</exception>
    public bool[]? EdgeMask
    {
        get => _edgeMask;
        set
        {
            if (value is not null && Kind != WiringKind.Dense) throw new InvalidOperationException($"Only dense wiring can be pruned; this stage is {Kind}.");
            if (value is not null && value.Length != Adjacency.EdgeCountOf(Nodes))
                throw new ArgumentException($"An edge mask of a {Nodes}-node stage needs {Adjacency.EdgeCountOf(Nodes)} entries; got {value.Length}.", nameof(value));
            _edgeMask = value is null ? null : (bool[])value.Clone();
        }
    }
    private bool[]? _edgeMask;

    private void Prune(Adjacency adjacency, bool[] mask)
    {
        var a = adjacency.Read();
        for (int b = 0; b < adjacency.Batch; b++)
            for (int i = 0; i < Nodes; i++)
                for (int j = i + 1; j <= Nodes; j++)
                    if (!mask[Adjacency.EdgeIndex(Nodes, i, j)]) a[b, i, j] = 0f;
        adjacency.Write(a);
    }

    /// <summary>
    /// Starts a forward pass: a zeroed, tape-owned adjacency for <paramref name="batch"/> samples; chain wiring
    /// fills the chain, dense wiring writes every edge (recorded for the logits' gradient).
    /// </summary>
    public Adjacency Begin(Tape tape, int batch)
    {
        ArgumentNullException.ThrowIfNull(tape);
        var adjacency = new Adjacency(tape, Nodes, batch);
        if (Kind == WiringKind.Chain) adjacency.FillChain();
        else if (Kind == WiringKind.Dense)
        {
            tape.DenseEdges(adjacency, EdgeLogits!);
            if (_edgeMask is { } mask) Prune(adjacency, mask);
        }
        _noiseKey = null;
        if (Kind == WiringKind.Dynamic && Gate == GateKind.Stochastic && Training && GateNoise)
            _noiseKey = NoiseKey(NoiseSeed, NoiseStep++);
        return adjacency;
    }

    /// <summary>
    /// After node <paramref name="node"/> (0..n−1) produced <paramref name="nodeOutput"/> <c>[B, C, H, W]</c>:
    /// dynamic wiring runs its router and gate (row <c>node</c> of the adjacency) and returns the router outputs
    /// <c>a [B, n − node]</c> (the edge weights); chain and dense wirings do nothing and return null.
    /// </summary>
    public Tensor? Route(Tape tape, Adjacency adjacency, int node, Tensor nodeOutput) => RouteHeads(tape, adjacency, node, nodeOutput)?.Weights;

    /// <summary>
    /// <see cref="Route"/>, returning both router heads: the edge weights and, for the stochastic gate, the gate
    /// logits (null for chain and dense wiring).
    /// </summary>
    public RouterOutputs? RouteHeads(Tape tape, Adjacency adjacency, int node, Tensor nodeOutput)
    {
        CheckAdjacency(adjacency);
        if (Kind != WiringKind.Dynamic) return null;
        ArgumentNullException.ThrowIfNull(tape);
        WiringOps.ValidateNode("Route", adjacency, node);
        var router = _routers![node];
        RouterOutputs result;
        if (Gate == GateKind.Threshold)
            result = new(tape.Route(adjacency, node, nodeOutput, router, Tau, Gradient), null);
        else
        {
            WiringOps.CheckRouter("Route", adjacency, node, nodeOutput, router);
            var (a, z) = router.ForwardHeads(tape, nodeOutput);
            result = new(a, z);
            switch (Gate)
            {
                case GateKind.Continuous: tape.ContinuousGate(adjacency, node, a, Tau); break;
                case GateKind.Stochastic: tape.StochasticGate(adjacency, node, a, z!, GateTemperature, _noiseKey); break;
                default: tape.TopKGate(adjacency, node, a); break;
            }
        }
        if (ForcesOutputEdge) tape.StoreOutputEdge(adjacency, node, result.Weights);
        return result;
    }

    /// <summary>
    /// The input of node <paramref name="target"/> (1..n; n = stage output): see <see cref="WiringOps.Aggregate"/>.
    /// Dynamic wiring first keeps the top-k in-edges of the target (top-k gate) and, for the output node, forces an
    /// in-edge on where a sample lost them all (<see cref="ForcesOutputEdge"/>); with <see cref="NormalizesInEdges"/>
    /// the target's in-edges are then scaled to sum to at most 1.
    /// </summary>
    public Tensor Aggregate(Tape tape, Adjacency adjacency, int target, IReadOnlyList<Tensor> nodeOutputs)
    {
        CheckAdjacency(adjacency);
        if (Kind == WiringKind.Dynamic && target >= 1 && target <= Nodes)
        {
            if (Gate == GateKind.TopK) tape.TopKInEdges(adjacency, target, WiringConfig.TopK(TopKFraction, target));
            if (target == Nodes && ForcesOutputEdge) tape.ForceOutputEdge(adjacency);
        }
        if (NormalizesInEdges && target >= 1 && target <= Nodes) tape.NormalizeInEdges(adjacency, target);
        return tape.Aggregate(adjacency, target, nodeOutputs);
    }

    private void CheckAdjacency(Adjacency adjacency)
    {
        ArgumentNullException.ThrowIfNull(adjacency);
        if (adjacency.Nodes != Nodes)
            throw new ArgumentException($"The adjacency has {adjacency.Nodes} nodes; this stage wiring has {Nodes}.", nameof(adjacency));
    }
}

/// <summary>The outputs of a node's router: edge weights <c>a [B, out-degree]</c> and, for the stochastic gate, gate logits <c>z</c> of the same shape.</summary>
/// <param name="Weights">Edge weights (sigmoid outputs).</param>
/// <param name="GateLogits">Gate logits, or null.</param>
public readonly record struct RouterOutputs(Tensor Weights, Tensor? GateLogits);
