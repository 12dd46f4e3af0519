using System.Globalization;

namespace IlgpuDdw.Models;

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

    /// <summary>Input channels.</summary>
    public int InChannels { get; }

    /// <summary>Output channels.</summary>
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

    /// <summary>Channels.</summary>
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

    /// <summary>The activation.</summary>
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

    /// <summary>Window side.</summary>
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

    /// <summary>Input features.</summary>
    public int InFeatures { get; }

    /// <summary>Output features.</summary>
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

/// <summary>The backbone block family of a DDW node.</summary>
public enum BlockKind
{
    /// <summary>ResNet basic block: 3×3 (stride) → BN → ReLU → 3×3 → BN, add shortcut, ReLU.</summary>
    Basic,

    /// <summary>ResNet v1.5 bottleneck: 1×1 → BN → ReLU → 3×3 (stride) → BN → ReLU → 1×1 → BN, add shortcut, ReLU.</summary>
    Bottleneck,

    /// <summary>ResNeXt bottleneck: the bottleneck with a grouped 3×3 convolution.</summary>
    ResNeXtBottleneck,

    /// <summary>
    /// MobileNetV2 inverted residual: [1×1 expand → BN → ReLU6] → 3×3 depthwise (stride) → BN → ReLU6 → 1×1 project → BN,
    /// add the input only when stride 1 and in == out, no final activation.
    /// </summary>
    InvertedResidual,

    /// <summary>
    /// RegNet X block (torchvision ResBottleneckBlock without squeeze-excitation): 1×1 → BN → ReLU → 3×3 grouped
    /// (stride, group width fixed) → BN → ReLU → 1×1 → BN, add shortcut, ReLU.
    /// </summary>
    RegNetX,
}

/// <summary>How a block's input reaches its output sum.</summary>
public enum ShortcutKind
{
    /// <summary>No residual: output = activation(main(x)) (MobileNetV2 blocks that change stride or width).</summary>
    None,

    /// <summary>output = activation(main(x) + x).</summary>
    Identity,

    /// <summary>output = activation(main(x) + BN(Conv1x1_stride(x))).</summary>
    Projection,
}

/// <summary>
/// One DDW node: a backbone block mapping [B, InChannels, S, S] to [B, OutChannels, S', S'] with
/// S' = (S − 1)/Stride + 1. Computes <c>y = OutputActivation(main(x) + shortcut(x))</c> where main runs
/// <see cref="Layers"/> in order and shortcut is given by <see cref="Shortcut"/> and <see cref="ShortcutLayers"/>
/// (with <see cref="ShortcutKind.None"/> the sum has only main(x)). Every convolution is bias-free and followed by a
/// batch norm; 3×3 convolutions have padding 1, 1×1 convolutions padding 0. Equality compares the six defining values.
/// </summary>
public sealed record BlockSpec
{
    /// <summary>Creates and validates a block; prefer the factories (<see cref="Basic"/>, <see cref="Bottleneck"/>, ...).</summary>
    /// <param name="kind">Block family.</param>
    /// <param name="inChannels">Input channels.</param>
    /// <param name="outChannels">Output channels.</param>
    /// <param name="stride">Stride of the block (carried by its 3×3 convolution and by a projection shortcut).</param>
    /// <param name="midChannels">Inner width: OutChannels for Basic; the bottleneck width for the bottleneck kinds and RegNet X;
    /// the expanded (hidden) width for InvertedResidual, whose 1×1 expansion exists only when it differs from InChannels.</param>
    /// <param name="groups">Groups of the 3×3 convolution: 1 for Basic and Bottleneck; MidChannels (depthwise) for InvertedResidual.</param>
    /// <exception cref="ArgumentException">A size is not positive, or the values do not fit the kind.</exception>
    public BlockSpec(BlockKind kind, int inChannels, int outChannels, int stride, int midChannels, int groups)
    {
        if (!Enum.IsDefined(kind)) throw new ArgumentException($"Unknown block kind {kind}.", nameof(kind));
        Check(inChannels >= 1, $"inChannels must be at least 1, got {inChannels}.", nameof(inChannels));
        Check(outChannels >= 1, $"outChannels must be at least 1, got {outChannels}.", nameof(outChannels));
        Check(stride >= 1, $"stride must be at least 1, got {stride}.", nameof(stride));
        Check(midChannels >= 1, $"midChannels must be at least 1, got {midChannels}.", nameof(midChannels));
        Check(groups >= 1 && midChannels % groups == 0,
            $"groups = {groups} must be at least 1 and divide midChannels = {midChannels}.", nameof(groups));
        switch (kind)
        {
            case BlockKind.Basic:
                Check(midChannels == outChannels && groups == 1,
                    $"A basic block has midChannels == outChannels and groups 1, got midChannels = {midChannels}, outChannels = {outChannels}, groups = {groups}.", nameof(midChannels));
                break;
            case BlockKind.Bottleneck:
                Check(groups == 1, $"A bottleneck block has groups 1, got {groups} (use ResNeXtBottleneck).", nameof(groups));
                break;
            case BlockKind.InvertedResidual:
                Check(groups == midChannels, $"An inverted residual's 3×3 convolution is depthwise: groups must equal midChannels = {midChannels}, got {groups}.", nameof(groups));
                break;
        }

        Kind = kind;
        InChannels = inChannels;
        OutChannels = outChannels;
        Stride = stride;
        MidChannels = midChannels;
        Groups = groups;
        Layers = Array.AsReadOnly(BuildMainPath());
        if (kind == BlockKind.InvertedResidual)
            Shortcut = stride == 1 && inChannels == outChannels ? ShortcutKind.Identity : ShortcutKind.None;
        else
            Shortcut = stride != 1 || inChannels != outChannels ? ShortcutKind.Projection : ShortcutKind.Identity;
        ShortcutLayers = Array.AsReadOnly(Shortcut == ShortcutKind.Projection
            ? new LayerSpec[] { ConvSpec.Conv1x1(inChannels, outChannels, stride), new BatchNormSpec(outChannels) }
            : Array.Empty<LayerSpec>());
        OutputActivation = kind == BlockKind.InvertedResidual ? ActivationKind.None : ActivationKind.Relu;
    }

    /// <summary>Block family.</summary>
    public BlockKind Kind { get; }

    /// <summary>Input channels.</summary>
    public int InChannels { get; }

    /// <summary>Output channels.</summary>
    public int OutChannels { get; }

    /// <summary>Stride (1 or 2 in the zoo).</summary>
    public int Stride { get; }

    /// <summary>Inner width (see the constructor).</summary>
    public int MidChannels { get; }

    /// <summary>Groups of the 3×3 convolution.</summary>
    public int Groups { get; }

    /// <summary>The main path in order: convolutions, batch norms and activations.</summary>
    public IReadOnlyList<LayerSpec> Layers { get; }

    /// <summary>The shortcut kind.</summary>
    public ShortcutKind Shortcut { get; }

    /// <summary>The projection shortcut's layers [1×1 conv (stride), BN], empty otherwise.</summary>
    public IReadOnlyList<LayerSpec> ShortcutLayers { get; }

    /// <summary>Activation applied after the residual sum (ReLU; none for InvertedResidual).</summary>
    public ActivationKind OutputActivation { get; }

    /// <summary>The projection shortcut's convolution, or null.</summary>
    public ConvSpec? ProjectionConv => ShortcutLayers.Count > 0 ? (ConvSpec)ShortcutLayers[0] : null;

    /// <summary>The main path's convolutions in order.</summary>
    public IReadOnlyList<ConvSpec> Convs() => Layers.OfType<ConvSpec>().ToArray();

    /// <summary>Every layer with parameters or MACs: main path then shortcut.</summary>
    public IEnumerable<LayerSpec> AllLayers() => Layers.Concat(ShortcutLayers);

    /// <summary>Output side for input side <paramref name="inputSize"/> (0 when too small).</summary>
    public int OutputSize(int inputSize)
    {
        int size = inputSize;
        foreach (var layer in Layers) size = size < 1 ? 0 : layer.OutputSize(size);
        return size;
    }

    /// <summary>Parameters of the main path and the shortcut.</summary>
    public long ParameterCount => AllLayers().Sum(l => l.ParameterCount);

    /// <summary>MACs per sample at input side <paramref name="inputSize"/> (main path and projection).</summary>
    public long Macs(int inputSize)
    {
        long total = 0;
        int size = inputSize;
        foreach (var layer in Layers)
        {
            total += layer.Macs(size);
            size = layer.OutputSize(size);
        }
        foreach (var layer in ShortcutLayers) total += layer.Macs(inputSize);
        return total;
    }

    /// <summary>ResNet basic block.</summary>
    public static BlockSpec Basic(int inChannels, int outChannels, int stride) =>
        new(BlockKind.Basic, inChannels, outChannels, stride, outChannels, 1);

    /// <summary>ResNet v1.5 bottleneck with inner width <paramref name="width"/> (torchvision: out/4).</summary>
    public static BlockSpec Bottleneck(int inChannels, int outChannels, int stride, int width) =>
        new(BlockKind.Bottleneck, inChannels, outChannels, stride, width, 1);

    /// <summary>ResNeXt bottleneck with inner width <paramref name="width"/> and <paramref name="groups"/> groups.</summary>
    public static BlockSpec ResNeXtBottleneck(int inChannels, int outChannels, int stride, int width, int groups) =>
        new(BlockKind.ResNeXtBottleneck, inChannels, outChannels, stride, width, groups);

    /// <summary>MobileNetV2 inverted residual with hidden width round(in·<paramref name="expandRatio"/>) (torchvision).</summary>
    public static BlockSpec InvertedResidual(int inChannels, int outChannels, int stride, double expandRatio)
    {
        if (!(expandRatio > 0))
            throw new ArgumentException($"expandRatio must be positive, got {expandRatio}.", nameof(expandRatio));
        int hidden = (int)Math.Round(inChannels * expandRatio, MidpointRounding.ToEven);
        return new(BlockKind.InvertedResidual, inChannels, outChannels, stride, hidden, hidden);
    }

    /// <summary>
    /// RegNet X block (torchvision ResBottleneckBlock, no squeeze-excitation): bottleneck width
    /// w_b = round(out·<paramref name="bottleneckMultiplier"/>), groups w_b / <paramref name="groupWidth"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The group width does not divide w_b.</exception>
    public static BlockSpec RegNetX(int inChannels, int outChannels, int stride, int groupWidth, double bottleneckMultiplier = 1.0)
    {
        if (!(bottleneckMultiplier > 0))
            throw new ArgumentException($"bottleneckMultiplier must be positive, got {bottleneckMultiplier}.", nameof(bottleneckMultiplier));
        int width = (int)Math.Round(outChannels * bottleneckMultiplier, MidpointRounding.ToEven);
        if (groupWidth < 1 || width % groupWidth != 0)
            throw new ArgumentException(
                $"groupWidth = {groupWidth} must be positive and divide the bottleneck width {width}.", nameof(groupWidth));
        return new(BlockKind.RegNetX, inChannels, outChannels, stride, width, width / groupWidth);
    }

    /// <inheritdoc/>
    public bool Equals(BlockSpec? other) =>
        other is not null && Kind == other.Kind && InChannels == other.InChannels && OutChannels == other.OutChannels
        && Stride == other.Stride && MidChannels == other.MidChannels && Groups == other.Groups;

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Kind, InChannels, OutChannels, Stride, MidChannels, Groups);

    /// <summary>Compact representation.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Kind}({InChannels}→{OutChannels}, stride {Stride}, mid {MidChannels}, groups {Groups}, shortcut {Shortcut})");

    private LayerSpec[] BuildMainPath()
    {
        var bn = (int c) => new BatchNormSpec(c);
        switch (Kind)
        {
            case BlockKind.Basic:
                return
                [
                    ConvSpec.Conv3x3(InChannels, OutChannels, Stride), bn(OutChannels), new ActivationSpec(ActivationKind.Relu),
                    ConvSpec.Conv3x3(OutChannels, OutChannels), bn(OutChannels),
                ];
            case BlockKind.InvertedResidual:
            {
                var relu6 = new ActivationSpec(ActivationKind.Relu6);
                var layers = new List<LayerSpec>();
                if (MidChannels != InChannels) layers.AddRange([ConvSpec.Conv1x1(InChannels, MidChannels), bn(MidChannels), relu6]);
                layers.AddRange([ConvSpec.Conv3x3(MidChannels, MidChannels, Stride, MidChannels), bn(MidChannels), relu6,
                    ConvSpec.Conv1x1(MidChannels, OutChannels), bn(OutChannels)]);
                return layers.ToArray();
            }
            default: // Bottleneck, ResNeXtBottleneck, RegNetX
            {
                var relu = new ActivationSpec(ActivationKind.Relu);
                return
                [
                    ConvSpec.Conv1x1(InChannels, MidChannels), bn(MidChannels), relu,
                    ConvSpec.Conv3x3(MidChannels, MidChannels, Stride, Groups), bn(MidChannels), relu,
                    ConvSpec.Conv1x1(MidChannels, OutChannels), bn(OutChannels),
                ];
            }
        }
    }

    private static void Check(bool condition, string message, string parameter)
    {
        if (!condition) throw new ArgumentException(message, parameter);
    }
}

/// <summary>
/// One DDW stage: a run of nodes (blocks) of one kind at one resolution and one width. Node 0 maps
/// InChannels → OutChannels at <see cref="Stride"/>; every other node maps OutChannels → OutChannels at stride 1.
/// Under chain wiring the nodes run in sequence (the published backbone). A stage may have a single node; it then has
/// no edges to learn and runs as a chain under every wiring. Equality compares the name and the nodes.
/// </summary>
public sealed record StageSpec
{
    /// <summary>Creates and validates a stage.</summary>
    /// <exception cref="ArgumentException">Empty name or node list, mixed block kinds, or a node after the first that
    /// changes width or stride.</exception>
    public StageSpec(string name, IEnumerable<BlockSpec> nodes)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        if (string.IsNullOrWhiteSpace(name)) throw new ArgumentException("A stage needs a name.", nameof(name));
        var list = nodes.ToArray();
        if (list.Length == 0) throw new ArgumentException($"Stage '{name}' has no nodes.", nameof(nodes));
        if (Array.IndexOf(list, null) >= 0) throw new ArgumentException($"Stage '{name}' has a null node.", nameof(nodes));
        var first = list[0];
        for (int k = 1; k < list.Length; k++)
        {
            var node = list[k];
            if (node.Kind != first.Kind)
                throw new ArgumentException($"Stage '{name}': node {k} is {node.Kind} but node 0 is {first.Kind}.", nameof(nodes));
            if (node.InChannels != first.OutChannels || node.OutChannels != first.OutChannels || node.Stride != 1)
                throw new ArgumentException(
                    $"Stage '{name}': node {k} must map {first.OutChannels} → {first.OutChannels} channels at stride 1, "
                    + $"got {node.InChannels} → {node.OutChannels} at stride {node.Stride}.", nameof(nodes));
        }
        Name = name;
        Nodes = Array.AsReadOnly(list);
    }

    /// <summary>
    /// A stage of <paramref name="count"/> nodes built by <paramref name="block"/>(in, out, stride): node 0 gets
    /// (inChannels, outChannels, stride), the others (outChannels, outChannels, 1).
    /// </summary>
    public static StageSpec Repeat(string name, int count, int inChannels, int outChannels, int stride, Func<int, int, int, BlockSpec> block)
    {
        ArgumentNullException.ThrowIfNull(block);
        if (count < 1) throw new ArgumentException($"Stage '{name}' needs at least 1 node, got {count}.", nameof(count));
        return new StageSpec(name, Enumerable.Range(0, count)
            .Select(k => k == 0 ? block(inChannels, outChannels, stride) : block(outChannels, outChannels, 1)));
    }

    /// <summary>Stage name (torchvision's where it has one, e.g. <c>layer1</c>).</summary>
    public string Name { get; }

    /// <summary>The nodes in order (n = Nodes.Count; the output node has index n in the adjacency).</summary>
    public IReadOnlyList<BlockSpec> Nodes { get; }

    /// <summary>Block family of every node.</summary>
    public BlockKind Kind => Nodes[0].Kind;

    /// <summary>Input channels (node 0's).</summary>
    public int InChannels => Nodes[0].InChannels;

    /// <summary>Output channels: the width of every node and of the stage output.</summary>
    public int OutChannels => Nodes[0].OutChannels;

    /// <summary>The stage's stride (node 0's).</summary>
    public int Stride => Nodes[0].Stride;

    /// <summary>Parameters of all nodes (chain wiring).</summary>
    public long ParameterCount => Nodes.Sum(n => n.ParameterCount);

    /// <summary>Output side for input side <paramref name="inputSize"/>.</summary>
    public int OutputSize(int inputSize) => Nodes[0].OutputSize(inputSize);

    /// <inheritdoc/>
    public bool Equals(StageSpec? other) => other is not null && Name == other.Name && Nodes.SequenceEqual(other.Nodes);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Name, Nodes.Count, Nodes[0]);

    /// <summary>Compact representation.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Name}: {Nodes.Count} × {Kind}, {InChannels}→{OutChannels}, stride {Stride}");
}

/// <summary>
/// A whole network for square <see cref="InputSize"/>² × <see cref="InputChannels"/> images: <see cref="Stem"/>
/// (convolutions, batch norms, activations, max pools), the DDW <see cref="Stages"/> in order, then <see cref="Head"/>:
/// optional convolution/BN/activation layers, a <see cref="GlobalAvgPoolSpec"/> and a final <see cref="LinearSpec"/>
/// to <see cref="NumClasses"/> logits (dropout is not modelled). Channels and sides are checked on construction.
/// Equality compares every field and list element.
/// </summary>
public sealed record ModelSpec
{
    /// <summary>Creates and validates a model spec.</summary>
    /// <exception cref="ArgumentException">Channels do not chain, the head is not [conv/BN/act]* + pool + linear to
    /// NumClasses, or the input is smaller than <see cref="MinimumInputSize"/>.</exception>
    public ModelSpec(string name, int inputChannels, int inputSize, int numClasses,
        IEnumerable<LayerSpec> stem, IEnumerable<StageSpec> stages, IEnumerable<LayerSpec> head)
    {
        ArgumentNullException.ThrowIfNull(stem);
        ArgumentNullException.ThrowIfNull(stages);
        ArgumentNullException.ThrowIfNull(head);
        if (string.IsNullOrWhiteSpace(name)) throw new ArgumentException("A model needs a name.", nameof(name));
        if (inputChannels < 1) throw new ArgumentException($"inputChannels must be at least 1, got {inputChannels}.", nameof(inputChannels));
        if (numClasses < 1) throw new ArgumentException($"numClasses must be at least 1, got {numClasses}.", nameof(numClasses));
        Name = name;
        InputChannels = inputChannels;
        NumClasses = numClasses;
        Stem = Array.AsReadOnly(stem.ToArray());
        Stages = Array.AsReadOnly(stages.ToArray());
        Head = Array.AsReadOnly(head.ToArray());
        ValidateLayout();
        TotalStride = Stem.Concat(Head).Aggregate(1, (s, l) => s * l.Stride) * Stages.Aggregate(1, (s, st) => s * st.Stride);
        MinimumInputSize = FindMinimumInputSize();
        if (inputSize < MinimumInputSize)
            throw new ArgumentException(
                $"Input size {inputSize} is too small for model '{name}': the minimum is {MinimumInputSize} "
                + $"(the network downsamples by {TotalStride}).", nameof(inputSize));
        InputSize = inputSize;
        var sizes = TraceSizes(inputSize)!;
        StemOutputSize = sizes[0];
        StageInputSizes = Array.AsReadOnly(sizes[..Stages.Count]);
        StageOutputSizes = Array.AsReadOnly(sizes[1..(Stages.Count + 1)]);
    }

    /// <summary>Model name (the zoo's key).</summary>
    public string Name { get; }

    /// <summary>Image channels.</summary>
    public int InputChannels { get; }

    /// <summary>Image side (square images).</summary>
    public int InputSize { get; }

    /// <summary>Number of classes (logits).</summary>
    public int NumClasses { get; }

    /// <summary>Layers before the first stage.</summary>
    public IReadOnlyList<LayerSpec> Stem { get; }

    /// <summary>The DDW stages.</summary>
    public IReadOnlyList<StageSpec> Stages { get; }

    /// <summary>Layers after the last stage, ending with global average pooling and the classifier.</summary>
    public IReadOnlyList<LayerSpec> Head { get; }

    /// <summary>The classifier (the head's last layer).</summary>
    public LinearSpec Classifier => (LinearSpec)Head[^1];

    /// <summary>Product of every stride in the network.</summary>
    public int TotalStride { get; }

    /// <summary>
    /// The smallest accepted input side: at least <see cref="TotalStride"/> (so the last feature map holds at least
    /// one pixel that is not padding alone) and large enough for every kernel.
    /// </summary>
    public int MinimumInputSize { get; }

    /// <summary>Side of the stem's output (the first stage's input).</summary>
    public int StemOutputSize { get; }

    /// <summary>Input side of each stage.</summary>
    public IReadOnlyList<int> StageInputSizes { get; }

    /// <summary>Output side of each stage (the resolution of all its nodes).</summary>
    public IReadOnlyList<int> StageOutputSizes { get; }

    /// <summary>The same network for <paramref name="size"/>² inputs.</summary>
    /// <exception cref="ArgumentException"><paramref name="size"/> is below <see cref="MinimumInputSize"/>.</exception>
    public ModelSpec WithInput(int size) => new(Name, InputChannels, size, NumClasses, Stem, Stages, Head);

    /// <inheritdoc/>
    public bool Equals(ModelSpec? other) =>
        other is not null && Name == other.Name && InputChannels == other.InputChannels && InputSize == other.InputSize
        && NumClasses == other.NumClasses && Stem.SequenceEqual(other.Stem) && Stages.SequenceEqual(other.Stages)
        && Head.SequenceEqual(other.Head);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Name, InputChannels, InputSize, NumClasses, Stages.Count);

    /// <summary>Compact representation.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Name} ({InputChannels}×{InputSize}×{InputSize} → {NumClasses}, {Stages.Count} stages)");

    private void ValidateLayout()
    {
        if (Stages.Count == 0) throw new ArgumentException($"Model '{Name}' has no stages.", "stages");
        if (Stem.Any(l => l is null) || Head.Any(l => l is null) || Stages.Any(s => s is null))
            throw new ArgumentException($"Model '{Name}' has a null layer or stage.");
        if (Stem.Any(l => l is GlobalAvgPoolSpec or LinearSpec))
            throw new ArgumentException($"Model '{Name}': the stem may hold only convolutions, batch norms, activations and max pools.", "stem");
        int n = Head.Count;
        if (n < 2 || Head[n - 2] is not GlobalAvgPoolSpec || Head[n - 1] is not LinearSpec
            || Head.Take(n - 2).Any(l => l is not (ConvSpec or BatchNormSpec or ActivationSpec)))
            throw new ArgumentException(
                $"Model '{Name}': the head must be convolutions/batch norms/activations, then a global average pool, then a linear layer.", "head");
        if (Classifier.OutFeatures != NumClasses)
            throw new ArgumentException($"Model '{Name}': the classifier has {Classifier.OutFeatures} outputs but numClasses is {NumClasses}.", "head");

        int channels = InputChannels;
        foreach (var layer in Stem) channels = layer.OutputChannels(channels);
        foreach (var stage in Stages)
        {
            if (stage.InChannels != channels)
                throw new ArgumentException($"Model '{Name}': stage '{stage.Name}' expects {stage.InChannels} input channels but receives {channels}.", "stages");
            channels = stage.OutChannels;
        }
        foreach (var layer in Head) channels = layer.OutputChannels(channels);
    }

    /// <summary>Sides [stem output, stage 0 output, ..., last stage output], or null when some layer gets an empty input.</summary>
    private int[]? TraceSizes(int inputSize)
    {
        var sizes = new int[Stages.Count + 1];
        int size = inputSize;
        foreach (var layer in Stem) size = size < 1 ? 0 : layer.OutputSize(size);
        sizes[0] = size;
        for (int s = 0; s < Stages.Count; s++)
            sizes[s + 1] = size = size < 1 ? 0 : Stages[s].OutputSize(size);
        foreach (var layer in Head) size = size < 1 ? 0 : layer.OutputSize(size);
        return size >= 1 && sizes.All(x => x >= 1) ? sizes : null;
    }

    private int FindMinimumInputSize()
    {
        const int limit = 1 << 16;
        for (int size = Math.Max(1, TotalStride); size <= limit; size++)
            if (TraceSizes(size) is not null) return size;
        throw new ArgumentException($"Model '{Name}' accepts no input side up to {limit}.");
    }
}
