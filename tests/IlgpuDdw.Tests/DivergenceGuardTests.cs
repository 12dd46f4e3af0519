using IlgpuDdw.IO;
using IlgpuDdw.Models;
using IlgpuDdw.Training;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Tests;

/// <summary>Divergence guards: training stops before the step that would corrupt the weights, and nothing non-finite is saved or loaded.</summary>
[Collection("cpu-cli")]
public sealed class DivergenceGuardTests(DeviceFixture fx)
{
    private static TrainerOptions Options(int epochs) => new()
    {
        Epochs = epochs, BatchSize = 8, EvalBatchSize = 16, LearningRate = 0.05f, Seed = 3, WarmupFraction = 0.1f,
    };

    private DdwNet Model(WiringKind kind = WiringKind.Chain, int seed = 2) =>
        new(fx.Device, ModelZoo.Get("resnet_mini", 8), new WiringConfig { Kind = kind }, seed);

    private static bool AllFinite(DdwNet model) => model.StateDict().Entries.All(e => e.Data.All(float.IsFinite));

    [Fact]
    public void ExplodingLearningRate_StopsBeforeTheWeightsGoNonFinite_AndNoBadCheckpointIsKept()
    {
        using var dir = new TempDirectory();
        string ckpt = dir.File("run.safetensors");
        using var model = Model();
        using var t = new Trainer(model, TrainerTests.Synthetic(32, 5), TrainerTests.Synthetic(16, 6), Options(3) with { LearningRate = 1e6f, WarmupFraction = 0 })
        {
            CheckpointPath = ckpt,
        };
        var e = Assert.Throws<TrainingDivergedException>(() => t.Run());
        Assert.Contains("before the optimizer step", e.Message);
        Assert.True(AllFinite(model), "a weight became non-finite before the guard stopped training");
        if (File.Exists(ckpt))
        {
            using var saved = Checkpoint.LoadModel(fx.Device, ckpt); // refuses non-finite tensors
            Assert.Contains(ckpt, e.Message);
        }
        else
        {
            Assert.Contains("No checkpoint was written", e.Message);
        }
        fx.Device.TrimPool();
    }

    [Fact]
    public void GradientNormAboveTheLimit_StopsBeforeTheFirstStep_WeightsUnchanged()
    {
        using var model = Model();
        var before = model.Parameters().Select(x => x.ToArray()).ToArray(); // (batch-norm buffers do move in the forward pass)
        using var t = new Trainer(model, TrainerTests.Synthetic(16, 5), TrainerTests.Synthetic(8, 6), Options(1) with { MaxGradNorm = 1e-3f });
        var e = Assert.Throws<TrainingDivergedException>(() => t.Run());
        Assert.Contains("gradient norm became", e.Message);
        Assert.Contains("--max-grad-norm", e.Message);
        Assert.Equal(0, t.Step);
        var after = model.Parameters().Select(x => x.ToArray()).ToArray();
        for (int i = 0; i < before.Length; i++) Assert.Equal(before[i], after[i]);
    }

    [Fact]
    public void LossAboveTheLimit_OrTheRatio_Stops()
    {
        using (var model = Model())
        using (var t = new Trainer(model, TrainerTests.Synthetic(16, 5), TrainerTests.Synthetic(8, 6), Options(1) with { MaxLoss = 0.5f }))
        {
            var e = Assert.Throws<TrainingDivergedException>(() => t.Run());
            Assert.Contains("loss became", e.Message);
            Assert.Contains("MaxLoss (--max-loss) = 0.5", e.Message);
        }
        using (var model = Model())
        using (var t = new Trainer(model, TrainerTests.Synthetic(16, 5), TrainerTests.Synthetic(8, 6), Options(2) with { MaxLossRatio = 1e-3f }))
        {
            t.RunEpoch(); // no ratio in the first epoch
            var e = Assert.Throws<TrainingDivergedException>(() => t.RunEpoch());
            Assert.Contains("--max-loss-ratio", e.Message);
            Assert.Contains("at epoch 2, step 3", e.Message);
        }
    }

    [Fact]
    public void GradientNorm_IsTheGlobalL2NormOfTheLastStepsGradient()
    {
        using var model = Model(WiringKind.Dynamic);
        using var t = new Trainer(model, TrainerTests.Synthetic(16, 5), TrainerTests.Synthetic(8, 6), Options(1));
        Assert.True(float.IsNaN(t.LastGradientNorm));
        t.Run();
        double sum = 0;
        foreach (var p in model.Parameters())
            foreach (var g in p.GradToArray()) sum += (double)g * g;
        Assert.True(sum > 0);
        Assert.Equal(Math.Sqrt(sum), t.LastGradientNorm, Math.Sqrt(sum) * 1e-4);
    }

    [Fact]
    public void Save_RefusesNonFiniteTensors_AndLeavesTheExistingCheckpoint()
    {
        using var dir = new TempDirectory();
        string path = dir.File("m.safetensors");
        using var model = Model();
        Checkpoint.Save(path, model);
        var good = File.ReadAllBytes(path);
        var (name, tensor) = model.NamedParameters().First();
        var v = tensor.ToArray();
        v[1] = float.PositiveInfinity;
        tensor.CopyFrom(v);
        var e = Assert.Throws<TrainingDivergedException>(() => Checkpoint.Save(path, model));
        Assert.Contains($"'{name}'", e.Message);
        Assert.Contains("at index 1", e.Message);
        Assert.Equal(good, File.ReadAllBytes(path));
    }

    [Fact]
    public void Load_And_Eval_RefuseACheckpointWithNonFiniteWeights()
    {
        using var dir = new TempDirectory();
        string path = dir.File("nan.safetensors");
        using (var model = DdwNet.Create(fx.Device, "resnet_mini", new WiringConfig { Kind = WiringKind.Chain }))
            Checkpoint.Save(path, model);
        // What an older version wrote after a divergence: a NaN in a weight, with a valid checksum.
        var file = SafeTensors.Load(path);
        string victim = file.Tensors.Keys.Skip(3).First();
        var tensors = file.Tensors.Select(kv =>
        {
            if (kv.Key != victim) return kv;
            var data = kv.Value.ToFloat32();
            data[2] = float.NaN;
            return new KeyValuePair<string, SafeTensor>(kv.Key, SafeTensor.FromFloat32([.. kv.Value.Shape], data));
        }).ToList();
        SafeTensors.Save(path, tensors, file.Metadata);

        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.LoadModel(fx.Device, path));
        Assert.Contains($"'{victim}'", e.Message);
        var (code, _, err) = CliTests.Run("eval", "--checkpoint", path, "--device", "cpu", "--test-images", "8");
        Assert.Equal(1, code);
        var line = Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains($"tensor '{victim}' holds NaN at index 2", line);
    }
}
