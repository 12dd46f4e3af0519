using IlgpuDdw.Data;
using IlgpuDdw.Models;
using IlgpuDdw.Training;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Tests;

[Collection("cpu")]
public sealed class TrainerTests(DeviceFixture fx)
{
    /// <summary>Class-dependent patterns that survive the flip/crop augmentation (a learnable task), 10 declared classes.</summary>
    internal static ImageDataset Synthetic(int count, int seed, int size = 8) =>
        IlgpuDdw.Cli.DistributedCommands.Synthetic(count, seed, size, classCount: 10);

    private static TrainerOptions Options(int epochs) => new()
    {
        Epochs = epochs, BatchSize = 8, EvalBatchSize = 16, LearningRate = 0.05f, Seed = 3, Augment = true, WarmupFraction = 0.1f,
        TauWarmupFraction = 0.5f, SparsityWeight = 0.01f, LabelSmoothing = 0.05f,
    };

    [Theory]
    [InlineData(WiringKind.Chain)]
    [InlineData(WiringKind.Dynamic)]
    public void Trainer_Learns_AndReports(WiringKind kind)
    {
        var d = fx.Device;
        using var model = new DdwNet(d, ModelZoo.Get("resnet_mini", 8), new WiringConfig { Kind = kind }, seed: 1);
        using var trainer = new Trainer(model, Synthetic(64, 1), Synthetic(32, 2), Options(4));
        var progress = new List<TrainProgress>();
        trainer.Progress = new SyncProgress(progress.Add);
        var history = trainer.Run();
        Assert.Equal(4, history.Count);
        Assert.Equal(32, trainer.Step);
        Assert.Equal(32, progress.Count);
        Assert.True(history[^1].TestAccuracy > 0.5, $"test accuracy {history[^1].TestAccuracy}");
        Assert.InRange(history[^1].KeepRate, 0, 1);
        Assert.True(history[^1].EffectiveMacs > 0);
        Assert.True(history[^1].PeakBytes > 0);
        if (kind == WiringKind.Chain) Assert.Equal(1.0, history[^1].KeepRate);
        else Assert.True(history[^1].KeepRate > 0, "a dynamic model that cut every edge");
        Assert.NotNull(trainer.LastEval);
        Assert.Equal(kind != WiringKind.Chain, trainer.LastEval!.MeanAdjacency[0] is not null);
    }

    /// <param name="keepTerms">The stochastic gate with the keep-target and batch-shaping terms (the CLI's dynamic defaults), computed on the device.</param>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AStepAfterTheFirst_AllocatesNothing_AndTheHostReadsOncePerLoggingInterval(bool keepTerms)
    {
        var d = fx.Device;
        var wiring = keepTerms ? new WiringConfig { Kind = WiringKind.Dynamic, Gate = GateKind.Stochastic } : new WiringConfig { Kind = WiringKind.Dynamic };
        using var model = new DdwNet(d, ModelZoo.Get("resnet_mini", 8), wiring, seed: 1);
        var options = Options(1) with { LogInterval = 3 };
        if (keepTerms) options = options with { KeepTarget = 0.6f, KeepTargetWeight = 20, BatchShapingWeight = 7 };
        // 7 steps, read after steps 3 and 6 (full intervals) and 7 (the epoch's end)
        using var trainer = new Trainer(model, Synthetic(56, 1), Synthetic(8, 2), options);
        if (keepTerms) Assert.Contains(trainer.Terms, t => t is KeepTerm);
        var counts = new List<(int Allocations, int Synchronizations)>();
        var marks = new List<(int Allocations, int Synchronizations)>();
        trainer.Progress = new SyncProgress(_ => counts.Add((d.Allocations, d.Synchronizations)));
        int before = d.Synchronizations;
        trainer.Run();
        Assert.Equal(7, counts.Count);
        // the steps of one interval are reported together, after its one read
        Assert.Equal(counts[0], counts[1]);
        Assert.Equal(counts[1], counts[2]);
        Assert.Equal(counts[3], counts[5]);
        // one host read per interval: the images and labels go up through page-locked double buffers without waiting
        // (StagedUpload), the divergence guards run on the device (StepGuard, a skipped SgdStep)
        Assert.Equal(1, counts[3].Synchronizations - counts[2].Synchronizations);
        Assert.Equal(1, counts[6].Synchronizations - counts[5].Synchronizations);
        Assert.True(counts[0].Synchronizations - before <= 2, $"{counts[0].Synchronizations - before} synchronisations before the first read");
        // from the second interval on (the first fills the pool) nothing is allocated
        Assert.Equal(counts[2].Allocations, counts[6].Allocations);
    }

    [Fact]
    public void TheLoggingInterval_DoesNotChangeTheResult()
    {
        var d = fx.Device;
        (float[][] Weights, float[] Losses, double Accuracy) Train(int interval)
        {
            using var model = new DdwNet(d, ModelZoo.Get("resnet_mini", 8), new WiringConfig { Kind = WiringKind.Dynamic }, seed: 4);
            using var trainer = new Trainer(model, Synthetic(40, 1), Synthetic(8, 2), Options(2) with { LogInterval = interval });
            var history = trainer.Run();
            return (model.StateDict().Entries.Select(e => e.Data).ToArray(), trainer.StepLosses.ToArray(), history[^1].TrainAccuracy);
        }
        var one = Train(1);
        var three = Train(3);
        Assert.Equal(10, one.Losses.Length);
        Assert.Equal(one.Losses, three.Losses);
        Assert.Equal(one.Accuracy, three.Accuracy);
        for (int i = 0; i < one.Weights.Length; i++) Assert.Equal(one.Weights[i], three.Weights[i]);
    }

    [Fact]
    public void Resume_ContinuesExactly()
    {
        var d = fx.Device;
        using var dir = new TempDirectory();
        var train = Synthetic(32, 5);
        var test = Synthetic(16, 6);
        var spec = ModelZoo.Get("resnet_mini", 8);
        var wiring = new WiringConfig { Kind = WiringKind.Dynamic };

        using var straight = new DdwNet(d, spec, wiring, seed: 2);
        using (var t = new Trainer(straight, train, test, Options(2))) t.Run();

        string ckpt = Path.Combine(dir.Path, "run.safetensors");
        using (var first = new DdwNet(d, spec, wiring, seed: 2))
        using (var t = new Trainer(first, train, test, Options(2)) { CheckpointPath = ckpt })
            t.RunEpoch();
        using var resumed = Checkpoint.Resume(d, ckpt, train, test);
        Assert.Equal(1, resumed.Epoch);
        resumed.Run();
        using var resumedModel = resumed.Model;
        var a = straight.StateDict();
        var b = resumedModel.StateDict();
        Assert.Equal(a.Count, b.Count);
        for (int i = 0; i < a.Count; i++)
            Assert.True(a.Entries[i].Data.AsSpan().SequenceEqual(b.Entries[i].Data), $"{a.Entries[i].Name} differs after resume");
        Assert.Equal(2, resumed.History.Count);
    }

    [Fact]
    public void NaNLoss_StopsTraining_AndKeepsTheLastGoodCheckpoint()
    {
        var d = fx.Device;
        using var dir = new TempDirectory();
        string ckpt = Path.Combine(dir.Path, "run.safetensors");
        var spec = ModelZoo.Get("resnet_mini", 8);
        using var model = new DdwNet(d, spec, new WiringConfig { Kind = WiringKind.Chain }, seed: 2);
        using var t = new Trainer(model, Synthetic(32, 5), Synthetic(16, 6), Options(3) with { LearningRate = 1e6f, WarmupFraction = 0 }) { CheckpointPath = ckpt };
        byte[]? saved = null;
        var e = Assert.Throws<TrainingDivergedException>(() =>
        {
            for (int i = 0; i < 3; i++)
            {
                t.RunEpoch();
                saved = File.ReadAllBytes(ckpt);
            }
        });
        Assert.Contains("loss became", e.Message);
        if (saved is not null)
        {
            Assert.Contains(ckpt, e.Message);
            Assert.Equal(saved, File.ReadAllBytes(ckpt));
        }
        else
        {
            Assert.False(File.Exists(ckpt));
        }
    }

    [Fact]
    public void Checkpoint_RoundTrips_Model_AndRejectsBadFiles()
    {
        var d = fx.Device;
        using var dir = new TempDirectory();
        string path = Path.Combine(dir.Path, "m.safetensors");
        using var model = DdwNet.Create(d, "resnet_mini", new WiringConfig { Kind = WiringKind.Dense, Tau = 0.3f }, seed: 9);
        Checkpoint.Save(path, model);
        var info = Checkpoint.ReadInfo(path);
        Assert.Equal("resnet_mini", info.Model);
        Assert.Equal(WiringKind.Dense, info.Wiring.Kind);
        Assert.Equal(0.3f, info.Wiring.Tau);
        Assert.Equal(9, info.Seed);
        using var loaded = Checkpoint.LoadModel(d, path);
        Assert.Equal(model.StateDict().Entries.Select(x => x.Data), loaded.StateDict().Entries.Select(x => x.Data));

        var bytes = File.ReadAllBytes(path);
        string truncated = Path.Combine(dir.Path, "t.safetensors");
        File.WriteAllBytes(truncated, bytes[..(bytes.Length / 2)]);
        Assert.Throws<InvalidDataException>(() => Checkpoint.LoadModel(d, truncated));
        Assert.Throws<FileNotFoundException>(() => Checkpoint.LoadModel(d, Path.Combine(dir.Path, "missing.safetensors")));
        Assert.Throws<InvalidDataException>(() => Checkpoint.Resume(d, path, Synthetic(8, 1, 28), Synthetic(8, 2, 28)));
    }

    [Fact]
    public void Trainer_RejectsDataThatDoesNotFit()
    {
        var d = fx.Device;
        using var model = DdwNet.Create(d, "resnet_mini", new WiringConfig { Kind = WiringKind.Chain });
        var e = Assert.Throws<ArgumentException>(() => new Trainer(model, Synthetic(8, 1), Synthetic(8, 1), Options(1)));
        Assert.Contains("1×8×8", e.Message);
        Assert.Throws<ArgumentException>(() => new Trainer(model, Synthetic(8, 1, 28), Synthetic(8, 1, 28), Options(1) with { Epochs = 0 }));
    }

    private sealed class SyncProgress(Action<TrainProgress> report) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress value) => report(value);
    }
}
