using IlgpuDdw.IO;
using IlgpuDdw.Models;
using IlgpuDdw.Training;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Tests;

/// <summary>Checkpoints carry the whole run configuration; saves clean up after interrupted ones; metrics survive a resume without duplicates.</summary>
[Collection("cpu")]
public sealed class RunConfigurationTests(DeviceFixture fx)
{
    private static readonly DataSource Source = new()
    {
        Directory = "/data/fmnist", Budget = "smoke", TrainImages = 24, TestImages = 8,
        Sha256 = new Dictionary<string, string> { ["train-images-idx3-ubyte"] = "ab12", ["t10k-labels-idx1-ubyte"] = "cd34" },
    };

    [Fact]
    public void Checkpoint_CarriesEveryTrainerOption_TheWholeWiring_AndTheData()
    {
        using var dir = new TempDirectory();
        string path = dir.File("run.safetensors");
        var wiring = new WiringConfig { Kind = WiringKind.Dynamic, Tau = 0.35f, Reduction = 2, Gradient = GateGradient.StraightThrough, InitialEdgeLogit = 2.5f };
        var options = new TrainerOptions
        {
            Epochs = 3, BatchSize = 8, EvalBatchSize = 12, LearningRate = 0.03f, WarmupFraction = 0.2f, Momentum = 0.8f, Nesterov = true,
            WeightDecay = 1e-4f, DecoupledWeightDecay = true, LabelSmoothing = 0.1f, Augment = true, Seed = 11, SparsityWeight = 0.01f,
            TauWarmupFraction = 0.3f, MaxLoss = 123f, MaxLossRatio = 7f, MaxGradNorm = 456f,
        };
        using var model = new DdwNet(fx.Device, ModelZoo.Get("resnet_mini", 8), wiring, seed: 4);
        using (var t = new Trainer(model, TrainerTests.Synthetic(24, 1), TrainerTests.Synthetic(8, 2), options) { CheckpointPath = path, Data = Source })
            t.RunEpoch();
        var info = Checkpoint.ReadInfo(path);
        Assert.Equal(("resnet_mini", 8, 4, 1, 3), (info.Model, info.InputSize, info.Seed, info.Epoch, info.Step));
        Assert.Equal(wiring, info.Wiring);
        Assert.Equal(options, info.Options);
        Assert.NotNull(info.Data);
        Assert.Equal((Source.Directory, Source.Budget, Source.TrainImages, Source.TestImages), (info.Data!.Directory, info.Data.Budget, info.Data.TrainImages, info.Data.TestImages));
        Assert.Equal(Source.Sha256.OrderBy(x => x.Key), info.Data.Sha256.OrderBy(x => x.Key));
        Assert.False(info.IsComplete);

        // Resume restores the data record for the next save, and refuses other image counts.
        using (var resumed = Checkpoint.Resume(fx.Device, path, TrainerTests.Synthetic(24, 1), TrainerTests.Synthetic(8, 2)))
        using (resumed.Model)
            Assert.Equal(Source.TrainImages, resumed.Data!.TrainImages);
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Resume(fx.Device, path, TrainerTests.Synthetic(16, 1), TrainerTests.Synthetic(8, 2)));
        Assert.Contains("24 training", e.Message);
        fx.Device.TrimPool();
    }

    [Fact]
    public void CheckpointsWithoutTheNewKeys_StillLoadAndResume()
    {
        using var dir = new TempDirectory();
        string path = dir.File("old.safetensors");
        var train = TrainerTests.Synthetic(16, 1);
        var test = TrainerTests.Synthetic(8, 2);
        using (var model = new DdwNet(fx.Device, ModelZoo.Get("resnet_mini", 8), new WiringConfig { Kind = WiringKind.Dense, Tau = 0.4f }, seed: 1))
        using (var t = new Trainer(model, train, test, new TrainerOptions { Epochs = 2, BatchSize = 8, EvalBatchSize = 8 }) { CheckpointPath = path, Data = Source with { TrainImages = 16 } })
            t.RunEpoch();
        // Strip what versions before the run configuration did not write, and the guard fields from the options; write the
        // options and the history as those versions did (C# property names, 0-based history epochs).
        var file = SafeTensors.Load(path);
        var metadata = file.Metadata.Where(kv => kv.Key is not ("wiring_config" or "data")).ToDictionary();
        Assert.Contains("\"epoch\":1,", metadata["history"]);
        metadata["options"] = System.Text.RegularExpressions.Regex.Replace(LegacyNames(metadata["options"]), ",\"Max[A-Za-z]+\":[^,}]+", "");
        metadata["history"] = LegacyNames(metadata["history"]).Replace("\"Epoch\":1,", "\"Epoch\":0,", StringComparison.Ordinal);
        Assert.Contains("\"Epoch\":0,\"TrainLoss\":", metadata["history"]);
        SafeTensors.Save(path, file.Tensors.ToList(), metadata);

        var info = Checkpoint.ReadInfo(path);
        Assert.Null(info.Data);
        Assert.Equal((WiringKind.Dense, 0.4f), (info.Wiring.Kind, info.Wiring.Tau));
        Assert.Equal(new TrainerOptions().MaxGradNorm, info.Options!.MaxGradNorm);
        using var resumed = Checkpoint.Resume(fx.Device, path, train, test);
        using var resumedModel = resumed.Model;
        Assert.Equal(1, resumed.Epoch);
        Assert.Equal(0, Assert.Single(resumed.History).Epoch);
        resumed.CheckpointPath = path;
        resumed.Run();
        Assert.Equal([0, 1], resumed.History.Select(h => h.Epoch));
        string history = SafeTensors.Load(path).Metadata["history"];
        Assert.Contains("\"epoch\":1,\"trainLoss\":", history);
        Assert.Contains("\"epoch\":2,\"trainLoss\":", history);
    }

    /// <summary>JSON object keys with their first letter in upper case (what versions before camelCase metadata wrote).</summary>
    private static string LegacyNames(string json) =>
        System.Text.RegularExpressions.Regex.Replace(json, "\"([a-z])([A-Za-z0-9]*)\":", m => $"\"{char.ToUpperInvariant(m.Groups[1].Value[0])}{m.Groups[2].Value}\":");

    [Fact]
    public void Save_RemovesTemporaryFilesThatInterruptedSavesLeft()
    {
        using var dir = new TempDirectory();
        string path = dir.File("m.safetensors");
        string stale = dir.File($".m.safetensors.{Guid.NewGuid():N}.tmp");
        string other = dir.File($".other.safetensors.{Guid.NewGuid():N}.tmp");
        File.WriteAllText(stale, "half a checkpoint");
        File.WriteAllText(other, "someone else's");
        using var model = new DdwNet(fx.Device, ModelZoo.Get("resnet_mini", 8), new WiringConfig { Kind = WiringKind.Chain });
        Checkpoint.Save(path, model);
        Assert.False(File.Exists(stale));
        Assert.True(File.Exists(other));
        Assert.True(File.Exists(path));
        Assert.Single(Directory.GetFiles(dir.Path, "*.tmp"));
    }

    [Fact]
    public void MetricsForResume_DropsTheRunsRecordsPastTheCheckpoint_AndKeepsOthers()
    {
        using var dir = new TempDirectory();
        string path = dir.File("metrics.jsonl");
        using var model = new DdwNet(fx.Device, ModelZoo.Get("resnet_mini", 8), new WiringConfig { Kind = WiringKind.Chain }, seed: 3);
        using var t = new Trainer(model, TrainerTests.Synthetic(16, 1), TrainerTests.Synthetic(8, 2), new TrainerOptions { Epochs = 3, BatchSize = 8, EvalBatchSize = 8, Seed = 3 });
        EpochMetrics Line(string wiring, int epoch) => new("resnet_mini", wiring, 3, epoch, 2 * epoch, 1, 0.5, 1, 0.5, 1, 1, 1, 1, 0.1f, 0.5f, 1);
        using (var w = new MetricsWriter(path, append: false))
            foreach (var m in new[] { Line("chain", 1), Line("dense", 1), Line("chain", 2), Line("dense", 2) }) w.Write(m);
        File.AppendAllText(path, "{\"model\":\"resnet_mini\",\"wir"); // torn by a crash
        t.RunEpoch(); // Step = 2: epoch 1 is in the checkpoint, epoch 2 was written after it
        using (var w = MetricsWriter.ForResume(path, t)) { }
        var lines = File.ReadAllLines(path);
        Assert.Equal(3, lines.Length);
        Assert.Contains("\"wiring\":\"chain\",\"seed\":3,\"epoch\":1,", lines[0]);
        Assert.All(lines[1..], l => Assert.Contains("\"wiring\":\"dense\"", l));
    }
}
