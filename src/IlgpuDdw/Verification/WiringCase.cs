using IlgpuDdw.Kernels.Reference;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Verification;

/// <summary>
/// One seeded wiring check: a stage of <see cref="Nodes"/> nodes whose node outputs are given tensors (the node
/// blocks left out), its wiring parameters, and upstream gradients <c>g_j</c> of every aggregate, so that
/// <c>L = Σ_j &lt;g_j, x_j&gt;</c>. The same values run through the ops on a device
/// (<see cref="RunOnDevice"/>) and through <see cref="StageReference{T}"/>. Dynamic cases draw router weights
/// (b2 in ±2) so that some edges are cut and every router output is at least <see cref="GateMargin"/> from τ,
/// every hidden pre-activation at least <see cref="ReluMargin"/> from 0 (away from the gate and ReLU kinks).
/// <see cref="Plan"/> fixes the aggregation kernels and launch geometry instead of the device's default (null: the
/// default); a grouped plan's group size is the device's (<see cref="PlanOn"/>).
/// </summary>
internal sealed record WiringCase(WiringKind Kind, int Nodes, int Batch, int Channels, int Height, int Width, float Tau,
    GateGradient Gradient, int Reduction, AggregationPlan? Plan)
{
    /// <summary>Least |a − τ| of a drawn dynamic case.</summary>
    public const double GateMargin = 0.02;

    /// <summary>Least |pre-activation| of the routers' hidden layer in a drawn dynamic case.</summary>
    public const double ReluMargin = 1e-3;

    public int Sample => Channels * Height * Width;
    public int[] NodeShape => [Batch, Channels, Height, Width];

    /// <summary>Node outputs y_0..y_{n−1}.</summary>
    public float[][] Ys { get; private set; } = [];
    /// <summary>Upstream gradients g_1..g_n (index j − 1).</summary>
    public float[][] Gs { get; private set; } = [];
    /// <summary>Router parameters (dynamic).</summary>
    public RouterWeights<float>[]? Routers { get; private set; }
    /// <summary>Edge logits (dense).</summary>
    public float[]? Logits { get; private set; }

    public override string ToString() =>
        $"{Kind} n={Nodes} B={Batch} C={Channels} {Height}x{Width}" + (Kind == WiringKind.Dynamic ? $" tau={Tau} {Gradient}" : "") +
        (Plan is { } p ? " " + Describe(p) : "");

    /// <summary>A plan in a case's name: its kernels and the geometry they use.</summary>
    public static string Describe(AggregationPlan p) =>
        $"{p.Forward}/{p.Backward} chunk={p.Chunk}" + p.Backward switch
        {
            AggregationBackward.Separate => $" parts={p.Parts}",
            AggregationBackward.FusedGroups => $" groups/sample={p.GroupsPerSample}",
            _ => "",
        };

    /// <summary>
    /// <see cref="Plan"/> as it runs on <paramref name="device"/>: a grouped backward takes the largest group of at most
    /// four warps the device allows (one warp of 2 threads on the default CPU accelerator, 128 threads on a GPU).
    /// </summary>
    public AggregationPlan? PlanOn(Device device)
    {
        if (Plan is not { Backward: AggregationBackward.FusedGroups } p) return Plan;
        int warp = device.WarpSize;
        return p with { GroupSize = Math.Max(warp, Math.Min(4 * warp, device.MaxThreadsPerGroup) / warp * warp) };
    }

    /// <summary>Draws a case from <paramref name="seed"/> (dynamic: retries seeds until the margins hold).</summary>
    public static WiringCase Create(WiringKind kind, int nodes, int batch, int channels, int height, int width,
        GateGradient gradient = GateGradient.KeptOnly, float tau = 0.5f, int reduction = 4, int seed = 1, AggregationPlan? plan = null)
    {
        var c = new WiringCase(kind, nodes, batch, channels, height, width, tau, gradient, reduction, plan);
        for (int attempt = 0; ; attempt++)
        {
            var rng = new Random(seed + 7919 * attempt);
            float[] U(int n, double lo, double hi) => Enumerable.Range(0, n).Select(_ => (float)(lo + (hi - lo) * rng.NextDouble())).ToArray();
            c.Ys = Enumerable.Range(0, nodes).Select(_ => U(batch * c.Sample, -1, 1)).ToArray();
            c.Gs = Enumerable.Range(0, nodes).Select(_ => U(batch * c.Sample, -1, 1)).ToArray();
            if (kind == WiringKind.Dense) c.Logits = U(Adjacency.EdgeCountOf(nodes), -2, 2);
            if (kind != WiringKind.Dynamic) return c;
            int hidden = Router.HiddenSize(channels, reduction);
            c.Routers = Enumerable.Range(0, nodes).Select(i => new RouterWeights<float>(channels, hidden, nodes - i,
                U(hidden * channels, -1, 1), U(hidden, -0.5, 0.5), U((nodes - i) * hidden, -1, 1), U(nodes - i, -2, 2))).ToArray();
            if (c.MarginsHold()) return c;
        }
    }

    private bool MarginsHold()
    {
        var r = Reference<double>();
        r.Forward(Ys.Select(Widen).ToArray());
        for (int i = 0; i < Nodes; i++)
        {
            var p = Routers![i];
            var state = r.RouterStates[i];
            foreach (var a in state.Output)
                if (Math.Abs(a - Tau) < GateMargin) return false;
            for (int b = 0; b < Batch; b++)
                for (int h = 0; h < p.Hidden; h++)
                {
                    double z = p.B1[h];
                    for (int k = 0; k < Channels; k++) z += p.W1[h * Channels + k] * state.Pooled[b * Channels + k];
                    if (Math.Abs(z) < ReluMargin) return false;
                }
        }
        return true;
    }

    private static double[] Widen(float[] a) => Array.ConvertAll(a, v => (double)v);

    private static T[] Convert<T>(float[] a) where T : System.Numerics.IFloatingPointIeee754<T> => Array.ConvertAll(a, T.CreateChecked);

    /// <summary>The case's reference stage in T (float for kernel checks, double for finite differences).</summary>
    public StageReference<T> Reference<T>() where T : System.Numerics.IFloatingPointIeee754<T> => new(Nodes, Batch, Channels, Height * Width)
    {
        Routers = Routers?.Select(p => new RouterWeights<T>(p.Channels, p.Hidden, p.OutDegree, Convert<T>(p.W1), Convert<T>(p.B1), Convert<T>(p.W2), Convert<T>(p.B2))).ToArray(),
        DenseLogits = Logits is null ? null : Convert<T>(Logits),
        Tau = T.CreateChecked(Tau),
        StraightThrough = Gradient == GateGradient.StraightThrough,
    };

    /// <summary>Node outputs in T.</summary>
    public T[][] YsAs<T>() where T : System.Numerics.IFloatingPointIeee754<T> => Ys.Select(Convert<T>).ToArray();

    /// <summary>Upstream gradients in T.</summary>
    public T[][] GsAs<T>() where T : System.Numerics.IFloatingPointIeee754<T> => Gs.Select(Convert<T>).ToArray();

    /// <summary>
    /// Runs the stage through <see cref="StageWiring"/> and the ops on <paramref name="device"/> (parameters
    /// copied from the case, the aggregation launched as <see cref="PlanOn"/> says), then backward from L; returns every
    /// forward value and gradient on the host.
    /// </summary>
    public WiringDeviceResult RunOnDevice(Device device) => AggregationLaunch.WithPlan(PlanOn(device), () => Run(device));

    private WiringDeviceResult Run(Device device)
    {
        var config = new WiringConfig { Kind = Kind, Tau = Tau, Gradient = Gradient, Reduction = Reduction };
        using var wiring = new StageWiring(device, config, Nodes, Channels);
        for (int i = 0; i < wiring.Routers.Count; i++)
        {
            var (p, q) = (wiring.Routers[i], Routers![i]);
            p.Fc1.Weight.CopyFrom(q.W1); p.Fc1.Bias!.CopyFrom(q.B1); p.Fc2.Weight.CopyFrom(q.W2); p.Fc2.Bias!.CopyFrom(q.B2);
        }
        wiring.EdgeLogits?.CopyFrom(Logits);
        var ys = Ys.Select(y => Tensor.FromArray(device, y, NodeShape)).ToArray();
        var gs = Gs.Select(g => Tensor.FromArray(device, g, NodeShape)).ToArray();
        try
        {
            foreach (var y in ys) y.RequiresGrad = true;
            using var tape = new Tape(device);
            var adjacency = wiring.Begin(tape, Batch);
            var routerOutputs = new Tensor?[Nodes];
            var xs = new Tensor[Nodes + 1];
            routerOutputs[0] = wiring.Route(tape, adjacency, 0, ys[0]);
            for (int j = 1; j <= Nodes; j++)
            {
                xs[j] = wiring.Aggregate(tape, adjacency, j, ys);
                if (j < Nodes) routerOutputs[j] = wiring.Route(tape, adjacency, j, ys[j]);
            }
            Tensor loss = tape.Sum(tape.Multiply(xs[1], gs[0]));
            for (int j = 2; j <= Nodes; j++) loss = tape.Add(loss, tape.Sum(tape.Multiply(xs[j], gs[j - 1])));
            var adjacencyValues = adjacency.Tensor.ToArray();
            var aggregates = xs.Select(x => x?.ToArray()).ToArray();
            var outputs = routerOutputs.Select(a => a?.ToArray()).ToArray();
            Overwrite.Poisoned(() => tape.Backward(loss));
            return new WiringDeviceResult(
                adjacencyValues, aggregates, outputs,
                ys.Select(y => y.GradToArray()).ToArray(),
                Kind == WiringKind.Dynamic ? wiring.Routers.Select(p => new RouterWeights<float>(p.Channels, p.Hidden, p.OutDegree,
                    p.Fc1.Weight.GradToArray(), p.Fc1.Bias!.GradToArray(), p.Fc2.Weight.GradToArray(), p.Fc2.Bias!.GradToArray())).ToArray() : null,
                wiring.EdgeLogits?.GradToArray(),
                adjacency.Tensor.GradToArray());
        }
        finally
        {
            foreach (var t in ys.Concat(gs)) t.Dispose();
        }
    }

    /// <summary>Every pass <see cref="Compare"/> reports for a wiring of <paramref name="kind"/>.</summary>
    public static string[] Passes(WiringKind kind) => kind switch
    {
        WiringKind.Dynamic => ["Router+Gate.Forward", "Aggregate.Forward", "Router.Forward", "Aggregate.BackwardAdjacency", "Aggregate+Router.Backward", "Gate+Router.Backward"],
        WiringKind.Dense => ["DenseEdges.Forward", "Aggregate.Forward", "Aggregate.BackwardAdjacency", "Aggregate.BackwardSources", "DenseEdges.Backward"],
        _ => ["ChainFill.Forward", "Aggregate.Forward", "Aggregate.BackwardAdjacency", "Aggregate.BackwardSources"],
    };

    /// <summary>
    /// Compares a device run with the float reference pass by pass (<see cref="Tolerance.Forward"/> and
    /// <see cref="Tolerance.Backward"/>; sums over up to C·H·W terms stay well inside these at the verified sizes).
    /// </summary>
    public IEnumerable<VerifyResult> Compare(WiringDeviceResult d)
    {
        string shape = ToString();
        var r = Reference<float>();
        var ys = YsAs<float>();
        r.Forward(ys);
        var g = r.Backward(ys, GsAs<float>());
        var (fw, bw) = (Tolerance.Forward, Tolerance.Backward);
        string writer = Kind switch { WiringKind.Dynamic => "Router+Gate", WiringKind.Dense => "DenseEdges", _ => "ChainFill" };
        yield return VerifyResult.Compare($"{writer}.Forward A", shape, r.Adjacency, d.Adjacency, fw);
        for (int j = 1; j <= Nodes; j++)
            yield return VerifyResult.Compare($"Aggregate.Forward x{j}", shape, r.Aggregates[j], d.Aggregates[j], fw);
        if (Kind == WiringKind.Dynamic)
            for (int i = 0; i < Nodes; i++)
                yield return VerifyResult.Compare($"Router.Forward a{i}", shape, r.RouterStates[i].Output, d.RouterOutputs[i], fw);
        yield return VerifyResult.Compare("Aggregate.BackwardAdjacency dA", shape, g.Adjacency, d.DAdjacency, bw);
        for (int i = 0; i < Nodes; i++)
            yield return VerifyResult.Compare(Kind == WiringKind.Dynamic ? $"Aggregate+Router.Backward dY{i}" : $"Aggregate.BackwardSources dY{i}", shape, g.NodeOutputs[i], d.NodeOutputGrads[i], bw);
        if (g.Routers is not null)
            for (int i = 0; i < Nodes; i++)
            {
                var (e, a) = (g.Routers[i], d.RouterGrads![i]);
                yield return VerifyResult.Compare($"Gate+Router.Backward dW1[{i}]", shape, e.W1, a.W1, bw);
                yield return VerifyResult.Compare($"Gate+Router.Backward db1[{i}]", shape, e.B1, a.B1, bw);
                yield return VerifyResult.Compare($"Gate+Router.Backward dW2[{i}]", shape, e.W2, a.W2, bw);
                yield return VerifyResult.Compare($"Gate+Router.Backward db2[{i}]", shape, e.B2, a.B2, bw);
            }
        if (g.DenseLogits is not null)
            yield return VerifyResult.Compare("DenseEdges.Backward dLogits", shape, g.DenseLogits, d.DLogits, bw);
    }
}

/// <summary>What <see cref="WiringCase.RunOnDevice"/> read back.</summary>
internal sealed record WiringDeviceResult(float[] Adjacency, float[]?[] Aggregates, float[]?[] RouterOutputs, float[][] NodeOutputGrads,
    RouterWeights<float>[]? RouterGrads, float[]? DLogits, float[] DAdjacency);
