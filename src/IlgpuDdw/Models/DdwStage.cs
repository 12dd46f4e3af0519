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
/// Off nodes (dynamic wiring, training and evaluation alike): a node j ≥ 1 all of whose in-edges are cut for a
/// sample is off for it: its output is 0 (its batch norms run over the live samples only, <see cref="NodeBlock.Forward(Tape, Tensor, Tensor?)"/>)
/// and its out-edges are cut (<see cref="WiringOps.ClearOffRow"/>), so later nodes, keep rates and the output-edge
/// fix-up see what the node carries. Dead-node skipping (evaluation, <see cref="SkipDeadNodes"/>) computes exactly
/// that: the block runs only on the samples that have a kept in-edge and the others get 0.
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
            Tensor? live;
            using (var node = tape.Scope())
            {
                var x = wiring.Aggregate(tape, adjacency, j, ys);
                live = Kind == WiringKind.Dynamic ? tape.Retain(tape.NodeLiveMask(adjacency, j)) : null;
                if (!tape.IsRecording && !Training && live is not null && SkipDeadNodes)
                {
                    yj = ForwardSkippingDead(tape, adjacency, j, x);
                }
                else
                {
                    yj = _nodes[j].Forward(tape, x, live);
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
            if (live is null) continue;
            tape.ClearOffRow(adjacency, j, live);
            if (!tape.IsRecording) tape.Free(live); // nothing reads it later (stream-ordered reuse)
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
        for (int b = 0; b < batch; b++)
        {
            bool any = false;
            for (int i = 0; i < j && !any; i++) any = a[b, i, j] != 0f;
            if (any) live.Add(b);
        }
        _computed.Add(live.Count);
        if (live.Count == batch) return _nodes[j].Forward(tape, x);
        var d = tape.Device;
        int[] sampleShape = [.. x.Shape.Skip(1)];
        using var scope = tape.Scope();
        var y = tape.Own(Tensor.Zeros(d, [.. x.Shape])); // off samples: 0 (a node keeps its input's shape)
        if (live.Count > 0)
        {
            using var xl = Tensor.Empty(d, [live.Count, .. sampleShape]);
            RowCopy.Copy(x, [.. live], xl, [.. Enumerable.Range(0, live.Count)]);
            var yl = _nodes[j].Forward(tape, xl);
            RowCopy.Copy(yl, [.. Enumerable.Range(0, live.Count)], y, [.. live]);
            scope.FreeExcept(y);
        }
        return scope.Keep(y);
    }
}
