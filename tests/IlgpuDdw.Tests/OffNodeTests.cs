using IlgpuDdw.Autograd;
using IlgpuDdw.Kernels.Reference;
using IlgpuDdw.Models;
using IlgpuDdw.Nn;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Tests;

/// <summary>
/// Off nodes: a node with no kept in-edge for a sample outputs 0 for it in training and evaluation alike (its batch
/// norms run over the live samples only), its out-edges count as cut, and evaluation's dead-node skipping computes
/// the same function.
/// </summary>
[Collection("cpu")]
public sealed class OffNodeTests(DeviceFixture fx)
{
    public static TheoryData<BlockKind, bool> Blocks() => new()
    {
        { BlockKind.Basic, true }, { BlockKind.Basic, false }, { BlockKind.Bottleneck, true }, { BlockKind.InvertedResidual, true },
    };

    [Theory, MemberData(nameof(Blocks))]
    public void Block_OverLiveSamples_EqualsTheBlockOnTheLiveSamplesAlone_AndOffSamplesGetZero(BlockKind kind, bool training)
    {
        var d = fx.Device;
        var spec = kind switch
        {
            BlockKind.Basic => new BlockSpec(kind, 5, 5, 1, 5, 1),
            BlockKind.Bottleneck => new BlockSpec(kind, 6, 6, 1, 3, 1),
            _ => new BlockSpec(kind, 4, 4, 1, 8, 8),
        };
        int c = spec.InChannels, h = 5, w = 3, plane = c * h * w;
        float[] live = [1, 0, 1, 1, 0];
        int[] liveRows = [0, 2, 3];
        int batch = live.Length;
        var xs = Seeded.Uniform<float>(batch * plane, 61, -1, 2);
        for (int b = 0; b < batch; b++)
            if (live[b] == 0) Array.Clear(xs, b * plane, plane); // an off node's input is 0
        var g = Seeded.Uniform<float>(batch * plane, 62);

        using var full = new NodeBlock(d, spec, new SeedSequence(7));
        using var alone = new NodeBlock(d, spec, new SeedSequence(7));
        full.Train(training);
        alone.Train(training);

        using var x = Tensor.FromArray(d, xs, batch, c, h, w); x.RequiresGrad = true;
        using var mask = Tensor.FromArray(d, live, batch);
        using var tape = new Tape(d);
        var y = full.Forward(tape, x, mask);
        var ys = y.ToArray();
        tape.Backward(y, g);

        var xl = new float[liveRows.Length * plane];
        var gl = new float[liveRows.Length * plane];
        for (int k = 0; k < liveRows.Length; k++)
        {
            Array.Copy(xs, liveRows[k] * plane, xl, k * plane, plane);
            Array.Copy(g, liveRows[k] * plane, gl, k * plane, plane);
        }
        using var xa = Tensor.FromArray(d, xl, liveRows.Length, c, h, w); xa.RequiresGrad = true;
        using var tapeAlone = new Tape(d);
        var ya = alone.Forward(tapeAlone, xa);
        var yas = ya.ToArray();
        tapeAlone.Backward(ya, gl);

        var dx = x.GradToArray();
        var dxa = xa.GradToArray();
        for (int b = 0; b < batch; b++)
        {
            int k = Array.IndexOf(liveRows, b);
            for (int e = 0; e < plane; e++)
            {
                if (k < 0)
                {
                    Assert.Equal(0f, ys[b * plane + e]);
                    Assert.Equal(0f, dx[b * plane + e]);
                }
            }
            if (k < 0) continue;
            Check.Close(yas.AsSpan(k * plane, plane), ys.AsSpan(b * plane, plane), 1e-5, 1e-4, $"{kind} sample {b} output");
            Check.Close(dxa.AsSpan(k * plane, plane), dx.AsSpan(b * plane, plane), 1e-4, 1e-3, $"{kind} sample {b} input gradient");
        }
        var fullState = full.NamedBuffers().ToArray();
        var aloneState = alone.NamedBuffers().ToDictionary(p => p.Name, p => p.Tensor);
        foreach (var (name, t) in fullState)
            Check.Close(aloneState[name].ToArray(), t.ToArray(), 1e-5, 1e-4, $"{kind} {name} (running statistics from the live samples)");
        foreach (var (name, p) in full.NamedParameters())
        {
            var other = alone.NamedParameters().Single(q => q.Name == name).Tensor;
            Check.Close(other.GradToArray(), p.GradToArray(), 1e-4, 1e-3, $"{kind} {name} gradient");
        }
    }

    private static WiringConfig Continuous() => new() { Kind = WiringKind.Dynamic, Gate = GateKind.Continuous, InitialEdgeLogit = 0f };

    [Fact]
    public void DynamicTraining_ClearsOffNodesRows_AndEvaluationAgreesWithAndWithoutSkipping()
    {
        var d = fx.Device;
        var spec = ModelZoo.Get("resnet_mini", 8);
        using var net = new DdwNet(d, spec, Continuous(), seed: 4);
        const int batch = 8;
        using var x = Tensor.FromArray(d, Check.ToFloat(Seeded.Uniform<double>(batch * 64, 6)), batch, 1, 8, 8);
        using var labels = IntTensor.FromArray(d, [0, 1, 2, 3, 0, 1, 2, 3]);
        int off = 0;
        using (var tape = new Tape(d) { FreeGradsEagerly = true, FreeActivationsEagerly = true })
        {
            net.ZeroGrad();
            var logits = net.Forward(tape, x);
            foreach (var stage in net.Stages)
            {
                if (stage.LastAdjacency is not { } adjacency) continue;
                var a = adjacency.Read();
                int n = stage.Nodes.Count;
                for (int b = 0; b < batch; b++)
                    for (int j = 1; j < n; j++)
                    {
                        if (Enumerable.Range(0, j).Any(i => a[b, i, j] != 0f)) continue;
                        off++;
                        for (int k = j + 1; k <= n; k++) Assert.Equal(0f, a[b, j, k]); // an off node's out-edges are cut
                    }
            }
            tape.Backward(tape.CrossEntropy(logits, labels));
        }
        Assert.True(off > 0, "no node was off, so the rule was not exercised");

        net.Eval();
        using var eval = new Tape(d);
        using (eval.NoGrad())
        {
            net.SetSkipDeadNodes(false);
            var full = net.Forward(eval, x).ToArray();
            net.SetSkipDeadNodes(true);
            var skipped = net.Forward(eval, x).ToArray();
            Check.Close(full, skipped, 1e-5, 1e-4, "logits with dead-node skipping (off nodes output 0 either way)");
            Assert.True(net.Stages.Any(s => s.LastComputedSamples.Any(k => k < batch)), "skipping was not exercised");
        }
    }

    [Fact]
    public void OffNodeKernels_MatchTheReference_ByHand()
    {
        // n = 3, one sample: node 1 has no in-edge (A[0, 1] = 0), node 2 reads node 1 only → after node 1's row is
        // cleared, node 2 is off too.
        int nodes = 3;
        var a = new float[16];
        a[GateReference.Index(nodes, 0, 0, 2)] = 0f;
        a[GateReference.Index(nodes, 0, 0, 3)] = 0.7f;
        a[GateReference.Index(nodes, 0, 1, 2)] = 0.9f;
        a[GateReference.Index(nodes, 0, 1, 3)] = 0.6f;
        var live = new float[1];
        GateReference.NodeLiveMask<float>(a, 1, nodes, 1, live);
        Assert.Equal([0f], live);
        GateReference.ClearOffRow<float>(live, 1, nodes, 1, a);
        Assert.Equal(0f, a[GateReference.Index(nodes, 0, 1, 2)]);
        Assert.Equal(0f, a[GateReference.Index(nodes, 0, 1, 3)]);
        GateReference.NodeLiveMask<float>(a, 1, nodes, 2, live);
        Assert.Equal([0f], live);
        GateReference.NodeLiveMask<float>(a, 1, nodes, 0, live);
        Assert.Equal([1f], live); // node 0 is always live

        var d = fx.Device;
        using var tape = new Tape(d);
        using var adjacency = new Adjacency(d, nodes, 2);
        using var wrong = Tensor.Zeros(d, 3);
        var e = Assert.Throws<ArgumentException>(() => tape.ClearOffRow(adjacency, 1, wrong));
        Assert.Contains("B = 2 elements; got shape [3]", e.Message);
    }
}
