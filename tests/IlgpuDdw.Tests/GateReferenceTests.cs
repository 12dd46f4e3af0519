using IlgpuDdw.Kernels;
using IlgpuDdw.Kernels.Reference;
using IlgpuDdw.Training;
using IlgpuDdw.Verification;
using IlgpuDdw.Wiring;
using Beta = MathNet.Numerics.Distributions.Beta;

namespace IlgpuDdw.Tests;

/// <summary>
/// The references of the continuous, stochastic and top-k gates, the output-edge fix-up and the keep terms'
/// host maths: hand-computed cases, finite differences in double where the gradient is exact, and the definition of
/// each straight-through estimate where it is not. No device.
/// </summary>
public sealed class GateReferenceTests
{
    private const int Batch = 3, Nodes = 4, Node = 1, Degree = Nodes - Node, Square = (Nodes + 1) * (Nodes + 1);

    /// <summary>Router outputs at least 0.05 from τ = 0.5, about half of them cut.</summary>
    private static double[] AwayFromTau(int seed)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, Batch * Degree).Select(_ => r.Next(2) == 0 ? 0.05 + 0.4 * r.NextDouble() : 0.55 + 0.4 * r.NextDouble()).ToArray();
    }

    [Fact]
    public void Continuous_HandComputed_AndForcedEdge()
    {
        // n = 2, node 0: a = [0.3, 0.7], tau = 0.5 -> A[0,0,1] = 0 (cut), A[0,0,2] = (0.7 − 0.5)/0.5 = 0.4
        var adj = new double[9];
        GateReference.ContinuousForward<double>([0.3, 0.7], 1, 2, 0, 0.5, adj);
        Assert.Equal(0, adj[1]);
        Assert.Equal(0.4, adj[2], 12);
        var dA = new double[9];
        dA[1] = 10; dA[2] = 20;
        var da = new double[2];
        GateReference.ContinuousBackward<double>([0.3, 0.7], adj, dA, 1, 2, 0, 0.5, da);
        Assert.Equal([20.0, 40], da);   // both / (1 − τ): the cut edge gets the one-sided derivative
        adj[1] = 0.3;                   // forced on (a ≤ τ, A = a): derivative 1
        da = new double[2];
        GateReference.ContinuousBackward<double>([0.3, 0.7], adj, dA, 1, 2, 0, 0.5, da);
        Assert.Equal([10.0, 40], da);
    }

    [Fact]
    public void Continuous_FiniteDifference_OnKeptEdges_OneSidedOnCutEdges()
    {
        var a = AwayFromTau(1);
        var g = Seeded.Uniform<double>(Batch * Square, 2);
        var adj = new double[Batch * Square];
        double Loss() { Array.Clear(adj); GateReference.ContinuousForward<double>(a, Batch, Nodes, Node, 0.5, adj); return Check.Dot(g, adj); }
        Loss();
        var da = new double[a.Length];
        GateReference.ContinuousBackward<double>(a, adj, g, Batch, Nodes, Node, 0.5, da);
        // exact where kept; below τ the function is flat (true derivative 0) and the gate passes the one-sided one
        Assert.Contains(a, v => v > 0.5);
        Assert.Contains(a, v => v <= 0.5);
        double LossOf(double[] x) { var m = new double[Batch * Square]; GateReference.ContinuousForward<double>(x, Batch, Nodes, Node, 0.5, m); return Check.Dot(g, m); }
        Check.FiniteDifference(() => LossOf(a), a, da.Select((v, k) => a[k] > 0.5 ? v : 0.0).ToArray(), "continuous da (kept exact, cut flat)");
        // cut edges: the right-hand derivative at the threshold, (L(τ + h) − L(τ)) / h
        foreach (int k in Enumerable.Range(0, a.Length).Where(k => a[k] <= 0.5))
        {
            var x = a.ToArray();
            x[k] = 0.5;
            double at = LossOf(x);
            x[k] = 0.5 + 1e-6;
            double right = (LossOf(x) - at) / 1e-6;
            Assert.Equal(right, da[k], 6);
            Assert.NotEqual(0, da[k]);
        }
    }

    [Fact]
    public void Threshold_Backward_PassesTheGradientOfAForcedEdge_UnderKeptOnly()
    {
        var adj = new double[9];
        GateReference.Forward<double>([0.3, 0.7], 1, 2, 0, 0.5, adj);
        adj[1] = 0.3; // forced on
        var dA = new double[9];
        dA[1] = 10; dA[2] = 20;
        var da = new double[2];
        GateReference.Backward<double>([0.3, 0.7], dA, 1, 2, 0, 0.5, false, da, adj);
        Assert.Equal([10.0, 20], da);
    }

    [Fact]
    public void LogisticNoise_IsSeeded_Symmetric_AndLogistic()
    {
        const int count = 20000;
        var l = Enumerable.Range(0, count).Select(k => (double)GateKernels.LogisticNoise(17, 2, k)).ToArray();
        Assert.Equal(l, Enumerable.Range(0, count).Select(k => (double)GateKernels.LogisticNoise(17, 2, k)));
        Assert.NotEqual(l.Take(100), Enumerable.Range(0, 100).Select(k => (double)GateKernels.LogisticNoise(18, 2, k)));
        Assert.NotEqual(l.Take(100), Enumerable.Range(0, 100).Select(k => (double)GateKernels.LogisticNoise(17, 3, k)));
        Assert.All(l, v => Assert.True(double.IsFinite(v)));
        // P(L ≤ x) = sigmoid(x): check the CDF at a few points (standard error ≤ 0.0036 at 20,000 draws)
        foreach (double x in new[] { -2.0, -0.5, 0, 1, 3 })
            Assert.Equal(1 / (1 + Math.Exp(-x)), l.Count(v => v <= x) / (double)count, 0.015);
        // so a stochastic edge with logit z is kept with probability sigmoid(z)
        Assert.Equal(1 / (1 + Math.Exp(-1.5)), l.Count(v => 1.5 + v > 0) / (double)count, 0.015);
    }

    [Fact]
    public void Stochastic_HandComputed_WithoutNoise()
    {
        // no noise (evaluation): kept when z > 0, A = w
        var adj = new double[9];
        GateReference.StochasticForward<double>([0.8, 0.6], [-1, 2], 1, 2, 0, null, adj);
        Assert.Equal(0, adj[1]);
        Assert.Equal(0.6, adj[2]);
        var dA = new double[9];
        dA[1] = 10; dA[2] = 20;
        var (dw, dz) = (new double[2], new double[2]);
        GateReference.StochasticBackward<double>([0.8, 0.6], [-1, 2], adj, dA, 1, 2, 0, 2.0, null, dw, dz);
        Assert.Equal([0.0, 20], dw);
        double G(double t) => 1 / (1 + Math.Exp(-t / 2));
        Assert.Equal(10 * 0.8 * G(-1) * (1 - G(-1)) / 2, dz[0], 12);
        Assert.Equal(20 * 0.6 * G(2) * (1 - G(2)) / 2, dz[1], 12);
    }

    [Fact]
    public void Stochastic_WeightGradient_IsExact_LogitGradient_IsTheSoftRelaxations()
    {
        const int key = 99;
        const double temperature = 0.7;
        var w = Seeded.Uniform<double>(Batch * Degree, 3, 0.1, 0.9);
        var r = new Random(4);
        var z = Enumerable.Range(0, Batch * Degree).Select(_ => (r.NextDouble() - 0.5) * 4).ToArray();
        // keep z + L away from 0 so that small steps of z do not flip a decision
        for (int k = 0; k < z.Length; k++)
        {
            double t = z[k] + GateKernels.LogisticNoise(key, Node, k);
            if (Math.Abs(t) < 0.05) z[k] += 0.1;
        }
        var g = Seeded.Uniform<double>(Batch * Square, 5);
        var adj = new double[Batch * Square];
        double Loss() { Array.Clear(adj); GateReference.StochasticForward<double>(w, z, Batch, Nodes, Node, key, adj); return Check.Dot(g, adj); }
        Loss();
        var (dw, dz) = (new double[w.Length], new double[z.Length]);
        GateReference.StochasticBackward<double>(w, z, adj, g, Batch, Nodes, Node, temperature, key, dw, dz);
        Check.FiniteDifference(Loss, w, dw, "stochastic dw");
        Assert.Contains(dw, v => v == 0);
        Assert.Contains(dw, v => v != 0);
        // straight-through: dz is the exact gradient of the relaxed gate A_soft = w · sigmoid((z + L)/T)
        double Soft()
        {
            double s = 0;
            for (int b = 0; b < Batch; b++)
                for (int o = 0; o < Degree; o++)
                {
                    int k = b * Degree + o;
                    double gate = 1 / (1 + Math.Exp(-(z[k] + GateKernels.LogisticNoise(key, Node, k)) / temperature));
                    s += g[GateReference.Index(Nodes, b, Node, Node + 1 + o)] * w[k] * gate;
                }
            return s;
        }
        Check.FiniteDifference(Soft, z, dz, "stochastic dz (relaxation)");
        // the hard forward: kept exactly where z + L > 0
        for (int b = 0; b < Batch; b++)
            for (int o = 0; o < Degree; o++)
            {
                int k = b * Degree + o;
                bool kept = z[k] + GateKernels.LogisticNoise(key, Node, k) > 0;
                Assert.Equal(kept ? w[k] : 0, adj[GateReference.Index(Nodes, b, Node, Node + 1 + o)]);
            }
    }

    [Fact]
    public void TopK_HandComputed_TiesToTheLowerSource()
    {
        // n = 4, target 4: in-edges from nodes 0..3 with values [0.2, 0.9, 0.5, 0.9]
        var adj = new double[25];
        double[] v = [0.2, 0.9, 0.5, 0.9];
        void Fill() { for (int i = 0; i < 4; i++) adj[GateReference.Index(4, 0, i, 4)] = v[i]; }
        double[] Column() => Enumerable.Range(0, 4).Select(i => adj[GateReference.Index(4, 0, i, 4)]).ToArray();
        Fill();
        GateReference.TopKForward<double>(1, 4, 4, 2, adj);
        Assert.Equal([0, 0.9, 0, 0.9], Column());
        Fill();
        GateReference.TopKForward<double>(1, 4, 4, 1, adj);
        Assert.Equal([0, 0.9, 0, 0], Column());
        Fill();
        GateReference.TopKForward<double>(1, 4, 4, 3, adj);
        Assert.Equal([0, 0.9, 0.5, 0.9], Column());
        Fill();
        GateReference.TopKForward<double>(1, 4, 4, 4, adj);
        Assert.Equal(v, Column());
        // straight-through backward of the top-k gate: every in-edge passes dA as if kept, the cut ones included
        var dA = Enumerable.Range(0, 25).Select(k => (double)k).ToArray();
        var da = new double[4];
        GateReference.Backward<double>([0.2, 0.9, 0.5, 0.9], dA, 1, 4, 0, -1, true, da, adj);
        Assert.Equal([dA[1], dA[2], dA[3], dA[4]], da);
        // k = max(1, round(f · in-degree)), halves rounded up
        Assert.Equal(1, WiringConfig.TopK(0.1f, 3));
        Assert.Equal(2, WiringConfig.TopK(0.5f, 3));
        Assert.Equal(1, WiringConfig.TopK(0.5f, 1));
        Assert.Equal(4, WiringConfig.TopK(1f, 4));
    }

    [Fact]
    public void ForceOutputEdge_HandComputed_PicksTheStrongestLiveSource()
    {
        // n = 3; sample 0: output cut, node 1 dead (A[0,1] = 0), node 2 live (A[0,2] ≠ 0); fallback [0.2, 0.9, 0.5]
        // -> node 1 is skipped, node 2 wins. Sample 1: output already connected -> unchanged.
        var adj = new double[2 * 16];
        adj[GateReference.Index(3, 0, 0, 2)] = 0.4;
        adj[GateReference.Index(3, 1, 0, 1)] = 0.7;
        adj[GateReference.Index(3, 1, 1, 3)] = 0.1;
        double[] fallback = [0.2, 0.9, 0.5, 0.3, 0.8, 0.6];
        var before = adj.ToArray();
        GateReference.ForceOutputEdge<double>(fallback, 2, 3, adj);
        Assert.Equal(0.5, adj[GateReference.Index(3, 0, 2, 3)]);
        Assert.Equal(0, adj[GateReference.Index(3, 0, 0, 3)]);
        Assert.Equal(0, adj[GateReference.Index(3, 0, 1, 3)]);
        for (int k = 16; k < 32; k++) Assert.Equal(before[k], adj[k]);
        // every node dead but node 0: node 0 is forced on however weak
        var lone = new double[16];
        GateReference.ForceOutputEdge<double>([0.1, 0.9, 0.9], 1, 3, lone);
        Assert.Equal(0.1, lone[GateReference.Index(3, 0, 0, 3)]);
    }

    [Fact]
    public void InEdgeNorm_HandComputed_ScalesOnlyColumnsAboveOne()
    {
        // n = 2, B = 1: column 1 = [0.6] (sum ≤ 1: unchanged); column 2 = [0.9, 0.6] (sum 1.5: divided by 1.5)
        var adj = new double[9];
        adj[GateReference.Index(2, 0, 0, 1)] = 0.6;
        adj[GateReference.Index(2, 0, 0, 2)] = 0.9;
        adj[GateReference.Index(2, 0, 1, 2)] = 0.6;
        var s1 = GateReference.InEdgeNormForward<double>(1, 2, 1, adj);
        var s2 = GateReference.InEdgeNormForward<double>(1, 2, 2, adj);
        Assert.Equal([1.0], s1);
        Assert.Equal([1.5], s2);
        Assert.Equal(0.6, adj[GateReference.Index(2, 0, 0, 1)], 12);
        Assert.Equal(0.6, adj[GateReference.Index(2, 0, 0, 2)], 12);
        Assert.Equal(0.4, adj[GateReference.Index(2, 0, 1, 2)], 12);
        // backward of column 2 with dA' = [1, 0]: dot = 0.6; dA = ([1, 0] − 0.6) / 1.5 = [0.2667, −0.4]
        var dA = new double[9];
        dA[GateReference.Index(2, 0, 0, 2)] = 1;
        dA[GateReference.Index(2, 0, 0, 1)] = 5;
        GateReference.InEdgeNormBackward<double>(adj, s2, 1, 2, 2, dA);
        GateReference.InEdgeNormBackward<double>(adj, s1, 1, 2, 1, dA);
        Assert.Equal(0.4 / 1.5, dA[GateReference.Index(2, 0, 0, 2)], 12);
        Assert.Equal(-0.4, dA[GateReference.Index(2, 0, 1, 2)], 12);
        Assert.Equal(5, dA[GateReference.Index(2, 0, 0, 1)]); // column 1 passes unchanged
    }

    [Fact]
    public void InEdgeNorm_FiniteDifference_EveryInEdge_CutOnesIncluded()
    {
        // n = 4, B = 3: kept entries in [0.2, 0.9], about a quarter cut; no column sum within 0.05 of 1 (the kink)
        const int nodes = 4, batch = 3, size = nodes + 1;
        var r = new Random(7);
        var x = new double[batch * size * size];
        var edges = new List<int>();
        for (int b = 0; b < batch; b++)
            for (int j = 1; j <= nodes; j++)
            {
                double sum;
                do
                {
                    sum = 0;
                    for (int i = 0; i < j; i++)
                    {
                        double v = r.Next(4) == 0 ? 0 : 0.2 + 0.7 * r.NextDouble();
                        x[GateReference.Index(nodes, b, i, j)] = v;
                        sum += v;
                    }
                } while (Math.Abs(sum - 1) < 0.05);
                for (int i = 0; i < j; i++) edges.Add(GateReference.Index(nodes, b, i, j));
            }
        var g = Seeded.Uniform<double>(x.Length, 8);
        for (int k = 0; k < g.Length; k++) if (!edges.Contains(k)) g[k] = 0; // the loss reads the in-edges only
        double Loss()
        {
            var m = x.ToArray();
            for (int j = 1; j <= nodes; j++) GateReference.InEdgeNormForward<double>(batch, nodes, j, m);
            return Check.Dot(g, m);
        }
        var normalized = x.ToArray();
        var scales = Enumerable.Range(1, nodes).Select(j => GateReference.InEdgeNormForward<double>(batch, nodes, j, normalized)).ToArray();
        Assert.Contains(scales.SelectMany(v => v), v => v > 1);
        Assert.Contains(scales.SelectMany(v => v), v => v == 1);
        Assert.Contains(edges, e => x[e] == 0);
        var dx = g.ToArray();
        for (int j = nodes; j >= 1; j--) GateReference.InEdgeNormBackward<double>(normalized, scales[j - 1], batch, nodes, j, dx);
        // entries outside the columns' in-edges (i ≥ j) carry no loss: their derivative is 0
        Check.FiniteDifference(Loss, x, dx.Select((v, k) => edges.Contains(k) ? v : 0.0).ToArray(), "in-edge norm dA", maxChecks: x.Length);
    }

    // ---- the keep terms' host maths ----------------------------------------------------------------------

    /// <summary>A 3-node stage state with some dead nodes: node 1 is dead for sample 0.</summary>
    private static StageKeepState State(int seed, double offset = 0.5, double scale = 10, int batch = 4)
    {
        const int nodes = 3, size = 4;
        var r = new Random(seed);
        var inputs = Enumerable.Range(0, nodes).Select(i => Enumerable.Range(0, batch * (nodes - i)).Select(_ => 0.05 + 0.9 * r.NextDouble()).ToArray()).ToArray();
        var adj = new float[batch * size * size];
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < nodes; i++)
                for (int j = i + 1; j <= nodes; j++)
                    adj[(b * size + i) * size + j] = (b == 0 && j == 1) || r.Next(3) == 0 ? 0f : 0.5f;
        return new StageKeepState(nodes, batch, adj, inputs, offset, scale);
    }

    [Fact]
    public void KeepRate_CountsEdgesOfLiveNodesOnly_AndHasTheExactGradient()
    {
        // hand: one sample, 2 nodes, node 1 dead; p = sigmoid((x − 0.5) · 10) of row 0 = [x0, x1] = [0.5, 0.6]
        var tiny = new StageKeepState(2, 1, new float[9], [[0.5, 0.6], [0.9]], 0.5, 10);
        double p1 = 1 / (1 + Math.Exp(-1.0));
        Assert.Equal([true, false], tiny.Live());
        Assert.Equal((0.5 + p1) / 3, tiny.KeepRate(), 12);

        var s = State(7);
        Assert.False(s.Live()[0 * 3 + 1]);
        var grad = s.Inputs.Select(x => new double[x.Length]).ToArray();
        s.KeepRate(grad);
        for (int i = 0; i < s.Nodes; i++)
            Check.FiniteDifference(() => s.KeepRate(), s.Inputs[i], grad[i], $"keep rate row {i}");
        Assert.Equal(0, grad[1][0]); // a dead node's out-edges do not count
    }

    [Fact]
    public void KeepRateTerm_Target_AnnealsFromOne()
    {
        var t = new KeepRateTerm(0.3f, 2f, 0.5f);
        Assert.Equal(1 - 0.7 * 1 / 50.0, t.TargetAt(0, 100), 6);
        Assert.Equal(1 - 0.7 * 25 / 50.0, t.TargetAt(24, 100), 6);
        Assert.Equal(0.3, t.TargetAt(49, 100), 6);
        Assert.Equal(0.3, t.TargetAt(99, 100), 6);
        Assert.Equal(0.3, new KeepRateTerm(0.3f).TargetAt(0, 100), 6);
        Assert.Throws<ArgumentException>(() => new KeepRateTerm(0f));
        Assert.Throws<ArgumentException>(() => new KeepRateTerm(1.5f));
        Assert.Throws<ArgumentException>(() => new KeepRateTerm(0.5f, -1));
        Assert.Throws<ArgumentException>(() => new KeepRateTerm(0.5f, 1, 2));
        Assert.Throws<ArgumentException>(() => new KeepRateTerm(0.5f, 1, 0, 0));
    }

    [Fact]
    public void BatchShaping_HandComputed_UniformPrior_AndMathNetBeta()
    {
        // Beta(1, 1) is uniform: F(p) = p. One edge, two samples with p = [0.8, 0.2] (identity indicator: offset 0
        // would not do, so invert sigmoid): sorted [0.2, 0.8] against [1/3, 2/3].
        double Logit(double p) => Math.Log(p / (1 - p));
        var s = new StageKeepState(1, 2, new float[8], [[Logit(0.8), Logit(0.2)]], 0, 1);
        // a 1-node stage has one edge (0 → 1)
        double expected = ((1 / 3.0 - 0.2) * (1 / 3.0 - 0.2) + (2 / 3.0 - 0.8) * (2 / 3.0 - 0.8)) / 2;
        Assert.Equal(expected, s.BatchShaping(1, 1), 12);
        // Beta(0.6, 0.4) through MathNet
        double q = 0.5, f = Beta.CDF(0.6, 0.4, 0.7);
        var one = new StageKeepState(1, 1, new float[4], [[Logit(0.7)]], 0, 1);
        Assert.Equal((q - f) * (q - f), one.BatchShaping(0.6, 0.4), 12);
    }

    [Fact]
    public void BatchShaping_HasTheExactGradient_AwayFromTies()
    {
        var s = State(11, 0.5, 5, batch: 6);
        var grad = s.Inputs.Select(x => new double[x.Length]).ToArray();
        s.BatchShaping(0.6, 0.4, grad);
        for (int i = 0; i < s.Nodes; i++)
            Check.FiniteDifference(() => s.BatchShaping(0.6, 0.4), s.Inputs[i], grad[i], $"batch shaping row {i}");
        Assert.Contains(grad[0], v => v != 0);
        Assert.Throws<ArgumentException>(() => new BatchShapingTerm(-1));
        Assert.Throws<ArgumentException>(() => new BatchShapingTerm(1, 0));
        Assert.Throws<ArgumentException>(() => new BatchShapingTerm(1, 1, -2));
    }
}
