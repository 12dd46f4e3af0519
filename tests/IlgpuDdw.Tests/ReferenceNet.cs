using IlgpuDdw.Kernels;
using IlgpuDdw.Kernels.Reference;
using IlgpuDdw.Models;
using IlgpuDdw.Nn;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Tests;

/// <summary>
/// A whole <see cref="DdwNet"/> in double precision and training mode (batch statistics), composed by hand from
/// the generic op references: the forward pass keeps what each backward needs, the backward pass runs the
/// layers' backward references in reverse order and returns the gradient of the mean cross-entropy with
/// respect to every parameter. Parameters are host arrays keyed by the net's dotted names
/// (<see cref="Nn.Module.NamedParameters"/>), so the two start from identical weights; the arrays in
/// <see cref="Parameters"/> may be changed in place between calls (finite differences).
/// BN running statistics are updated in scratch copies and dropped: they do not affect training-mode outputs.
/// </summary>
public sealed class ReferenceNet
{
    private readonly ModelSpec _spec;
    private readonly WiringConfig _wiring;
    private readonly Dictionary<string, double[]> _parameters;
    private readonly HashSet<string> _used = new(StringComparer.Ordinal);
    private Dictionary<string, double[]> _gradients = new(StringComparer.Ordinal);
    private int _batch;

    /// <summary>A reference of <paramref name="spec"/> under <paramref name="wiring"/> with the given parameters.</summary>
    public ReferenceNet(ModelSpec spec, WiringConfig wiring, Dictionary<string, double[]> parameters)
    {
        _spec = spec;
        _wiring = wiring;
        _parameters = parameters;
    }

    /// <summary>The net's parameters on the host in double, by dotted name.</summary>
    public static Dictionary<string, double[]> ParametersOf(DdwNet net) =>
        net.NamedParameters().ToDictionary(p => p.Name, p => Check.ToDouble(p.Tensor.ToArray()), StringComparer.Ordinal);

    /// <summary>The parameters (the arrays are read on every call).</summary>
    public IReadOnlyDictionary<string, double[]> Parameters => _parameters;

    /// <summary>Every parameter name the last forward pass read.</summary>
    public IReadOnlySet<string> UsedParameters => _used;

    /// <summary>Logits [B, classes] of the last forward pass.</summary>
    public double[] Logits { get; private set; } = [];

    /// <summary>
    /// Smallest distance of any ReLU/ReLU6 input (layers, block outputs, router hidden layers) from its kink in
    /// the last forward pass: finite differences are valid only while a perturbation cannot cross a kink.
    /// </summary>
    public double KinkDistance { get; private set; }

    /// <summary>Per stage, the adjacency [B, n+1, n+1] of the last forward pass (null for a chain stage).</summary>
    public double[]?[] Adjacencies { get; private set; } = [];

    /// <summary>Per stage, each router's saved activations of the last forward pass (null unless dynamic).</summary>
    public RouterActivations<double>[]?[] RouterStates { get; private set; } = [];

    /// <summary>The mean cross-entropy of the logits for <paramref name="images"/> [B, C, S, S] against <paramref name="labels"/>.</summary>
    public double Loss(double[] images, int[] labels) => Forward(images, labels).Loss;

    /// <summary>The loss and its gradient with respect to every parameter (same keys as <see cref="Parameters"/>).</summary>
    public (double Loss, Dictionary<string, double[]> Gradients) LossAndGradients(double[] images, int[] labels)
    {
        var state = Forward(images, labels);
        _gradients = _parameters.ToDictionary(p => p.Key, p => new double[p.Value.Length], StringComparer.Ordinal);
        var dLogits = new double[state.Logits.Length];
        LossReference.CrossEntropyBackward<double>(state.Logits, labels, 0.0, 1.0, dLogits);
        var d = SequenceBackward(state.Head, dLogits);
        for (int s = state.Stages.Length - 1; s >= 0; s--) d = StageBackward(state.Stages[s], d);
        SequenceBackward(state.Stem, d);
        return (state.Loss, _gradients);
    }

    // ---- forward -------------------------------------------------------------------------------------------

    /// <summary>An activation: [B, Channels, Side, Side] (Side 1 after global pooling: [B, Channels]).</summary>
    private sealed record Act(double[] Data, int Channels, int Side)
    {
        public int Spatial => Side * Side;
    }

    /// <summary>What one layer's backward needs: its input, and the BN statistics or max-pool argmax.</summary>
    private sealed record LayerState(LayerSpec Spec, string Name, Act Input, Act Output, double[]? Mean = null, double[]? Invstd = null, int[]? Argmax = null);

    /// <summary>A node block: main path, shortcut path and the pre-activation sum.</summary>
    private sealed record BlockState(BlockSpec Spec, LayerState[] Main, LayerState[]? Shortcut, Act Sum, Act Output);

    /// <summary>A stage: node blocks, node outputs, adjacency and router activations (dense/dynamic).</summary>
    private sealed record StageState(string Name, WiringKind Kind, BlockState[] Nodes, Act[] Ys, double[]? Adjacency,
        RouterActivations<double>[]? Routers);

    private sealed record NetState(LayerState[] Stem, StageState[] Stages, LayerState[] Head, double[] Logits, double Loss);

    private NetState Forward(double[] images, int[] labels)
    {
        _batch = labels.Length;
        _used.Clear();
        KinkDistance = double.PositiveInfinity;
        var x = new Act(images, _spec.InputChannels, _spec.InputSize);
        var stem = SequenceForward(_spec.Stem, "stem", ref x);
        var stages = new StageState[_spec.Stages.Count];
        for (int s = 0; s < stages.Length; s++)
        {
            stages[s] = StageForward(s, x);
            x = stages[s].Kind == WiringKind.Chain ? stages[s].Ys[^1] : Aggregate(stages[s], stages[s].Nodes.Length);
        }
        Adjacencies = stages.Select(s => s.Adjacency).ToArray();
        RouterStates = stages.Select(s => s.Routers).ToArray();
        var head = SequenceForward(_spec.Head, "head", ref x);
        Logits = x.Data;
        return new NetState(stem, stages, head, x.Data, LossReference.CrossEntropy<double>(x.Data, labels, 0.0));
    }

    private double[] Param(string name)
    {
        if (!_parameters.TryGetValue(name, out var p))
            throw new KeyNotFoundException($"The reference needs parameter '{name}', which the net does not have.");
        _used.Add(name);
        return p;
    }

    private double[] Grad(string name) => _gradients[name];

    private LayerState[] SequenceForward(IReadOnlyList<LayerSpec> specs, string prefix, ref Act x)
    {
        var states = new LayerState[specs.Count];
        for (int k = 0; k < specs.Count; k++)
        {
            states[k] = LayerForward(specs[k], $"{prefix}.{k}", x);
            x = states[k].Output;
        }
        return states;
    }

    private LayerState LayerForward(LayerSpec spec, string name, Act x)
    {
        int b = _batch;
        switch (spec)
        {
            case ConvSpec c:
            {
                var g = ConvGeometry(c, x);
                var y = new double[b * c.OutChannels * g.OutHeight * g.OutWidth];
                Conv2dReference.Forward<double>(g, x.Data, Param(name + ".weight"), c.Bias ? Param(name + ".bias") : [], y);
                return new LayerState(spec, name, x, new Act(y, c.OutChannels, g.OutHeight));
            }
            case BatchNormSpec n:
            {
                int ch = n.Channels;
                var y = new double[x.Data.Length];
                double[] mean = new double[ch], invstd = new double[ch], runningMean = new double[ch], runningVar = new double[ch];
                BatchNormReference.Forward<double>(x.Data, b, ch, x.Spatial, Param(name + ".weight"), Param(name + ".bias"),
                    runningMean, runningVar, training: true, n.Momentum, n.Eps, y, mean, invstd);
                return new LayerState(spec, name, x, x with { Data = y }, mean, invstd);
            }
            case ActivationSpec a:
                return new LayerState(spec, name, x, x with { Data = ActivationForward(a.Kind, x.Data) });
            case MaxPoolSpec m:
            {
                var g = new Pool2dGeometry(b * x.Channels, x.Side, x.Side, m.Kernel, m.Stride, m.Padding);
                var y = new double[g.OutputLength];
                var argmax = new int[g.OutputLength];
                PoolingReference.MaxPoolForward<double>(x.Data, g, y, argmax);
                return new LayerState(spec, name, x, new Act(y, x.Channels, g.OutHeight), Argmax: argmax);
            }
            case GlobalAvgPoolSpec:
            {
                var y = new double[b * x.Channels];
                PoolingReference.GlobalAvgPoolForward<double>(x.Data, x.Spatial, y);
                return new LayerState(spec, name, x, new Act(y, x.Channels, 1));
            }
            case LinearSpec l:
            {
                var y = new double[b * l.OutFeatures];
                LinearReference.Forward<double>(x.Data, Param(name + ".weight"), l.Bias ? Param(name + ".bias") : [], b,
                    l.InFeatures, l.OutFeatures, LinearActivation.None, y);
                return new LayerState(spec, name, x, new Act(y, l.OutFeatures, 1));
            }
            default:
                throw new NotSupportedException($"The reference has no layer {spec}.");
        }
    }

    private Conv2dGeometry ConvGeometry(ConvSpec c, Act x) =>
        new(_batch, c.InChannels, x.Side, x.Side, c.OutChannels, c.Kernel, c.Stride, c.Padding, c.Groups);

    private double[] ActivationForward(ActivationKind kind, double[] x)
    {
        var y = new double[x.Length];
        if (kind == ActivationKind.None)
        {
            x.CopyTo(y, 0);
            return y;
        }
        NoteKinks(x, kind == ActivationKind.Relu6);
        if (kind == ActivationKind.Relu) ActivationReference.ReluForward<double>(x, y);
        else ActivationReference.Relu6Forward<double>(x, y);
        return y;
    }

    private void NoteKinks(ReadOnlySpan<double> x, bool relu6)
    {
        foreach (double v in x)
            KinkDistance = Math.Min(KinkDistance, relu6 ? Math.Min(Math.Abs(v), Math.Abs(v - 6)) : Math.Abs(v));
    }

    private BlockState BlockForward(BlockSpec spec, string name, Act x)
    {
        var main = x;
        var mainStates = SequenceForward(spec.Layers, name + ".main", ref main);
        LayerState[]? shortcutStates = null;
        var sum = new double[main.Data.Length];
        switch (spec.Shortcut)
        {
            case ShortcutKind.Identity:
                ElementwiseReference.AddForward<double>(main.Data, x.Data, sum);
                break;
            case ShortcutKind.Projection:
                var proj = x;
                shortcutStates = SequenceForward(spec.ShortcutLayers, name + ".shortcut", ref proj);
                ElementwiseReference.AddForward<double>(main.Data, proj.Data, sum);
                break;
            default:
                main.Data.CopyTo(sum, 0);
                break;
        }
        var sumAct = main with { Data = sum };
        return new BlockState(spec, mainStates, shortcutStates, sumAct, main with { Data = ActivationForward(spec.OutputActivation, sum) });
    }

    private StageState StageForward(int s, Act input)
    {
        var spec = _spec.Stages[s];
        string name = $"stages.{s}";
        int n = spec.Nodes.Count;
        var kind = n >= 2 ? _wiring.Kind : WiringKind.Chain;
        var nodes = new BlockState[n];
        var ys = new Act[n];
        double[]? adjacency = kind == WiringKind.Chain ? null : new double[_batch * (n + 1) * (n + 1)];
        var routers = kind == WiringKind.Dynamic ? new RouterActivations<double>[n] : null;
        var state = new StageState(name, kind, nodes, ys, adjacency, routers);
        if (kind == WiringKind.Dense)
            GateReference.DenseForward<double>(Param(name + ".wiring.edge_logits"), _batch, n, adjacency);
        for (int j = 0; j < n; j++)
        {
            // Node 0 reads the stage input; a chain node its predecessor; a wired node the aggregate of A's column j.
            var x = j == 0 ? input : kind == WiringKind.Chain ? ys[j - 1] : Aggregate(state, j);
            nodes[j] = BlockForward(spec.Nodes[j], $"{name}.nodes.{j}", x);
            ys[j] = nodes[j].Output;
            if (routers is not null)
            {
                var p = RouterWeightsOf(name, j);
                routers[j] = RouterReference.Forward(ys[j].Data, _batch, p, ys[j].Spatial);
                NoteKinks(HiddenPreActivation(routers[j], p), relu6: false);
                GateReference.Forward<double>(routers[j].Output, _batch, n, j, _wiring.Tau, adjacency);
            }
        }
        return state;
    }

    /// <summary>Per stage and target node, the in-edge normalisation's scales s [B] (when the wiring normalises).</summary>
    private readonly Dictionary<(string Stage, int Target), double[]> _inEdgeScales = new();
    private readonly Dictionary<(string Stage, int Target), double[]> _inEdgeSums = new();

    /// <summary>The in-edge sums <c>Σ_i A[b, i, target]</c> before normalisation of the last forward pass (every stage, target and sample; empty without normalisation).</summary>
    public IEnumerable<double> InEdgeSums => _inEdgeSums.Values.SelectMany(v => v);

    /// <summary>
    /// <c>x_target[b] = Σ_{i &lt; target} A[b, i, target] · y_i[b]</c>, after the in-edge normalisation of column
    /// <paramref name="target"/> when the wiring normalises (the adjacency then holds the normalised column).
    /// </summary>
    private Act Aggregate(StageState stage, int target)
    {
        if (_wiring.NormalizeInEdges && stage.Kind != WiringKind.Chain)
        {
            int n = stage.Nodes.Length;
            _inEdgeSums[(stage.Name, target)] = Enumerable.Range(0, _batch)
                .Select(b => Enumerable.Range(0, target).Sum(i => stage.Adjacency![GateReference.Index(n, b, i, target)])).ToArray();
            _inEdgeScales[(stage.Name, target)] = GateReference.InEdgeNormForward<double>(_batch, n, target, stage.Adjacency);
        }
        var y0 = stage.Ys[0];
        var x = new double[y0.Data.Length];
        AggregationReference.Forward<double>(stage.Adjacency, stage.Ys.Take(target).Select(y => y.Data).ToArray(), _batch, stage.Nodes.Length, target, x);
        return y0 with { Data = x };
    }

    private RouterWeights<double> RouterWeightsOf(string stage, int node, bool gradients = false)
    {
        string r = $"{stage}.wiring.routers.{node}.";
        Func<string, double[]> get = gradients ? Grad : Param;
        var (w1, b1, w2, b2) = (get(r + "fc1.weight"), get(r + "fc1.bias"), get(r + "fc2.weight"), get(r + "fc2.bias"));
        return new RouterWeights<double>(w1.Length / b1.Length, b1.Length, b2.Length, w1, b1, w2, b2);
    }

    /// <summary>The router's first layer before its ReLU, <c>W1 · pooled + b1</c> (only to measure kink distances).</summary>
    private double[] HiddenPreActivation(RouterActivations<double> r, RouterWeights<double> p)
    {
        var z = new double[_batch * p.Hidden];
        LinearReference.Forward<double>(r.Pooled, p.W1, p.B1, _batch, p.Channels, p.Hidden, LinearActivation.None, z);
        return z;
    }

    // ---- backward ------------------------------------------------------------------------------------------

    private double[] SequenceBackward(LayerState[] states, double[] dOutput)
    {
        for (int k = states.Length - 1; k >= 0; k--) dOutput = LayerBackward(states[k], dOutput);
        return dOutput;
    }

    private double[] LayerBackward(LayerState s, double[] dy)
    {
        int b = _batch;
        var x = s.Input;
        var dx = new double[x.Data.Length];
        switch (s.Spec)
        {
            case ConvSpec c:
            {
                var g = ConvGeometry(c, x);
                Conv2dReference.BackwardInput<double>(g, dy, Param(s.Name + ".weight"), dx);
                Conv2dReference.BackwardWeight<double>(g, dy, x.Data, Grad(s.Name + ".weight"));
                if (c.Bias) Conv2dReference.BackwardBias<double>(g, dy, Grad(s.Name + ".bias"));
                break;
            }
            case BatchNormSpec n:
                BatchNormReference.Backward<double>(x.Data, dy, b, n.Channels, x.Spatial, s.Mean, s.Invstd, Param(s.Name + ".weight"),
                    training: true, dx, Grad(s.Name + ".weight"), Grad(s.Name + ".bias"));
                break;
            case ActivationSpec a:
                ActivationBackward(a.Kind, x.Data, dy, dx);
                break;
            case MaxPoolSpec m:
                PoolingReference.MaxPoolBackward<double>(s.Argmax, dy, new Pool2dGeometry(b * x.Channels, x.Side, x.Side, m.Kernel, m.Stride, m.Padding), dx);
                break;
            case GlobalAvgPoolSpec:
                PoolingReference.GlobalAvgPoolBackward<double>(dy, x.Spatial, dx);
                break;
            case LinearSpec l:
                LinearReference.BackwardInput<double>(dy, [], Param(s.Name + ".weight"), b, l.InFeatures, l.OutFeatures, LinearActivation.None, dx);
                LinearReference.BackwardWeight<double>(dy, [], x.Data, b, l.InFeatures, l.OutFeatures, LinearActivation.None, Grad(s.Name + ".weight"));
                if (l.Bias) LinearReference.BackwardBias<double>(dy, [], b, l.OutFeatures, LinearActivation.None, Grad(s.Name + ".bias"));
                break;
            default:
                throw new NotSupportedException($"The reference has no layer {s.Spec}.");
        }
        return dx;
    }

    private static void ActivationBackward(ActivationKind kind, double[] x, double[] dy, double[] dx)
    {
        switch (kind)
        {
            case ActivationKind.Relu: ActivationReference.ReluBackward<double>(x, dy, dx); break;
            case ActivationKind.Relu6: ActivationReference.Relu6Backward<double>(x, dy, dx); break;
            default: AddInto(dx, dy); break;
        }
    }

    private static void AddInto(double[] target, double[] source)
    {
        for (int i = 0; i < target.Length; i++) target[i] += source[i];
    }

    private double[] BlockBackward(BlockState s, double[] dy)
    {
        var dSum = new double[dy.Length];
        ActivationBackward(s.Spec.OutputActivation, s.Sum.Data, dy, dSum);
        var dx = SequenceBackward(s.Main, dSum);
        switch (s.Spec.Shortcut)
        {
            case ShortcutKind.Identity:
                AddInto(dx, dSum); // y = main(x) + x: x also receives dSum directly
                break;
            case ShortcutKind.Projection:
                AddInto(dx, SequenceBackward(s.Shortcut!, dSum));
                break;
        }
        return dx;
    }

    /// <summary>
    /// The stage's backward from the gradient of its output: the aggregation into the output node first, then
    /// for j = n−1 .. 0 (when d y_j is complete: every reader of y_j is a later aggregate or node j's router)
    /// node j's router and gate, node j's block, and the aggregation that built x_j; dense edge logits last.
    /// </summary>
    private double[] StageBackward(StageState s, double[] dOutput)
    {
        int n = s.Nodes.Length;
        if (s.Kind == WiringKind.Chain)
        {
            for (int j = n - 1; j >= 0; j--) dOutput = BlockBackward(s.Nodes[j], dOutput);
            return dOutput;
        }
        var ys = s.Ys.Select(y => y.Data).ToArray();
        var dYs = ys.Select(y => new double[y.Length]).ToArray();
        var dAdjacency = new double[s.Adjacency!.Length];
        bool straight = _wiring.Gradient == GateGradient.StraightThrough;
        var cutRows = Enumerable.Repeat(s.Kind == WiringKind.Dense || straight, n).ToArray();
        void AggregateBackward(int target, double[] dX)
        {
            AggregationReference.BackwardSources<double>(s.Adjacency, dX, _batch, n, target, dYs);
            AggregationReference.BackwardAdjacency<double>(s.Adjacency, ys, dX, _batch, n, target, cutRows, dAdjacency);
            if (_inEdgeScales.TryGetValue((s.Name, target), out var scale))
                GateReference.InEdgeNormBackward<double>(s.Adjacency, scale, _batch, n, target, dAdjacency);
        }

        AggregateBackward(n, dOutput);
        double[] dInput = [];
        for (int j = n - 1; j >= 0; j--)
        {
            if (s.Routers is not null)
            {
                var p = RouterWeightsOf(s.Name, j);
                var dA = new double[_batch * p.OutDegree];
                GateReference.Backward<double>(s.Routers[j].Output, dAdjacency, _batch, n, j, _wiring.Tau, straight, dA);
                RouterReference.Backward<double>(s.Routers[j], dA, _batch, p, s.Ys[j].Spatial, dYs[j], RouterWeightsOf(s.Name, j, gradients: true));
            }
            var dX = BlockBackward(s.Nodes[j], dYs[j]);
            if (j > 0) AggregateBackward(j, dX);
            else dInput = dX;
        }
        if (s.Kind == WiringKind.Dense)
            GateReference.DenseBackward<double>(Param(s.Name + ".wiring.edge_logits"), dAdjacency, _batch, n, Grad(s.Name + ".wiring.edge_logits"));
        return dInput;
    }
}
