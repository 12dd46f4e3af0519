using IlgpuDdw.Distributed;
using IlgpuDdw.Models;
using IlgpuDdw.Wiring;
using Beta = MathNet.Numerics.Distributions.Beta;

namespace IlgpuDdw.Training;

/// <summary>
/// One dynamic stage's gate state after a forward pass, on the host: its adjacency <c>[Batch, N, N]</c> (N = n + 1)
/// and, per row i, the gate's keep inputs <c>x_i [Batch, n − i]</c> (router outputs a, or gate logits z for the
/// stochastic gate) with the soft keep indicator <c>p = sigmoid((x − Offset) · Scale)</c>
/// (<see cref="StageWiring.SoftKeep"/>).
/// </summary>
/// <param name="Nodes">Nodes n.</param>
/// <param name="Batch">Samples B.</param>
/// <param name="Adjacency">The final adjacency, B·N² values.</param>
/// <param name="Inputs">Keep inputs per row.</param>
/// <param name="Offset">Offset of the soft keep indicator.</param>
/// <param name="Scale">Scale of the soft keep indicator.</param>
public sealed record StageKeepState(int Nodes, int Batch, float[] Adjacency, double[][] Inputs, double Offset, double Scale)
{
    /// <summary>Edges per sample, E = n(n+1)/2.</summary>
    public int EdgeCount => Wiring.Adjacency.EdgeCountOf(Nodes);

    /// <summary>
    /// Whether node i is live for sample b, <c>[b · n + i]</c>: node 0 always, node i ≥ 1 when one of its in-edges is
    /// non-zero (the rule dead-node skipping uses).
    /// </summary>
    public bool[] Live()
    {
        int size = Nodes + 1;
        var live = new bool[Batch * Nodes];
        for (int b = 0; b < Batch; b++)
            for (int i = 0; i < Nodes; i++)
            {
                bool on = i == 0;
                for (int j = 0; j < i && !on; j++) on = Adjacency[(b * size + j) * size + i] != 0f;
                live[b * Nodes + i] = on;
            }
        return live;
    }

    /// <summary>The soft keep indicator of one keep input.</summary>
    public double SoftKeep(double x) => 1 / (1 + Math.Exp(-(x - Offset) * Scale));

    /// <summary>
    /// The soft keep rate <c>k̂ = Σ_{b, i live, o} p[b, i, o] / (B · E)</c>: edges out of an off node count as cut.
    /// When <paramref name="gradient"/> is given (shaped like <see cref="Inputs"/>), adds <c>dk̂/dx</c> into it
    /// (exact; the liveness mask is piecewise constant and held fixed).
    /// </summary>
    public double KeepRate(double[][]? gradient = null)
    {
        var live = Live();
        double total = Batch * (double)EdgeCount, sum = 0;
        for (int i = 0; i < Nodes; i++)
        {
            int degree = Nodes - i;
            for (int b = 0; b < Batch; b++)
            {
                if (!live[b * Nodes + i]) continue;
                for (int o = 0; o < degree; o++)
                {
                    int k = b * degree + o;
                    double p = SoftKeep(Inputs[i][k]);
                    sum += p;
                    if (gradient is not null) gradient[i][k] += p * (1 - p) * Scale / total;
                }
            }
        }
        return sum / total;
    }

    /// <summary>
    /// The batch-shaping loss of this stage, summed over its E edges (Bejnordi et al. 2020): for each edge, the soft
    /// keep values of the B samples sorted, <c>p_(1) ≤ … ≤ p_(B)</c> (ties to the lower sample), and
    /// <c>L_e = (1/B) Σ_k (k/(B + 1) − F(p_(k)))²</c>, F the CDF of Beta(α, β). When <paramref name="gradient"/> is
    /// given, adds <c>dL/dx = (2/B)(F(p) − k/(B + 1)) · f(p) · p(1 − p) · Scale</c> into it, f the Beta density
    /// (set to 0 where it is infinite): exact wherever the samples' order does not change (no ties).
    /// </summary>
    public double BatchShaping(double alpha, double beta, double[][]? gradient = null)
    {
        double loss = 0;
        var p = new double[Batch];
        var order = new int[Batch];
        for (int i = 0; i < Nodes; i++)
        {
            int degree = Nodes - i;
            for (int o = 0; o < degree; o++)
            {
                for (int b = 0; b < Batch; b++)
                {
                    p[b] = SoftKeep(Inputs[i][b * degree + o]);
                    order[b] = b;
                }
                Array.Sort(order, (u, v) => p[u] != p[v] ? p[u].CompareTo(p[v]) : u.CompareTo(v));
                for (int r = 0; r < Batch; r++)
                {
                    int b = order[r];
                    double q = (r + 1.0) / (Batch + 1.0);
                    double f = Beta.CDF(alpha, beta, p[b]);
                    loss += (q - f) * (q - f) / Batch;
                    if (gradient is null) continue;
                    double density = Beta.PDF(alpha, beta, p[b]);
                    if (!double.IsFinite(density)) density = 0;
                    gradient[i][b * degree + o] += 2.0 / Batch * (f - q) * density * p[b] * (1 - p[b]) * Scale;
                }
            }
        }
        return loss;
    }

    /// <summary>
    /// Reads the gate state of every dynamic stage of <paramref name="net"/>'s last forward pass (synchronises; B·N²
    /// adjacency values and B·E keep inputs per stage), with the keep tensors themselves (per stage, per row).
    /// </summary>
    /// <param name="net">A dynamically wired network after its forward pass.</param>
    /// <param name="temperature">T of the soft keep indicator of the threshold, continuous and top-k gates.</param>
    /// <exception cref="InvalidOperationException">The network has no dynamic stage with router outputs.</exception>
    public static IReadOnlyList<(StageKeepState State, IReadOnlyList<Tensor> Tensors)> Read(DdwNet net, float temperature)
    {
        ArgumentNullException.ThrowIfNull(net);
        var result = new List<(StageKeepState, IReadOnlyList<Tensor>)>();
        foreach (var stage in net.Stages)
        {
            if (stage.Kind != WiringKind.Dynamic || stage.LastAdjacency is not { } adjacency) continue;
            var wiring = stage.Wiring!;
            var tensors = wiring.Gate == GateKind.Stochastic ? stage.LastGateLogits : stage.LastRouterOutputs;
            if (tensors.Count != wiring.Nodes) continue;
            var (offset, scale) = wiring.SoftKeep(temperature);
            var inputs = tensors.Select(t => Array.ConvertAll(t.ToArray(), v => (double)v)).ToArray();
            result.Add((new StageKeepState(wiring.Nodes, adjacency.Batch, adjacency.Tensor.ToArray(), inputs, offset, scale), tensors));
        }
        if (result.Count == 0)
            throw new InvalidOperationException($"The keep terms need a dynamically wired DdwNet after a forward pass; {net.Spec.Name} with {net.Wiring.Kind} wiring produced no router outputs.");
        return result;
    }
}

/// <summary>
/// A term whose value and gradient with respect to the gates' keep inputs are computed on the host in double
/// (<see cref="StageKeepState"/>); the tape gets the value and, as its backward, <c>dx += dValue · gradient</c>
/// (<see cref="Kernels.GateKernels.TermBackward"/>), so the gradient flows into the routers like any op's.
/// </summary>
public abstract class HostKeepTerm : IObjectiveTerm
{
    /// <inheritdoc/>
    public abstract string Name { get; }

    /// <summary>T of the soft keep indicator of the threshold, continuous and top-k gates.</summary>
    public abstract float Temperature { get; }

    /// <summary>The value for the stages' states, adding its gradient (same shapes as the inputs) into <paramref name="gradients"/>.</summary>
    protected abstract double Evaluate(IReadOnlyList<StageKeepState> stages, ObjectiveContext context, double[][][] gradients);

    /// <inheritdoc/>
    /// <exception cref="InvalidOperationException">The model is not a dynamically wired <see cref="DdwNet"/>.</exception>
    public Tensor Compute(Tape tape, ObjectiveContext context)
    {
        ArgumentNullException.ThrowIfNull(tape);
        ArgumentNullException.ThrowIfNull(context);
        var net = context.Model as DdwNet
            ?? throw new InvalidOperationException($"The {Name} term needs a dynamically wired DdwNet; the model is a {context.Model.GetType().Name}.");
        var read = StageKeepState.Read(net, Temperature);
        var states = read.Select(r => r.State).ToArray();
        double value;
        double[][][] gradients;
        if (context.Group is { Size: > 1 } group)
            (value, gradients) = GlobalBatch.Evaluate(group, states, (all, g) => Evaluate(all, context, g));
        else
        {
            gradients = states.Select(s => s.Inputs.Select(x => new double[x.Length]).ToArray()).ToArray();
            value = Evaluate(states, context, gradients);
        }
        var d = tape.Device;
        var y = tape.Own(Tensor.FromArray(d, [(float)value], 1));
        var inputs = read.SelectMany(r => r.Tensors).ToArray();
        if (!tape.NeedsGrad(inputs)) return y;
        var locals = gradients.SelectMany(g => g).Select(g => tape.Own(Tensor.FromArray(d, Array.ConvertAll(g, v => (float)v), g.Length))).ToArray();
        tape.Record(Name, y, () =>
        {
            for (int t = 0; t < inputs.Length; t++)
            {
                if (!inputs[t].RequiresGrad) continue;
                int n = inputs[t].Length, ext = d.Extent(n);
                var dInput = inputs[t].GradForWrite(out int accumulate);
                d.Kernels.TermBackward(d.Stream, ext, n, ext, accumulate, y.Grad.View, locals[t].View, dInput);
            }
        });
        return y;
    }
}

/// <summary>
/// Per-stage target keep rate: <c>λ · Σ_s (k̂_s − ρ_t)²</c>, k̂_s the soft keep rate of stage s over the batch
/// (<see cref="StageKeepState.KeepRate"/>: only edges out of live nodes count as kept), and ρ_t falling linearly from
/// 1 to the target ρ over the first <see cref="WarmupFraction"/> of training (<see cref="TargetAt"/>).
/// Exact gradient (the liveness mask held fixed).
/// </summary>
/// <param name="target">Target keep rate ρ in (0, 1].</param>
/// <param name="weight">λ ≥ 0.</param>
/// <param name="warmupFraction">Fraction of all steps over which ρ_t reaches ρ (0: at once).</param>
/// <param name="temperature">T &gt; 0 of the soft keep indicator (non-stochastic gates).</param>
public sealed class KeepRateTerm(float target, float weight = 1f, float warmupFraction = 0f, float temperature = 0.1f) : HostKeepTerm
{
    /// <summary>ρ.</summary>
    public float Target { get; } = target is > 0 and <= 1 ? target : throw new ArgumentException($"Keep target must be in (0, 1]; got {target}.", nameof(target));

    /// <summary>λ.</summary>
    public float Weight { get; } = weight >= 0 && float.IsFinite(weight) ? weight : throw new ArgumentException($"Keep-target weight must be ≥ 0; got {weight}.", nameof(weight));

    /// <summary>Warm-up fraction of ρ_t.</summary>
    public float WarmupFraction { get; } = warmupFraction is >= 0 and <= 1 ? warmupFraction
        : throw new ArgumentException($"Keep-target warm-up fraction must be in [0, 1]; got {warmupFraction}.", nameof(warmupFraction));

    /// <inheritdoc/>
    public override float Temperature { get; } = temperature > 0 && float.IsFinite(temperature) ? temperature
        : throw new ArgumentException($"Keep temperature must be positive; got {temperature}.", nameof(temperature));

    /// <inheritdoc/>
    public override string Name => "keep_rate";

    /// <summary>ρ_t at a 0-based step of a run of <paramref name="totalSteps"/>: <c>1 − (1 − ρ) · min(1, (step + 1) / (f · total))</c>.</summary>
    public double TargetAt(int step, int totalSteps)
    {
        double span = WarmupFraction * totalSteps;
        if (span <= 0) return Target;
        return 1 - (1 - Target) * Math.Min(1.0, (step + 1) / Math.Max(1.0, span));
    }

    /// <inheritdoc/>
    protected override double Evaluate(IReadOnlyList<StageKeepState> stages, ObjectiveContext context, double[][][] gradients)
    {
        double rho = TargetAt(context.Step, context.TotalSteps), value = 0;
        for (int s = 0; s < stages.Count; s++)
        {
            var local = stages[s].Inputs.Select(x => new double[x.Length]).ToArray();
            double k = stages[s].KeepRate(local);
            value += Weight * (k - rho) * (k - rho);
            double c = 2 * Weight * (k - rho);
            for (int i = 0; i < local.Length; i++)
                for (int e = 0; e < local[i].Length; e++) gradients[s][i][e] += c * local[i][e];
        }
        return value;
    }
}

/// <summary>
/// Batch shaping (Bejnordi et al. 2020): <c>λ · (Σ_s Σ_e L_e) / E_total</c>, L_e the squared distance between the
/// empirical CDF of edge e's soft keep values over the batch and the Beta(α, β) CDF
/// (<see cref="StageKeepState.BatchShaping"/>), so that each edge is on for some inputs and off for others. Value and
/// gradient exact wherever the batch's order of an edge's values does not change (sorting is piecewise a
/// permutation); the Beta density is set to 0 where it is infinite (p exactly 0 or 1).
/// </summary>
/// <param name="weight">λ ≥ 0.</param>
/// <param name="alpha">α &gt; 0 of the prior.</param>
/// <param name="beta">β &gt; 0 of the prior.</param>
/// <param name="temperature">T &gt; 0 of the soft keep indicator (non-stochastic gates).</param>
public sealed class BatchShapingTerm(float weight, float alpha = 0.6f, float beta = 0.4f, float temperature = 0.1f) : HostKeepTerm
{
    /// <summary>λ.</summary>
    public float Weight { get; } = weight >= 0 && float.IsFinite(weight) ? weight : throw new ArgumentException($"Batch-shaping weight must be ≥ 0; got {weight}.", nameof(weight));

    /// <summary>α of the Beta prior.</summary>
    public float Alpha { get; } = alpha > 0 && float.IsFinite(alpha) ? alpha : throw new ArgumentException($"Batch-shaping α must be positive; got {alpha}.", nameof(alpha));

    /// <summary>β of the Beta prior.</summary>
    public float Beta { get; } = beta > 0 && float.IsFinite(beta) ? beta : throw new ArgumentException($"Batch-shaping β must be positive; got {beta}.", nameof(beta));

    /// <inheritdoc/>
    public override float Temperature { get; } = temperature > 0 && float.IsFinite(temperature) ? temperature
        : throw new ArgumentException($"Keep temperature must be positive; got {temperature}.", nameof(temperature));

    /// <inheritdoc/>
    public override string Name => "batch_shaping";

    /// <inheritdoc/>
    protected override double Evaluate(IReadOnlyList<StageKeepState> stages, ObjectiveContext context, double[][][] gradients)
    {
        double edges = stages.Sum(s => (double)s.EdgeCount), value = 0;
        for (int s = 0; s < stages.Count; s++)
        {
            var local = stages[s].Inputs.Select(x => new double[x.Length]).ToArray();
            value += stages[s].BatchShaping(Alpha, Beta, local);
            for (int i = 0; i < local.Length; i++)
                for (int e = 0; e < local[i].Length; e++) gradients[s][i][e] += Weight / edges * local[i][e];
        }
        return Weight * value / edges;
    }
}
