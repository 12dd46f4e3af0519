namespace IlgpuDdw.Wiring;

/// <summary>How a stage's nodes are connected.</summary>
public enum WiringKind
{
    /// <summary>The backbone as published: node j reads node j − 1 only, the stage output reads the last node.</summary>
    Chain,
    /// <summary>Complete DAG with learned static edge weights <c>sigmoid(w_ij)</c>, the same for every sample; no router.</summary>
    Dense,
    /// <summary>Differentiable dynamic wiring: per-sample edge weights from each node's router, cut by the threshold gate.</summary>
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
