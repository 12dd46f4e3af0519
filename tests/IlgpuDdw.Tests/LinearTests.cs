using IlgpuDdw.Autograd;
using IlgpuDdw.Kernels;
using L = IlgpuDdw.Kernels.Reference.LinearReference;

namespace IlgpuDdw.Tests;

/// <summary>
/// Linear (without an activation and with the fused ReLU / sigmoid): reference, finite differences for
/// input/weight/bias, fused versus separate activation, bad inputs (kernels versus reference: <see cref="LinearCases"/>).
/// </summary>
[Collection("cpu")]
public sealed class LinearTests(DeviceFixture fx)
{
    // ---- layer 1 ----------------------------------------------------------------------------------------

    [Fact]
    public void Reference_HandComputed()
    {
        const LinearActivation none = LinearActivation.None;
        double[] x = [1, 2];                       // [1, 2]
        double[] w = [1, 0, 0, 1, 1, 1];           // [3, 2]
        double[] b = [0.5, -1, 0];
        var y = new double[3];
        L.Forward<double>(x, w, b, 1, 2, 3, none, y);
        Assert.Equal([1.5, 1, 3], y);
        L.Forward<double>(x, w, [], 1, 2, 3, none, y);
        Assert.Equal([1, 2, 3], y);
        double[] g = [1, 2, 3];
        var dx = new double[2]; var dw = new double[6]; var db = new double[3];
        L.BackwardInput<double>(g, [], w, 1, 2, 3, none, dx);
        L.BackwardWeight<double>(g, [], x, 1, 2, 3, none, dw);
        L.BackwardBias<double>(g, [], 1, 3, none, db);
        Assert.Equal([4, 5], dx);
        Assert.Equal([1, 2, 2, 4, 3, 6], dw);
        Assert.Equal([1, 2, 3], db);
    }

    [Fact]
    public void Reference_HandComputed_Relu()
    {
        // y = relu(W x + b): W = [[1, -1], [0.5, 0.5]], b = [2, -2], x = [1, 2] -> z = [1, -0.5] -> y = [1, 0]
        double[] x = [1, 2], w = [1, -1, 0.5, 0.5];
        var y = new double[2];
        L.Forward<double>(x, w, [2, -2], 1, 2, 2, LinearActivation.Relu, y);
        Assert.Equal([1.0, 0], y);
        var (dIn, dW, dB) = (new double[2], new double[4], new double[2]);
        double[] g = [3, 5];
        L.BackwardInput<double>(g, y, w, 1, 2, 2, LinearActivation.Relu, dIn);
        L.BackwardWeight<double>(g, y, x, 1, 2, 2, LinearActivation.Relu, dW);
        L.BackwardBias<double>(g, y, 1, 2, LinearActivation.Relu, dB);
        Assert.Equal([3.0, -3], dIn);        // only output 0 is active: 3 · W[0, :]
        Assert.Equal([3.0, 6, 0, 0], dW);    // 3 · x for row 0
        Assert.Equal([3.0, 0], dB);
    }

    [Fact]
    public void Reference_HandComputed_Sigmoid()
    {
        // y = sigmoid(0.5 · 2 − 1) = sigmoid(0) = 0.5; dZ = 4 · 0.5 · 0.5 = 1
        var s = new double[1];
        L.Forward<double>([2], [0.5], [-1], 1, 1, 1, LinearActivation.Sigmoid, s);
        Assert.Equal(0.5, s[0], 15);
        var (dx, dw, db) = (new double[1], new double[1], new double[1]);
        L.BackwardInput<double>([4], s, [0.5], 1, 1, 1, LinearActivation.Sigmoid, dx);
        L.BackwardWeight<double>([4], s, [2], 1, 1, 1, LinearActivation.Sigmoid, dw);
        L.BackwardBias<double>([4], s, 1, 1, LinearActivation.Sigmoid, db);
        Assert.Equal([0.5], dx);
        Assert.Equal([2.0], dw);
        Assert.Equal([1.0], db);
    }

    // ---- layer 2 ----------------------------------------------------------------------------------------

    [Theory]
    [InlineData(1, 4, 5, LinearActivation.None)]
    [InlineData(3, 7, 2, LinearActivation.None)]
    [InlineData(1, 4, 5, LinearActivation.Relu)]
    [InlineData(3, 7, 2, LinearActivation.Relu)]
    [InlineData(1, 4, 5, LinearActivation.Sigmoid)]
    [InlineData(3, 7, 2, LinearActivation.Sigmoid)]
    public void Reference_FiniteDifference(int batch, int inF, int outF, LinearActivation activation)
    {
        var x = Seeded.Uniform<double>(batch * inF, 1); var w = Seeded.Uniform<double>(outF * inF, 2); var b = Seeded.Uniform<double>(outF, 3);
        var g = Seeded.Uniform<double>(batch * outF, 4);
        var y = new double[batch * outF];
        double Loss() { L.Forward<double>(x, w, b, batch, inF, outF, activation, y); return Check.Dot(g, y); }
        Loss();
        if (activation == LinearActivation.Relu)
        {
            // both sides of the ReLU are exercised, and no pre-activation lies within the difference step of the kink
            Assert.Contains(y, v => v > 0);
            Assert.Contains(y, v => v == 0);
            var z = new double[y.Length];
            L.Forward<double>(x, w, b, batch, inF, outF, LinearActivation.None, z);
            Assert.All(z, v => Assert.True(Math.Abs(v) > 1e-3, $"pre-activation {v} is at the kink"));
        }
        var saved = (double[])y.Clone();
        var dx = new double[x.Length]; var dw = new double[w.Length]; var db = new double[b.Length];
        L.BackwardInput<double>(g, saved, w, batch, inF, outF, activation, dx);
        L.BackwardWeight<double>(g, saved, x, batch, inF, outF, activation, dw);
        L.BackwardBias<double>(g, saved, batch, outF, activation, db);
        Check.FiniteDifference(Loss, x, dx, $"linear {activation} dX");
        Check.FiniteDifference(Loss, w, dw, $"linear {activation} dW");
        Check.FiniteDifference(Loss, b, db, $"linear {activation} dB");
    }

    // ---- layer 3 (kernels against the reference: VerificationTests) -------------------------------------

    [Fact]
    public void FusedActivation_EqualsLinearThenActivation()
    {
        // the fused ReLU / sigmoid give what Linear followed by the separate activation op gives (forward and
        // every gradient): the activation's derivative is applied once
        var d = fx.Device;
        foreach (var activation in new[] { LinearActivation.Relu, LinearActivation.Sigmoid })
        {
            float[][] Run(bool fused)
            {
                using var x = Tensor.FromArray(d, Check.ToFloat(Seeded.Uniform<double>(3 * 5, 40)), 3, 5); x.RequiresGrad = true;
                using var w = Tensor.FromArray(d, Check.ToFloat(Seeded.Uniform<double>(6 * 5, 41)), 6, 5); w.RequiresGrad = true;
                using var b = Tensor.FromArray(d, Check.ToFloat(Seeded.Uniform<double>(6, 42)), 6); b.RequiresGrad = true;
                using var tape = new Tape(d);
                var y = fused ? tape.Linear(x, w, b, activation)
                    : activation == LinearActivation.Relu ? tape.Relu(tape.Linear(x, w, b)) : tape.Sigmoid(tape.Linear(x, w, b));
                tape.Backward(y, Check.ToFloat(Seeded.Uniform<double>(18, 43)));
                return [y.ToArray(), x.GradToArray(), w.GradToArray(), b.GradToArray()];
            }
            var (f, s) = (Run(true), Run(false));
            Check.Close(s[0], f[0], Tolerance.Forward, $"{activation} y");
            for (int i = 1; i < 4; i++)
                Check.Close(s[i], f[i], Tolerance.Backward, $"{activation} gradient {i}");
        }
    }

    [Fact]
    public void OnlyInputsThatRequireGrad_GetGradients()
    {
        var d = fx.Device;
        using var x = Tensor.FromArray(d, Check.ToFloat(Seeded.Uniform<double>(6, 20)), 2, 3);
        using var w = Tensor.FromArray(d, Check.ToFloat(Seeded.Uniform<double>(12, 21)), 4, 3); w.RequiresGrad = true;
        using var b = Tensor.FromArray(d, new float[4], 4);
        using var tape = new Tape(d);
        tape.Backward(tape.Sum(tape.Linear(x, w, b)));
        Assert.Null(x.GradOrNull);
        Assert.Null(b.GradOrNull);
        // L = Σ (W x + b): dW[o, i] = Σ_b x[b, i] for every output o
        var xs = x.ToArray();
        var edw = new float[12];
        for (int o = 0; o < 4; o++)
            for (int i = 0; i < 3; i++) edw[o * 3 + i] = xs[i] + xs[3 + i];
        Check.Close(edw, w.GradToArray(), Tolerance.Backward, "dW");
    }

    [Fact]
    public void FlattenedFeatureMap_Works()
    {
        var d = fx.Device;
        var data = Check.ToFloat(Seeded.Uniform<double>(2 * 3 * 2 * 2, 30));
        using var map = Tensor.FromArray(d, data, 2, 3, 2, 2); map.RequiresGrad = true;
        using var w = Tensor.FromArray(d, Check.ToFloat(Seeded.Uniform<double>(5 * 12, 31)), 5, 12);
        using var tape = new Tape(d);
        var y = tape.Linear(tape.Reshape(map, 2, 12), w, null);
        tape.Backward(tape.Sum(y));
        Assert.Equal([2, 5], y.Shape);
        var edx = new float[24];
        L.BackwardInput<float>(Enumerable.Repeat(1f, 10).ToArray(), [], w.ToArray(), 2, 12, 5, LinearActivation.None, edx);
        Check.Close(edx, map.GradToArray(), Tolerance.Backward, "dMap");
    }

    // ---- bad inputs -------------------------------------------------------------------------------------

    [Fact]
    public void BadShapes_NameTheShapes_AndLaunchNothing()
    {
        var d = fx.Device;
        using var x = Tensor.Zeros(d, 2, 3);
        using var x4 = Tensor.Zeros(d, 2, 3, 1, 1);
        using var w = Tensor.Zeros(d, 4, 5);
        using var w3 = Tensor.Zeros(d, 4, 3);
        using var b = Tensor.Zeros(d, 3);
        using var b2 = Tensor.Zeros(d, 1, 4);
        using var tape = new Tape(d);

        var e = Assert.Throws<ArgumentException>(() => tape.Linear(x, w, null));
        Assert.Contains("[2, 3]", e.Message);
        Assert.Contains("[4, 5]", e.Message);
        e = Assert.Throws<ArgumentException>(() => tape.Linear(x4, w3, null));
        Assert.Contains("[2, 3, 1, 1]", e.Message);
        Assert.Contains("flatten", e.Message);
        e = Assert.Throws<ArgumentException>(() => tape.Linear(x, x4, null));
        Assert.Contains("[2, 3, 1, 1]", e.Message);
        e = Assert.Throws<ArgumentException>(() => tape.Linear(x, w3, b));
        Assert.Contains("[3]", e.Message);
        Assert.Contains("[4, 3]", e.Message);
        e = Assert.Throws<ArgumentException>(() => tape.Linear(x, w3, b2));
        Assert.Contains("[1, 4]", e.Message);
        e = Assert.Throws<ArgumentException>(() => tape.Linear(x, w3, null, (LinearActivation)7));
        Assert.Contains("activation 7", e.Message);
        Assert.Equal(0, tape.OwnedCount);
    }
}
