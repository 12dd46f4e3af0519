using IlgpuDdw.Autograd;
using IlgpuDdw.Distributed;
using IlgpuDdw.Kernels;
using IlgpuDdw.Training;
using R = IlgpuDdw.Kernels.Reference.ElementwiseReference;

namespace IlgpuDdw.Tests;

/// <summary>
/// Gradient groups (<see cref="Tape.GradientGroupSize"/>): the property data-parallel training relies on. A batch's
/// parameter gradient in groups of g equals, bit for bit, the gradients of its two halves (each a power-of-two number of
/// groups, computed on their own as two ranks would) added — so 2 ranks reproduce one process exactly. Kernel versus
/// reference: <see cref="Verification.ElementwiseCases"/> (GroupSums) and the grouped Conv2d, Linear and router cases.
/// </summary>
[Collection("cpu")]
public sealed class GradientGroupTests(DeviceFixture fx)
{
    [Fact]
    public void Reference_AddsPairwiseBottomUp()
    {
        // 3 groups: (p0 + p1) + p2; 6 groups: ((p0 + p1) + (p2 + p3)) + (p4 + p5); on top of the target
        float[] p = [1e8f, 1f, -1e8f, 3f, 5f, 7f];
        var t = new float[] { 0.5f };
        R.GroupSums<float>(p.AsSpan(0, 3), 3, t);
        Assert.Equal(0.5f + ((1e8f + 1f) + -1e8f), t[0]);
        t[0] = 0;
        R.GroupSums<float>(p, 6, t);
        Assert.Equal(((1e8f + 1f) + (-1e8f + 3f)) + (5f + 7f), t[0]);
        Assert.NotEqual(((((1e8f + 1f) + -1e8f) + 3f) + 5f) + 7f, t[0]); // not the sequential order
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 9)]
    [InlineData(3, 5)]
    [InlineData(7, 3)]
    [InlineData(16, 33)]
    [InlineData(13, 2)]
    public void Kernel_IsBitIdenticalToTheReference(int groups, int n)
    {
        var rng = new Random(groups * 100 + n);
        var partials = Enumerable.Range(0, groups * n).Select(_ => (float)(rng.NextDouble() * 2e4 - 1e4) * (float)Math.Pow(10, rng.Next(-3, 4))).ToArray();
        var target = Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble()).ToArray();
        var expected = target.ToArray();
        R.GroupSums<float>(partials, groups, expected);
        var d = fx.Device;
        using var tp = Tensor.FromArray(d, partials, partials.Length);
        using var tt = Tensor.FromArray(d, target, n);
        int ext = d.Extent(n);
        d.Kernels.GroupSums(d.Stream, ext, n, ext, groups, tp.View, tt.View);
        Assert.Equal(expected, tt.ToArray());
    }

    /// <summary>
    /// Whole batch in groups of g against its two halves each computed alone with the same g and added (two ranks):
    /// bit-identical; and different from the whole batch in one group (the test can fail).
    /// </summary>
    private static void AssertHalvesAddUp(Runtime.Device d, int batch, int group, Func<Tape, int, int, Tensor[]> run)
    {
        float[][] Grads(int first, int count, int g)
        {
            using var tape = new Tape(d) { GradientGroupSize = g };
            var parameters = run(tape, first, count);
            var grads = parameters.Select(t => t.GradToArray()).ToArray();
            foreach (var p in parameters) p.Dispose();
            return grads;
        }
        var whole = Grads(0, batch, group);
        var low = Grads(0, batch / 2, group);
        var high = Grads(batch / 2, batch / 2, group);
        var oneGroup = Grads(0, batch, 0);
        bool anyDifferent = false;
        for (int i = 0; i < whole.Length; i++)
        {
            var sum = low[i].Zip(high[i], (a, b) => a + b).ToArray();
            Assert.Equal(sum, whole[i]);
            anyDifferent |= !oneGroup[i].AsSpan().SequenceEqual(whole[i]);
            // and the grouped gradient is still the gradient
            for (int j = 0; j < sum.Length; j++) Assert.True(Math.Abs(oneGroup[i][j] - whole[i][j]) <= 1e-4f * (1 + Math.Abs(oneGroup[i][j])));
        }
        Assert.True(anyDifferent, "the grouped summation order should differ from one serial sum somewhere at this size");
    }

    private static float[] Values(int n, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
    }

    [Theory]
    [InlineData(8, 2)]  // 4 groups: halves of 2 groups each
    [InlineData(4, 2)]  // 2 groups: a group per half
    [InlineData(16, 1)] // 16 groups of one sample
    public void Conv2d_WeightAndBiasGradients_OfTheHalvesAddUpToTheBatch(int batch, int group)
    {
        var d = fx.Device;
        const int cin = 3, cout = 5, hw = 6, k = 3;
        var x = Values(batch * cin * hw * hw, 1);
        var w = Values(cout * cin * k * k, 2);
        var b = Values(cout, 3);
        var dy = Values(batch * cout * hw * hw, 4);
        AssertHalvesAddUp(d, batch, group, (tape, first, count) =>
        {
            var tx = tape.Own(Tensor.FromArray(d, x.AsSpan(first * cin * hw * hw, count * cin * hw * hw).ToArray(), count, cin, hw, hw));
            var tw = Tensor.FromArray(d, w, cout, cin, k, k); tw.RequiresGrad = true;
            var tb = Tensor.FromArray(d, b, cout); tb.RequiresGrad = true;
            var y = tape.Conv2d(tx, tw, tb, stride: 1, padding: 1);
            tape.Backward(y, dy.AsSpan(first * cout * hw * hw, count * cout * hw * hw).ToArray());
            return [tw, tb];
        });
    }

    [Theory]
    [InlineData(8, 2, LinearActivation.None)]
    [InlineData(32, 16, LinearActivation.Relu)]
    [InlineData(16, 4, LinearActivation.Sigmoid)]
    public void Linear_WeightAndBiasGradients_OfTheHalvesAddUpToTheBatch(int batch, int group, LinearActivation activation)
    {
        var d = fx.Device;
        const int inF = 37, outF = 10;
        var x = Values(batch * inF, 5);
        var w = Values(outF * inF, 6);
        var b = Values(outF, 7);
        var dy = Values(batch * outF, 8);
        AssertHalvesAddUp(d, batch, group, (tape, first, count) =>
        {
            var tx = tape.Own(Tensor.FromArray(d, x.AsSpan(first * inF, count * inF).ToArray(), count, inF));
            var tw = Tensor.FromArray(d, w, outF, inF); tw.RequiresGrad = true;
            var tb = Tensor.FromArray(d, b, outF); tb.RequiresGrad = true;
            var y = tape.Linear(tx, tw, tb, activation);
            tape.Backward(y, dy.AsSpan(first * outF, count * outF).ToArray());
            return [tw, tb];
        });
    }

    [Fact]
    public void FusedRouter_ParameterGradients_OfTheHalvesAddUpToTheBatch()
    {
        var d = fx.Device;
        const int batch = 8, c = 6, hw = 3, hidden = 5, outDegree = 3;
        var x = Values(batch * c * hw * hw, 9);
        var w1 = Values(hidden * c, 10); var b1 = Values(hidden, 11);
        var w2 = Values(outDegree * hidden, 12); var b2 = Values(outDegree, 13);
        var da = Values(batch * outDegree, 14);
        AssertHalvesAddUp(d, batch, 2, (tape, first, count) =>
        {
            var tx = tape.Own(Tensor.FromArray(d, x.AsSpan(first * c * hw * hw, count * c * hw * hw).ToArray(), count, c, hw, hw));
            Tensor P(float[] v, params int[] shape) { var t = Tensor.FromArray(d, v, shape); t.RequiresGrad = true; return t; }
            Tensor[] p = [P(w1, hidden, c), P(b1, hidden), P(w2, outDegree, hidden), P(b2, outDegree)];
            var a = tape.RouterFused(tx, p[0], p[1], p[2], p[3]);
            tape.Backward(a, da.AsSpan(first * outDegree, count * outDegree).ToArray());
            return p;
        });
    }

    [Fact]
    public void Tape_RefusesANegativeGroupSize_AndTheTrainerDefaultIsTheDevicesOwn()
    {
        using var tape = new Tape(fx.Device);
        Assert.Equal(0, tape.GradientGroupSize);
        Assert.Throws<ArgumentOutOfRangeException>(() => tape.GradientGroupSize = -1);
        Assert.Equal(DataParallelOptions.CpuGradientGroupSize, new DataParallelOptions().GradientGroupFor(fx.Device));
        Assert.Equal(0, new DataParallelOptions { GradientGroupSize = 0 }.GradientGroupFor(fx.Device));
        var e = Assert.Throws<ArgumentException>(() => new DataParallelOptions { GradientGroupSize = -2 }.Validate());
        Assert.Contains("gradient group size", e.Message);
    }

    [Fact]
    public void PairwiseAllReduce_OfOneProcess_LeavesTheValues()
    {
        float[] v = [1f, -2.5f, 3e8f];
        using var one = new Communicator.SingleProcess();
        one.AllReducePairwise(v);
        Assert.Equal([1f, -2.5f, 3e8f], v);
    }
}
