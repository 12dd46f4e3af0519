namespace IlgpuDdw.Training;

/// <summary>Training settings. Defaults suit the small Fashion-MNIST configurations.</summary>
public sealed record TrainerOptions
{
    /// <summary>Epochs to train.</summary>
    public int Epochs { get; init; } = 1;

    /// <summary>Training batch size.</summary>
    public int BatchSize { get; init; } = 64;

    /// <summary>Evaluation batch size.</summary>
    public int EvalBatchSize { get; init; } = 256;

    /// <summary>
    /// Steps per logging interval (<c>--log-every</c>, default 20): the host reads the steps' losses, correct counts
    /// and gradient norms once per interval (and at the end of each epoch), so steps in between queue without
    /// waiting for the device; the divergence guards run on the device and skip the optimizer step of a bad step
    /// and of every step after it until the host reads the interval and stops. The results do not depend on it
    /// (each step's record is kept on the device until read); progress is reported when an interval is read.
    /// Data-parallel training reads every step (the guards need the ranks' combined loss).
    /// </summary>
    public int LogInterval { get; init; } = 20;

    /// <summary>Peak learning rate (cosine decay to 0 after the warm-up).</summary>
    public float LearningRate { get; init; } = 0.1f;

    /// <summary>Linear learning-rate warm-up, as a fraction of all steps.</summary>
    public float WarmupFraction { get; init; } = 0.05f;

    /// <summary>SGD momentum.</summary>
    public float Momentum { get; init; } = 0.9f;

    public bool Nesterov { get; init; }

    public float WeightDecay { get; init; } = 5e-4f;

    /// <summary>Decoupled (SGDW) instead of L2 weight decay.</summary>
    public bool DecoupledWeightDecay { get; init; }

    /// <summary>Label smoothing ε of the cross-entropy.</summary>
    public float LabelSmoothing { get; init; }

    /// <summary>Random crop (padding 2) and horizontal flip of training images.</summary>
    public bool Augment { get; init; }

    /// <summary>Seed of shuffling and augmentation (the model has its own init seed).</summary>
    public int Seed { get; init; }

    /// <summary>Sparsity loss weight λ: adds λ·mean(a) over every router output (dynamic wiring).</summary>
    public float SparsityWeight { get; init; }

    /// <summary>τ warm-up: τ rises linearly from 0 to the model's τ over this fraction of all steps (0 = off).</summary>
    public float TauWarmupFraction { get; init; }

    /// <summary>
    /// Divergence guard (<c>--max-loss</c>): training stops before the optimizer step when a step's objective (the
    /// sum of its terms) exceeds this (default 1e4; 0 = off). A NaN or infinite objective always stops it.
    /// </summary>
    public float MaxLoss { get; init; } = 1e4f;

    /// <summary>
    /// Divergence guard (<c>--max-loss-ratio</c>): from the second epoch on, training stops before the optimizer
    /// step when a step's training loss (the first term) exceeds this multiple of the first epoch's mean training
    /// loss (default 100; 0 = off).
    /// </summary>
    public float MaxLossRatio { get; init; } = 100f;

    /// <summary>
    /// Divergence guard (<c>--max-grad-norm</c>): training stops before the optimizer step when the global L2 norm
    /// of the objective's gradient over every parameter exceeds this (default 1e5, far above the norms of healthy
    /// runs; 0 = off). A NaN or infinite norm always stops it, so the weights never become non-finite.
    /// </summary>
    public float MaxGradNorm { get; init; } = 1e5f;

    /// <summary>
    /// Per-stage target keep rate ρ in (0, 1] (null = off): adds <see cref="KeepRateTerm"/>,
    /// <c>λ_ρ · Σ_s (k̂_s − ρ_t)²</c> (dynamic wiring).
    /// </summary>
    public float? KeepTarget { get; init; }

    /// <summary>Weight λ_ρ of the keep-rate term (default 1).</summary>
    public float KeepTargetWeight { get; init; } = 1f;

    /// <summary>Fraction of all steps over which the keep target ρ_t falls linearly from 1 to <see cref="KeepTarget"/> (default 0.25; 0 = at once).</summary>
    public float KeepTargetWarmupFraction { get; init; } = 0.25f;

    /// <summary>
    /// Temperature T of the soft keep indicator <c>sigmoid((a − τ)/T)</c> of the keep-rate and batch-shaping terms
    /// for the threshold, continuous and top-k gates (default 0.1; the stochastic gate uses its keep probability).
    /// </summary>
    public float KeepTemperature { get; init; } = 0.1f;

    /// <summary>Weight λ of the batch-shaping term (0 = off): pushes each edge's soft keep values over the batch toward a Beta(α, β) prior.</summary>
    public float BatchShapingWeight { get; init; }

    /// <summary>α of the batch-shaping Beta prior (default 0.6).</summary>
    public float BatchShapingAlpha { get; init; } = 0.6f;

    /// <summary>β of the batch-shaping Beta prior (default 0.4).</summary>
    public float BatchShapingBeta { get; init; } = 0.4f;

    /// <summary>Stochastic gate: the last fraction of all steps trained without gate noise (default 0.1).</summary>
    public float NoiseOffFraction { get; init; } = 0.1f;

    /// <summary>
    /// Precise batch norm after the last epoch: recompute every batch norm's running statistics with the final wiring on
    /// this many training images (<see cref="BatchNormRecalibration"/>) before the final evaluation; 0 = off (default).
    /// </summary>
    public int RecalibrateBnImages { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid value.</summary>
    public void Validate()
    {
        if (Epochs < 1) throw new ArgumentException($"Epochs must be at least 1; got {Epochs}.");
        if (BatchSize < 1) throw new ArgumentException($"Batch size must be at least 1; got {BatchSize}.");
        if (EvalBatchSize < 1) throw new ArgumentException($"Evaluation batch size must be at least 1; got {EvalBatchSize}.");
        if (LogInterval < 1) throw new ArgumentException($"--log-every must be at least 1 step; got {LogInterval}.");
        if (!(LearningRate > 0) || !float.IsFinite(LearningRate)) throw new ArgumentException($"Learning rate must be positive; got {LearningRate}.");
        if (WarmupFraction is < 0 or > 1) throw new ArgumentException($"Warm-up fraction must be in [0, 1]; got {WarmupFraction}.");
        if (TauWarmupFraction is < 0 or > 1) throw new ArgumentException($"τ warm-up fraction must be in [0, 1]; got {TauWarmupFraction}.");
        if (SparsityWeight < 0 || !float.IsFinite(SparsityWeight)) throw new ArgumentException($"Sparsity weight must be ≥ 0; got {SparsityWeight}.");
        if (LabelSmoothing is < 0 or >= 1) throw new ArgumentException($"Label smoothing must be in [0, 1); got {LabelSmoothing}.");
        if (!(MaxLoss >= 0)) throw new ArgumentException($"Maximum loss must be ≥ 0 (0 = off); got {MaxLoss}.");
        if (!(MaxLossRatio >= 0)) throw new ArgumentException($"Maximum loss ratio must be ≥ 0 (0 = off); got {MaxLossRatio}.");
        if (!(MaxGradNorm >= 0)) throw new ArgumentException($"Maximum gradient norm must be ≥ 0 (0 = off); got {MaxGradNorm}.");
        if (KeepTarget is float rho && !(rho > 0 && rho <= 1)) throw new ArgumentException($"Keep target must be in (0, 1]; got {rho}.");
        if (!(KeepTargetWeight >= 0) || !float.IsFinite(KeepTargetWeight)) throw new ArgumentException($"Keep-target weight must be ≥ 0; got {KeepTargetWeight}.");
        if (KeepTargetWarmupFraction is < 0 or > 1 || float.IsNaN(KeepTargetWarmupFraction)) throw new ArgumentException($"Keep-target warm-up fraction must be in [0, 1]; got {KeepTargetWarmupFraction}.");
        if (!(KeepTemperature > 0) || !float.IsFinite(KeepTemperature)) throw new ArgumentException($"Keep temperature must be positive; got {KeepTemperature}.");
        if (!(BatchShapingWeight >= 0) || !float.IsFinite(BatchShapingWeight)) throw new ArgumentException($"Batch-shaping weight must be ≥ 0; got {BatchShapingWeight}.");
        if (!(BatchShapingAlpha > 0) || !float.IsFinite(BatchShapingAlpha)) throw new ArgumentException($"Batch-shaping α must be positive; got {BatchShapingAlpha}.");
        if (!(BatchShapingBeta > 0) || !float.IsFinite(BatchShapingBeta)) throw new ArgumentException($"Batch-shaping β must be positive; got {BatchShapingBeta}.");
        if (NoiseOffFraction is < 0 or > 1 || float.IsNaN(NoiseOffFraction)) throw new ArgumentException($"Noise-off fraction must be in [0, 1]; got {NoiseOffFraction}.");
        if (RecalibrateBnImages < 0) throw new ArgumentException($"--recalibrate-bn must be ≥ 0 images (0 = off); got {RecalibrateBnImages}.");
    }
}
