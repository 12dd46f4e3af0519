using IlgpuDdw.Kernels;
using IlgpuDdw.Kernels.Reference;
using IlgpuDdw.Verification;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Tests;

/// <summary>
/// The wiring references (router, gate, dense edges, chain, aggregation): hand-computed cases (layer 1) and
/// central finite differences in double (layer 2). No device.
/// </summary>
public sealed class WiringReferenceTests
{
    // ---- layer 1: hand-computed cases -------------------------------------------------------------------

    [Fact]
    public void Router_Reference_HandComputed()
    {
        // y [1, 2, 1, 2] = [1, 2 | 3, 6] -> pooled [1.5, 4.5]
        // hidden = relu(W1 · pooled + b1), W1 = [[1, -1], [0.5, 0.5]], b1 = [2, -2] -> relu([-1, 1]) = [0, 1]
        // a = sigmoid(W2 · hidden + b2), W2 = [[0.5, 2]], b2 = [-2] -> sigmoid(0) = 0.5
        var p = new RouterWeights<double>(2, 2, 1, [1, -1, 0.5, 0.5], [2, -2], [0.5, 2], [-2]);
        var r = RouterReference.Forward<double>([1, 2, 3, 6], 1, p, 2);
        Assert.Equal([1.5, 4.5], r.Pooled);
        Assert.Equal([0.0, 1], r.Hidden);
        Assert.Equal(0.5, r.Output[0], 15);
        // dA = 4: dZ2 = 4 · 0.5 · 0.5 = 1; dHidden = W2ᵀ · 1 = [0.5, 2]; dZ1 = [0, 2] (ReLU mask);
        // dPooled = W1ᵀ · dZ1 = [1, 1]; dY = dPooled / 2 spread over each plane
        var dY = new double[4];
        var dP = RouterWeights<double>.Zeros(2, 2, 1);
        RouterReference.Backward<double>(r, [4], 1, p, 2, dY, dP);
        Assert.Equal([1.0], dP.B2);
        Assert.Equal([0.0, 1], dP.W2);
        Assert.Equal([0.0, 2], dP.B1);
        Assert.Equal([0.0, 0, 3, 9], dP.W1);
        Assert.Equal([0.5, 0.5, 0.5, 0.5], dY);
    }

    [Fact]
    public void Gate_Dense_Chain_Reference_HandComputed()
    {
        // n = 2, node 0 has edges to 1 and 2; a = [0.3, 0.7], tau = 0.5 -> A[0,0,1] = 0 (cut), A[0,0,2] = 0.7
        var a = new double[9];
        GateReference.Forward<double>([0.3, 0.7], 1, 2, 0, 0.5, a);
        Assert.Equal([0, 0, 0.7, 0, 0, 0, 0, 0, 0], a);
        var dA = new double[9];
        dA[1] = 10; dA[2] = 20;
        var kept = new double[2];
        GateReference.Backward<double>([0.3, 0.7], dA, 1, 2, 0, 0.5, false, kept);
        Assert.Equal([0.0, 20], kept);
        var straight = new double[2];
        GateReference.Backward<double>([0.3, 0.7], dA, 1, 2, 0, 0.5, true, straight);
        Assert.Equal([10.0, 20], straight);

        var chain = new double[2 * 9];
        GateReference.ChainFill<double>(2, 2, chain);
        Assert.Equal([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0], chain);

        var dense = new double[9];
        GateReference.DenseForward<double>([0, 1, 2], 1, 2, dense);   // edges (0,1), (0,2), (1,2)
        Assert.Equal(0.5, dense[1]);
        Assert.Equal(ActivationReference.Sigmoid(1.0), dense[2]);
        Assert.Equal(ActivationReference.Sigmoid(2.0), dense[5]);
        var dLogits = new double[3];
        GateReference.DenseBackward<double>([0, 1, 2], [0, 4, 0, 0, 0, 0, 0, 0, 0], 1, 2, dLogits);
        Assert.Equal([1.0, 0, 0], dLogits);  // 4 · 0.5 · 0.5

        // edge numbering: row by row
        Assert.Equal(0, Adjacency.EdgeIndex(3, 0, 1));
        Assert.Equal(2, Adjacency.EdgeIndex(3, 0, 3));
        Assert.Equal(3, Adjacency.EdgeIndex(3, 1, 2));
        Assert.Equal(5, Adjacency.EdgeIndex(3, 2, 3));
        for (int n = 2; n <= 9; n++)
            for (int i = 0; i < n; i++)
                for (int j = i + 1; j <= n; j++)
                    Assert.Equal(i * (n + 1) + j, GateKernels.EdgeOffset(Adjacency.EdgeIndex(n, i, j), n));
    }

    [Fact]
    public void Aggregation_Reference_HandComputed()
    {
        // n = 2, B = 1, sample 2: x_2 = 0.5 · y0 + 2 · y1
        var adj = new double[9];
        adj[2] = 0.5; adj[5] = 2;
        double[][] ys = [[1, 2], [3, 4]];
        var x = new double[2];
        AggregationReference.Forward<double>(adj, ys, 1, 2, 2, x);
        Assert.Equal([6.5, 9], x);
        var dys = new[] { new double[2], new double[2] };
        AggregationReference.BackwardSources<double>(adj, [1, -1], 1, 2, 2, dys);
        Assert.Equal([0.5, -0.5], dys[0]);
        Assert.Equal([2.0, -2], dys[1]);
        var dAdj = new double[9];
        AggregationReference.BackwardAdjacency<double>(adj, ys, [1, -1], 1, 2, 2, [false, false], dAdj);
        Assert.Equal(-1, dAdj[2]);
        Assert.Equal(-1, dAdj[5]);
        // a cut edge: skipped unless its row is flagged
        adj[2] = 0;
        Array.Clear(dAdj);
        AggregationReference.BackwardAdjacency<double>(adj, ys, [1, -1], 1, 2, 2, [false, false], dAdj);
        Assert.Equal(0, dAdj[2]);
        AggregationReference.BackwardAdjacency<double>(adj, ys, [1, -1], 1, 2, 2, [true, false], dAdj);
        Assert.Equal(-1, dAdj[2]);
    }

    // ---- layer 2: finite differences in double -----------------------------------------------------------

    [Fact]
    public void Router_Reference_FiniteDifference()
    {
        var c = WiringCase.Create(WiringKind.Dynamic, 3, 2, 5, 2, 3, seed: 21);
        var p = c.Reference<double>().Routers![0];   // out-degree 3
        var y = c.YsAs<double>()[0];
        var g = Seeded.Uniform<double>(2 * p.OutDegree, 22);
        double Loss() => Check.Dot(g, RouterReference.Forward<double>(y, 2, p, 6).Output);
        var state = RouterReference.Forward<double>(y, 2, p, 6);
        var dY = new double[y.Length];
        var dP = RouterWeights<double>.Zeros(p.Channels, p.Hidden, p.OutDegree);
        RouterReference.Backward(state, g, 2, p, 6, dY, dP);
        Check.FiniteDifference(Loss, y, dY, "router dY");
        Check.FiniteDifference(Loss, p.W1, dP.W1, "router dW1");
        Check.FiniteDifference(Loss, p.B1, dP.B1, "router db1");
        Check.FiniteDifference(Loss, p.W2, dP.W2, "router dW2");
        Check.FiniteDifference(Loss, p.B2, dP.B2, "router db2");
    }

    [Fact]
    public void Gate_Reference_FiniteDifference_KeptOnly()
    {
        // a kept away from tau: the kept-only gradient is the true derivative of the gate
        const int batch = 3, nodes = 4, node = 1;
        var r = new Random(31);
        var a = Enumerable.Range(0, batch * 3).Select(_ => r.Next(2) == 0 ? 0.1 + 0.3 * r.NextDouble() : 0.6 + 0.35 * r.NextDouble()).ToArray();
        var g = Seeded.Uniform<double>(batch * 25, 32);
        var adj = new double[batch * 25];
        double Loss() { GateReference.Forward<double>(a, batch, nodes, node, 0.5, adj); return Check.Dot(g, adj); }
        var da = new double[a.Length];
        GateReference.Backward<double>(a, g, batch, nodes, node, 0.5, false, da);
        Check.FiniteDifference(Loss, a, da, "gate da");
        Assert.Contains(da, v => v == 0);   // some edges are cut
        Assert.Contains(da, v => v != 0);
    }

    [Fact]
    public void DenseEdges_Reference_FiniteDifference()
    {
        const int batch = 3, nodes = 4;
        var w = Seeded.Uniform<double>(10, 41, -2, 2);
        var g = Seeded.Uniform<double>(batch * 25, 42);
        var adj = new double[batch * 25];
        double Loss() { GateReference.DenseForward<double>(w, batch, nodes, adj); return Check.Dot(g, adj); }
        var dw = new double[10];
        GateReference.DenseBackward<double>(w, g, batch, nodes, dw);
        Check.FiniteDifference(Loss, w, dw, "dense dLogits");
    }

    [Fact]
    public void Aggregation_Reference_FiniteDifference_EveryNodeOutput_AndA()
    {
        const int batch = 3, nodes = 5, sample = 7;
        var ys = Enumerable.Range(0, nodes).Select(i => Seeded.Uniform<double>(batch * sample, 50 + i)).ToArray();
        var adj = new double[batch * 36];
        var r = new Random(57);
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < nodes; i++)
                for (int j = i + 1; j <= nodes; j++)
                    adj[GateReference.Index(nodes, b, i, j)] = r.Next(3) == 0 ? 0 : r.NextDouble();
        var allRows = Enumerable.Repeat(true, nodes).ToArray();
        for (int target = 1; target <= nodes; target++)
        {
            var g = Seeded.Uniform<double>(batch * sample, 60 + target);
            var x = new double[batch * sample];
            double Loss() { AggregationReference.Forward<double>(adj, ys, batch, nodes, target, x); return Check.Dot(g, x); }
            var dys = Enumerable.Range(0, nodes).Select(_ => new double[batch * sample]).ToArray();
            AggregationReference.BackwardSources<double>(adj, g, batch, nodes, target, dys);
            var dAdj = new double[adj.Length];
            AggregationReference.BackwardAdjacency<double>(adj, ys, g, batch, nodes, target, allRows, dAdj);
            for (int i = 0; i < nodes; i++)
                Check.FiniteDifference(Loss, ys[i], dys[i], $"aggregate x{target} dY{i}");
            Check.FiniteDifference(Loss, adj, dAdj, $"aggregate x{target} dA", maxChecks: adj.Length);
        }
    }

    public static TheoryData<WiringKind, int, int, GateGradient> StageCases => new()
    {
        { WiringKind.Dynamic, 2, 1, GateGradient.KeptOnly },
        { WiringKind.Dynamic, 3, 3, GateGradient.KeptOnly },
        { WiringKind.Dynamic, 5, 3, GateGradient.KeptOnly },
        { WiringKind.Dense, 3, 3, GateGradient.KeptOnly },
        { WiringKind.Chain, 3, 2, GateGradient.KeptOnly },
    };

    [Theory, MemberData(nameof(StageCases))]
    public void Stage_Reference_FiniteDifference(WiringKind kind, int nodes, int batch, GateGradient gradient)
    {
        // the router reached through gate and aggregation: d L / d (node outputs, W1, b1, W2, b2, logits)
        var c = WiringCase.Create(kind, nodes, batch, 3, 2, 3, gradient, seed: 70 + nodes);
        var r = c.Reference<double>();
        var ys = c.YsAs<double>();
        var gs = c.GsAs<double>();
        double Loss() { r.Forward(ys); return r.Loss(gs); }
        r.Forward(ys);
        var d = r.Backward(ys, gs);
        for (int i = 0; i < nodes; i++)
            Check.FiniteDifference(Loss, ys[i], d.NodeOutputs[i], $"stage dY{i}", maxChecks: 24);
        if (r.Routers is not null)
            for (int i = 0; i < nodes; i++)
            {
                Check.FiniteDifference(Loss, r.Routers[i].W1, d.Routers![i].W1, $"router{i} dW1", maxChecks: 24);
                Check.FiniteDifference(Loss, r.Routers[i].B1, d.Routers[i].B1, $"router{i} db1");
                Check.FiniteDifference(Loss, r.Routers[i].W2, d.Routers[i].W2, $"router{i} dW2", maxChecks: 24);
                Check.FiniteDifference(Loss, r.Routers[i].B2, d.Routers[i].B2, $"router{i} db2");
            }
        if (r.DenseLogits is not null)
            Check.FiniteDifference(Loss, r.DenseLogits, d.DenseLogits!, "dense dLogits");
    }
}
