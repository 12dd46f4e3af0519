using IlgpuDdw.Distributed;
using IlgpuDdw.Models;
using IlgpuDdw.Wiring;
using ILGPU;
using ILGPU.Runtime;
using IlgpuDdw.Runtime;
using MathNet.Numerics;
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
    public static IReadOnlyList<(StageKeepState State, IReadOnlyList<Tensor> Tensors)> Read(DdwNet net, float temperature) =>
        GateStates(net).Select(g =>
        {
            var (offset, scale) = g.Wiring.SoftKeep(temperature);
            var inputs = g.Rows.Select(t => Array.ConvertAll(t.ToArray(), v => (double)v)).ToArray();
            return (new StageKeepState(g.Wiring.Nodes, g.Adjacency.Batch, g.Adjacency.Tensor.ToArray(), inputs, offset, scale), g.Rows);
        }).ToArray();

    /// <summary>
    /// The dynamic stages of <paramref name="net"/>'s last forward pass that have keep inputs, in stage order: wiring,
    /// adjacency and the keep tensors per row (router outputs, or gate logits of the stochastic gate).
    /// </summary>
    /// <exception cref="InvalidOperationException">The network has no dynamic stage with router outputs.</exception>
    internal static IReadOnlyList<(StageWiring Wiring, Adjacency Adjacency, IReadOnlyList<Tensor> Rows)> GateStates(DdwNet net)
    {
        ArgumentNullException.ThrowIfNull(net);
        var result = new List<(StageWiring, Adjacency, IReadOnlyList<Tensor>)>();
        foreach (var stage in net.Stages)
        {
            if (stage.Kind != WiringKind.Dynamic || stage.LastAdjacency is not { } adjacency) continue;
            var wiring = stage.Wiring!;
            var rows = wiring.Gate == GateKind.Stochastic ? stage.LastGateLogits : stage.LastRouterOutputs;
            if (rows.Count == wiring.Nodes) result.Add((wiring, adjacency, rows));
        }
        if (result.Count == 0)
            throw new InvalidOperationException($"The keep terms need a dynamically wired DdwNet after a forward pass; {net.Spec.Name} with {net.Wiring.Kind} wiring produced no router outputs.");
        return result;
    }
}

/// <summary>
/// A term of the gates' keep inputs computed on the device (<see cref="Kernels.KeepTermKernels"/>): per dynamic stage
/// its kernel writes value slots and, in the same pass, the local gradient; the term's value is their sum
/// (<see cref="Kernels.KeepTermKernels.TermSum"/>) and its backward <c>dx += dValue · local</c>
/// (<see cref="Kernels.GateKernels.TermBackward"/>), so the gradient flows into the routers like any op's and a step reads
/// nothing back. In data-parallel training the ranks' states are gathered on the host (<see cref="GlobalBatch"/>) and
/// the same kernels run on the global batch; each rank keeps its samples' gradient. The reference in double is
/// <see cref="StageKeepState"/>.
/// </summary>
public abstract class KeepTerm : IObjectiveTerm
{
    /// <inheritdoc/>
    public abstract string Name { get; }

    /// <summary>T of the soft keep indicator of the threshold, continuous and top-k gates.</summary>
    public abstract float Temperature { get; }

    /// <summary>Value slots the term's kernels write for these stages (edges and nodes per stage).</summary>
    private protected abstract int Slots(IReadOnlyList<int> nodes);

    /// <summary>The factor of the slots' sum that is the term's value.</summary>
    private protected abstract float ValueFactor(IReadOnlyList<int> nodes);

    /// <summary>
    /// Launches the term's kernel for stage <paramref name="stage"/> (its first slot <paramref name="slot"/>) on the
    /// packed keep inputs of <paramref name="batch"/> samples, writing its slots and local gradient (times
    /// <paramref name="gradientScale"/>).
    /// </summary>
    private protected abstract void Launch(Device d, IReadOnlyList<int> nodes, int stage, int slot, int batch, double offset, double scale,
        ObjectiveContext context, float gradientScale, ArrayView<float> inputs, ArrayView<float> adjacency, ArrayView<float> terms, ArrayView<float> local);

    /// <summary>Threads a group of the keep-term kernels on <paramref name="d"/>: whole warps, at most <see cref="Kernels.KeepTermKernels.MaxThreads"/>.</summary>
    private protected static int GroupSize(Device d) => d.WholeWarps(Kernels.KeepTermKernels.MaxThreads);

    /// <inheritdoc/>
    /// <exception cref="InvalidOperationException">The model is not a dynamically wired <see cref="DdwNet"/>.</exception>
    public Tensor Compute(Tape tape, ObjectiveContext context)
    {
        ArgumentNullException.ThrowIfNull(tape);
        ArgumentNullException.ThrowIfNull(context);
        var net = context.Model as DdwNet
            ?? throw new InvalidOperationException($"The {Name} term needs a dynamically wired DdwNet; the model is a {context.Model.GetType().Name}.");
        var stages = StageKeepState.GateStates(net);
        var d = tape.Device;
        var nodes = stages.Select(s => s.Wiring.Nodes).ToArray();
        int batch = stages[0].Adjacency.Batch, first = 0, total = batch;
        var inputs = new ArrayView<float>[stages.Count];
        var adjacencies = new ArrayView<float>[stages.Count];
        if (context.Group is { Size: > 1 } group)
        {
            // the ranks' states on the host, gathered into the global batch's, then the same kernels on that batch
            var (global, at, all) = GlobalBatch.Gather(group, StageKeepState.Read(net, Temperature).Select(r => r.State).ToArray());
            (first, total) = (at, all);
            for (int s = 0; s < stages.Count; s++)
            {
                var packed = global[s].Inputs.SelectMany(x => x).Select(v => (float)v).ToArray();
                inputs[s] = tape.Own(Tensor.FromArray(d, packed, packed.Length)).View;
                adjacencies[s] = tape.Own(Tensor.FromArray(d, global[s].Adjacency, global[s].Adjacency.Length)).View;
            }
        }
        else
            for (int s = 0; s < stages.Count; s++)
            {
                var (wiring, adjacency, rows) = stages[s];
                var packed = tape.NewTensor(batch * Adjacency.EdgeCountOf(wiring.Nodes));
                for (int i = 0; i < rows.Count; i++)
                {
                    int n = rows[i].Length, ext = d.Extent(n);
                    d.Kernels.Copy(d.Stream, ext, n, ext, rows[i].View, packed.View.SubView(Kernels.KeepTermKernels.RowOffset(batch, wiring.Nodes, i), n));
                }
                inputs[s] = packed.View;
                adjacencies[s] = adjacency.Tensor.View;
            }
        var terms = tape.NewTensor(Slots(nodes));
        var locals = new Tensor[stages.Count];
        float gradientScale = (float)((double)total / batch);
        for (int s = 0, slot = 0; s < stages.Count; s++)
        {
            var (offset, scale) = stages[s].Wiring.SoftKeep(Temperature);
            locals[s] = tape.NewTensor(total * Adjacency.EdgeCountOf(nodes[s]));
            Launch(d, nodes, s, slot, total, offset, scale, context, gradientScale, inputs[s], adjacencies[s], terms.View, locals[s].View);
            slot += Slots([nodes[s]]);
        }
        var y = tape.NewTensor(1);
        d.Kernels.TermSum(d.Stream, 1, 1, 1, terms.Length, ValueFactor(nodes), terms.View, y.View);
        var keepInputs = stages.SelectMany(s => s.Rows).ToArray();
        if (!tape.NeedsGrad(keepInputs)) return y;
        tape.Record(Name, y, () =>
        {
            for (int s = 0; s < stages.Count; s++)
                for (int i = 0; i < nodes[s]; i++)
                {
                    var row = stages[s].Rows[i];
                    if (!row.RequiresGrad) continue;
                    int n = row.Length, ext = d.Extent(n), degree = nodes[s] - i;
                    var local = locals[s].View.SubView(Kernels.KeepTermKernels.RowOffset(total, nodes[s], i) + first * degree, n);
                    var dInput = row.GradForWrite(out int accumulate);
                    d.Kernels.TermBackward(d.Stream, ext, n, ext, accumulate, y.Grad.View, local, dInput);
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
public sealed class KeepRateTerm(float target, float weight = 1f, float warmupFraction = 0f, float temperature = 0.1f) : KeepTerm
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

    private protected override int Slots(IReadOnlyList<int> nodes) => nodes.Count;

    private protected override float ValueFactor(IReadOnlyList<int> nodes) => 1f;

    private protected override void Launch(Device d, IReadOnlyList<int> nodes, int stage, int slot, int batch, double offset, double scale,
        ObjectiveContext context, float gradientScale, ArrayView<float> inputs, ArrayView<float> adjacency, ArrayView<float> terms, ArrayView<float> local) =>
        d.Kernels.KeepRate(d.Stream, new KernelConfig(1, GroupSize(d)), nodes[stage], batch, (float)offset, (float)scale,
            (float)TargetAt(context.Step, context.TotalSteps), Weight, gradientScale, slot, inputs, adjacency, terms, local);
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
public sealed class BatchShapingTerm(float weight, float alpha = 0.6f, float beta = 0.4f, float temperature = 0.1f) : KeepTerm
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

    private protected override int Slots(IReadOnlyList<int> nodes) => nodes.Sum(Adjacency.EdgeCountOf);

    private protected override float ValueFactor(IReadOnlyList<int> nodes) => Weight / Slots(nodes);

    private protected override void Launch(Device d, IReadOnlyList<int> nodes, int stage, int slot, int batch, double offset, double scale,
        ObjectiveContext context, float gradientScale, ArrayView<float> inputs, ArrayView<float> adjacency, ArrayView<float> terms, ArrayView<float> local) =>
        d.Kernels.BatchShaping(d.Stream, new KernelConfig(Adjacency.EdgeCountOf(nodes[stage]), GroupSize(d)), nodes[stage], batch, (float)offset, (float)scale,
            Alpha, Beta, LogBeta, gradientScale * ValueFactor(nodes), slot, inputs, terms, local);

    /// <summary>ln B(α, β), the Beta density's normaliser.</summary>
    private float LogBeta => (float)SpecialFunctions.BetaLn(Alpha, Beta);
}
