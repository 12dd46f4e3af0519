using IlgpuDdw.Autograd;
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

    /// <summary>A term that is 0 except at one step, where it is NaN (no gradient: a constant).</summary>
    private sealed class NanAt(int step) : IObjectiveTerm
    {
        public string Name => "nan_at";

        public Tensor Compute(Tape tape, ObjectiveContext context) =>
            tape.Own(Tensor.FromArray(context.Model.Device, [context.Step == step ? float.NaN : 0f], 1));
    }

    [Fact]
    public void ABadStepInsideALoggingInterval_StopsOnTheDevice_AsIfEveryStepWereRead()
    {
        (float[][] Weights, float[] Momentum, int Step, int Losses, string Message) Train(int interval)
        {
            using var model = Model(WiringKind.Dynamic);
            using var t = new Trainer(model, TrainerTests.Synthetic(48, 5), TrainerTests.Synthetic(8, 6), Options(1) with { LogInterval = interval },
                [new CrossEntropyTerm(), new NanAt(3)]);
            var e = Assert.Throws<TrainingDivergedException>(() => t.Run());
            var momentum = t.Optimizer.StateDict().Values.SelectMany(v => v).ToArray();
            return (model.StateDict().Entries.Select(x => x.Data).ToArray(), momentum, t.Step, t.StepLosses.Count, e.Message);
        }
        var every = Train(1);
        var queued = Train(6); // steps 4, 5 and 6 are queued after the bad one before the host reads anything
        Assert.Equal(3, every.Step);
        Assert.Equal(3, queued.Step);
        Assert.Equal(3, queued.Losses);
        Assert.Contains("training loss became NaN at epoch 1, step 4", queued.Message);
        Assert.Equal(every.Message, queued.Message);
        Assert.Equal(every.Momentum, queued.Momentum);
        Assert.True(queued.Momentum.Any(v => v != 0f), "three good steps moved the momentum");
        // the parameters are those after step 3 in both (batch-norm running statistics move in every forward pass)
        using var reference = Model(WiringKind.Dynamic);
        var names = reference.StateDict().Entries.Select(x => x.Name).ToArray();
        for (int i = 0; i < names.Length; i++)
            if (!names[i].Contains("running_") && !names[i].Contains("num_batches"))
                Assert.Equal(every.Weights[i], queued.Weights[i]);
    }

    [Fact]
    public void TheDeviceGuard_MatchesItsReference()
    {
        var d = fx.Device;
        float[][] records =
        [
            [0.5f, 0.25f, 7f, 4f], [float.NaN, 0f, 7f, 4f], [0.5f, float.PositiveInfinity, 7f, 4f], [2f, 0.25f, 7f, 4f], [0.5f, 1.6f, 7f, 4f],
            [0.5f, 0.25f, 7f, float.NaN], [0.5f, 0.25f, 7f, float.PositiveInfinity], [0.5f, 0.25f, 7f, 10.25f], [0.5f, 0.25f, 7f, 9f],
            [1.1f, 0f, 7f, 0f],
        ];
        foreach (var (maxLoss, lossLimit, maxGradNorm) in new[] { (2f, 1.5f, 3f), (0f, 0f, 0f), (1.5f, 0f, 3.2f) })
        {
            var status = new float[1 + records.Length * 4];
            for (int r = 0; r < records.Length; r++) records[r].CopyTo(status, 1 + r * 4);
            using var buffer = Tensor.FromArray(d, status, status.Length);
            int expected = 0;
            for (int r = 0; r < records.Length; r++)
            {
                d.Kernels.StepGuard(d.Stream, 1, 1, 1, 2, r, 4, maxLoss, lossLimit, maxGradNorm, buffer.View);
                bool stops = IlgpuDdw.Kernels.Reference.OptimizerReference.StepStops(records[r].AsSpan(0, 2), records[r][3], maxLoss, lossLimit, maxGradNorm);
                if (stops && expected == 0) expected = r + 1;
                Assert.Equal(expected, (int)buffer.ToArray()[0]);
            }
            Assert.NotEqual(0, expected); // NaN and ∞ stop whatever the limits
        }
        Assert.False(IlgpuDdw.Kernels.Reference.OptimizerReference.StepStops([0.5f, 0.25f], 4f, 2f, 1.5f, 3f));
        Assert.True(IlgpuDdw.Kernels.Reference.OptimizerReference.StepStops([0.5f, 0.25f], 10.25f, 2f, 1.5f, 3f)); // norm 3.2 > 3
        Assert.True(IlgpuDdw.Kernels.Reference.OptimizerReference.StepStops([1.6f, 0f], 0f, 2f, 1.5f, 3f)); // first term above the ratio limit
        Assert.True(IlgpuDdw.Kernels.Reference.OptimizerReference.StepStops([1.5f, 0.6f], 0f, 2f, 0f, 0f)); // the sum above --max-loss
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
