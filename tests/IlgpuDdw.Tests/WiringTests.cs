using IlgpuDdw.Autograd;
using IlgpuDdw.Kernels.Reference;
using IlgpuDdw.Nn;
using IlgpuDdw.Verification;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Tests;

/// <summary>
/// The wiring ops on the CPU accelerator: dynamic-equals-dense, cut samples under both gate gradients,
/// determinism, adjacency reading, the aggregation benchmark, and bad inputs (kernels against the float reference
/// through a stage's wiring: <see cref="WiringCases"/>).
/// </summary>
[Collection("cpu")]
public sealed class WiringTests(DeviceFixture fx)
{
    // ---- layer 3 (kernels against the reference: VerificationTests) -------------------------------------

    [Fact]
    public void Stage_Kernels_CutAndKeepEdges()
    {
        // the dynamic verification cases really exercise both kinds of edges
        var c = WiringCase.Create(WiringKind.Dynamic, 5, 3, 9, 3, 1, GateGradient.KeptOnly, seed: 1);
        var r = c.RunOnDevice(fx.Device);
        int size = 6, kept = 0, cut = 0;
        for (int b = 0; b < 3; b++)
            for (int i = 0; i < 5; i++)
                for (int j = i + 1; j <= 5; j++)
                    if (r.Adjacency[(b * size + i) * size + j] != 0) kept++; else cut++;
        Assert.True(kept > 5 && cut > 5, $"kept {kept}, cut {cut}");
    }

    // ---- dynamic with a constant router equals dense -----------------------------------------------------

    [Fact]
    public void Dynamic_WithConstantRouters_AndTauBelowEveryWeight_EqualsDense_Bitwise()
    {
        var d = fx.Device;
        const int nodes = 4, batch = 3, channels = 5;
        var c = WiringCase.Create(WiringKind.Dense, nodes, batch, channels, 2, 3, seed: 5);
        var logits = c.Logits!;
        using var dense = new StageWiring(d, new WiringConfig { Kind = WiringKind.Dense }, nodes, channels);
        dense.EdgeLogits!.CopyFrom(logits);
        using var dynamic = new StageWiring(d, new WiringConfig { Kind = WiringKind.Dynamic, Tau = 0f }, nodes, channels);
        for (int i = 0; i < nodes; i++)
        {
            var p = dynamic.Routers[i];
            p.Fc2.Weight.Fill(0f);   // a = sigmoid(b2): a constant router
            p.Fc2.Bias!.CopyFrom(logits.AsSpan(Adjacency.EdgeIndex(nodes, i, i + 1), nodes - i));
        }
        var (denseA, denseX, denseDy) = RunStage(dense, c);
        var (dynA, dynX, dynDy) = RunStage(dynamic, c);
        Assert.Equal(denseA, dynA);
        for (int j = 1; j <= nodes; j++) Assert.Equal(denseX[j], dynX[j]);
        for (int i = 0; i < nodes; i++) Assert.Equal(denseDy[i], dynDy[i]);
    }

    /// <summary>Runs a stage wiring on the case's node outputs; returns A, the aggregates and d L / d y.</summary>
    private (float[] A, float[][] X, float[][] DY) RunStage(StageWiring wiring, WiringCase c)
    {
        var d = fx.Device;
        var ys = c.Ys.Select(y => Tensor.FromArray(d, y, c.NodeShape)).ToArray();
        try
        {
            foreach (var y in ys) y.RequiresGrad = true;
            using var tape = new Tape(d);
            var adj = wiring.Begin(tape, c.Batch);
            var xs = new Tensor[c.Nodes + 1];
            wiring.Route(tape, adj, 0, ys[0]);
            for (int j = 1; j <= c.Nodes; j++)
            {
                xs[j] = wiring.Aggregate(tape, adj, j, ys);
                if (j < c.Nodes) wiring.Route(tape, adj, j, ys[j]);
            }
            tape.Backward(xs[c.Nodes], c.Gs[^1]);
            return (adj.Tensor.ToArray(), xs.Select(x => x?.ToArray() ?? []).ToArray(), ys.Select(y => y.GradToArray()).ToArray());
        }
        finally
        {
            foreach (var y in ys) y.Dispose();
        }
    }

    // ---- a sample whose in-edges are all cut ---------------------------------------------------------------

    [Theory]
    [InlineData(GateGradient.KeptOnly)]
    [InlineData(GateGradient.StraightThrough)]
    public void CutSample_GetsZeroInput_AndRouterGradientOnlyUnderStraightThrough(GateGradient gradient)
    {
        // n = 2, batch 2: sample 0's node outputs are negative, so ReLU(W1 · GAP) = 0 and a = sigmoid(b2) = sigmoid(−1) < 0.5:
        // every edge of sample 0 is cut. Sample 1's outputs are positive and W2 > 0 keeps its edges.
        var d = fx.Device;
        const int nodes = 2, batch = 2, channels = 3, spatial = 4;
        var y0 = new float[batch * channels * spatial];
        var y1 = new float[y0.Length];
        for (int k = 0; k < y0.Length; k++)
        {
            float sign = k < channels * spatial ? -1f : 1f;
            y0[k] = sign * (0.5f + 0.01f * k);
            y1[k] = sign * (0.7f + 0.02f * k);
        }
        using var wiring = new StageWiring(d, new WiringConfig { Tau = 0.5f, Gradient = gradient }, nodes, channels);
        foreach (var p in wiring.Routers)
        {
            p.Fc1.Weight.Fill(0.5f); p.Fc1.Bias!.Fill(0f); p.Fc2.Weight.Fill(2f); p.Fc2.Bias!.Fill(-1f);
        }
        using var ty0 = Tensor.FromArray(d, y0, batch, channels, 2, 2);
        using var ty1 = Tensor.FromArray(d, y1, batch, channels, 2, 2);
        ty0.RequiresGrad = true; ty1.RequiresGrad = true;
        using var tape = new Tape(d);
        var adj = wiring.Begin(tape, batch);
        var a0 = wiring.Route(tape, adj, 0, ty0)!;
        var x1 = wiring.Aggregate(tape, adj, 1, [ty0, ty1]);
        var a1 = wiring.Route(tape, adj, 1, ty1)!;
        var x2 = wiring.Aggregate(tape, adj, 2, [ty0, ty1]);
        var loss = tape.Add(tape.Sum(x1), tape.Sum(x2));

        var a = adj.Read();
        for (int i = 0; i < nodes; i++)
            for (int j = i + 1; j <= nodes; j++)
            {
                Assert.Equal(0f, a[0, i, j]);
                Assert.True(a[1, i, j] > 0.5f);
            }
        Assert.Equal(0.5, adj.KeepRate());
        int sample = channels * spatial;
        Assert.All(x1.ToArray()[..sample], v => Assert.Equal(0f, v));
        Assert.All(x2.ToArray()[..sample], v => Assert.Equal(0f, v));

        tape.Backward(loss);
        var ga0 = a0.GradToArray();
        var ga1 = a1.GradToArray();
        float[] cut0 = [ga0[0], ga0[1], ga1[0]];   // sample 0's router-output gradients
        if (gradient == GateGradient.KeptOnly)
            Assert.All(cut0, v => Assert.Equal(0f, v));
        else
            Assert.All(cut0, v => Assert.NotEqual(0f, v));
        Assert.All(new[] { ga0[2], ga0[3], ga1[1] }, v => Assert.NotEqual(0f, v)); // sample 1 kept
    }

    [Theory]
    [InlineData(GateGradient.KeptOnly)]
    [InlineData(GateGradient.StraightThrough)]
    public void AllCut_RouterParametersGetGradientOnlyUnderStraightThrough(GateGradient gradient)
    {
        var d = fx.Device;
        var c = WiringCase.Create(WiringKind.Chain, 3, 1, 3, 2, 2, seed: 3);
        using var wiring = new StageWiring(d, new WiringConfig { Tau = 0.9f, Gradient = gradient }, 3, 3);
        foreach (var p in wiring.Routers) p.Fc2.Bias!.Fill(-3f);   // sigmoid(−3 + small) ≈ 0.05 < 0.9: every edge cut
        var ys = c.Ys.Select(y => Tensor.FromArray(d, y, c.NodeShape)).ToArray();
        try
        {
            foreach (var y in ys) y.RequiresGrad = true;
            using var tape = new Tape(d);
            var adj = wiring.Begin(tape, 1);
            wiring.Route(tape, adj, 0, ys[0]);
            wiring.Route(tape, adj, 1, ys[1]);
            wiring.Route(tape, adj, 2, ys[2]);
            var x = tape.Add(tape.Aggregate(adj, 3, ys), tape.Add(tape.Aggregate(adj, 1, ys), tape.Aggregate(adj, 2, ys)));
            Assert.All(x.ToArray(), v => Assert.Equal(0f, v));
            Assert.Equal(0, adj.KeepRate());
            tape.Backward(x, c.Gs[0]);
            var grads = wiring.Parameters().SelectMany(p => p.GradToArray()).ToArray();
            if (gradient == GateGradient.KeptOnly)
            {
                Assert.All(grads, v => Assert.Equal(0f, v));
                Assert.All(ys.SelectMany(y => y.GradToArray()), v => Assert.Equal(0f, v));
            }
            else
            {
                Assert.Contains(grads, v => v != 0f);
            }
        }
        finally
        {
            foreach (var y in ys) y.Dispose();
        }
    }

    // ---- determinism ------------------------------------------------------------------------------------

    [Fact]
    public void TwoRuns_WithOneSeed_AreBitIdentical()
    {
        var c = WiringCase.Create(WiringKind.Dynamic, 4, 3, 5, 3, 2, GateGradient.StraightThrough, seed: 9);
        var r1 = c.RunOnDevice(fx.Device);
        var r2 = c.RunOnDevice(fx.Device);
        Assert.Equal(r1.Adjacency, r2.Adjacency);
        Assert.Equal(r1.DAdjacency, r2.DAdjacency);
        for (int j = 1; j <= 4; j++) Assert.Equal(r1.Aggregates[j], r2.Aggregates[j]);
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal(r1.NodeOutputGrads[i], r2.NodeOutputGrads[i]);
            Assert.Equal(r1.RouterGrads![i].W1, r2.RouterGrads![i].W1);
            Assert.Equal(r1.RouterGrads[i].B2, r2.RouterGrads[i].B2);
        }
        // the seeded initialisation too
        using var w1 = new StageWiring(fx.Device, new WiringConfig(), 3, 5, new SeedSequence(42));
        using var w2 = new StageWiring(fx.Device, new WiringConfig(), 3, 5, new SeedSequence(42));
        using var w3 = new StageWiring(fx.Device, new WiringConfig(), 3, 5, new SeedSequence(43));
        Assert.Equal(w1.Parameters().SelectMany(p => p.ToArray()), w2.Parameters().SelectMany(p => p.ToArray()));
        Assert.NotEqual(w1.Parameters().SelectMany(p => p.ToArray()), w3.Parameters().SelectMany(p => p.ToArray()));
    }

    // ---- adjacency, initial state, memory ---------------------------------------------------------------

    [Fact]
    public void Adjacency_ReadWriteChainKeepRate()
    {
        var d = fx.Device;
        using var tape = new Tape(d);
        var adj = new Adjacency(tape, 4, 2);
        Assert.Equal(10, adj.EdgeCount);
        Assert.Equal(5, adj.Size);
        adj.FillChain();
        var a = adj.Read();
        for (int b = 0; b < 2; b++)
            for (int i = 0; i < 5; i++)
                for (int j = 0; j < 5; j++)
                    Assert.Equal(j == i + 1 ? 1f : 0f, a[b, i, j]);
        Assert.Equal(0.4, adj.KeepRate(), 12);
        a[1, 0, 3] = 0.25f;
        adj.Write(a);
        Assert.Equal(0.25f, adj.Read()[1, 0, 3]);
        Assert.Equal(0.45, adj.KeepRate(), 12);
        tape.Clear();
        Assert.True(adj.Tensor.IsDisposed);
    }

    [Fact]
    public void DefaultDynamicWiring_StartsWithEveryEdgeKept()
    {
        var d = fx.Device;
        var c = WiringCase.Create(WiringKind.Chain, 5, 3, 8, 3, 3, seed: 8);
        using var wiring = new StageWiring(d, new WiringConfig(), 5, 8, new SeedSequence(8));
        var ys = c.Ys.Select(y => Tensor.FromArray(d, y, c.NodeShape)).ToArray();
        try
        {
            using var tape = new Tape(d);
            var adj = wiring.Begin(tape, 3);
            var outputs = Enumerable.Range(0, 5).Select(i => wiring.Route(tape, adj, i, ys[i])!.ToArray()).ToArray();
            Assert.Equal(1.0, adj.KeepRate());
            Assert.All(outputs.SelectMany(o => o), v => Assert.InRange(v, 0.9f, 0.99f));
        }
        finally
        {
            foreach (var y in ys) y.Dispose();
        }
    }

    [Fact]
    public void Aggregate_KeepsNothingButItsOutput_AndAggregateIntoRecomputesIt()
    {
        var d = fx.Device;
        var c = WiringCase.Create(WiringKind.Dense, 3, 2, 3, 2, 2, seed: 4);
        using var wiring = new StageWiring(d, new WiringConfig { Kind = WiringKind.Dense }, 3, 3);
        var ys = c.Ys.Select(y => Tensor.FromArray(d, y, c.NodeShape)).ToArray();
        try
        {
            foreach (var y in ys) y.RequiresGrad = true;
            using var tape = new Tape(d);
            var adj = wiring.Begin(tape, 2);
            int owned = tape.OwnedCount;
            long live = d.LiveBuffers;
            var x = wiring.Aggregate(tape, adj, 3, ys);
            Assert.Equal(owned + 1, tape.OwnedCount);
            Assert.Equal(live + 1, d.LiveBuffers);
            using var again = Tensor.Empty(d, c.NodeShape);
            adj.AggregateInto(3, ys, again);
            Assert.Equal(x.ToArray(), again.ToArray());
        }
        finally
        {
            foreach (var y in ys) y.Dispose();
        }
    }

    // ---- benchmark -----------------------------------------------------------------------------------------

    [Fact]
    public void AggregationBenchmark_SmallRun_ReturnsRowsWithExactKeepRates()
    {
        var rows = AggregationBenchmark.Run(fx.Device, batch: 2, nodes: 3, channels: 2, height: 3, width: 3, repetitions: 1);
        Assert.Equal([1.0, 0.75, 0.5, 0.25], rows.Select(r => r.KeepRate));
        Assert.Equal(1.0, rows[0].RatioToFirst);
        Assert.All(rows, r => Assert.True(r.MedianMs > 0 && r.SpreadMs >= 0));
        // all kept, n = 3: targets have 1, 2, 3 in-edges -> per sample 3·2 + 5·6 = 36 vectors of 18 floats
        Assert.Equal(36 * 18 * 4, rows[0].BytesPerSample);
        Assert.True(rows[3].BytesPerSample < rows[2].BytesPerSample && rows[2].BytesPerSample < rows[1].BytesPerSample);
        var a = AggregationBenchmark.RandomAdjacency(4, 6, 0.25, 7);
        Assert.Equal(0.25, Adjacency.KeepRate(a));
        // the register and fused rung, and a chunk that does not divide the sample
        var fused = AggregationBenchmark.Run(fx.Device, batch: 2, nodes: 3, channels: 2, height: 3, width: 3, repetitions: 1,
            forward: AggregationForward.Registers, backward: AggregationBackward.FusedChunks, chunk: 4);
        Assert.Equal(rows.Select(r => r.BytesPerSample), fused.Select(r => r.BytesPerSample));
    }

    // ---- bad inputs ------------------------------------------------------------------------------------------

    private static void Throws(Action action, params string[] fragments)
    {
        var e = Assert.ThrowsAny<ArgumentException>(action);
        foreach (var f in fragments) Assert.Contains(f, e.Message);
    }

    [Fact]
    public void BadInputs_ThrowArgumentException_NamingTheValues_BeforeAnyLaunch()
    {
        var d = fx.Device;
        using var tape = new Tape(d);
        Throws(() => new Adjacency(tape, 1, 2), "at least 2 nodes; got 1");
        Throws(() => new Adjacency(tape, 3, 0), "Batch 0");
        Throws(() => new StageWiring(d, new WiringConfig(), 1, 4), "at least 2 nodes; got 1");
        Throws(() => new StageWiring(d, new WiringConfig { Tau = 1f }, 3, 4), "tau = 1", "[0, 1)");
        Throws(() => new StageWiring(d, new WiringConfig { Tau = -0.1f }, 3, 4), "tau = -0.1");
        Throws(() => new StageWiring(d, new WiringConfig { Tau = float.NaN }, 3, 4), "tau = NaN");
        Throws(() => new StageWiring(d, new WiringConfig { Reduction = 0 }, 3, 4), "r = 0");

        using var wiring = new StageWiring(d, new WiringConfig(), 3, 4);
        Throws(() => wiring.Tau = 1.5f, "tau = 1.5");
        var adj = wiring.Begin(tape, 2);
        using var y4 = Tensor.Zeros(d, 2, 4, 3, 3);
        using var y5 = Tensor.Zeros(d, 2, 5, 3, 3);
        using var yB = Tensor.Zeros(d, 3, 4, 3, 3);
        using var a2 = Tensor.Zeros(d, 2, 2);
        int records = tape.Count, owned = tape.OwnedCount;

        Throws(() => tape.Route(adj, 0, y4, wiring.Routers[0], 1.2f, GateGradient.KeptOnly), "tau = 1.2");
        Throws(() => tape.Gate(adj, 1, a2, -1f, GateGradient.KeptOnly), "tau = -1");
        Throws(() => tape.Gate(adj, 0, a2, 0.5f, GateGradient.KeptOnly), "[2, 2]", "[2, 3]");
        Throws(() => tape.Gate(adj, 3, a2, 0.5f, GateGradient.KeptOnly), "node 3", "0..2");
        Throws(() => tape.Gate(adj, 1, a2, 0.5f, (GateGradient)7), "7");
        Throws(() => wiring.Routers[0].Forward(tape, y5), "[2, 5, 3, 3]", "4 input channels");
        Throws(() => tape.Route(adj, 1, y4, wiring.Routers[0], 0.5f, GateGradient.KeptOnly), "3 outputs", "out-degree 2");
        Throws(() => tape.Route(adj, 0, yB, wiring.Routers[0], 0.5f, GateGradient.KeptOnly), "batch 3", "has 2");
        Throws(() => wiring.Route(tape, adj, 5, y4), "node 5");
        Assert.Equal(records, tape.Count);
        Assert.Equal(owned, tape.OwnedCount);

        wiring.Route(tape, adj, 0, y4);
        records = tape.Count; owned = tape.OwnedCount;
        Throws(() => tape.Aggregate(adj, 0, [y4]), "target node 0", "1..3");
        Throws(() => tape.Aggregate(adj, 4, [y4]), "target node 4");
        Throws(() => tape.Aggregate(adj, 2, [y4]), "only 1 node outputs");
        Throws(() => tape.Aggregate(adj, 2, [y4, y5]), "[2, 5, 3, 3]", "[2, 4, 3, 3]");
        Throws(() => tape.Aggregate(adj, 1, [yB]), "[3, 4, 3, 3]", "[2, C, ...]");
        var e = Assert.Throws<InvalidOperationException>(() => tape.Aggregate(adj, 2, [y4, y4]));
        Assert.Contains("row 1", e.Message);
        using var wrongLogits = Tensor.Zeros(d, 5);
        Throws(() => tape.DenseEdges(adj, wrongLogits), "[5]", "[6]");
        Assert.Equal(records, tape.Count);
        Assert.Equal(owned, tape.OwnedCount);

        Throws(() => new Router(d, 4, 0, 4, new SeedSequence(0)), "out-degree 0");
        Throws(() => new Router(d, 0, 2, 4, new SeedSequence(0)), "channels 0");
        Throws(() => new Router(d, 4, 2, 0, new SeedSequence(0)), "r = 0");
        Throws(() => new Router(d, 4, 2, 4, new SeedSequence(0), float.NaN), "bias NaN");

        var values = new float[2, 4, 4];
        values[0, 2, 1] = 1f;
        Throws(() => adj.Write(values), "A[0, 2, 1]");
        Throws(() => adj.Write(new float[2, 3, 3]), "[2, 3, 3]", "[2, 4, 4]");
        Throws(() => AggregationBenchmark.Run(d, keepRates: [0.0]), "Keep rate 0");
        Throws(() => AggregationBenchmark.Run(d, chunk: 0), "chunk length must be at least 1");
    }
}
