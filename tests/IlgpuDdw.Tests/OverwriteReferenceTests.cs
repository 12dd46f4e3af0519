using IlgpuDdw.Kernels;
using IlgpuDdw.Kernels.Reference;
using IlgpuDdw.Verification;

namespace IlgpuDdw.Tests;

/// <summary>
/// The references of the backward kernels with an accumulate flag (layer 1): with <c>accumulate: false</c> each
/// overwrites its gradient, over NaN and over 1e30, with exactly what accumulating onto zeros gives, and with the
/// default (true) it adds onto what is there. No device. (The kernels against these: the verification cases.)
/// </summary>
public sealed class OverwriteReferenceTests
{
    /// <summary>
    /// Runs <paramref name="backward"/>(buffer, accumulate) onto zeros accumulating, onto ones accumulating, and
    /// overwriting NaN and 1e30; checks the overwrites equal the first bitwise and the second is the first + 1 (to rounding).
    /// </summary>
    private static void Both(int n, Action<double[], bool> backward)
    {
        var zeros = new double[n];
        backward(zeros, true);
        Assert.Contains(zeros, v => v != 0); // the case has a contribution to overwrite with
        var ones = Enumerable.Repeat(1.0, n).ToArray();
        backward(ones, true);
        Check.Close([.. zeros.Select(v => v + 1)], ones, 1e-12, 1e-12, "accumulated onto ones");
        foreach (double garbage in new[] { double.NaN, 1e30 })
        {
            var written = Enumerable.Repeat(garbage, n).ToArray();
            backward(written, false);
            Assert.Equal(zeros.Select(BitConverter.DoubleToInt64Bits), written.Select(BitConverter.DoubleToInt64Bits));
        }
    }

    private static double[] Values(int n, int seed) => Seeded.Uniform<double>(n, seed);

    [Fact]
    public void Activations()
    {
        double[] x = [-1, 0.5, 2, 7, -3, 5.5], g = [1, 2, 3, 4, 5, 6];
        Both(6, (d, acc) => ActivationReference.ReluBackward<double>(x, g, d, acc));
        Both(6, (d, acc) => ActivationReference.Relu6Backward<double>(x, g, d, acc));
        Both(6, (d, acc) => ActivationReference.SigmoidBackward<double>([0.5, 0.25, 0.9, 0.1, 0.6, 0.3], g, d, acc));
        Both(6, (d, acc) => ElementwiseReference.MaskSamplesBackward<double>(g, [1, 0, 1], 2, d, acc));
        Both(6, (d, acc) => ElementwiseReference.AddBackward<double>(g, d, acc ? new double[6] : Enumerable.Repeat(double.NaN, 6).ToArray(), acc));
        var dx = new double[6];
        Array.Fill(dx, double.NaN);
        ActivationReference.ReluBackward<double>(x, g, dx, accumulate: false);
        Assert.Equal([0, 2, 3, 4, 0, 6], dx); // hand-computed: the blocked elements get 0, not NaN
    }

    [Fact]
    public void Conv2d_Linear_Pooling_Loss()
    {
        var g = new Conv2dGeometry(2, 3, 5, 4, 4, 3, 2, 1, 1);
        var dy = Values(g.OutputLength, 1);
        var w = Values(g.WeightLength, 2);
        Both(g.InputLength, (d, acc) => Conv2dReference.BackwardInput<double>(g, dy, w, d, acc));

        var ly = Values(3 * 4, 3);
        Both(3 * 5, (d, acc) => LinearReference.BackwardInput<double>(Values(3 * 4, 4), ly, Values(4 * 5, 5), 3, 5, 4, LinearActivation.Sigmoid, d, acc));

        Both(2 * 3 * 6, (d, acc) => PoolingReference.GlobalAvgPoolBackward<double>(Values(2 * 3, 6), 6, d, acc));
        var dx = Enumerable.Repeat(double.NaN, 4).ToArray();
        PoolingReference.GlobalAvgPoolBackward<double>([4, 8], 2, dx, accumulate: false);
        Assert.Equal([2, 2, 4, 4], dx);

        var pool = new Pool2dGeometry(2, 5, 4, 3, 2, 1);
        var poolDy = Values(pool.OutputLength, 8);
        var argmax = Enumerable.Range(0, pool.OutputLength).Select(o => o * 7 % 20).ToArray();
        Both(pool.InputLength, (d, acc) => PoolingReference.MaxPoolBackward<double>(argmax, poolDy, pool, d, acc));
        Both(pool.InputLength, (d, acc) => PoolingReference.AvgPoolBackward<double>(poolDy, pool, true, d, acc));

        Both(3 * 4, (d, acc) => LossReference.CrossEntropyBackward<double>(Values(3 * 4, 7), [0, 3, 1], 0.1, 0.5, d, acc));
    }

    [Fact]
    public void BatchNorm_Input_And_Residual()
    {
        const int b = 2, c = 3, s = 4, n = b * c * s;
        var x = Values(n, 11);
        var dy = Values(n, 12);
        double[] mean = [0.1, -0.2, 0.3], invstd = [1.5, 0.8, 1.2], gamma = [0.9, 1.1, 1.3];
        double[] live = [1, 0];
        var output = Values(n, 13);
        Both(n, (d, acc) => BatchNormReference.Backward<double>(x, dy, b, c, s, mean, invstd, gamma, true, d, new double[c], new double[c], acc));
        Both(n, (d, acc) => BatchNormReference.LiveBackward<double>(x, dy, b, c, s, live, mean, invstd, gamma, true, d, new double[c], new double[c], acc));
        // the fused backwards: dInput, then dResidual, each with the other accumulated onto zeros
        Both(n, (d, acc) => BatchNormReference.BackwardRelu<double>(x, dy, output, b, c, s, mean, invstd, gamma, true, d,
            new double[c], new double[c], acc ? new double[n] : Enumerable.Repeat(double.NaN, n).ToArray(), acc));
        Both(n, (d, acc) => BatchNormReference.BackwardRelu<double>(x, dy, output, b, c, s, mean, invstd, gamma, true,
            acc ? new double[n] : Enumerable.Repeat(double.NaN, n).ToArray(), new double[c], new double[c], d, acc));
        Both(n, (d, acc) => BatchNormReference.LiveBackwardFused<double>(x, dy, output, b, c, s, live, mean, invstd, gamma, true, true,
            acc ? new double[n] : Enumerable.Repeat(double.NaN, n).ToArray(), new double[c], new double[c], d, acc));
    }

    [Fact]
    public void Gates_And_Aggregation()
    {
        const int batch = 2, nodes = 3, node = 1, degree = nodes - node;
        var a = new double[] { 0.7, 0.2, 0.4, 0.9 };
        var dAdjacency = Values(batch * (nodes + 1) * (nodes + 1), 21);
        var adjacency = new double[dAdjacency.Length];
        GateReference.Forward<double>(a, batch, nodes, node, 0.5, adjacency);
        Both(batch * degree, (d, acc) => GateReference.Backward<double>(a, dAdjacency, batch, nodes, node, 0.5, false, d, adjacency, acc));
        Both(batch * degree, (d, acc) => GateReference.ContinuousBackward<double>(a, adjacency, dAdjacency, batch, nodes, node, 0.5, d, acc));

        Both(batch * degree, (d, acc) => GateReference.StochasticBackward<double>(a, [0.5, -1, 2, -0.5], adjacency, dAdjacency, batch, nodes, node, 2.0,
            null, d, acc ? new double[batch * degree] : Enumerable.Repeat(double.NaN, batch * degree).ToArray(), acc));
        Both(batch * degree, (d, acc) => GateReference.StochasticBackward<double>(a, [0.5, -1, 2, -0.5], adjacency, dAdjacency, batch, nodes, node, 2.0,
            null, acc ? new double[batch * degree] : Enumerable.Repeat(double.NaN, batch * degree).ToArray(), d, acc));
        Both(4, (d, acc) => GateReference.TermBackward<double>(0.5, [1, -2, 3, 4], d, acc));

        // aggregation into target 2 from nodes 0 and 1: node 0's gradient overwritten, node 1's accumulated
        const int sample = 5, target = 2;
        var full = Values(batch * (nodes + 1) * (nodes + 1), 22);
        full[GateReference.Index(nodes, 1, 0, target)] = 0; // a cut edge: sample 1 of node 0 gets 0
        var dX = Values(batch * sample, 23);
        var expected0 = new double[batch * sample];
        var expected1 = Enumerable.Repeat(1.0, batch * sample).ToArray();
        AggregationReference.BackwardSources<double>(full, dX, batch, nodes, target, [expected0, expected1]);
        var dY0 = Enumerable.Repeat(double.NaN, batch * sample).ToArray();
        var dY1 = Enumerable.Repeat(1.0, batch * sample).ToArray();
        AggregationReference.BackwardSources<double>(full, dX, batch, nodes, target, [dY0, dY1], [true, false]);
        Assert.Equal(expected0, dY0);
        Assert.Equal(expected1, dY1);
        Assert.All(dY0[sample..], v => Assert.Equal(0.0, v));
    }
}
