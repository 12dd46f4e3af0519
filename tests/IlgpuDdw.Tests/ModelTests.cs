using IlgpuDdw.Autograd;
using IlgpuDdw.Models;
using IlgpuDdw.Nn;
using IlgpuDdw.Training;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Tests;

[Collection("cpu")]
public sealed class ModelTests(DeviceFixture fx)
{
    private static WiringConfig W(WiringKind kind, float tau = 0.5f) => new() { Kind = kind, Tau = tau };

    private static float[] Images(int batch, ModelSpec spec, int seed) =>
        Check.ToFloat(Seeded.Uniform<double>(batch * spec.InputChannels * spec.InputSize * spec.InputSize, seed));

    public static TheoryData<string> ZooNames()
    {
        var d = new TheoryData<string>();
        foreach (var n in ModelZoo.Names) d.Add(n);
        return d;
    }

    [Theory, MemberData(nameof(ZooNames))]
    public void ChainModule_HasTheSpecsParameterCount(string name)
    {
        var spec = ModelZoo.Get(name);
        using var net = new DdwNet(fx.Device, spec, W(WiringKind.Chain));
        Assert.Equal(CostModel.Compute(spec).TotalParameters, net.ParameterCount());
        fx.Device.TrimPool();
    }

    [Theory]
    [InlineData("resnet_mini", WiringKind.Dense)]
    [InlineData("resnet_mini", WiringKind.Dynamic)]
    [InlineData("mobilenet_mini", WiringKind.Dense)]
    [InlineData("mobilenet_mini", WiringKind.Dynamic)]
    [InlineData("resnet18", WiringKind.Dynamic)]
    public void DenseAndDynamic_AddOnlyEdgeAndRouterParameters_PerStage(string name, WiringKind kind)
    {
        var spec = ModelZoo.Get(name);
        using var chain = new DdwNet(fx.Device, spec, W(WiringKind.Chain));
        using var wired = new DdwNet(fx.Device, spec, W(kind));
        var cost = CostModel.Compute(spec, kind);
        for (int s = 0; s < spec.Stages.Count; s++)
        {
            long chainCount = chain.Stages[s].ParameterCount();
            long wiredCount = wired.Stages[s].ParameterCount();
            Assert.Equal(cost.Stages[s].Parameters, chainCount);
            Assert.Equal(cost.Stages[s].EdgeParameters + cost.Stages[s].RouterParameters, wiredCount - chainCount);
        }
        Assert.Equal(cost.TotalParameters, wired.ParameterCount());
        fx.Device.TrimPool();
    }

    [Fact]
    public void NamedParameters_AreDotted_AndUnique()
    {
        using var net = DdwNet.Create(fx.Device, "resnet_mini", W(WiringKind.Dynamic));
        var names = net.NamedParameters().Select(p => p.Name).ToList();
        Assert.Equal(names.Count, names.Distinct().Count());
        Assert.Contains("stages.1.nodes.2.main.0.weight", names);
        Assert.Contains("stages.0.wiring.routers.1.fc2.bias", names);
        Assert.Contains("head.1.weight", names);
        Assert.Contains(net.NamedBuffers(), b => b.Name == "stem.1.running_var");
    }

    [Theory]
    [InlineData("resnet_mini", WiringKind.Chain)]
    [InlineData("resnet_mini", WiringKind.Dense)]
    [InlineData("resnet_mini", WiringKind.Dynamic)]
    [InlineData("mobilenet_mini", WiringKind.Dynamic)]
    public void TwentySgdSteps_OnAFixedBatch_LowerTheLoss(string name, WiringKind kind)
    {
        var d = fx.Device;
        var spec = ModelZoo.Get(name, 12);
        using var net = new DdwNet(d, spec, W(kind), seed: 3);
        int batch = 4;
        using var x = Tensor.FromArray(d, Images(batch, spec, 5), batch, spec.InputChannels, spec.InputSize, spec.InputSize);
        using var labels = IntTensor.FromArray(d, [1, 7, 3, 9]);
        using var opt = new Sgd(net.Parameters(), 0.05f, momentum: 0.9f);
        using var tape = new Tape(d) { FreeGradsEagerly = true };
        float first = 0, last = 0;
        for (int step = 0; step < 20; step++)
        {
            opt.ZeroGrad();
            var loss = tape.CrossEntropy(net.Forward(tape, x), labels);
            tape.Backward(loss);
            float v = loss.ToArray()[0];
            Assert.True(float.IsFinite(v), $"step {step}: loss {v}");
            if (step == 0) first = v;
            last = v;
            opt.Step();
            tape.Clear();
        }
        Assert.True(last < 0.5f * first, $"loss {first} -> {last}");
    }

    [Fact]
    public void Dynamic_WithTauBelowEveryWeight_EqualsDense()
    {
        var d = fx.Device;
        var spec = ModelZoo.Get("resnet_mini", 8);
        using var dense = new DdwNet(d, spec, W(WiringKind.Dense), seed: 11);
        using var dyn = new DdwNet(d, spec, W(WiringKind.Dynamic, tau: 0f), seed: 11);
        // Same backbone weights; routers that output the dense edge weights for every sample.
        var sd = dense.StateDict();
        foreach (var (n, t) in dyn.NamedParameters().Concat(dyn.NamedBuffers()))
            if (sd.TryGet(n, out var e)) t.CopyFrom(e.Data);
        for (int s = 0; s < spec.Stages.Count; s++)
        {
            var logits = dense.Stages[s].Wiring!.EdgeLogits!.ToArray();
            int n = spec.Stages[s].Nodes.Count;
            var routers = dyn.Stages[s].Wiring!.Routers;
            for (int i = 0; i < n; i++)
            {
                routers[i].Fc2.Weight.Fill(0f);
                routers[i].Fc2.Bias!.CopyFrom(Enumerable.Range(i + 1, n - i).Select(j => logits[Adjacency.EdgeIndex(n, i, j)]).ToArray());
            }
        }
        int batch = 3;
        using var x = Tensor.FromArray(d, Images(batch, spec, 9), batch, 1, 8, 8);
        using var tape = new Tape(d);
        var a = dense.Forward(tape, x).ToArray();
        var b = dyn.Forward(tape, x).ToArray();
        Assert.Equal(a, b);
    }

    [Fact]
    public void Resnet18_Dynamic_ForwardBackward_AtSmallResolution()
    {
        var d = fx.Device;
        using var net = DdwNet.Create(d, "resnet18", W(WiringKind.Dynamic), seed: 1, inputSize: 32);
        var spec = net.Spec;
        using var x = Tensor.FromArray(d, Images(2, spec, 2), 2, 3, 32, 32);
        using var labels = IntTensor.FromArray(d, [5, 999]);
        using var tape = new Tape(d) { FreeGradsEagerly = true };
        var logits = net.Forward(tape, x);
        Assert.Equal(new[] { 2, 1000 }, logits.Shape);
        var loss = tape.CrossEntropy(logits, labels);
        tape.Backward(loss);
        Assert.True(float.IsFinite(loss.ToArray()[0]));
        foreach (var (n, p) in net.NamedParameters())
            Assert.True(p.GradToArray().All(float.IsFinite), n);
        Assert.Contains(net.NamedParameters(), p => p.Name.StartsWith("stages.0.wiring.routers", StringComparison.Ordinal) && p.Tensor.GradToArray().Any(v => v != 0));
        tape.Clear();
        net.Dispose();
        d.TrimPool();
    }

    [Fact]
    public void TrainingStep_FreesEverything_AfterClear()
    {
        var d = fx.Device;
        var spec = ModelZoo.Get("resnet_mini", 8);
        using var net = new DdwNet(d, spec, W(WiringKind.Dynamic));
        using var x = Tensor.FromArray(d, Images(2, spec, 1), 2, 1, 8, 8);
        using var labels = IntTensor.FromArray(d, [0, 1]);
        using var opt = new Sgd(net.Parameters(), 0.01f, momentum: 0.9f);
        using var tape = new Tape(d) { FreeGradsEagerly = true };
        int baseline = -1;
        for (int step = 0; step < 3; step++)
        {
            tape.Backward(tape.CrossEntropy(net.Forward(tape, x), labels));
            opt.Step();
            opt.ZeroGrad();
            tape.Clear();
            if (step == 0) baseline = d.LiveBuffers; // parameter gradients now exist
            else Assert.Equal(baseline, d.LiveBuffers);
        }
    }

    [Fact]
    public void NoGradForward_FreesEveryIntermediate_ButTheLogitsAdjacenciesAndRouterOutputs()
    {
        var d = fx.Device;
        var spec = ModelZoo.Get("resnet_mini", 8);
        using var net = new DdwNet(d, spec, W(WiringKind.Dynamic), seed: 2);
        net.Eval();
        using var x = Tensor.FromArray(d, Images(2, spec, 3), 2, 1, 8, 8);
        using var tape = new Tape(d);
        int before = d.LiveBuffers;
        Tensor logits;
        using (tape.NoGrad()) logits = net.Forward(tape, x);
        int kept = 1 + spec.Stages.Sum(s => 1 + s.Nodes.Count);   // logits; per stage its adjacency and n router outputs
        Assert.Equal(kept, tape.OwnedCount);
        Assert.Equal(before + kept, d.LiveBuffers);
        Assert.All(net.Stages, s => Assert.NotNull(s.LastAdjacency));
        Assert.All(net.LastRouterOutputs(), a => Assert.False(a.IsDisposed));
        Assert.False(logits.IsDisposed);
        tape.Clear();
        Assert.Equal(before, d.LiveBuffers);
    }

    [Fact]
    public void DeadNodeSkipping_MatchesFullComputation()
    {
        var d = fx.Device;
        var spec = ModelZoo.Get("resnet_mini", 8);
        using var net = new DdwNet(d, spec, W(WiringKind.Dynamic, tau: 0.5f), seed: 4);
        // Spread router 0's outputs in stage 1 so that its edge into node 1 varies across samples.
        var r0 = net.Stages[1].Wiring!.Routers[0];
        r0.Fc2.Weight.CopyFrom(Check.ToFloat(Seeded.Uniform<double>(r0.Fc2.Weight.Length, 3, -4, 4)));
        r0.Fc2.Bias!.Fill(0f);
        net.Eval();
        int batch = 8;
        using var x = Tensor.FromArray(d, Images(batch, spec, 6), batch, 1, 8, 8);
        using var tape = new Tape(d);
        using (tape.NoGrad())
        {
            net.SetSkipDeadNodes(false);
            net.SetTau(0f);
            net.Forward(tape, x);
            var a = net.Stages[1].LastAdjacency!.Read();
            var edge = Enumerable.Range(0, batch).Select(b => a[b, 0, 1]).Order().ToArray();
            Assert.True(edge[3] < edge[4], "router outputs do not vary across samples");
            net.SetTau((edge[3] + edge[4]) / 2); // cut edge 0→1 (node 1's only in-edge) for half the samples
            tape.Clear();

            var full = net.Forward(tape, x).ToArray();
            var computedFull = net.Stages[1].LastComputedSamples.ToArray();
            net.SetSkipDeadNodes(true);
            var skipped = net.Forward(tape, x).ToArray();
            var computed = net.Stages[1].LastComputedSamples.ToArray();
            Assert.All(computedFull, c => Assert.Equal(batch, c));
            Assert.Equal(batch / 2, computed[1]);
            Check.Close(full, skipped, 1e-5, 1e-4, "logits with dead-node skipping");
        }
    }

    [Fact]
    public void StateDict_RoundTrips_AndStrictLoadingNamesProblems()
    {
        var d = fx.Device;
        using var a = DdwNet.Create(d, "resnet_mini", W(WiringKind.Dynamic), seed: 1);
        using var b = DdwNet.Create(d, "resnet_mini", W(WiringKind.Dynamic), seed: 2);
        var sd = a.StateDict();
        b.LoadStateDict(sd);
        Assert.Equal(a.NamedParameters().First().Tensor.ToArray(), b.NamedParameters().First().Tensor.ToArray());

        var missing = new StateDict();
        foreach (var e in sd.Entries.Skip(1)) missing.Add(e);
        var ex = Assert.Throws<ArgumentException>(() => b.LoadStateDict(missing));
        Assert.Contains($"missing '{sd.Entries[0].Name}'", ex.Message);
        b.LoadStateDict(missing, strict: false);

        var misShaped = new StateDict();
        foreach (var e in sd.Entries)
            misShaped.Add(e.Name == "head.1.weight" ? e with { Shape = [1, e.Data.Length], } : e);
        ex = Assert.Throws<ArgumentException>(() => b.LoadStateDict(misShaped));
        Assert.Contains("head.1.weight", ex.Message);
        Assert.Throws<ArgumentException>(() => b.LoadStateDict(misShaped, strict: false));

        var extra = new StateDict();
        foreach (var e in sd.Entries) extra.Add(e);
        extra.Add(new StateEntry("bogus.weight", [1], [0f]));
        Assert.Contains("unexpected 'bogus.weight'", Assert.Throws<ArgumentException>(() => b.LoadStateDict(extra)).Message);
    }

    [Fact]
    public void BadInput_ClearErrors()
    {
        var d = fx.Device;
        var e = Assert.Throws<ArgumentException>(() => DdwNet.Create(d, "resnet19", W(WiringKind.Chain)));
        Assert.Contains("resnet18", e.Message);
        e = Assert.Throws<ArgumentException>(() => DdwNet.Create(d, "resnet18", W(WiringKind.Chain), inputSize: 16));
        Assert.Contains("16", e.Message);
        using var net = DdwNet.Create(d, "resnet_mini", W(WiringKind.Chain));
        using var wrong = Tensor.Zeros(d, 1, 1, 27, 28);
        using var tape = new Tape(d);
        e = Assert.Throws<ArgumentException>(() => net.Forward(tape, wrong));
        Assert.Contains("[1, 1, 27, 28]", e.Message);
        Assert.Throws<ArgumentException>(() => DdwNet.Create(d, "resnet_mini", new WiringConfig { Kind = WiringKind.Dynamic, Tau = 1f }));
    }

    [Fact]
    public void DynamicTrainingStep_PeakMemory_WithinTenPercentOfChain()
    {
        var d = fx.Device;
        var spec = ModelZoo.Get("resnet_mini", 16);
        var chain = StepBenchmark.Run(d, spec, W(WiringKind.Chain), batch: 4, repetitions: 1, warmup: 1);
        var dynamic = StepBenchmark.Run(d, spec, W(WiringKind.Dynamic), batch: 4, repetitions: 1, warmup: 1);
        double ratio = (double)dynamic.PeakBytes / chain.PeakBytes;
        Assert.True(ratio <= 1.1, $"dynamic peak {dynamic.PeakBytes} B is {ratio:F3}× chain's {chain.PeakBytes} B");
    }
}
