using System.Globalization;
using IlgpuDdw.Nn;

namespace IlgpuDdw.Models;

/// <summary>
/// The torchvision state-dict name of each backbone tensor of a <see cref="DdwNet"/>, found from the spec's layer
/// order (the k-th convolution / batch norm / linear layer of a module, skipping activations and pools):
/// <list type="bullet">
/// <item>ResNet, ResNeXt (and <c>resnet_mini</c>): <c>conv1</c>, <c>bn1</c>; node j of stage s is <c>layer{s+1}.{j}</c> with
/// <c>conv1, bn1, conv2, bn2[, conv3, bn3]</c> and <c>downsample.0/1</c>; the classifier is <c>fc</c>.</item>
/// <item>MobileNetV2 (and <c>mobilenet_mini</c>): the stem is <c>features.0.0/1</c>; the blocks are <c>features.1</c>, <c>features.2</c>, ... in
/// order, each <c>conv.0.0, conv.0.1[, conv.1.0, conv.1.1], conv.P, conv.P+1</c> (the last convolution and batch norm
/// are direct children); the last 1×1 convolution is <c>features.N.0/1</c>; the classifier is <c>classifier.1</c>.</item>
/// <item>RegNet X: <c>stem.0/1</c>; node j of stage s is <c>trunk_output.block{s+1}.block{s+1}-{j}</c> with <c>f.a.0/1</c>,
/// <c>f.b.0/1</c>, <c>f.c.0/1</c> and <c>proj.0/1</c>; the classifier is <c>fc</c>.</item>
/// </list>
/// Wiring tensors (dense edge logits, routers) have no torchvision counterpart: they are named <c>ddw.</c> + their
/// IlgpuDdw name (e.g. <c>ddw.stages.0.wiring.routers.1.fc2.weight</c>).
/// </summary>
public static class TorchvisionNames
{
    /// <summary>The prefix of wiring tensors in a torchvision-named file.</summary>
    public const string WiringPrefix = "ddw.";

    /// <summary>The torchvision name of the tensor <paramref name="name"/> of a model of <paramref name="spec"/>.</summary>
    /// <exception cref="ArgumentException">A name that is not one of the model's.</exception>
    public static string Map(ModelSpec spec, string name)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(name);
        var parts = name.Split('.');
        string param = parts[^1];
        var family = spec.Stages[0].Nodes[0].Kind;
        int Index(int at) => int.TryParse(parts[at], NumberStyles.None, CultureInfo.InvariantCulture, out int v) ? v
            : throw new ArgumentException($"'{name}' is not a tensor name of {spec.Name}.");
        switch (parts[0])
        {
            case "stem" when parts.Length == 3:
            {
                int k = Ordinal(spec.Stem, Index(1), name);
                return family switch
                {
                    BlockKind.InvertedResidual => $"features.0.{k}.{param}",
                    BlockKind.RegNetX => $"stem.{k}.{param}",
                    _ => $"{(k == 0 ? "conv1" : k == 1 ? "bn1" : throw Unknown(spec, name))}.{param}",
                };
            }
            case "stages" when parts.Length == 7 && parts[2] == "nodes":
            {
                int s = Index(1), j = Index(3);
                if (s >= spec.Stages.Count || j >= spec.Stages[s].Nodes.Count) throw Unknown(spec, name);
                var node = spec.Stages[s].Nodes[j];
                bool shortcut = parts[4] == "shortcut";
                if (!shortcut && parts[4] != "main") throw Unknown(spec, name);
                var layers = shortcut ? node.ShortcutLayers : node.Layers;
                int k = Ordinal(layers, Index(5), name);
                switch (family)
                {
                    case BlockKind.InvertedResidual:
                    {
                        if (shortcut) throw Unknown(spec, name);
                        int block = 1 + spec.Stages.Take(s).Sum(x => x.Nodes.Count) + j;
                        int last = layers.Count(HasParameters) / 2 - 1;
                        string at = k / 2 < last ? $"{k / 2}.{k % 2}" : $"{last + k % 2}";
                        return $"features.{block}.conv.{at}.{param}";
                    }
                    case BlockKind.RegNetX:
                    {
                        string prefix = $"trunk_output.block{s + 1}.block{s + 1}-{j}";
                        return shortcut ? $"{prefix}.proj.{k}.{param}" : $"{prefix}.f.{"abc"[k / 2]}.{k % 2}.{param}";
                    }
                    default:
                        return shortcut ? $"layer{s + 1}.{j}.downsample.{k}.{param}" : $"layer{s + 1}.{j}.{(k % 2 == 0 ? "conv" : "bn")}{k / 2 + 1}.{param}";
                }
            }
            case "stages" when parts.Length > 3 && parts[2] == "wiring":
                return WiringPrefix + name;
            case "head" when parts.Length == 3:
            {
                int i = Index(1);
                if (i >= spec.Head.Count) throw Unknown(spec, name);
                if (spec.Head[i] is LinearSpec) return $"{(family == BlockKind.InvertedResidual ? "classifier.1" : "fc")}.{param}";
                int k = Ordinal(spec.Head, i, name);
                if (family != BlockKind.InvertedResidual) throw Unknown(spec, name);
                return $"features.{1 + spec.Stages.Sum(x => x.Nodes.Count)}.{k}.{param}";
            }
            default:
                throw Unknown(spec, name);
        }
    }

    /// <summary>Whether <paramref name="name"/> is a wiring tensor (no torchvision counterpart).</summary>
    public static bool IsWiring(string name) => name.Contains(".wiring.", StringComparison.Ordinal);

    private static bool HasParameters(LayerSpec l) => l is ConvSpec or BatchNormSpec or LinearSpec;

    private static int Ordinal(IReadOnlyList<LayerSpec> layers, int index, string name)
    {
        if (index >= layers.Count || !HasParameters(layers[index])) throw new ArgumentException($"'{name}': layer {index} holds no tensors.");
        return layers.Take(index).Count(HasParameters);
    }

    private static ArgumentException Unknown(ModelSpec spec, string name) => new($"'{name}' is not a tensor name of {spec.Name}.");
}
