namespace IlgpuDdw.Wiring;

/// <summary>How a stage's nodes are connected.</summary>
public enum WiringKind
{
    /// <summary>The backbone as published: node j reads node j − 1 only, the stage output reads the last node.</summary>
    Chain,
    /// <summary>Complete DAG with learned static edge weights <c>sigmoid(w_ij)</c>, the same for every sample; no router.</summary>
    Dense,
    /// <summary>Differentiable dynamic wiring: per-sample edge weights from each node's router, cut by the gate (<see cref="GateKind"/>).</summary>
    Dynamic,
}

/// <summary>The gradient the threshold gate passes back to a router output.</summary>
public enum GateGradient
{
    /// <summary>
    /// Default. A kept edge (a &gt; τ) passes its gradient (through the router's sigmoid:
    /// <c>dz = dA · a(1 − a)</c>); a cut edge passes 0, so a cut edge never learns to come back.
    /// </summary>
    KeptOnly,
    /// <summary>Every edge passes its gradient as if it were kept (cut edges still carry 0 in the forward pass).</summary>
    StraightThrough,
}

/// <summary>How a dynamic stage turns its router outputs into adjacency entries (see <see cref="WiringOps"/>).</summary>
public enum GateKind
{
    /// <summary>
    /// Default. <c>A = a &gt; τ ? a : 0</c>: kept edges carry the router output, the weight jumps from τ to 0 at the
    /// threshold; gradient per <see cref="GateGradient"/>.
    /// </summary>
    Threshold,
    /// <summary>
    /// <c>A = max(0, (a − τ)/(1 − τ))</c>: continuous at τ; exact derivative 1/(1 − τ) on kept edges, the same
    /// one-sided derivative on cut edges (so a cut edge can reopen).
    /// </summary>
    Continuous,
    /// <summary>
    /// Separate edge weight w (the router's sigmoid output) and gate logit z (a second router head, <c>gate</c>) per
    /// edge: kept when <c>z + L &gt; 0</c>, L logistic noise from a seeded stream in training (none at evaluation or
    /// when switched off), <c>A = kept ? w : 0</c>; exact gradient to w, straight-through Gumbel-sigmoid gradient
    /// <c>w · g(1 − g)/T</c>, <c>g = sigmoid((z + L)/T)</c>, to z.
    /// </summary>
    Stochastic,
    /// <summary>
    /// Per node, the <c>k = max(1, round(f · in-degree))</c> in-edges with the largest router outputs (ties to the lower
    /// source) carry a, the rest 0; straight-through gradient to every in-edge. Never cuts a node off.
    /// </summary>
    TopK,
}

/// <summary>
/// Wiring settings shared by a model's stages (override per stage with <c>with</c>, or set
/// <see cref="StageWiring.Tau"/> on one stage).
/// </summary>
public sealed record WiringConfig
{
    /// <summary>Chain, dense or dynamic (default).</summary>
    public WiringKind Kind { get; init; } = WiringKind.Dynamic;

    /// <summary>Gate threshold τ in [0, 1) (default 0.5): an edge is kept when its router output a &gt; τ.</summary>
    public float Tau { get; init; } = 0.5f;

    /// <summary>Router reduction r ≥ 1 (default 4): hidden width <c>max(C / r, 4)</c>.</summary>
    public int Reduction { get; init; } = 4;

    /// <summary>Gate gradient mode (default kept-only).</summary>
    public GateGradient Gradient { get; init; } = GateGradient.KeptOnly;

    /// <summary>
    /// Initial edge logit (default <see cref="Router.DefaultOutputBias"/> = 3): the router's last bias in
    /// dynamic wiring and every edge logit in dense wiring, so both learned wirings start from the same edge
    /// weights (≈ 0.95) and every dynamic edge starts kept at τ = 0.5.
    /// </summary>
    public float InitialEdgeLogit { get; init; } = Router.DefaultOutputBias;

    /// <summary>Gate of dynamic wiring (default <see cref="GateKind.Threshold"/>, today's gate).</summary>
    public GateKind Gate { get; init; } = GateKind.Threshold;

    /// <summary>Temperature T &gt; 0 of the stochastic gate's Gumbel-sigmoid (its backward only; default 1).</summary>
    public float GateTemperature { get; init; } = 1f;

    /// <summary>Top-k gate: the fraction f in (0, 1] of each node's in-edges it keeps (default 0.5; at least one).</summary>
    public float TopKFraction { get; init; } = 0.5f;

    /// <summary>
    /// Whether a sample whose stage output node lost every in-edge gets its strongest in-edge from a live node forced
    /// on (its router output, or weight w for the stochastic gate). Null (default): on for the continuous and
    /// stochastic gates, off for the threshold gate (today's behaviour); the top-k gate never needs it.
    /// </summary>
    public bool? ForceOutputEdge { get; init; }

    /// <summary>
    /// Whether each node's in-edge weights are scaled to sum to at most 1 per sample before it aggregates
    /// (<see cref="WiringOps.NormalizeInEdges"/>; dense and dynamic wiring, chain wiring is unchanged by it). Default off.
    /// </summary>
    public bool NormalizeInEdges { get; init; }

    /// <summary>Whether the in-edge normalisation runs (see <see cref="NormalizeInEdges"/>).</summary>
    public bool NormalizesInEdges => NormalizeInEdges && Kind != WiringKind.Chain;

    /// <summary>Whether the output-edge fix-up runs (see <see cref="ForceOutputEdge"/>).</summary>
    public bool ForcesOutputEdge => Kind == WiringKind.Dynamic && Gate != GateKind.TopK && (ForceOutputEdge ?? Gate != GateKind.Threshold);

    /// <summary>The top-k gate's k for a node with <paramref name="inDegree"/> in-edges: <c>max(1, round(f · inDegree))</c>, halves rounded up.</summary>
    public static int TopK(float fraction, int inDegree) => Math.Clamp((int)Math.Round(fraction * inDegree, MidpointRounding.AwayFromZero), 1, inDegree);

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid value.</summary>
    public void Validate()
    {
        if (!Enum.IsDefined(Kind))
            throw new ArgumentException($"Wiring kind {(int)Kind} is not one of Chain, Dense, Dynamic.", nameof(Kind));
        ValidateTau(Tau);
        ValidateReduction(Reduction);
        if (!Enum.IsDefined(Gradient))
            throw new ArgumentException($"Gate gradient {(int)Gradient} is not one of KeptOnly, StraightThrough.", nameof(Gradient));
        if (!float.IsFinite(InitialEdgeLogit))
            throw new ArgumentException($"Initial edge logit {InitialEdgeLogit} must be finite.", nameof(InitialEdgeLogit));
        if (!Enum.IsDefined(Gate))
            throw new ArgumentException($"Gate {(int)Gate} is not one of Threshold, Continuous, Stochastic, TopK.", nameof(Gate));
        ValidateGateTemperature(GateTemperature);
        ValidateTopKFraction(TopKFraction);
    }

    /// <summary>Throws <see cref="ArgumentException"/> unless T is positive and finite.</summary>
    public static void ValidateGateTemperature(float temperature)
    {
        if (!(temperature > 0f && float.IsFinite(temperature)))
            throw new ArgumentException($"Gate temperature T = {temperature} must be positive and finite.", nameof(temperature));
    }

    /// <summary>Throws <see cref="ArgumentException"/> unless 0 &lt; f ≤ 1.</summary>
    public static void ValidateTopKFraction(float fraction)
    {
        if (!(fraction > 0f && fraction <= 1f))
            throw new ArgumentException($"Top-k fraction {fraction} is outside (0, 1].", nameof(fraction));
    }

    /// <summary>Throws <see cref="ArgumentException"/> unless 0 ≤ τ &lt; 1.</summary>
    public static void ValidateTau(float tau)
    {
        if (!(tau >= 0f && tau < 1f))
            throw new ArgumentException($"Gate threshold tau = {tau} is outside [0, 1).", nameof(tau));
    }

    /// <summary>Throws <see cref="ArgumentException"/> unless r ≥ 1.</summary>
    public static void ValidateReduction(int reduction)
    {
        if (reduction < 1)
            throw new ArgumentException($"Router reduction r = {reduction} must be at least 1.", nameof(reduction));
    }
}
