using IlgpuDdw.IO;
using IlgpuDdw.Models;
using IlgpuDdw.Training;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Tests;

/// <summary>Precise batch norm: the trainer option and <c>ddw recalibrate-bn</c> on models whose wiring cuts edges.</summary>
[Collection("cpu-cli")]
public sealed class RecalibrateBnTests(DeviceFixture fx)
{
    // logit 0: router outputs near 0.5, so τ = 0.5 cuts about half of the edges (some nodes are off)
    private static WiringConfig Cutting() => new() { Kind = WiringKind.Dynamic, Gate = GateKind.Continuous, InitialEdgeLogit = 0f };

    private static TrainerOptions Options(int recalibrate) => new()
    {
        Epochs = 1, BatchSize = 8, EvalBatchSize = 8, LearningRate = 0.05f, Seed = 3, WarmupFraction = 0.1f, RecalibrateBnImages = recalibrate,
    };

    [Fact]
    public void TrainerOption_RecalibratesAfterTheLastEpoch_ParametersUnchanged()
    {
        var d = fx.Device;
        var train = TrainerTests.Synthetic(16, 1);
        var test = TrainerTests.Synthetic(8, 2);
        using var plain = new DdwNet(d, ModelZoo.Get("resnet_mini", 8), Cutting(), seed: 1);
        using var recalibrated = new DdwNet(d, ModelZoo.Get("resnet_mini", 8), Cutting(), seed: 1);
        using var a = new Trainer(plain, train, test, Options(0));
        using var b = new Trainer(recalibrated, train, test, Options(12));
        a.Run();
        b.Run();
        Assert.Null(a.LastRecalibration);
        var (result, before) = b.LastRecalibration!.Value;
        Assert.Equal(12, result.Images);
        Assert.Equal(2, result.Batches); // batches of the evaluation size 8: 8 + 4
        Assert.Equal(recalibrated.NamedModules().Count(m => m.Module is Nn.BatchNorm2d), result.Layers);
        Assert.Equal(a.History[^1].TestAccuracy, before); // the same model before the pass
        Assert.True(a.History[^1].KeepRate < 0.95, "the wiring cut no edges");

        var pa = plain.NamedParameters().ToDictionary(p => p.Name, p => p.Tensor.ToArray());
        foreach (var (name, p) in recalibrated.NamedParameters()) Assert.Equal(pa[name], p.ToArray());
        var ba = plain.NamedBuffers().ToDictionary(p => p.Name, p => p.Tensor.ToArray());
        int changed = 0, total = 0;
        foreach (var (name, t) in recalibrated.NamedBuffers())
        {
            var values = t.ToArray();
            Assert.All(values, v => Assert.True(float.IsFinite(v), $"{name} holds {v}"));
            total++;
            if (!values.AsSpan().SequenceEqual(ba[name])) changed++;
        }
        Assert.Equal(total, changed);
    }

    [Fact]
    public void Command_WritesANewCheckpoint_WithNewRunningStatistics_AndReportsAccuracyBeforeAndAfter()
    {
        var d = fx.Device;
        using var dir = new TempDirectory();
        string input = Path.Combine(dir.Path, "cut.safetensors");
        using (var net = new DdwNet(d, ModelZoo.Get("resnet_mini"), Cutting(), seed: 2))
            Checkpoint.Save(input, net);
        var inputBytes = File.ReadAllBytes(input);

        var (code, output, err) = CliTests.Run("recalibrate-bn", "--checkpoint", input, "--images", "16", "--test-images", "8", "--batch", "8", "--device", "cpu");
        Assert.True(code == 0, err);
        Assert.Matches(@"before\s*│\s*\d+\.\d\d%", output);
        Assert.Matches(@"after\s*│\s*\d+\.\d\d%", output);
        Assert.Contains("on 16 training images (2 batches of up to 8); 8 test images", output);
        string written = Path.Combine(dir.Path, "cut.recalibrated.safetensors");
        Assert.Contains($"wrote {written}", output);
        Assert.Equal(inputBytes, File.ReadAllBytes(input)); // the input is not replaced

        var before = SafeTensors.Load(input);
        var after = SafeTensors.Load(written);
        Assert.Equal("16", after.Metadata["bn_recalibrated_images"]);
        var stats = before.Tensors.Keys.Where(k => k.EndsWith(".running_mean", StringComparison.Ordinal) || k.EndsWith(".running_var", StringComparison.Ordinal)).ToArray();
        Assert.NotEmpty(stats);
        bool Changed(string k) => !before.Tensors[k].ToFloat32().AsSpan().SequenceEqual(after.Tensors[k].ToFloat32());
        // every always-live layer (stem, node 0 of each stage) changed; a node off for every image keeps its statistics
        Assert.All(stats.Where(k => k.StartsWith("stem.", StringComparison.Ordinal) || k.Contains(".nodes.0.", StringComparison.Ordinal)),
            k => Assert.True(Changed(k), $"{k} did not change"));
        Assert.True(stats.Count(Changed) > stats.Length / 2, $"only {stats.Count(Changed)} of {stats.Length} statistics changed");
        foreach (var k in before.Tensors.Keys.Except(stats))
            Assert.Equal(before.Tensors[k].ToFloat32(), after.Tensors[k].ToFloat32()); // parameters unchanged

        (code, _, err) = CliTests.Run("recalibrate-bn", "--checkpoint", input, "--images", "24", "--out", input, "--device", "cpu");
        Assert.NotEqual(0, code);
        Assert.Contains("is the input checkpoint; pass --overwrite to replace it", err);
        (code, _, err) = CliTests.Run("recalibrate-bn", "--checkpoint", input, "--images", "0", "--device", "cpu");
        Assert.NotEqual(0, code);
        Assert.Contains("--images 0 must be at least 1", err);
        Assert.Equal(inputBytes, File.ReadAllBytes(input));
    }
}
