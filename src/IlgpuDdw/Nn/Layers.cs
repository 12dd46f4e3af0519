namespace IlgpuDdw.Nn;

/// <summary>
/// Hands out per-parameter initialisation seeds from a base seed, so that a model's initial weights are a pure
/// function of (base seed, architecture).
/// </summary>
public sealed class SeedSequence(int baseSeed)
{
    private int _next;

    /// <summary>The base seed.</summary>
    public int BaseSeed { get; } = baseSeed;

    /// <summary>The next parameter's seed.</summary>
    public int Next() => unchecked(BaseSeed * 1_000_003 + _next++);

    /// <summary>
    /// A sequence of its own, based on <see cref="Next"/>: a part whose parameter count depends on its settings (a
    /// stage's wiring) takes one seed from the model's sequence, so the seeds after it do not shift.
    /// </summary>
    public SeedSequence Spawn() => new(Next());
}

/// <summary>2-D convolution layer: weight [Cout, Cin/groups, K, K] (Kaiming normal, fan_out, ReLU gain, as torchvision's CNNs), optional bias (zeros).</summary>
public sealed class Conv2d : Module
{
    /// <summary>Creates the layer from its spec.</summary>
    public Conv2d(Device device, ConvSpec spec, SeedSequence seeds) : base(device)
    {
        Spec = spec ?? throw new ArgumentNullException(nameof(spec));
        Weight = RegisterParameter("weight", Tensor.Empty(device, spec.OutChannels, spec.InChannels / spec.Groups, spec.Kernel, spec.Kernel));
        Init.KaimingNormal(Weight, seeds.Next(), FanMode.FanOut);
        if (spec.Bias)
        {
            Bias = RegisterParameter("bias", Tensor.Zeros(device, spec.OutChannels));
        }
    }

    /// <summary>The layer's geometry.</summary>
    public ConvSpec Spec { get; }

    /// <summary>[Cout, Cin/groups, K, K].</summary>
    public Tensor Weight { get; }

    /// <summary>[Cout] or null.</summary>
    public Tensor? Bias { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tape tape, Tensor input) =>
        tape.Conv2d(input, Weight, Bias, Spec.Stride, Spec.Padding, Spec.Groups);
}

/// <summary>Batch normalisation over [B, C, H, W]: affine gamma (ones) and beta (zeros), running mean/var buffers.</summary>
public sealed class BatchNorm2d : Module
{
    /// <summary>Creates the layer from its spec.</summary>
    public BatchNorm2d(Device device, BatchNormSpec spec) : base(device)
    {
        Spec = spec ?? throw new ArgumentNullException(nameof(spec));
        Weight = RegisterParameter("weight", Tensor.Empty(device, spec.Channels));
        Weight.Fill(1f);
        Bias = RegisterParameter("bias", Tensor.Zeros(device, spec.Channels));
        RunningMean = RegisterBuffer("running_mean", Tensor.Zeros(device, spec.Channels));
        RunningVar = RegisterBuffer("running_var", Tensor.Empty(device, spec.Channels));
        RunningVar.Fill(1f);
    }

    /// <summary>The layer's settings.</summary>
    public BatchNormSpec Spec { get; }

    /// <summary>gamma [C].</summary>
    public Tensor Weight { get; }

    /// <summary>beta [C].</summary>
    public Tensor Bias { get; }

    /// <summary>Running mean [C].</summary>
    public Tensor RunningMean { get; }

    /// <summary>Running (unbiased) variance [C].</summary>
    public Tensor RunningVar { get; }

    /// <summary>
    /// A [B] live-sample mask for the next forward passes (null: every sample live): statistics, running statistics and
    /// gradients over the live samples only, off samples' outputs 0 (see <see cref="Ops.BatchNorm2d(Tape, Tensor, Tensor, Tensor, Tensor, Tensor, bool, float, float, BatchNormPlan?, Tensor?)"/>). Set by a
    /// DDW node for the duration of its forward.
    /// </summary>
    public Tensor? LiveMask { get; set; }

    /// <summary>
    /// The running-statistics momentum of the next training-mode forward passes in place of the spec's (null: the
    /// spec's); precise batch norm (<c>Training.BatchNormRecalibration</c>) sets 1/(k + 1) for batch k.
    /// </summary>
    public float? MomentumOverride { get; set; }

    /// <inheritdoc/>
    public override Tensor Forward(Tape tape, Tensor input) =>
        tape.BatchNorm2d(input, Weight, Bias, RunningMean, RunningVar, Training, MomentumOverride ?? (float)Spec.Momentum, (float)Spec.Eps,
            live: LiveMask);

    /// <summary>
    /// The layer fused with an optional residual add and a ReLU, <c>max(0, BatchNorm2d(x) + residual)</c>, in one
    /// elementwise pass (<see cref="Ops.BatchNorm2dRelu"/>; the same numbers as the three ops one after another).
    /// </summary>
    public Tensor ForwardRelu(Tape tape, Tensor input, Tensor? residual = null) =>
        tape.BatchNorm2dRelu(input, Weight, Bias, RunningMean, RunningVar, Training, residual, MomentumOverride ?? (float)Spec.Momentum,
            (float)Spec.Eps, live: LiveMask);
}

/// <summary>Pointwise activation (ReLU or ReLU6; None passes the input through).</summary>
public sealed class Activation(Device device, ActivationKind kind) : Module(device)
{
    public ActivationKind Kind { get; } = kind;

    /// <inheritdoc/>
    public override Tensor Forward(Tape tape, Tensor input) => Kind switch
    {
        ActivationKind.Relu => tape.Relu(input),
        ActivationKind.Relu6 => tape.Relu6(input),
        _ => input,
    };
}

/// <summary>Max pooling.</summary>
public sealed class MaxPool2d(Device device, MaxPoolSpec spec) : Module(device)
{
    public MaxPoolSpec Spec { get; } = spec;

    /// <inheritdoc/>
    public override Tensor Forward(Tape tape, Tensor input) => tape.MaxPool2d(input, Spec.Kernel, Spec.Stride, Spec.Padding);
}

/// <summary>Global average pooling [B, C, H, W] → [B, C].</summary>
public sealed class GlobalAvgPool2d(Device device) : Module(device)
{
    /// <inheritdoc/>
    public override Tensor Forward(Tape tape, Tensor input) => tape.GlobalAvgPool2d(input);
}

/// <summary>
/// Fully connected layer <c>y = act(x · weightᵀ + bias)</c>: weight [Out, In] and bias [Out], PyTorch's default init
/// (uniform ±1/√In), an optional activation fused into the kernels (<see cref="LinearActivation"/>).
/// </summary>
public sealed class Linear : Module
{
    /// <summary>
    /// Creates the layer from its spec: weight Kaiming-uniform (a = √5, so U(±1/√In)) and bias U(±1/√In), each from
    /// its own seed of <paramref name="seeds"/> (see <see cref="Init"/>).
    /// </summary>
    public Linear(Device device, LinearSpec spec, SeedSequence seeds, LinearActivation activation = LinearActivation.None)
        : this(device, spec, activation)
    {
        ArgumentNullException.ThrowIfNull(seeds);
        Init.KaimingUniform(Weight, seeds.Next(), FanMode.FanIn, Nonlinearity.LeakyRelu, MathF.Sqrt(5f));
        if (Bias is not null)
        {
            float bound = 1f / MathF.Sqrt(spec.InFeatures);
            Init.Uniform(Bias, -bound, bound, seeds.Next());
        }
    }

    /// <summary>
    /// Creates the layer from its spec with weight and bias U(±1/√In) drawn in turn from one stream,
    /// <paramref name="generator"/> (see <see cref="Init.Uniform(Tensor, double, Random)"/>), as PyTorch draws from its
    /// global generator; the routers use this, one generator for both of their layers.
    /// </summary>
    public Linear(Device device, LinearSpec spec, Random generator, LinearActivation activation = LinearActivation.None)
        : this(device, spec, activation)
    {
        ArgumentNullException.ThrowIfNull(generator);
        double bound = 1 / Math.Sqrt(spec.InFeatures);
        Init.Uniform(Weight, bound, generator);
        if (Bias is not null) Init.Uniform(Bias, bound, generator);
    }

    private Linear(Device device, LinearSpec spec, LinearActivation activation) : base(device)
    {
        Spec = spec ?? throw new ArgumentNullException(nameof(spec));
        if (!Enum.IsDefined(activation))
            throw new ArgumentException($"Linear activation {(int)activation} is not one of None, Relu, Sigmoid.", nameof(activation));
        Activation = activation;
        Weight = RegisterParameter("weight", Tensor.Empty(device, spec.OutFeatures, spec.InFeatures));
        if (spec.Bias) Bias = RegisterParameter("bias", Tensor.Empty(device, spec.OutFeatures));
    }

    /// <summary>The layer's sizes.</summary>
    public LinearSpec Spec { get; }

    /// <summary>The activation fused into the layer (none by default).</summary>
    public LinearActivation Activation { get; }

    /// <summary>[Out, In].</summary>
    public Tensor Weight { get; }

    /// <summary>[Out] or null.</summary>
    public Tensor? Bias { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tape tape, Tensor input) => tape.Linear(input, Weight, Bias, Activation);
}

/// <summary>Builds layer modules from layer specs.</summary>
public static class LayerFactory
{
    /// <summary>The module for one layer spec.</summary>
    public static Module Create(Device device, LayerSpec spec, SeedSequence seeds) => spec switch
    {
        ConvSpec c => new Conv2d(device, c, seeds),
        BatchNormSpec b => new BatchNorm2d(device, b),
        ActivationSpec a => new Activation(device, a.Kind),
        MaxPoolSpec m => new MaxPool2d(device, m),
        GlobalAvgPoolSpec => new GlobalAvgPool2d(device),
        LinearSpec l => new Linear(device, l, seeds),
        _ => throw new ArgumentException($"No layer module for spec {spec}.", nameof(spec)),
    };

    /// <summary>A <see cref="Sequential"/> of the given layer specs.</summary>
    public static Sequential Sequence(Device device, IEnumerable<LayerSpec> specs, SeedSequence seeds)
    {
        var seq = new Sequential(device);
        foreach (var s in specs) seq.Add(Create(device, s, seeds));
        return seq;
    }
}
