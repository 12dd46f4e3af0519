using IlgpuDdw.Nn;

namespace IlgpuDdw.Models;

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

    public BlockKind Kind { get; }

    public int InChannels { get; }

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
