using System.Text.Json;
using IlgpuDdw.Models;
using IlgpuDdw.Training;
using IlgpuDdw.Training.Experiments;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Tests;

/// <summary>The chain / dense / dynamic comparison through the library.</summary>
[Collection("cpu")]
public sealed class CompareExperimentTests(DeviceFixture fx)
{
    [Fact]
    public void Compare_TrainsEveryWiringAndSeed_AndReturnsTypedResults()
    {
        using var dir = new TempDirectory();
        var spec = ModelZoo.Get("resnet_mini", 8);
        var options = new CompareExperimentOptions
        {
            Model = spec,
            Wirings = [WiringKind.Chain, WiringKind.Dynamic],
            Wiring = new WiringConfig { Tau = 0.4f, Reduction = 2 },
            Training = new TrainerOptions { Epochs = 1, BatchSize = 8, EvalBatchSize = 16, LearningRate = 0.05f, Seed = 5 },
            Seeds = 2,
            Budget = "tiny",
            OutputDirectory = dir.Path,
        };
        var train = TrainerTests.Synthetic(24, 1);
        var test = TrainerTests.Synthetic(12, 2);
        using var experiment = new CompareExperiment(fx.Device, options, train, test);
        Assert.Equal(["chain seed 5", "chain seed 6", "dynamic seed 5", "dynamic seed 6"], experiment.Runs.Select(r => r.Label));
        var result = experiment.Run();

        Assert.Equal("resnet_mini", result.Model);
        Assert.Equal(fx.Device.ToString(), result.Device);
        Assert.Equal(("tiny", 24, 12, 1, 8, 0.05f, 2, 5), (result.Budget, result.TrainImages, result.TestImages, result.Epochs, result.BatchSize,
            result.LearningRate, result.Seeds, result.Seed));
        Assert.Equal((0.4f, 2, GateGradient.KeptOnly), (result.Tau, result.RouterReduction, result.GateGradient));
        Assert.Equal([(WiringKind.Chain, 5), (WiringKind.Chain, 6), (WiringKind.Dynamic, 5), (WiringKind.Dynamic, 6)],
            result.Runs.Select(r => (r.Wiring, r.Seed)));
        foreach (var r in result.Runs)
        {
            var cost = CostModel.Compute(spec, r.Wiring, 2);
            Assert.Equal((cost.TotalParameters, cost.TotalMacs, cost.RouterMacs), (r.Params, r.Macs, r.RouterMacs));
            Assert.Single(r.Epochs);
            Assert.Equal(r.TestAccuracy, r.Epochs[0].TestAccuracy);
            Assert.Equal(r.KeepRate, r.Epochs[0].KeepRate);
            Assert.InRange(r.TestAccuracy, 0, 1);
            Assert.True(r.Seconds > 0);
            Assert.True(File.Exists(Path.Combine(dir.Path, $"{r.Wiring.ToString().ToLowerInvariant()}-seed{r.Seed}.safetensors")));
        }
        Assert.Equal(WiringKind.Dynamic, Checkpoint.ReadInfo(Path.Combine(dir.Path, "dynamic-seed6.safetensors")).Wiring.Kind);
        Assert.Equal(6, Checkpoint.ReadInfo(Path.Combine(dir.Path, "dynamic-seed6.safetensors")).Seed);
        Assert.NotEqual(result.Runs[0].Epochs[0].TrainLoss, result.Runs[1].Epochs[0].TrainLoss); // different seeds

        Assert.Equal([WiringKind.Chain, WiringKind.Dynamic], result.Summary.Select(s => s.Wiring));
        foreach (var s in result.Summary)
        {
            var acc = result.Runs.Where(r => r.Wiring == s.Wiring).Select(r => r.TestAccuracy).ToArray();
            Assert.Equal(2, s.Runs);
            Assert.Equal((acc[0] + acc[1]) / 2, s.TestAccuracyMean, 12);
            Assert.Equal(Math.Abs(acc[0] - acc[1]) / Math.Sqrt(2), s.TestAccuracyStd, 12);
        }
        Assert.Equal(0, SummaryStatistics.Std([0.7]));

        // per-class adjacency for the heatmaps: none for chain, [classes][(n+1)²] for dynamic, the class-weighted mean
        Assert.Equal(4, experiment.Results.Count);
        var chain = experiment.Results[0];
        Assert.Equal(3, chain.StepLosses.Count); // 24 images, batch 8, one epoch
        Assert.All(chain.Adjacency, a => Assert.Null(a.PerClass));
        Assert.Equal(1, chain.Adjacency[0].Mean[0 * 4 + 1]);
        var dynamic = experiment.Results[2].Adjacency;
        Assert.Equal(spec.Stages.Select(s => s.Name), dynamic.Select(a => a.Stage));
        foreach (var a in dynamic)
        {
            int m = a.Nodes + 1;
            Assert.Equal(test.ClassCount, a.PerClass!.Count);
            Assert.All(a.PerClass, row => Assert.Equal(m * m, row.Length));
            Assert.Equal(m * m, a.EdgeKeep!.Length);
            var counts = Enumerable.Range(0, test.ClassCount).Select(c => test.Labels.Count(l => l == c)).ToArray();
            for (int e = 0; e < m * m; e++)
                Assert.Equal(Enumerable.Range(0, counts.Length).Sum(c => a.PerClass[c][e] * counts[c]) / test.Count, a.Mean[e], 12);
        }

        // results.json and metrics.jsonl
        string json = File.ReadAllText(Path.Combine(dir.Path, "results.json"));
        Assert.Equal(result.ToJson(), json);
        using var doc = JsonDocument.Parse(json);
        Assert.Equal("dynamic", doc.RootElement.GetProperty("runs")[2].GetProperty("wiring").GetString());
        Assert.Equal("KeptOnly", doc.RootElement.GetProperty("gateGradient").GetString());
        var epoch = doc.RootElement.GetProperty("runs")[0].GetProperty("epochs")[0];
        Assert.True(epoch.TryGetProperty("trainLoss", out _));
        Assert.False(epoch.TryGetProperty("TrainLoss", out _));
        Assert.Equal(1, epoch.GetProperty("epoch").GetInt32()); // 1-based, as in metrics.jsonl
        var lines = File.ReadAllLines(Path.Combine(dir.Path, "metrics.jsonl"));
        Assert.Equal(4, lines.Length);
        using var line = JsonDocument.Parse(lines[3]);
        Assert.Equal(("dynamic", 6, 1, 3), (line.RootElement.GetProperty("wiring").GetString(), line.RootElement.GetProperty("seed").GetInt32(),
            line.RootElement.GetProperty("epoch").GetInt32(), line.RootElement.GetProperty("step").GetInt32()));
    }

    [Fact]
    public void CompareOptions_AreValidated()
    {
        var spec = ModelZoo.Get("resnet_mini", 8);
        var data = TrainerTests.Synthetic(8, 1);
        Assert.Throws<ArgumentException>(() => new CompareExperiment(fx.Device, new CompareExperimentOptions { Model = spec, Seeds = 0 }, data, data));
        Assert.Throws<ArgumentException>(() => new CompareExperiment(fx.Device, new CompareExperimentOptions { Model = spec, Wirings = [] }, data, data));
        Assert.Throws<ArgumentException>(() => new CompareExperiment(fx.Device,
            new CompareExperimentOptions { Model = spec, Wiring = new WiringConfig { Tau = 1.5f } }, data, data));
    }
}
