using System.Text.Json;
using IlgpuDdw.Models;
using IlgpuDdw.Training;
using IlgpuDdw.Training.Experiments;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Tests;

/// <summary>The accuracy-versus-cost sweep through the library, at a tiny configuration.</summary>
[Collection("cpu")]
public sealed class SweepExperimentTests(DeviceFixture fx)
{
    [Fact]
    public void Sweep_TrainsEveryArm_AndPrunesDenseToTheDynamicKeepRate()
    {
        using var dir = new TempDirectory();
        var spec = ModelZoo.Get("resnet_mini", 8);
        var options = new SweepExperimentOptions
        {
            Model = spec,
            Targets = [0.5f],
            Wiring = new WiringConfig { Gate = GateKind.Continuous, Tau = 0.5f, Reduction = 2, InitialEdgeLogit = 0.5f },
            Training = new TrainerOptions { Epochs = 1, BatchSize = 8, EvalBatchSize = 16, LearningRate = 0.05f, Seed = 3, KeepTargetWeight = 20, KeepTargetWarmupFraction = 0 },
            Budget = "tiny",
            OutputDirectory = dir.Path,
        };
        var train = TrainerTests.Synthetic(16, 1);
        var test = TrainerTests.Synthetic(12, 2);
        using var experiment = new SweepExperiment(fx.Device, options, train, test);
        Assert.Equal(["chain", "dense", "dynamic ρ=0.5", "pruned dense ρ=0.5"], experiment.Runs.Select(r => r.Label));
        Assert.Throws<InvalidOperationException>(() => experiment.Execute(experiment.Runs[3])); // needs dense and dynamic first
        var result = experiment.Run();

        Assert.Equal([SweepArm.Chain, SweepArm.Dense, SweepArm.Dynamic, SweepArm.Pruned], result.Points.Select(p => p.Run.Arm));
        var (chain, dense, dynamic, pruned) = (result.Points[0], result.Points[1], result.Points[2], result.Points[3]);
        Assert.Null(chain.Diversity);
        Assert.Equal(CostModel.Compute(spec).TotalMacs, chain.EffectiveMacs);
        Assert.Equal(1, dense.Diversity!.Stages[0].DistinctWirings);
        Assert.NotNull(dynamic.SkipSpeedup);
        Assert.Null(pruned.SkipSpeedup);
        Assert.Equal(dynamic.Diversity!.EffectiveMacs, dynamic.EffectiveMacs);
        // each pruned stage keeps round(k · E) of its E = 6 edges, k = the dynamic run's keep rate in that stage
        for (int s = 0; s < spec.Stages.Count; s++)
        {
            double k = dynamic.Diversity.Stages[s].KeepRate;
            int kept = Math.Clamp((int)Math.Round(k * 6, MidpointRounding.AwayFromZero), 1, 6);
            Assert.Equal(kept / 6.0, pruned.Diversity!.Stages[s].KeepRate, 12);
            Assert.Equal(1, pruned.Diversity.Stages[s].DistinctWirings);
        }
        Assert.All(result.Points, p => Assert.InRange(p.TestAccuracy, 0, 1));

        Assert.Equal(4, result.Summary.Count);
        Assert.Equal((SweepArm.Dynamic, (float?)0.5f, 1, dynamic.TestAccuracy, 0.0), (result.Summary[2].Arm, result.Summary[2].Target, result.Summary[2].Runs,
            result.Summary[2].TestAccuracyMean, result.Summary[2].TestAccuracyStd));
        Assert.True(double.IsNaN(result.Summary[0].DistinctWiringsMean));

        string json = File.ReadAllText(Path.Combine(dir.Path, "sweep.json"));
        Assert.Equal(result.ToJson(), json);
        using var doc = JsonDocument.Parse(json);
        Assert.Equal("pruned", doc.RootElement.GetProperty("points")[3].GetProperty("run").GetProperty("arm").GetString());
        Assert.Equal("continuous", doc.RootElement.GetProperty("gate").GetString());
        Assert.True(doc.RootElement.GetProperty("points")[2].GetProperty("diversity").GetProperty("stages")[0].TryGetProperty("effectiveWirings", out _));
        foreach (string f in new[] { "baseline/results.json", "baseline/dense-seed3.safetensors", "dynamic-0.5/results.json", "dynamic-0.5/dynamic-seed3.safetensors", "pruned-0.5/metrics.jsonl" })
            Assert.True(File.Exists(Path.Combine(dir.Path, f)), f);
        using var compare = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir.Path, "dynamic-0.5", "results.json")));
        var run = compare.RootElement.GetProperty("runs")[0];
        Assert.True(run.GetProperty("skipSpeedup").GetDouble() > 0);
        Assert.Equal(3, run.GetProperty("diversity").GetProperty("stages").GetArrayLength());
    }

    [Fact]
    public void SweepOptions_AreValidated()
    {
        var spec = ModelZoo.Get("resnet_mini", 8);
        var data = TrainerTests.Synthetic(8, 1);
        using var dir = new TempDirectory();
        SweepExperimentOptions With(float[] targets, int seeds = 1) => new() { Model = spec, Targets = targets, Seeds = seeds, OutputDirectory = dir.Path };
        Assert.Throws<ArgumentException>(() => new SweepExperiment(fx.Device, With([]), data, data));
        Assert.Throws<ArgumentException>(() => new SweepExperiment(fx.Device, With([0f]), data, data));
        Assert.Throws<ArgumentException>(() => new SweepExperiment(fx.Device, With([0.5f, 0.5f]), data, data));
        Assert.Throws<ArgumentException>(() => new SweepExperiment(fx.Device, With([1.2f]), data, data));
        Assert.Throws<ArgumentException>(() => new SweepExperiment(fx.Device, With([0.5f], seeds: 0), data, data));
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir.Path));
    }
}
