using IlgpuDdw.Autograd;
using IlgpuDdw.Models;
using IlgpuDdw.Training;
using IlgpuDdw.Training.Experiments;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Tests;

/// <summary>Wiring-diversity metrics on hand-made adjacencies with known answers, and their use in evaluation.</summary>
public sealed class WiringDiversityTests
{
    // resnet_mini at 8 px: three stages of 3 nodes, E = 6 edges each, in the order 0→1, 0→2, 0→3, 1→2, 1→3, 2→3.
    private static readonly ModelSpec Spec = ModelZoo.Get("resnet_mini", 8);
    private const int M = 4;

    /// <summary>A [B, 4, 4] adjacency from one kept-edge string per sample ("101001": E-order flags).</summary>
    internal static float[] Adjacency(params string[] wirings)
    {
        var a = new float[wirings.Length * M * M];
        for (int b = 0; b < wirings.Length; b++)
        {
            int e = 0;
            for (int i = 0; i < 3; i++)
                for (int j = i + 1; j <= 3; j++, e++)
                    if (wirings[b][e] == '1') a[b * M * M + i * M + j] = 0.5f + 0.05f * e;
        }
        return a;
    }

    private static WiringDiversity Measure(string[] stage0, int[] labels, int classes = 2, int seed = 0)
    {
        var acc = new WiringDiversityAccumulator(Spec, WiringKind.Dynamic, 4, classes);
        var all = Adjacency(Enumerable.Repeat("111111", stage0.Length).ToArray());
        acc.Add([Adjacency(stage0), all, all], labels);
        return acc.Result(seed);
    }

    [Fact]
    public void ThreeWiringsInKnownProportions_GiveTheirCountEntropyAndInputDependentEdges()
    {
        // shares 1/2, 1/4, 1/4 → H = 1.5 ln 2, exp(H) = 2^1.5
        string[] w = ["111111", "111111", "111111", "111111", "100101", "100101", "001001", "001001"];
        var d = Measure(w, [0, 1, 0, 1, 0, 1, 0, 1]);
        var s = d.Stages[0];
        Assert.Equal((8L, 3), (s.Samples, s.DistinctWirings));
        Assert.Equal(Math.Pow(2, 1.5), s.EffectiveWirings, 12);
        Assert.Equal([0.75, 0.5, 0.75, 0.75, 0.5, 1.0], s.EdgeKeep);
        Assert.Equal(4.25 / 6, s.KeepRate, 12);
        Assert.Equal(5.0 / 6, s.InputDependentEdges, 12); // 2→3 is always on; the 50% edges count
        Assert.Equal((1, 1.0, 0.0), (d.Stages[1].DistinctWirings, d.Stages[1].EffectiveWirings, d.Stages[1].InputDependentEdges));
        Assert.Equal(1.0, d.Stages[1].KeepRate);
    }

    [Fact]
    public void InputDependentEdges_IncludeFiveAndNinetyFivePercent()
    {
        // 20 samples: 0→1 on for 1 (5%), 0→2 never, 0→3 for 2 (10%), 1→2 for 19 (95%), 1→3 always, 2→3 for 20 − 0 = always
        var w = Enumerable.Range(0, 20).Select(b => $"{(b == 0 ? '1' : '0')}0{(b < 2 ? '1' : '0')}{(b < 19 ? '1' : '0')}11").ToArray();
        var s = Measure(w, new int[20]).Stages[0];
        Assert.Equal([0.05, 0, 0.1, 0.95, 1, 1], s.EdgeKeep);
        Assert.Equal(3.0 / 6, s.InputDependentEdges, 12);
        Assert.Equal(4, s.DistinctWirings);
    }

    [Fact]
    public void ConstantWiring_IsOneWiringWithoutInputOrClassDependence()
    {
        var s = Measure(Enumerable.Repeat("101011", 12).ToArray(), [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2], classes: 3).Stages[0];
        Assert.Equal((1, 1.0, 0.0, 0.0, 0.0), (s.DistinctWirings, s.EffectiveWirings, s.InputDependentEdges, s.ClassKeepDeviation, s.ClassKeepDeviationNull));
        Assert.All(s.ClassEdgeKeep, row => Assert.Equal([1.0, 0, 1, 0, 1, 1], row));
    }

    [Fact]
    public void ClassDeterminedWiring_DeviatesFromTheLabelShuffleNull()
    {
        // class 0 keeps 0→1, class 1 cuts it; all else equal: p = 0.5, p_c = 1 / 0 → sqrt(Σ_c ½·¼ / 6) = sqrt(0.25 / 6)
        var labels = Enumerable.Range(0, 40).Select(b => b % 2).ToArray();
        var w = labels.Select(c => c == 0 ? "111111" : "011111").ToArray();
        var d = Measure(w, labels, seed: 7);
        var s = d.Stages[0];
        Assert.Equal(Math.Sqrt(0.25 / 6), s.ClassKeepDeviation, 12);
        Assert.Equal([1.0, 1, 1, 1, 1, 1], s.ClassEdgeKeep[0]);
        Assert.Equal([0.0, 1, 1, 1, 1, 1], s.ClassEdgeKeep[1]);
        Assert.InRange(s.ClassKeepDeviationNull, 1e-6, s.ClassKeepDeviation / 2);
        Assert.Equal(s.ClassKeepDeviationNull, Measure(w, labels, seed: 7).Stages[0].ClassKeepDeviationNull); // seeded
        Assert.NotEqual(s.ClassKeepDeviationNull, Measure(w, labels, seed: 8).Stages[0].ClassKeepDeviationNull);
    }

    [Fact]
    public void Macs_AreTheCostModelsUnderEachDeadNodeRule_AveragedOverBatches()
    {
        string[] first = ["111111", "001001", "100101"], second = ["001001"];
        var acc = new WiringDiversityAccumulator(Spec, WiringKind.Dynamic, 4, 2);
        var full = Adjacency("111111", "111111", "111111");
        acc.Add([Adjacency(first), full, full], [0, 1, 0]);
        acc.Add([Adjacency(second), Adjacency("111111"), Adjacency("111111")], [1]);
        var d = acc.Result();
        var all = Adjacency([.. first, .. second]);
        var four = Adjacency("111111", "111111", "111111", "111111");
        foreach (var (rule, value) in new[] { (DeadNodeRule.InputCut, d.EffectiveMacs), (DeadNodeRule.NoPathToOutput, d.EffectiveMacsNoPath), (DeadNodeRule.None, d.FullMacs) })
            Assert.Equal(CostModel.Effective(Spec, WiringKind.Dynamic, [all, four, four], 4, rule).TotalMacs, value, 6);
        Assert.True(d.EffectiveMacs < d.FullMacs); // "001001" leaves nodes 1 and 2 without kept in-edges
        Assert.Equal(4, d.Samples);
    }

    [Fact]
    public void Accumulator_RejectsBadInput()
    {
        Assert.Throws<ArgumentException>(() => new WiringDiversityAccumulator(Spec, WiringKind.Chain, 4, 2));
        var acc = new WiringDiversityAccumulator(Spec, WiringKind.Dense, 4, 2);
        var one = Adjacency("111111");
        Assert.Throws<ArgumentException>(() => acc.Add([one, one], [0]));
        Assert.Throws<ArgumentException>(() => acc.Add([one, one, one], [0, 1]));
        Assert.Throws<ArgumentException>(() => acc.Add([one, one, one], [2]));
        Assert.Throws<InvalidOperationException>(() => acc.Result());
    }

    [Fact]
    public void PruneMask_KeepsTheLargestLogitsAndAnEdgeIntoTheOutput()
    {
        // E-order 0→1, 0→2, 0→3, 1→2, 1→3, 2→3
        Assert.Equal([true, false, false, true, false, true], SweepExperiment.PruneMask([3f, 1f, 0f, 2f, -1f, 2.5f], 3, 0.5));
        // the three largest (0→1, 0→2, 1→2) miss the output: the weakest kept (1→2) gives way to the strongest into it (1→3)
        Assert.Equal([true, true, false, false, true, false], SweepExperiment.PruneMask([3f, 2.5f, -2f, 2f, 1f, 0f], 3, 0.5));
        Assert.Equal([false, false, true, false, false, false], SweepExperiment.PruneMask([0f, 0f, 1f, 0f, 0f, 0f], 3, 0.0)); // at least one
        Assert.All(SweepExperiment.PruneMask([0f, 0f, 0f, 0f, 0f, 0f], 3, 1.0), Assert.True);
        Assert.Throws<ArgumentException>(() => SweepExperiment.PruneMask([0f, 0f], 3, 0.5));
        Assert.Throws<ArgumentException>(() => SweepExperiment.PruneMask([0f, 0f, 0f, 0f, 0f, 0f], 3, 1.5));
    }
}

/// <summary>Diversity, pruning and skipping measured on real models.</summary>
[Collection("cpu")]
public sealed class WiringDiversityModelTests(DeviceFixture fx)
{
    [Fact]
    public void Evaluate_ReportsDiversityConsistentWithItsEdgeKeep()
    {
        var spec = ModelZoo.Get("resnet_mini", 8);
        var test = TrainerTests.Synthetic(20, 3);
        using var dynamic = new DdwNet(fx.Device, spec, new WiringConfig { Tau = 0.95f, Reduction = 2 }, seed: 1);
        var r = Evaluator.Evaluate(dynamic, test, batchSize: 8);
        var d = r.Diversity!;
        Assert.Equal(20, d.Samples);
        Assert.Equal(r.EffectiveMacs, d.EffectiveMacs, 3);
        for (int s = 0; s < spec.Stages.Count; s++)
        {
            int n = spec.Stages[s].Nodes.Count, m = n + 1;
            var edgeKeep = r.EdgeKeep[s]!;
            var expected = Enumerable.Range(0, n).SelectMany(i => Enumerable.Range(i + 1, n - i).Select(j => edgeKeep[i * m + j])).ToArray();
            Assert.Equal(expected.Length, d.Stages[s].EdgeKeep.Length);
            for (int e = 0; e < expected.Length; e++) Assert.Equal(expected[e], d.Stages[s].EdgeKeep[e], 12);
            Assert.InRange(d.Stages[s].DistinctWirings, 1, 20);
        }
        using var chain = new DdwNet(fx.Device, spec, new WiringConfig { Kind = WiringKind.Chain }, seed: 1);
        Assert.Null(Evaluator.Evaluate(chain, test, batchSize: 8).Diversity);
    }

    [Fact]
    public void MeasureSkipSpeedup_EvaluatesBothWays_WithTheSameAnswers()
    {
        var spec = ModelZoo.Get("resnet_mini", 8);
        var test = TrainerTests.Synthetic(16, 4);
        using var model = new DdwNet(fx.Device, spec, new WiringConfig { Tau = 0.95f, Reduction = 2 }, seed: 2);
        model.SetSkipDeadNodes(false);
        var c = Evaluator.MeasureSkipSpeedup(model, test, batchSize: 8);
        Assert.False(model.Stages[0].SkipDeadNodes); // restored
        Assert.Equal(c.Full.Accuracy, c.Skipping.Accuracy);
        Assert.Equal(c.Full.Loss, c.Skipping.Loss, 4);
        Assert.True(c.Speedup > 0 && double.IsFinite(c.Speedup));
        Assert.Equal(c.Skipping.ImagesPerSecond / c.Full.ImagesPerSecond, c.Speedup);
    }

    [Fact]
    public void DenseEdgeMask_ZeroesThePrunedEdgesOnly()
    {
        var spec = ModelZoo.Get("resnet_mini", 8);
        using var model = new DdwNet(fx.Device, spec, new WiringConfig { Kind = WiringKind.Dense, InitialEdgeLogit = 1f }, seed: 3);
        bool[] mask = [true, false, false, true, false, true];
        model.Stages[1].Wiring!.EdgeMask = mask;
        var r = Evaluator.Evaluate(model, TrainerTests.Synthetic(4, 5), batchSize: 4);
        var keep = r.Diversity!.Stages;
        Assert.Equal([1.0, 1, 1, 1, 1, 1], keep[0].EdgeKeep);
        Assert.Equal(mask.Select(k => k ? 1.0 : 0.0), keep[1].EdgeKeep);
        Assert.Equal(0.5, keep[1].KeepRate);
        int c = r.ClassCounts.ToList().FindIndex(n => n > 0);
        double kept = r.MeanAdjacency[1]![c][0 * 4 + 1], pruned = r.MeanAdjacency[1]![c][0 * 4 + 2];
        Assert.Equal(1 / (1 + Math.Exp(-1)), kept, 5);
        Assert.Equal(0, pruned);
        Assert.Throws<ArgumentException>(() => model.Stages[1].Wiring!.EdgeMask = [true]);
        using var dynamic = new DdwNet(fx.Device, spec, new WiringConfig(), seed: 3);
        Assert.Throws<InvalidOperationException>(() => dynamic.Stages[0].Wiring!.EdgeMask = mask);
    }
}
