using IlgpuDdw.Autograd;
using IlgpuDdw.Kernels.Reference;
using IlgpuDdw.Models;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Tests;

/// <summary>The gate option that never cuts edges into the stage output node.</summary>
[Collection("cpu")]
public sealed class OutputEdgeGateTests(DeviceFixture fx)
{
    [Fact]
    public void Reference_HandComputed_AndFiniteDifference()
    {
        // nodes = 3, node 1: out-edges 1→2 and 1→out (the last one is the output edge)
        var adj = new double[16];
        GateReference.Forward<double>([0.3, 0.2], 1, 3, 1, 0.5, -1.0, adj);
        Assert.Equal(0.0, adj[GateReference.Index(3, 0, 1, 2)]);   // internal edge below τ: cut
        Assert.Equal(0.2, adj[GateReference.Index(3, 0, 1, 3)]);   // output edge below τ: kept
        var dA = new double[2];
        var g = new double[16];
        g[GateReference.Index(3, 0, 1, 2)] = 5;
        g[GateReference.Index(3, 0, 1, 3)] = 7;
        GateReference.Backward<double>([0.3, 0.2], g, 1, 3, 1, 0.5, -1.0, false, dA);
        Assert.Equal([0.0, 7.0], dA);

        const int batch = 3, nodes = 4, node = 0;
        var r = new Random(5);
        var a = Enumerable.Range(0, batch * 4).Select(_ => r.Next(2) == 0 ? 0.1 + 0.3 * r.NextDouble() : 0.6 + 0.35 * r.NextDouble()).ToArray();
        var up = Check.Uniform(batch * 25, 6);
        var y = new double[batch * 25];
        double Loss() { GateReference.Forward<double>(a, batch, nodes, node, 0.5, -1.0, y); return Check.Dot(up, y); }
        var da = new double[a.Length];
        GateReference.Backward<double>(a, up, batch, nodes, node, 0.5, -1.0, false, da);
        Check.FiniteDifference(Loss, a, da, "gate (output edges kept) da");
        for (int b = 0; b < batch; b++) Assert.NotEqual(0.0, da[b * 4 + 3]); // every output edge passes its gradient
    }

    [Theory]
    [InlineData(GateGradient.KeptOnly)]
    [InlineData(GateGradient.StraightThrough)]
    public void Kernel_MatchesReference(GateGradient mode)
    {
        var d = fx.Device;
        const int batch = 3, nodes = 5, node = 2, degree = nodes - node;
        var r = new Random(9);
        var a = Enumerable.Range(0, batch * degree).Select(_ => (float)(r.Next(2) == 0 ? 0.1 + 0.3 * r.NextDouble() : 0.6 + 0.35 * r.NextDouble())).ToArray();
        var up = Check.ToFloat(Check.Uniform(batch * 36, 10));
        using var tape = new Tape(d);
        using var weights = Tensor.FromArray(d, a, batch, degree);
        weights.RequiresGrad = true;
        var adjacency = new Adjacency(tape, nodes, batch);
        tape.Gate(adjacency, node, weights, 0.5f, mode, keepOutputEdges: true);
        tape.Backward(adjacency.Tensor, up);
        var expected = new float[batch * 36];
        GateReference.Forward<float>(a, batch, nodes, node, 0.5f, -1f, expected);
        var da = new float[a.Length];
        GateReference.Backward<float>(a, up, batch, nodes, node, 0.5f, -1f, mode == GateGradient.StraightThrough, da);
        Check.Close(expected, adjacency.Tensor.ToArray(), Check.ForwardAtol, Check.ForwardRtol, "A");
        Check.Close(da, weights.GradToArray(), Check.BackwardAtol, Check.BackwardRtol, "da");
    }

    [Fact]
    public void Model_WithHighTau_KeepsOnlyOutputEdges_AndStillCarriesSignal()
    {
        var d = fx.Device;
        var spec = ModelZoo.Get("resnet_mini", 8);
        var wiring = new WiringConfig { Kind = WiringKind.Dynamic, Tau = 0.99f, KeepOutputEdges = true };
        using var net = new DdwNet(d, spec, wiring, seed: 2);
        using var x = Tensor.FromArray(d, Check.ToFloat(Check.Uniform(2 * 64, 3)), 2, 1, 8, 8);
        using var tape = new Tape(d);
        var logits = net.Forward(tape, x).ToArray();
        foreach (var stage in net.Stages)
        {
            var a = stage.LastAdjacency!.Read();
            int n = stage.Nodes.Count;
            for (int b = 0; b < 2; b++)
                for (int i = 0; i < n; i++)
                    for (int j = i + 1; j <= n; j++)
                        if (j == n) Assert.True(a[b, i, j] > 0, $"output edge {i}→out cut");
                        else Assert.Equal(0f, a[b, i, j]);
        }
        // the two samples still produce different logits (the stage outputs are not zero)
        Assert.NotEqual(logits[..10], logits[10..]);
    }
}
