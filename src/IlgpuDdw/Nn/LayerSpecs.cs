namespace IlgpuDdw.Nn;

/// <summary>Element-wise activation applied by an <see cref="ActivationSpec"/> or at the end of a block.</summary>
public enum ActivationKind
{
    /// <summary>No activation (identity).</summary>
    None,

    /// <summary>max(x, 0).</summary>
    Relu,

    /// <summary>min(max(x, 0), 6).</summary>
    Relu6,
}

/// <summary>
/// One layer of a stem or head, or of a block's main path or shortcut. Tensors are NCHW with square spatial sides;
/// a layer maps (channels, side) to (channels', side'). After a <see cref="GlobalAvgPoolSpec"/> the tensor is [B, C]
/// and only a <see cref="LinearSpec"/> may follow. Specs are immutable and validated on construction.
/// </summary>
public abstract record LayerSpec
{
    private protected LayerSpec() { }

    /// <summary>
    /// The output side for an input side of <paramref name="inputSize"/>, or 0 when the input is too small for the
    /// layer (kernel larger than the padded input).
    /// </summary>
    public abstract int OutputSize(int inputSize);

    /// <summary>
    /// The output channel count for <paramref name="inputChannels"/> input channels; throws
    /// <see cref="ArgumentException"/> when the layer expects another count.
    /// </summary>
    public abstract int OutputChannels(int inputChannels);

    /// <summary>The spatial stride (1 for layers that keep the side).</summary>
    public virtual int Stride => 1;

    /// <summary>Learned parameters: weights and biases; batch-norm gamma and beta (running statistics excluded).</summary>
    public virtual long ParameterCount => 0;

    /// <summary>
    /// Multiply-accumulates per sample at input side <paramref name="inputSize"/>: convolutions
    /// Cout·Ho·Wo·(Cin/groups)·K², linear in·out, every other layer 0.
    /// </summary>
    public virtual long Macs(int inputSize) => 0;

    /// <summary>Throws when <paramref name="actual"/> differs from <paramref name="expected"/>.</summary>
    private protected int RequireChannels(int expected, int actual)
    {
        if (actual != expected)
            throw new ArgumentException($"{this} expects {expected} input channels but receives {actual}.", nameof(actual));
        return expected;
    }

    /// <summary>Output side of a sliding window (floor mode), 0 when the padded input is smaller than the kernel.</summary>
    private protected static int SlidingOutput(int input, int kernel, int stride, int padding) =>
        input + 2 * padding < kernel ? 0 : (input + 2 * padding - kernel) / stride + 1;

    /// <summary>Throws <see cref="ArgumentException"/> when <paramref name="value"/> is below <paramref name="minimum"/>.</summary>
    private protected static int AtLeast(int value, int minimum, string name) =>
        value >= minimum ? value : throw new ArgumentException($"{name} must be at least {minimum}, got {value}.", name);

    /// <summary>Python-style boolean for the PyTorch-like <c>ToString</c> representations.</summary>
    private protected static string Py(bool value) => value ? "True" : "False";
}

/// <summary>
/// A 2-D convolution (PyTorch <c>nn.Conv2d</c>, dilation 1, zero padding on all four sides, square kernel):
/// weight [OutChannels, InChannels/Groups, Kernel, Kernel], optional bias [OutChannels].
/// </summary>
public sealed record ConvSpec : LayerSpec
{
    /// <summary>Creates and validates a convolution spec.</summary>
    /// <exception cref="ArgumentException">A size is not positive, the padding is negative, or the groups do not divide both channel counts.</exception>
    public ConvSpec(int inChannels, int outChannels, int kernel, int stride = 1, int padding = 0, int groups = 1, bool bias = false)
    {
        InChannels = AtLeast(inChannels, 1, nameof(inChannels));
        OutChannels = AtLeast(outChannels, 1, nameof(outChannels));
        Kernel = AtLeast(kernel, 1, nameof(kernel));
        Stride = AtLeast(stride, 1, nameof(stride));
        Padding = AtLeast(padding, 0, nameof(padding));
        Groups = AtLeast(groups, 1, nameof(groups));
        if (inChannels % groups != 0 || outChannels % groups != 0)
            throw new ArgumentException(
                $"groups = {groups} must divide both inChannels = {inChannels} and outChannels = {outChannels}.", nameof(groups));
        Bias = bias;
    }

    public int InChannels { get; }

    public int OutChannels { get; }

    /// <summary>Kernel side K.</summary>
    public int Kernel { get; }

    /// <inheritdoc/>
    public override int Stride { get; }

    /// <summary>Zero padding on each side.</summary>
    public int Padding { get; }

    /// <summary>Groups (InChannels for a depthwise convolution).</summary>
    public int Groups { get; }

    /// <summary>Whether the convolution has a bias.</summary>
    public bool Bias { get; }

    /// <summary>Weight elements: OutChannels·(InChannels/Groups)·K².</summary>
    public long WeightCount => (long)OutChannels * (InChannels / Groups) * Kernel * Kernel;

    /// <inheritdoc/>
    public override long ParameterCount => WeightCount + (Bias ? OutChannels : 0);

    /// <inheritdoc/>
    public override int OutputSize(int inputSize) => SlidingOutput(inputSize, Kernel, Stride, Padding);

    /// <inheritdoc/>
    public override int OutputChannels(int inputChannels)
    {
        RequireChannels(InChannels, inputChannels);
        return OutChannels;
    }

    /// <inheritdoc/>
    public override long Macs(int inputSize)
    {
        long side = OutputSize(inputSize);
        return WeightCount * side * side;
    }

    /// <summary>A 3×3 convolution with padding 1 and no bias.</summary>
    public static ConvSpec Conv3x3(int inChannels, int outChannels, int stride = 1, int groups = 1) =>
        new(inChannels, outChannels, 3, stride, 1, groups, false);

    /// <summary>A 1×1 convolution with no padding and no bias.</summary>
    public static ConvSpec Conv1x1(int inChannels, int outChannels, int stride = 1) =>
        new(inChannels, outChannels, 1, stride, 0, 1, false);

    /// <summary>PyTorch-like representation.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"Conv2d({InChannels}, {OutChannels}, kernel_size={Kernel}, stride={Stride}, padding={Padding}, groups={Groups}, bias={Py(Bias)})");
}

/// <summary>
/// Batch normalization over the channels of an NCHW tensor (PyTorch <c>nn.BatchNorm2d</c>, affine, tracking running
/// statistics): learned gamma and beta [Channels]; running mean and variance are buffers, not parameters.
/// </summary>
public sealed record BatchNormSpec : LayerSpec
{
    /// <summary>PyTorch's default epsilon (used by every model in the zoo).</summary>
    public const double DefaultEps = 1e-5;

    /// <summary>PyTorch's default running-statistics momentum (used by every model in the zoo).</summary>
    public const double DefaultMomentum = 0.1;

    /// <summary>Creates a batch-norm spec.</summary>
    /// <exception cref="ArgumentException">Channels below 1, or eps / momentum not in range.</exception>
    public BatchNormSpec(int channels, double eps = DefaultEps, double momentum = DefaultMomentum)
    {
        Channels = AtLeast(channels, 1, nameof(channels));
        if (!(eps > 0)) throw new ArgumentException($"eps must be positive, got {eps}.", nameof(eps));
        if (!(momentum >= 0 && momentum <= 1)) throw new ArgumentException($"momentum must be in [0, 1], got {momentum}.", nameof(momentum));
        Eps = eps;
        Momentum = momentum;
    }

    public int Channels { get; }

    /// <summary>Epsilon added to the variance.</summary>
    public double Eps { get; }

    /// <summary>Running-statistics momentum (PyTorch convention: new = (1−m)·old + m·batch).</summary>
    public double Momentum { get; }

    /// <inheritdoc/>
    public override long ParameterCount => 2L * Channels;

    /// <inheritdoc/>
    public override int OutputSize(int inputSize) => inputSize;

    /// <inheritdoc/>
    public override int OutputChannels(int inputChannels) => RequireChannels(Channels, inputChannels);

    /// <summary>PyTorch-like representation.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"BatchNorm2d({Channels}, eps={Eps}, momentum={Momentum})");
}

/// <summary>An element-wise activation layer (ReLU or ReLU6).</summary>
public sealed record ActivationSpec : LayerSpec
{
    /// <summary>Creates an activation layer.</summary>
    /// <exception cref="ArgumentException"><paramref name="kind"/> is <see cref="ActivationKind.None"/> or undefined.</exception>
    public ActivationSpec(ActivationKind kind)
    {
        if (kind is not (ActivationKind.Relu or ActivationKind.Relu6))
            throw new ArgumentException($"An activation layer needs ReLU or ReLU6, got {kind}.", nameof(kind));
        Kind = kind;
    }

    public ActivationKind Kind { get; }

    /// <inheritdoc/>
    public override int OutputSize(int inputSize) => inputSize;

    /// <inheritdoc/>
    public override int OutputChannels(int inputChannels) => inputChannels;

    /// <summary>PyTorch-like representation.</summary>
    public override string ToString() => Kind == ActivationKind.Relu ? "ReLU()" : "ReLU6()";
}

/// <summary>Max pooling (PyTorch <c>nn.MaxPool2d</c>, floor mode, padding with −∞).</summary>
public sealed record MaxPoolSpec : LayerSpec
{
    /// <summary>Creates a max-pool spec.</summary>
    /// <exception cref="ArgumentException">Kernel or stride below 1, or padding outside [0, kernel/2].</exception>
    public MaxPoolSpec(int kernel, int stride, int padding = 0)
    {
        Kernel = AtLeast(kernel, 1, nameof(kernel));
        Stride = AtLeast(stride, 1, nameof(stride));
        Padding = AtLeast(padding, 0, nameof(padding));
        if (padding > kernel / 2)
            throw new ArgumentException($"padding = {padding} must be at most half the kernel ({kernel}).", nameof(padding));
    }

    public int Kernel { get; }

    /// <inheritdoc/>
    public override int Stride { get; }

    /// <summary>Padding on each side.</summary>
    public int Padding { get; }

    /// <inheritdoc/>
    public override int OutputSize(int inputSize) => SlidingOutput(inputSize, Kernel, Stride, Padding);

    /// <inheritdoc/>
    public override int OutputChannels(int inputChannels) => inputChannels;

    /// <summary>PyTorch-like representation.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"MaxPool2d(kernel_size={Kernel}, stride={Stride}, padding={Padding})");
}

/// <summary>Global average pooling over H and W followed by flattening: [B, C, H, W] → [B, C].</summary>
public sealed record GlobalAvgPoolSpec : LayerSpec
{
    /// <inheritdoc/>
    public override int OutputSize(int inputSize) => inputSize >= 1 ? 1 : 0;

    /// <inheritdoc/>
    public override int OutputChannels(int inputChannels) => inputChannels;

    /// <summary>PyTorch-like representation.</summary>
    public override string ToString() => "AdaptiveAvgPool2d(1) + Flatten()";
}

/// <summary>A fully connected layer on [B, InFeatures] (PyTorch <c>nn.Linear</c>): weight [Out, In], optional bias [Out].</summary>
public sealed record LinearSpec : LayerSpec
{
    /// <summary>Creates a linear spec.</summary>
    /// <exception cref="ArgumentException">A feature count below 1.</exception>
    public LinearSpec(int inFeatures, int outFeatures, bool bias = true)
    {
        InFeatures = AtLeast(inFeatures, 1, nameof(inFeatures));
        OutFeatures = AtLeast(outFeatures, 1, nameof(outFeatures));
        Bias = bias;
    }

    public int InFeatures { get; }

    public int OutFeatures { get; }

    /// <summary>Whether the layer has a bias.</summary>
    public bool Bias { get; }

    /// <inheritdoc/>
    public override long ParameterCount => (long)InFeatures * OutFeatures + (Bias ? OutFeatures : 0);

    /// <summary>Always 1: a linear layer acts on flattened [B, C] features.</summary>
    public override int OutputSize(int inputSize) => inputSize == 1 ? 1 : 0;

    /// <inheritdoc/>
    public override int OutputChannels(int inputChannels)
    {
        RequireChannels(InFeatures, inputChannels);
        return OutFeatures;
    }

    /// <inheritdoc/>
    public override long Macs(int inputSize) => (long)InFeatures * OutFeatures;

    /// <summary>PyTorch-like representation.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"Linear(in_features={InFeatures}, out_features={OutFeatures}, bias={Py(Bias)})");
}
