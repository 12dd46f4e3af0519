using IlgpuDdw.IO;
using IlgpuDdw.Models;
using IlgpuDdw.Training;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Tests;

/// <summary>Weights go out under torchvision's state-dict names and come back into any wiring.</summary>
[Collection("cpu-cli")]
public sealed class TorchvisionInteropTests(DeviceFixture fx)
{
    public static TheoryData<string> Models() => [.. ModelZoo.Names];

    /// <summary>Names torchvision's model of that family has (checked against torchvision's definitions).</summary>
    private static readonly Dictionary<string, string[]> KnownNames = new()
    {
        ["resnet18"] = ["conv1.weight", "bn1.running_var", "bn1.num_batches_tracked", "layer1.0.conv1.weight", "layer1.1.bn2.bias", "layer2.0.downsample.0.weight", "layer2.0.downsample.1.num_batches_tracked", "layer4.1.conv2.weight", "fc.weight", "fc.bias"],
        ["resnet50"] = ["layer1.0.conv3.weight", "layer1.0.bn3.running_mean", "layer1.0.downsample.1.weight", "layer3.5.conv2.weight", "fc.bias"],
        ["resnext50_32x4d"] = ["layer1.0.conv2.weight", "layer4.2.bn3.weight", "fc.weight"],
        ["resnet_mini"] = ["conv1.weight", "layer3.2.bn2.weight", "layer2.0.downsample.0.weight", "fc.weight"],
        ["resnet_micro5"] = ["conv1.weight", "layer1.4.conv2.weight", "layer3.4.bn2.running_var", "layer3.0.downsample.0.weight", "fc.weight"],
        ["mobilenet_v2"] = ["features.0.0.weight", "features.0.1.num_batches_tracked", "features.1.conv.0.0.weight", "features.1.conv.0.1.weight", "features.1.conv.1.weight", "features.1.conv.2.running_var", "features.2.conv.0.0.weight", "features.2.conv.1.0.weight", "features.2.conv.2.weight", "features.2.conv.3.bias", "features.17.conv.2.weight", "features.18.0.weight", "features.18.1.bias", "classifier.1.weight"],
        ["mobilenet_mini"] = ["features.0.0.weight", "features.1.conv.2.weight", "features.9.0.weight", "classifier.1.bias"],
        ["regnet_x_400mf"] = ["stem.0.weight", "stem.1.running_mean", "trunk_output.block1.block1-0.proj.0.weight", "trunk_output.block1.block1-0.f.a.0.weight", "trunk_output.block1.block1-0.f.b.1.num_batches_tracked", "trunk_output.block4.block4-11.f.c.1.weight", "fc.weight"],
        ["regnet_x_800mf"] = ["trunk_output.block2.block2-2.f.b.0.weight", "fc.bias"],
    };

    /// <summary>len(torchvision.models.X().state_dict()).</summary>
    private static readonly Dictionary<string, int> TorchvisionKeyCount = new() { ["resnet18"] = 122, ["resnet50"] = 320, ["mobilenet_v2"] = 314 };

    [Theory]
    [MemberData(nameof(Models))]
    public void Export_UsesTorchvisionNames_AndImport_FillsAnyWiring(string name)
    {
        var spec = ModelZoo.Get(name, ModelZoo.Get(name).MinimumInputSize);
        using var dir = new TempDirectory();
        string file = dir.File("tv.safetensors");
        using var chain = new DdwNet(fx.Device, spec, new WiringConfig { Kind = WiringKind.Chain }, seed: 1);
        chain.SaveTorchvision(file, batchesTracked: 7);
        var saved = SafeTensors.Load(file).Tensors;
        if (KnownNames.TryGetValue(name, out var known))
            foreach (var k in known) Assert.True(saved.ContainsKey(k), $"{name}: no '{k}' in {string.Join(", ", saved.Keys.Take(12))}, ...");
        if (TorchvisionKeyCount.TryGetValue(name, out int count)) Assert.Equal(count, saved.Count);
        var tracked = saved.Where(t => t.Key.EndsWith(".num_batches_tracked", StringComparison.Ordinal)).ToArray();
        Assert.Equal(spec.Stem.Concat(spec.Head).Count(l => l is IlgpuDdw.Nn.BatchNormSpec)
            + spec.Stages.SelectMany(s => s.Nodes).Sum(n => n.Layers.Concat(n.ShortcutLayers).Count(l => l is IlgpuDdw.Nn.BatchNormSpec)), tracked.Length);
        Assert.All(tracked, t => Assert.Equal((SafeTensorDType.Int64, 0, 7L), (t.Value.DType, t.Value.Shape.Count, BitConverter.ToInt64(t.Value.Data))));

        // Back into dynamic wiring (another seed): every backbone tensor is the exported one; the routers stay as initialised.
        using var dynamic = new DdwNet(fx.Device, spec, new WiringConfig { Kind = WiringKind.Dynamic }, seed: 2);
        var routersBefore = dynamic.StateDict().Entries.Where(e => TorchvisionNames.IsWiring(e.Name)).ToArray();
        var result = dynamic.LoadTorchvision(file);
        var source = chain.StateDict().Entries.ToDictionary(e => e.Name);
        foreach (var e in dynamic.StateDict().Entries)
            if (TorchvisionNames.IsWiring(e.Name)) Assert.Equal(routersBefore.Single(r => r.Name == e.Name).Data, e.Data);
            else Assert.Equal(source[e.Name].Data, e.Data);
        Assert.Equal(source.Count, result.Loaded);
        Assert.Equal(routersBefore.Length, result.KeptInitial.Count);
        Assert.Empty(result.Unused);

        // Dynamic out and in again: the routers travel under ddw.* names (small models only, to keep the suite fast).
        if (source.Values.Sum(x => (long)x.Data.Length) > 5_000_000) return;
        string withWiring = dir.File("ddw.safetensors");
        dynamic.SaveTorchvision(withWiring);
        Assert.Contains(SafeTensors.Load(withWiring).Tensors.Keys, k => k.StartsWith("ddw.stages.", StringComparison.Ordinal) == routersBefore.Length > 0);
        using var again = new DdwNet(fx.Device, spec, new WiringConfig { Kind = WiringKind.Dynamic }, seed: 3);
        Assert.Empty(again.LoadTorchvision(withWiring).KeptInitial);
        Assert.Equal(dynamic.StateDict().Entries.Select(e => e.Data), again.StateDict().Entries.Select(e => e.Data));
        fx.Device.TrimPool();
    }

    [Fact]
    public void Import_SumsAnRgbStem_KeepsAnotherClassifier_AndNamesWhatDoesNotFit()
    {
        using var dir = new TempDirectory();
        string file = dir.File("imagenet.safetensors");
        using (var imageNet = new DdwNet(fx.Device, ModelZoo.Get("resnet18", 32), new WiringConfig { Kind = WiringKind.Chain }, seed: 1))
        {
            imageNet.SaveTorchvision(file);
            var rgb = imageNet.StateDict().Entries.First(e => e.Name == "stem.0.weight");
            using var grey = new DdwNet(fx.Device, ModelZoo.Get("resnet18", 32, 1, 10), new WiringConfig { Kind = WiringKind.Dense }, seed: 2);
            var result = grey.LoadTorchvision(file);
            var stem = grey.StateDict().Entries.First(e => e.Name == "stem.0.weight").Data;
            Assert.Equal(rgb.Data[0] + rgb.Data[49] + rgb.Data[98], stem[0], 5);
            Assert.Contains(result.Adapted, a => a.StartsWith("conv1.weight [64, 3, 7, 7] summed", StringComparison.Ordinal));
            Assert.Equal(2, result.KeptInitial.Count(k => k.StartsWith("fc.", StringComparison.Ordinal)));
        }
        using var mobile = new DdwNet(fx.Device, ModelZoo.Get("mobilenet_v2", 32), new WiringConfig { Kind = WiringKind.Chain });
        var e = Assert.Throws<InvalidDataException>(() => mobile.LoadTorchvision(file));
        Assert.Contains("missing 'features.0.0.weight'", e.Message);
        fx.Device.TrimPool();
    }

    [Fact]
    public void Cli_ExportAndImport()
    {
        using var dir = new TempDirectory();
        string checkpoint = dir.File("model.safetensors");
        using (var net = new DdwNet(fx.Device, ModelZoo.Get("resnet_mini"), new WiringConfig { Kind = WiringKind.Dynamic }, seed: 4))
            Checkpoint.Save(checkpoint, net);
        var (code, output, err) = CliTests.Run("export", "--checkpoint", checkpoint, "--format", "torchvision");
        Assert.True(code == 0, err);
        string exported = dir.File("model.torchvision.safetensors");
        Assert.Contains($"wrote {exported}", output);
        Assert.Contains("layer1.0.conv1.weight", SafeTensors.Load(exported).Tensors.Keys);
        (code, _, err) = CliTests.Run("export", "--checkpoint", checkpoint, "--format", "onnx");
        Assert.Equal(2, code);
        Assert.Contains("--format onnx", err);

        string imported = dir.File("imported.safetensors");
        (code, output, err) = CliTests.Run("import", "--torchvision", exported, "--model", "resnet_mini", "--wiring", "dense", "--out", imported);
        Assert.True(code == 0, err);
        Assert.Contains("loaded", output);
        using var back = Checkpoint.LoadModel(fx.Device, imported);
        using var original = Checkpoint.LoadModel(fx.Device, checkpoint);
        Assert.Equal(original.StateDict().Entries.First(x => x.Name == "stages.2.nodes.1.main.3.weight").Data,
            back.StateDict().Entries.First(x => x.Name == "stages.2.nodes.1.main.3.weight").Data);
        fx.Device.TrimPool();
    }
}
