using IlgpuDdw.Autograd;
using IlgpuDdw.Kernels.Reference;
using A = IlgpuDdw.Kernels.Reference.ActivationReference;
using R = IlgpuDdw.Kernels.Reference.ElementwiseReference;

namespace IlgpuDdw.Tests;

/// <summary>Add, multiply, ReLU, sum and mean: reference, finite differences, reshape (kernels versus reference: <see cref="ElementwiseCases"/>).</summary>
[Collection("cpu")]
public sealed class ElementwiseOpTests(DeviceFixture fx)
{
    // ---- layer 1: references against hand-computed cases ------------------------------------------------

    [Fact]
    public void References_HandComputed()
    {
        var y = new double[3];
        R.AddForward<double>([1, -2, 3], [0.5, 0.5, -4], y);
        Assert.Equal([1.5, -1.5, -1], y);
        var yf = new float[3];
        R.MultiplyForward<float>([1, -2, 3], [0.5f, 0.5f, -4], yf);
        Assert.Equal([0.5f, -1f, -12f], yf);
        A.ReluForward<double>([-1, 0, 2.5], y);
        Assert.Equal([0, 0, 2.5], y);
        var dx = new double[3];
        A.ReluBackward<double>([-1, 0, 2.5], [10, 20, 30], dx);
        Assert.Equal([0, 0, 30], dx);
        Assert.Equal(4.5, R.Sum<double>([1, 2, 1.5]));
        Assert.Equal(7.25, R.SumOfSquares<double>([1, 2, 1.5]));
        Assert.Equal(1.5f, R.Mean<float>([1, 2, 1.5f]));
        var ds = new double[2];
        R.SumBackward(2.0, 0.5, ds);
        Assert.Equal([1.0, 1.0], ds);
    }

    // ---- layer 2: reference backward against central finite differences in double ----------------------

    [Fact]
    public void Add_And_Multiply_Reference_FiniteDifference()
    {
        int n = 11;
        var a = Seeded.Uniform<double>(n, 1); var b = Seeded.Uniform<double>(n, 2); var g = Seeded.Uniform<double>(n, 3);
        var y = new double[n];
        double AddLoss() { R.AddForward<double>(a, b, y); return Check.Dot(g, y); }
        double MulLoss() { R.MultiplyForward<double>(a, b, y); return Check.Dot(g, y); }
        var da = new double[n]; var db = new double[n];
        R.AddBackward<double>(g, da, db);
        Check.FiniteDifference(AddLoss, a, da, "add dA");
        Check.FiniteDifference(AddLoss, b, db, "add dB");
        da = new double[n]; db = new double[n];
        R.MultiplyBackward<double>(a, b, g, da, db);
        Check.FiniteDifference(MulLoss, a, da, "multiply dA");
        Check.FiniteDifference(MulLoss, b, db, "multiply dB");
    }

    [Fact]
    public void Relu_Reference_FiniteDifference()
    {
        int n = 17;
        var x = Seeded.AwayFromZero<double>(n, 4); var g = Seeded.Uniform<double>(n, 5);
        var y = new double[n];
        var dx = new double[n];
        A.ReluBackward<double>(x, g, dx);
        Check.FiniteDifference(() => { A.ReluForward<double>(x, y); return Check.Dot(g, y); }, x, dx, "relu dX");
    }

    [Fact]
    public void SumMean_Reference_FiniteDifference()
    {
        int n = 9;
        var x = Seeded.Uniform<double>(n, 6);
        var ds = new double[n]; var dm = new double[n];
        R.SumBackward(0.7, 1.0, ds);
        R.SumBackward(0.7, 1.0 / n, dm);
        Check.FiniteDifference(() => 0.7 * R.Sum<double>(x), x, ds, "sum dX");
        Check.FiniteDifference(() => 0.7 * R.Mean<double>(x), x, dm, "mean dX");
    }

    // ---- layer 3 (kernels against the reference: VerificationTests) -------------------------------------

    [Fact]
    public void Reshape_IsAView_AndPassesGradient()
    {
        var d = fx.Device;
        using var x = Tensor.FromArray(d, [1, 2, 3, 4, 5, 6], 2, 3); x.RequiresGrad = true;
        using var tape = new Tape(d);
        long before = d.LiveBuffers;
        var v = tape.Reshape(x, 3, 2);
        Assert.Equal(before, d.LiveBuffers); // no new storage
        Assert.Equal(new[] { 3, 2 }, v.Shape);
        var loss = tape.Sum(tape.Multiply(v, v));
        tape.Backward(loss);
        Assert.Equal([2f, 4, 6, 8, 10, 12], x.GradToArray());
    }
}
