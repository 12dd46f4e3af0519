using IlgpuDdw.Nn;
namespace IlgpuDdw.Models;

/// <summary>
/// Named model specs. The ImageNet configs (224×224×3 inputs, 1000 classes) match torchvision's architectures
/// exactly (same layers, channels, strides, paddings and groups; parameter counts equal torchvision's); each
/// torchvision "layer" / (t, c, n, s) group / RegNet stage becomes one DDW stage. The mini configs take 28×28×1 inputs
/// and 10 classes (Fashion-MNIST). Run any config at another resolution with <see cref="ModelSpec.WithInput"/>.
/// </summary>
public static class ModelZoo
{
    private static readonly (string Name, Func<ModelSpec> Build)[] Builders =
    [
        ("resnet18", () => ResNet("resnet18", [2, 2, 2, 2], bottleneck: false)),
        ("resnet34", () => ResNet("resnet34", [3, 4, 6, 3], bottleneck: false)),
        ("resnet50", () => ResNet("resnet50", [3, 4, 6, 3], bottleneck: true)),
        ("resnext50_32x4d", () => ResNet("resnext50_32x4d", [3, 4, 6, 3], bottleneck: true, groups: 32, widthPerGroup: 4)),
        ("mobilenet_v2", MobileNetV2),
        ("regnet_x_400mf", () => RegNetX("regnet_x_400mf", [1, 2, 7, 12], [32, 64, 160, 400], groupWidth: 16)),
        ("regnet_x_800mf", () => RegNetX("regnet_x_800mf", [1, 3, 7, 5], [64, 128, 288, 672], groupWidth: 16)),
        ("resnet_mini", ResNetMini),
        ("resnet_micro", ResNetMicro),
        ("resnet_micro5", () => ResNetMicro("resnet_micro5", 5)),
        ("mobilenet_mini", MobileNetMini),
    ];

    /// <summary>Every known model name, in a fixed order.</summary>
    public static IReadOnlyList<string> Names { get; } = Array.AsReadOnly(Builders.Select(b => b.Name).ToArray());

    /// <summary>The spec named <paramref name="name"/> (case-insensitive) at its native input size.</summary>
    /// <exception cref="ArgumentException">Unknown name; the message lists the known names.</exception>
    public static ModelSpec Get(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        foreach (var (known, build) in Builders)
            if (string.Equals(known, name, StringComparison.OrdinalIgnoreCase)) return build();
        throw new ArgumentException($"Unknown model '{name}'. Known models: {string.Join(", ", Names)}.", nameof(name));
    }

    /// <summary>The spec named <paramref name="name"/> for <paramref name="inputSize"/>² inputs.</summary>
    /// <exception cref="ArgumentException">Unknown name, or an input below the model's minimum.</exception>
    public static ModelSpec Get(string name, int inputSize) => Get(name).WithInput(inputSize);

    /// <summary>
    /// The spec named <paramref name="name"/> for a data set of <paramref name="channels"/>-channel images of
    /// <paramref name="classes"/> classes (<see cref="ModelSpec.WithData"/>) at <paramref name="inputSize"/>² (default:
    /// the model's own size).
    /// </summary>
    /// <exception cref="ArgumentException">Unknown name, or an input below the model's minimum.</exception>
    public static ModelSpec Get(string name, int? inputSize, int channels, int classes)
    {
        var spec = Get(name).WithData(channels, classes);
        return inputSize is int s && s != spec.InputSize ? spec.WithInput(s) : spec;
    }

    private const int ImageNetSize = 224;
    private const int ImageNetClasses = 1000;
    private const int MnistSize = 28;
    private const int MnistClasses = 10;

    private static LayerSpec Bn(int channels) => new BatchNormSpec(channels);

    private static LayerSpec Act(ActivationKind kind) => new ActivationSpec(kind);

    private static LayerSpec[] ClassifierHead(int features, int classes) => [new GlobalAvgPoolSpec(), new LinearSpec(features, classes)];

    /// <summary>Stages of <c>count</c> nodes each, node 0 carrying the width change and the stride.</summary>
    private static List<StageSpec> Stages(string prefix, int inChannels, IReadOnlyList<(int Count, int Width, int Stride)> stages,
        Func<int, int, int, BlockSpec> block)
    {
        var result = new List<StageSpec>();
        int channels = inChannels;
        for (int s = 0; s < stages.Count; s++)
        {
            var (count, width, stride) = stages[s];
            result.Add(StageSpec.Repeat($"{prefix}{s + 1}", count, channels, width, stride, block));
            channels = width;
        }
        return result;
    }

    /// <summary>
    /// torchvision ResNet / ResNeXt: 7×7/2 conv 3→64, BN, ReLU, 3×3/2 max pool, four layers at planes 64/128/256/512
    /// (strides 1/2/2/2, expansion 1 or 4), global average pool, Linear(512·expansion, 1000).
    /// Bottleneck width = planes·(widthPerGroup/64)·groups with the stride on the 3×3 convolution (v1.5).
    /// </summary>
    private static ModelSpec ResNet(string name, int[] layers, bool bottleneck, int groups = 1, int widthPerGroup = 64)
    {
        int expansion = bottleneck ? 4 : 1;
        int[] planes = [64, 128, 256, 512];
        var stageShapes = layers.Select((count, i) => (count, planes[i] * expansion, i == 0 ? 1 : 2)).ToArray();
        Func<int, int, int, BlockSpec> block = !bottleneck
            ? BlockSpec.Basic
            : (cin, cout, stride) =>
            {
                int width = cout / expansion * widthPerGroup / 64 * groups;
                return groups == 1
                    ? BlockSpec.Bottleneck(cin, cout, stride, width)
                    : BlockSpec.ResNeXtBottleneck(cin, cout, stride, width, groups);
            };
        LayerSpec[] stem = [new ConvSpec(3, 64, 7, 2, 3), Bn(64), Act(ActivationKind.Relu), new MaxPoolSpec(3, 2, 1)];
        return new ModelSpec(name, 3, ImageNetSize, ImageNetClasses, stem, Stages("layer", 64, stageShapes, block),
            ClassifierHead(planes[^1] * expansion, ImageNetClasses));
    }

    /// <summary>
    /// MobileNetV2-style network: 3×3 conv (stride <paramref name="stemStride"/>) to <paramref name="stemWidth"/>,
    /// BN, ReLU6; one stage per (t, c, n, s) group of inverted residuals; 1×1 conv to <paramref name="lastWidth"/>,
    /// BN, ReLU6; global average pool; linear classifier.
    /// </summary>
    private static ModelSpec MobileNet(string name, int inputChannels, int inputSize, int classes, int stemWidth, int stemStride,
        (int T, int C, int N, int S)[] settings, int lastWidth)
    {
        var stages = new List<StageSpec>();
        int channels = stemWidth;
        for (int g = 0; g < settings.Length; g++)
        {
            var (t, c, n, s) = settings[g];
            stages.Add(StageSpec.Repeat($"stage{g + 1}", n, channels, c, s, (cin, cout, stride) => BlockSpec.InvertedResidual(cin, cout, stride, t)));
            channels = c;
        }
        LayerSpec[] stem = [ConvSpec.Conv3x3(inputChannels, stemWidth, stemStride), Bn(stemWidth), Act(ActivationKind.Relu6)];
        LayerSpec[] head = [ConvSpec.Conv1x1(channels, lastWidth), Bn(lastWidth), Act(ActivationKind.Relu6), .. ClassifierHead(lastWidth, classes)];
        return new ModelSpec(name, inputChannels, inputSize, classes, stem, stages, head);
    }

    /// <summary>torchvision mobilenet_v2 (width multiplier 1.0): stem 32 stride 2, seven (t, c, n, s) groups, last width 1280.</summary>
    private static ModelSpec MobileNetV2() => MobileNet("mobilenet_v2", 3, ImageNetSize, ImageNetClasses, 32, 2,
        [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)], 1280);

    /// <summary>
    /// torchvision RegNet X (no squeeze-excitation): SimpleStemIN 3×3/2 conv 3→32, BN, ReLU; stages of ResBottleneckBlocks
    /// at stride 2 with bottleneck multiplier 1.0 and the given group width; global average pool; Linear(last, 1000).
    /// </summary>
    private static ModelSpec RegNetX(string name, int[] depths, int[] widths, int groupWidth)
    {
        const int stemWidth = 32;
        var stageShapes = depths.Select((d, i) => (d, widths[i], 2)).ToArray();
        LayerSpec[] stem = [ConvSpec.Conv3x3(3, stemWidth, 2), Bn(stemWidth), Act(ActivationKind.Relu)];
        return new ModelSpec(name, 3, ImageNetSize, ImageNetClasses, stem,
            Stages("block", stemWidth, stageShapes, (cin, cout, stride) => BlockSpec.RegNetX(cin, cout, stride, groupWidth)),
            ClassifierHead(widths[^1], ImageNetClasses));
    }

    /// <summary>
    /// Small ResNet for 28×28×1: 3×3 conv 1→16, BN, ReLU (no max pool); three stages of 3 basic blocks at widths
    /// 16/32/64 and strides 1/2/2 (torchvision-style projection shortcuts); global average pool; Linear(64, 10).
    /// </summary>
    private static ModelSpec ResNetMini()
    {
        LayerSpec[] stem = [ConvSpec.Conv3x3(1, 16), Bn(16), Act(ActivationKind.Relu)];
        return new ModelSpec("resnet_mini", 1, MnistSize, MnistClasses, stem,
            Stages("layer", 16, [(3, 16, 1), (3, 32, 2), (3, 64, 2)], BlockSpec.Basic), ClassifierHead(64, MnistClasses));
    }

    /// <summary>
    /// resnet_mini at half width for quick CPU runs: 3×3 conv 1→8, BN, ReLU; three stages of the given number of
    /// basic blocks (3 for <c>resnet_micro</c>) at widths 8/16/32 and strides 1/2/2; global average pool; Linear(32, 10).
    /// <c>resnet_micro5</c> has 5 nodes per stage, so 15 edges (2¹⁵ possible wirings) instead of 6: the research
    /// configuration for per-instance wiring, where a 3-node stage has too few edges to wire many ways.
    /// </summary>
    private static ModelSpec ResNetMicro() => ResNetMicro("resnet_micro", 3);

    private static ModelSpec ResNetMicro(string name, int nodes)
    {
        LayerSpec[] stem = [ConvSpec.Conv3x3(1, 8), Bn(8), Act(ActivationKind.Relu)];
        return new ModelSpec(name, 1, MnistSize, MnistClasses, stem,
            Stages("layer", 8, [(nodes, 8, 1), (nodes, 16, 2), (nodes, 32, 2)], BlockSpec.Basic), ClassifierHead(32, MnistClasses));
    }

    /// <summary>
    /// Small MobileNetV2 for 28×28×1: 3×3 conv 1→16 (stride 1), BN, ReLU6; (t, c, n, s) = (6, 16, 2, 1), (6, 24, 3, 2),
    /// (6, 48, 3, 2); 1×1 conv to 256, BN, ReLU6; global average pool; Linear(256, 10).
    /// </summary>
    private static ModelSpec MobileNetMini() => MobileNet("mobilenet_mini", 1, MnistSize, MnistClasses, 16, 1,
        [(6, 16, 2, 1), (6, 24, 3, 2), (6, 48, 3, 2)], 256);
}
