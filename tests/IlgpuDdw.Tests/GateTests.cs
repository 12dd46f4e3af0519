using IlgpuDdw.Autograd;
using IlgpuDdw.Data;
using IlgpuDdw.Models;
using IlgpuDdw.Nn;
using IlgpuDdw.Training;
using IlgpuDdw.Verification;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Tests;

/// <summary>
/// The gates inside stages and models (routing, dead nodes and skipping, the output-edge fix-up, the stochastic
/// gate's noise stream, router heads, checkpoints) and the keep terms on a device, ending with a short training run
/// at a low keep target that must not collapse.
/// </summary>
[Collection("cpu")]
public sealed class GateTests(DeviceFixture fx)
{
    private static WiringConfig Dynamic(GateKind gate, float logit = Router.DefaultOutputBias) =>
        new() { Kind = WiringKind.Dynamic, Gate = gate, InitialEdgeLogit = logit };

    private static float[] Images(int batch, int seed) => Check.ToFloat(Seeded.Uniform<double>(batch * 64, seed));

    public static TheoryData<GateKind> Gates => [GateKind.Threshold, GateKind.Continuous, GateKind.Stochastic, GateKind.TopK];

    [Theory, MemberData(nameof(Gates))]
    public void EveryGate_Trains_AndEvaluationSkipsDeadNodesExactly(GateKind gate)
    {
        var d = fx.Device;
        var spec = ModelZoo.Get("resnet_mini", 8);
        // logit 0: router outputs near 0.5, so τ = 0.5 cuts about half of the edges
        using var net = new DdwNet(d, spec, Dynamic(gate, 0f), seed: 4);
        const int batch = 8;
        using var x = Tensor.FromArray(d, Images(batch, 6), batch, 1, 8, 8);
        using var labels = IntTensor.FromArray(d, [0, 1, 2, 3, 0, 1, 2, 3]);
        using (var tape = new Tape(d) { FreeGradsEagerly = true, FreeActivationsEagerly = true })
        {
            net.ZeroGrad();
            tape.Backward(tape.CrossEntropy(net.Forward(tape, x), labels));
            var router = net.Stages[1].Wiring!.Routers[0];
            Assert.Contains(router.Fc2.Bias!.GradToArray(), v => v != 0);
            if (gate == GateKind.Stochastic) Assert.Contains(router.GateHead!.Bias!.GradToArray(), v => v != 0);
            else Assert.Null(router.GateHead);
        }
        net.Eval();
        using var eval = new Tape(d);
        using (eval.NoGrad())
        {
            net.SetSkipDeadNodes(false);
            var full = net.Forward(eval, x).ToArray();
            var adjacencies = net.Stages.Select(s => s.LastAdjacency?.Read()).ToArray();
            net.SetSkipDeadNodes(true);
            var skipped = net.Forward(eval, x).ToArray();
            Check.Close(full, skipped, 1e-5, 1e-4, $"{gate}: logits with dead-node skipping");
            int dead = 0;
            foreach (var (stage, a) in net.Stages.Zip(adjacencies))
            {
                if (a is null) continue;
                int n = stage.Nodes.Count;
                for (int j = 1; j < n; j++)
                {
                    int live = Enumerable.Range(0, batch).Count(b => Enumerable.Range(0, j).Any(i => a[b, i, j] != 0f));
                    Assert.Equal(live, stage.LastComputedSamples[j]);
                    dead += batch - live;
                }
                // the output node always reads something (forced for the continuous and stochastic gates, by k ≥ 1 for top-k)
                if (gate != GateKind.Threshold)
                    Assert.All(Enumerable.Range(0, batch), b => Assert.Contains(Enumerable.Range(0, n), i => a[b, i, n] != 0f));
            }
            if (gate == GateKind.TopK) Assert.Equal(0, dead);
            else Assert.True(dead > 0, $"{gate}: no node was cut off, so skipping was not exercised");
        }
    }

    [Theory]
    [InlineData(WiringKind.Dense, GateKind.Threshold)]
    [InlineData(WiringKind.Dynamic, GateKind.Stochastic)]
    [InlineData(WiringKind.Dynamic, GateKind.Continuous)]
    public void InEdgeNorm_InANet_ColumnsSumToAtMostOne_AndEdgesGetGradients(WiringKind kind, GateKind gate)
    {
        var d = fx.Device;
        var spec = ModelZoo.Get("resnet_mini", 8);
        // dense at logit 0: weights 0.5, so a node with three or more in-edges sums above 1; dynamic at the default
        // logit 3: weights near 0.95 and every edge kept, so a node with two or more does
        var plain = new WiringConfig { Kind = kind, Gate = gate, InitialEdgeLogit = kind == WiringKind.Dense ? 0f : Router.DefaultOutputBias };
        var normed = plain with { NormalizeInEdges = true };
        Assert.False((normed with { Kind = WiringKind.Chain }).NormalizesInEdges);
        using var a = new DdwNet(d, spec, plain, seed: 5);
        using var b = new DdwNet(d, spec, normed, seed: 5);
        a.SetGateNoise(0, false);
        b.SetGateNoise(0, false);
        const int batch = 4;
        using var x = Tensor.FromArray(d, Images(batch, 9), batch, 1, 8, 8);
        using var labels = IntTensor.FromArray(d, [0, 1, 2, 3]);
        float[,,]?[] Adjacencies(DdwNet net)
        {
            using var tape = new Tape(d);
            net.ZeroGrad();
            tape.Backward(tape.CrossEntropy(net.Forward(tape, x), labels));
            return net.Stages.Select(s => s.LastAdjacency?.Read()).ToArray();
        }
        var raw = Adjacencies(a);
        var norm = Adjacencies(b);
        int scaled = 0;
        for (int s = 0; s < raw.Length; s++)
        {
            if (raw[s] is not { } r) continue;
            var m = norm[s]!;
            int n = b.Stages[s].Nodes.Count;
            for (int k = 0; k < batch; k++)
                for (int j = 1; j <= n; j++)
                {
                    double sum = Enumerable.Range(0, j).Sum(i => (double)m[k, i, j]);
                    Assert.True(sum <= 1 + 1e-5, $"stage {s} sample {k} node {j}: in-edges sum to {sum}");
                    if (kind == WiringKind.Dense)
                    {
                        // static edge weights: the plain net's column divided by max(1, its sum), exactly
                        double rawSum = Enumerable.Range(0, j).Sum(i => (double)r[k, i, j]);
                        if (rawSum > 1) scaled++;
                        for (int i = 0; i < j; i++) Assert.Equal(r[k, i, j] / Math.Max(1, rawSum), m[k, i, j], 1e-5);
                    }
                    else if (Math.Abs(sum - 1) < 1e-5 && Enumerable.Range(0, j).Count(i => m[k, i, j] != 0f) >= 2) scaled++;
                }
        }
        Assert.True(scaled > 0, "no column summed above 1, so the normalisation was not exercised");
        var edgeGrad = kind == WiringKind.Dense ? b.Stages[1].Wiring!.EdgeLogits!.GradToArray() : b.Stages[1].Wiring!.Routers[0].Fc2.Bias!.GradToArray();
        Assert.Contains(edgeGrad, v => v != 0f && float.IsFinite(v));
    }

    [Fact]
    public void TopK_KeepsKInEdgesPerNode()
    {
        var d = fx.Device;
        using var net = new DdwNet(d, ModelZoo.Get("resnet_mini", 8), Dynamic(GateKind.TopK, 0f) with { TopKFraction = 0.4f }, seed: 2);
        net.Eval();
        using var x = Tensor.FromArray(d, Images(4, 7), 4, 1, 8, 8);
        using var tape = new Tape(d);
        using var _ = tape.NoGrad();
        net.Forward(tape, x);
        foreach (var stage in net.Stages.Where(s => s.LastAdjacency is not null))
        {
            var a = stage.LastAdjacency!.Read();
            int n = stage.Nodes.Count;
            for (int b = 0; b < 4; b++)
                for (int j = 1; j <= n; j++)
                    Assert.Equal(WiringConfig.TopK(0.4f, j), Enumerable.Range(0, j).Count(i => a[b, i, j] != 0f));
        }
    }

    [Theory]
    [InlineData(GateKind.Continuous, null, true)]
    [InlineData(GateKind.Continuous, false, false)]
    [InlineData(GateKind.Stochastic, null, true)]
    [InlineData(GateKind.Threshold, null, false)]
    [InlineData(GateKind.Threshold, true, true)]
    public void OutputNode_KeepsItsStrongestLiveInEdge_WhenEveryEdgeIsCut(GateKind gate, bool? force, bool expectForced)
    {
        var d = fx.Device;
        // logit −6: every router output (and gate logit) far below the threshold, every edge cut
        var config = Dynamic(gate, -6f) with { ForceOutputEdge = force };
        Assert.Equal(expectForced, config.ForcesOutputEdge);
        using var net = new DdwNet(d, ModelZoo.Get("resnet_mini", 8), config, seed: 3);
        net.SetGateNoise(0, false); // the stochastic gate's decisions without noise: z far below 0 cuts every edge
        using var x = Tensor.FromArray(d, Images(4, 8), 4, 1, 8, 8);
        using var labels = IntTensor.FromArray(d, [0, 1, 2, 3]);
        using var tape = new Tape(d);
        net.ZeroGrad();
        var loss = tape.CrossEntropy(net.Forward(tape, x), labels);
        foreach (var stage in net.Stages.Where(s => s.LastAdjacency is not null))
        {
            var a = stage.LastAdjacency!.Read();
            int n = stage.Nodes.Count;
            for (int b = 0; b < 4; b++)
            {
                var into = Enumerable.Range(0, n).Where(i => a[b, i, n] != 0f).ToArray();
                // every node but node 0 is off, so node 0's edge is the one forced on, with its weight
                Assert.Equal(expectForced ? [0] : [], into);
                for (int j = 1; j < n; j++) Assert.All(Enumerable.Range(0, j), i => Assert.Equal(0f, a[b, i, j]));
            }
        }
        tape.Backward(loss);
        // the forced edge passes its gradient to its router output (o = n − 1 of router 0), kept-only or not
        var bias = net.Stages[1].Wiring!.Routers[0].Fc2.Bias!.GradToArray();
        if (expectForced) Assert.NotEqual(0f, bias[^1]);
        else if (gate == GateKind.Threshold) Assert.All(bias, v => Assert.Equal(0f, v));
    }

    [Fact]
    public void StochasticGate_DrawsSeededNoiseInTraining_AndIsDeterministicInEvaluation()
    {
        var d = fx.Device;
        const int nodes = 3, batch = 16;
        var config = Dynamic(GateKind.Stochastic, 0f);
        using var wiring = new StageWiring(d, config, nodes, 4, new SeedSequence(5));
        var ys = Enumerable.Range(0, nodes).Select(i => Tensor.FromArray(d, Check.ToFloat(Seeded.Uniform<double>(batch * 4 * 4, 20 + i, 0, 3)), batch, 4, 2, 2)).ToArray();
        try
        {
            float[] Run(int? step)
            {
                if (step is int s) wiring.NoiseStep = s;
                using var tape = new Tape(d);
                using var _ = tape.NoGrad();
                var adjacency = wiring.Begin(tape, batch);
                for (int i = 0; i < nodes; i++) wiring.Route(tape, adjacency, i, ys[i]);
                return adjacency.Tensor.ToArray();
            }
            float[] Decisions()
            {
                // no noise: kept exactly where the gate logit is positive
                using var tape = new Tape(d);
                using var _ = tape.NoGrad();
                var adjacency = new Adjacency(tape, nodes, batch);
                var result = new float[batch * (nodes + 1) * (nodes + 1)];
                for (int i = 0; i < nodes; i++)
                {
                    var (w, z) = wiring.Routers[i].ForwardHeads(tape, ys[i]);
                    var (wv, zv) = (w.ToArray(), z!.ToArray());
                    int degree = nodes - i;
                    for (int b = 0; b < batch; b++)
                        for (int o = 0; o < degree; o++)
                            result[(b * (nodes + 1) + i) * (nodes + 1) + i + 1 + o] = zv[b * degree + o] > 0 ? wv[b * degree + o] : 0f;
                }
                return result;
            }
            var first = Run(7);
            Assert.Equal(8, wiring.NoiseStep);
            Assert.Equal(first, Run(7));
            Assert.NotEqual(first, Run(8));
            wiring.GateNoise = false;
            var quiet = Run(7);
            Assert.Equal(Decisions(), quiet);
            Assert.NotEqual(first, quiet);
            wiring.GateNoise = true;
            wiring.Eval();
            Assert.Equal(quiet, Run(9));
        }
        finally
        {
            foreach (var y in ys) y.Dispose();
        }
    }

    [Fact]
    public void RouterHeads_KeepExistingNamesAndInitialValues()
    {
        var d = fx.Device;
        var spec = ModelZoo.Get("resnet_mini", 8);
        using var threshold = new DdwNet(d, spec, Dynamic(GateKind.Threshold), seed: 9);
        using var stochastic = new DdwNet(d, spec, Dynamic(GateKind.Stochastic), seed: 9);
        using var continuous = new DdwNet(d, spec, Dynamic(GateKind.Continuous), seed: 9);
        var names = threshold.StateDict().Entries.Select(e => e.Name).ToArray();
        Assert.Equal(names, continuous.StateDict().Entries.Select(e => e.Name));
        var extra = stochastic.StateDict().Entries.Select(e => e.Name).Except(names).ToArray();
        Assert.NotEmpty(extra);
        Assert.All(extra, n => Assert.Matches(@"\.routers\.\d+\.gate\.(weight|bias)$", n));
        var t = threshold.StateDict().Entries.ToDictionary(e => e.Name, e => e.Data);
        foreach (var e in stochastic.StateDict().Entries.Where(e => t.ContainsKey(e.Name)))
            Assert.Equal(t[e.Name], e.Data);
        var head = stochastic.Stages[1].Wiring!.Routers[0].GateHead!;
        Assert.All(head.Bias!.ToArray(), v => Assert.Equal(Router.DefaultOutputBias, v));
    }

    [Fact]
    public void Checkpoint_CarriesTheGateSettings_AndOldMetadataMeansTodaysGate()
    {
        var d = fx.Device;
        using var dir = new TempDirectory();
        var config = Dynamic(GateKind.Stochastic) with { GateTemperature = 0.5f, TopKFraction = 0.3f, ForceOutputEdge = false, NormalizeInEdges = true };
        using var net = new DdwNet(d, ModelZoo.Get("resnet_mini", 8), config, seed: 2);
        Checkpoint.Save(dir.File("s.safetensors"), net);
        var info = Checkpoint.ReadInfo(dir.File("s.safetensors"));
        Assert.Equal(config, info.Wiring);
        using var loaded = Checkpoint.LoadModel(d, dir.File("s.safetensors"));
        Assert.Equal(GateKind.Stochastic, loaded.Stages[1].Wiring!.Gate);
        Assert.True(loaded.Stages[1].Wiring!.NormalizesInEdges);
        Assert.NotNull(loaded.Stages[1].Wiring!.Routers[0].GateHead);

        var plain = Dynamic(GateKind.Threshold);
        using var old = new DdwNet(d, ModelZoo.Get("resnet_mini", 8), plain, seed: 2);
        Checkpoint.Save(dir.File("t.safetensors"), old);
        Assert.Equal(plain, Checkpoint.ReadInfo(dir.File("t.safetensors")).Wiring);

        // trainer options carry the new fields
        var options = new TrainerOptions { KeepTarget = 0.4f, KeepTargetWeight = 2, KeepTargetWarmupFraction = 0.1f, BatchShapingWeight = 0.5f, BatchShapingAlpha = 0.7f, BatchShapingBeta = 0.3f, NoiseOffFraction = 0.2f, KeepTemperature = 0.2f };
        var json = System.Text.Json.JsonSerializer.Serialize(options, CheckpointJsonContext.Default.TrainerOptions);
        Assert.Equal(options, System.Text.Json.JsonSerializer.Deserialize(json, CheckpointJsonContext.Default.TrainerOptions));
    }

    [Fact]
    public void Config_RejectsBadGateSettings_InOneLine()
    {
        void Throws(WiringConfig c, string part)
        {
            var e = Assert.Throws<ArgumentException>(c.Validate);
            Assert.Contains(part, e.Message);
            Assert.DoesNotContain('\n', e.Message);
        }
        Throws(new WiringConfig { Gate = (GateKind)9 }, "Gate 9");
        Throws(new WiringConfig { GateTemperature = 0 }, "T = 0");
        Throws(new WiringConfig { TopKFraction = 0 }, "fraction 0");
        Throws(new WiringConfig { TopKFraction = 1.5f }, "fraction 1.5");
        foreach (var (o, part) in new (TrainerOptions, string)[]
        {
            (new() { KeepTarget = 0 }, "Keep target"), (new() { KeepTarget = 1.2f }, "1.2"), (new() { KeepTargetWeight = -1 }, "Keep-target weight"),
            (new() { KeepTargetWarmupFraction = 2 }, "warm-up"), (new() { BatchShapingWeight = float.NaN }, "Batch-shaping weight"),
            (new() { BatchShapingAlpha = 0 }, "α"), (new() { BatchShapingBeta = -1 }, "β"), (new() { NoiseOffFraction = -0.5f }, "Noise-off"),
            (new() { KeepTemperature = 0 }, "Keep temperature"),
        })
            Assert.Contains(part, Assert.Throws<ArgumentException>(o.Validate).Message);
    }

    [Fact]
    public void KeepTerms_AreBuiltFromOptions_AndTheirGradientReachesTheRouterOutputs()
    {
        var d = fx.Device;
        var spec = ModelZoo.Get("resnet_mini", 8);
        var options = new TrainerOptions { KeepTarget = 0.3f, BatchShapingWeight = 0.5f, SparsityWeight = 0.1f };
        using var chain = new DdwNet(d, spec, new WiringConfig { Kind = WiringKind.Chain });
        Assert.Equal(["cross_entropy"], ObjectiveTerms.FromOptions(options, chain).Select(t => t.Name));
        foreach (var gate in new[] { GateKind.Continuous, GateKind.Stochastic })
        {
            using var net = new DdwNet(d, spec, Dynamic(gate, 0.5f), seed: 1);
            var terms = ObjectiveTerms.FromOptions(options, net);
            Assert.Equal(["cross_entropy", "sparsity", "keep_rate", "batch_shaping"], terms.Select(t => t.Name));
            using var x = Tensor.FromArray(d, Images(6, 3), 6, 1, 8, 8);
            using var labels = IntTensor.FromArray(d, [0, 1, 2, 3, 0, 1]);
            foreach (var term in terms.Skip(2).Cast<KeepTerm>())
            {
                using var tape = new Tape(d);
                var logits = net.Forward(tape, x);
                var context = new ObjectiveContext(net, logits, labels, 0, 3, 10);
                // the host value and gradient, computed from the same state the term reads
                var states = StageKeepState.Read(net, term.Temperature);
                var value = term.Compute(tape, context);
                tape.Backward(value);
                double expected = 0;
                for (int s = 0; s < states.Count; s++)
                {
                    var st = states[s].State;
                    var local = st.Inputs.Select(v => new double[v.Length]).ToArray();
                    double scale;
                    if (term is KeepRateTerm k)
                    {
                        double rate = st.KeepRate(local), rho = k.TargetAt(3, 10);
                        expected += (rate - rho) * (rate - rho);
                        scale = 2 * (rate - rho);
                    }
                    else
                    {
                        double edges = states.Sum(t => (double)t.State.EdgeCount);
                        expected += 0.5 * st.BatchShaping(0.6, 0.4, local) / edges;
                        scale = 0.5 / edges;
                    }
                    // The last router of the last stage feeds no other keep input: its gradient is the term's own. Earlier
                    // ones also receive the term's gradient through the node outputs and aggregates that later routers read.
                    if (s == states.Count - 1)
                        Check.Close(local[^1].Select(v => scale * v).ToArray(), Check.ToDouble(states[s].Tensors[^1].GradToArray()), 1e-7, 1e-4, $"{gate} {term.Name} d x[{s}][last]");
                }
                Assert.Equal(expected, value.ToArray()[0], 5);
                Assert.True(expected > 0);
                var first = net.Stages.First(st => st.LastAdjacency is not null).Wiring!.Routers[0];
                Assert.Contains((gate == GateKind.Stochastic ? first.GateHead! : first.Fc2).Bias!.GradToArray(), v => v != 0);
                net.ZeroGrad();
            }
        }
        using var c = new Trainer(chain, TrainerTests.Synthetic(8, 1), TrainerTests.Synthetic(8, 2), new TrainerOptions { BatchSize = 8 }, [new CrossEntropyTerm(), new KeepRateTerm(0.5f)]);
        Assert.Throws<InvalidOperationException>(() => c.RunEpoch());
    }

    [Fact]
    public void Trainer_SwitchesTheNoiseOffForTheLastPartOfTraining()
    {
        var d = fx.Device;
        using var net = new DdwNet(d, ModelZoo.Get("resnet_mini", 8), Dynamic(GateKind.Stochastic), seed: 1);
        var options = new TrainerOptions { Epochs = 1, BatchSize = 8, EvalBatchSize = 16, LearningRate = 0.02f, NoiseOffFraction = 0.5f, LogInterval = 1 };
        using var t = new Trainer(net, TrainerTests.Synthetic(32, 1), TrainerTests.Synthetic(8, 2), options);
        var progress = new List<bool>();
        t.Progress = new Recorder(_ => progress.Add(net.Stages[1].Wiring!.GateNoise));
        t.Run();
        // 4 steps: noise on for steps 0 and 1, off for 2 and 3; the stream counter follows the step
        Assert.Equal([true, true, false, false], progress);
        Assert.Equal(3, net.Stages[1].Wiring!.NoiseStep);
    }

    /// <summary>
    /// A few steps at a low keep target with the continuous gate and the target-rate term: the keep rate moves from
    /// 1 toward the target and the predictions stay different across the test images (no collapse to one class).
    /// </summary>
    [Fact]
    public void LowKeepTarget_WithTheContinuousGate_CutsEdges_WithoutCollapsing()
    {
        var d = fx.Device;
        var config = Dynamic(GateKind.Continuous, 1f);
        using var net = new DdwNet(d, ModelZoo.Get("resnet_mini", 8), config, seed: 1);
        var options = new TrainerOptions { Epochs = 3, BatchSize = 8, EvalBatchSize = 32, LearningRate = 0.05f, Seed = 3, KeepTarget = 0.3f, KeepTargetWeight = 3f };
        var test = TrainerTests.Synthetic(32, 2);
        using var t = new Trainer(net, TrainerTests.Synthetic(64, 1), test, options);
        double before = t.Evaluate(test).KeepRate;
        var history = t.Run();
        double after = history[^1].KeepRate;
        Assert.Equal(1.0, before);
        Assert.True(after < 0.9, $"keep rate {before} -> {after}: it did not move toward the target 0.3");
        Assert.True(history[^1].Terms[1].Value < history[0].Terms[1].Value, "the keep-rate term did not fall");
        var predictions = Predict(net, test);
        Assert.True(predictions.Distinct().Count() >= 3, $"predictions collapsed: {string.Join(",", predictions)}");
        Assert.True(history[^1].TestAccuracy > 0.5, $"test accuracy {history[^1].TestAccuracy}");
    }

    internal static int[] Predict(DdwNet model, ImageDataset data)
    {
        var d = model.Device;
        bool training = model.Training;
        model.Eval();
        using var tape = new Tape(d);
        using var _ = tape.NoGrad();
        var x = tape.Own(Tensor.FromArray(d, data.Images, data.Count, data.Channels, data.Height, data.Width));
        var logits = model.Forward(tape, x).ToArray();
        int classes = logits.Length / data.Count;
        model.Train(training);
        return Enumerable.Range(0, data.Count).Select(b => Enumerable.Range(0, classes).MaxBy(k => logits[b * classes + k])).ToArray();
    }

    private sealed class Recorder(Action<TrainProgress> report) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress value) => report(value);
    }
}
