using IlgpuDdw.Nn;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Models;

/// <summary>
/// One DDW stage: n node blocks at one resolution and width (node 0 carries the stride and channel change), wired
/// by <see cref="WiringKind"/>:
/// chain runs the blocks one after another (exactly the published backbone; no aggregation kernels);
/// dense and dynamic aggregate <c>x_j[b] = Σ_{i&lt;j} A[b,i,j]·y_i[b]</c> into node j and into the output node,
/// with A from learned edge logits (dense) or from each node's router and the gate (dynamic, <see cref="GateKind"/>).
/// A stage of one node has no edges to learn and runs as a chain under every wiring.
/// </summary>
/// <remarks>
/// Memory: in training the aggregate x_j is needed by node j's backward (its first convolution's weight
/// gradient and the shortcut), but it is a pure function of A and the node outputs, which are kept anyway. So
/// the stage drops x_j's storage as soon as node j's forward has consumed it and recomputes it from A just
/// before node j's backward runs (<see cref="Tape.Recompute"/>: one aggregate alive at a time instead of n − 1 per
/// stage). In no-grad mode every intermediate is freed once read (<see cref="Tape.Scope"/>); the adjacency and the
/// router outputs stay until the tape is cleared.
/// Dead-node skipping (evaluation, dynamic wiring, <see cref="SkipDeadNodes"/>): a node j ≥ 1 all of whose
/// in-edges are cut for a sample receives x_j = 0, so its output is the constant f_j(0); the stage computes
/// that constant once per batch and runs the block only on the samples that have a kept in-edge.
/// </remarks>
public sealed class DdwStage : Module
{
    private readonly ModuleList<NodeBlock> _nodes;
    private Adjacency? _last;

    /// <summary>Builds the stage's nodes and wiring.</summary>
    public DdwStage(Device device, StageSpec spec, WiringConfig wiring, SeedSequence seeds) : base(device)
    {
        Spec = spec ?? throw new ArgumentNullException(nameof(spec));
        ArgumentNullException.ThrowIfNull(wiring);
        ArgumentNullException.ThrowIfNull(seeds);
        wiring.Validate();
        _nodes = RegisterModule("nodes", new ModuleList<NodeBlock>(device, spec.Nodes.Select(b => new NodeBlock(device, b, seeds))));
        Kind = _nodes.Count >= 2 ? wiring.Kind : WiringKind.Chain;
        if (Kind != WiringKind.Chain)
            Wiring = RegisterModule("wiring", new StageWiring(device, wiring, _nodes.Count, spec.OutChannels, seeds.Spawn()));
    }

    /// <summary>The stage's definition.</summary>
    public StageSpec Spec { get; }

    /// <summary>The wiring this stage runs (chain for a one-node stage).</summary>
    public WiringKind Kind { get; }

    /// <summary>The wiring's parameters and settings (null for chain).</summary>
    public StageWiring? Wiring { get; }

    /// <summary>The node blocks.</summary>
    public IReadOnlyList<NodeBlock> Nodes => _nodes;

    /// <summary>Whether evaluation skips nodes whose in-edges are all cut (dynamic wiring; default true).</summary>
    public bool SkipDeadNodes { get; set; } = true;

    /// <summary>
    /// The adjacency written by the last forward pass (null for chain, or before any forward). Owned by the tape
    /// of that pass: read it (<see cref="Adjacency.Read"/>) before clearing the tape.
    /// </summary>
    public Adjacency? LastAdjacency => _last is { Tensor.IsDisposed: false } ? _last : null;

    /// <summary>Router outputs a [B, n − i] of the last forward pass (dynamic wiring), e.g. for a sparsity loss.</summary>
    public IReadOnlyList<Tensor> LastRouterOutputs => _routerOutputs;
    private readonly List<Tensor> _routerOutputs = new();

    /// <summary>Gate logits z [B, n − i] of the last forward pass (stochastic gate), else empty.</summary>
    public IReadOnlyList<Tensor> LastGateLogits => _gateLogits;
    private readonly List<Tensor> _gateLogits = new();

    /// <summary>Per node, the number of samples its block ran on in the last forward pass.</summary>
    public IReadOnlyList<int> LastComputedSamples => _computed;
    private readonly List<int> _computed = new();

    /// <inheritdoc/>
    public override Tensor Forward(Tape tape, Tensor input)
    {
        ArgumentNullException.ThrowIfNull(tape);
        ArgumentNullException.ThrowIfNull(input);
        _routerOutputs.Clear();
        _gateLogits.Clear();
        _computed.Clear();
        int batch = input.Dim(0);
        using var scope = tape.Scope();
        var y0 = _nodes[0].Forward(tape, input);
        _computed.Add(batch);
        if (Kind == WiringKind.Chain)
        {
            _last = null;
            var y = y0;
            for (int j = 1; j < _nodes.Count; j++)
            {
                y = scope.FreeExcept(_nodes[j].Forward(tape, y));
                _computed.Add(batch);
            }
            return scope.Keep(y);
        }

        var wiring = Wiring!;
        var adjacency = wiring.Begin(tape, batch);
        _last = adjacency;
        var ys = new List<Tensor> { y0 };
        Route(tape, adjacency, 0, y0);
        for (int j = 1; j < _nodes.Count; j++)
        {
            Tensor yj;
            using (var node = tape.Scope())
            {
                var x = wiring.Aggregate(tape, adjacency, j, ys);
                if (!tape.IsRecording && !Training && Kind == WiringKind.Dynamic && SkipDeadNodes)
                {
                    yj = ForwardSkippingDead(tape, adjacency, j, x);
                }
                else
                {
                    yj = _nodes[j].Forward(tape, x);
                    _computed.Add(batch);
                }
                // Keep A and the node outputs; rebuild x_j just before node j's backward needs it.
                int target = j;
                var sources = ys.ToArray();
                tape.Recompute(x, t => adjacency.AggregateInto(target, sources, t));
                node.Keep(yj);
            }
            ys.Add(yj);
            Route(tape, adjacency, j, yj);
        }
        return scope.Keep(wiring.Aggregate(tape, adjacency, _nodes.Count, ys));
    }

    private void Route(Tape tape, Adjacency adjacency, int node, Tensor y)
    {
        if (Wiring!.RouteHeads(tape, adjacency, node, y) is not { } r) return;
        _routerOutputs.Add(tape.Retain(r.Weights));
        if (r.GateLogits is { } z) _gateLogits.Add(tape.Retain(z));
    }

    private Tensor ForwardSkippingDead(Tape tape, Adjacency adjacency, int j, Tensor x)
    {
        var a = adjacency.Read();
        int batch = adjacency.Batch;
        var live = new List<int>();
        var dead = new List<int>();
        for (int b = 0; b < batch; b++)
        {
            bool any = false;
            for (int i = 0; i < j && !any; i++) any = a[b, i, j] != 0f;
            (any ? live : dead).Add(b);
        }
        if (dead.Count == 0)
        {
            _computed.Add(batch);
            return _nodes[j].Forward(tape, x);
        }
        var d = tape.Device;
        int[] sampleShape = [.. x.Shape.Skip(1)];
        using var scope = tape.Scope();
        using var zero = Tensor.Zeros(d, [1, .. sampleShape]);
        var constant = _nodes[j].Forward(tape, zero);
        var y = tape.NewTensor([batch, .. constant.Shape.Skip(1)]);
        RowCopy.Copy(constant, new int[dead.Count], y, [.. dead]);
        scope.FreeExcept(y);
        if (live.Count > 0)
        {
            using var xl = Tensor.Empty(d, [live.Count, .. sampleShape]);
            RowCopy.Copy(x, [.. live], xl, [.. Enumerable.Range(0, live.Count)]);
            var yl = _nodes[j].Forward(tape, xl);
            RowCopy.Copy(yl, [.. Enumerable.Range(0, live.Count)], y, [.. live]);
            scope.FreeExcept(y);
        }
        _computed.Add(live.Count);
        return scope.Keep(y);
    }
}
