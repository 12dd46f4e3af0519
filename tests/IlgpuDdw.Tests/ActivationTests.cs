using IlgpuDdw.Autograd;
using A = IlgpuDdw.Kernels.Reference.ActivationReference;

namespace IlgpuDdw.Tests;

/// <summary>ReLU6 and sigmoid: reference, finite differences, tape behaviour (kernel versus reference: <see cref="ActivationCases"/>).</summary>
[Collection("cpu")]
public sealed class ActivationTests(DeviceFixture fx)
{
    // ---- layer 1 ----------------------------------------------------------------------------------------

    [Fact]
    public void References_HandComputed()
    {
        var y = new double[5];
        A.Relu6Forward<double>([-1, 0, 2.5, 6, 7.5], y);
        Assert.Equal([0, 0, 2.5, 6, 6], y);
        var dx = new double[5];
        A.Relu6Backward<double>([-1, 0, 2.5, 6, 7.5], [10, 20, 30, 40, 50], dx);
        Assert.Equal([0, 0, 30, 0, 0], dx); // gradient 1 on (0, 6) only

        var s = new double[4];
        A.SigmoidForward<double>([0, Math.Log(3), -Math.Log(3), -1000], s);
        Check.Close([0.5, 0.75, 0.25, 0], s, 1e-15, 0, "sigmoid");
        var ds = new double[4];
        A.SigmoidBackward<double>(s, [1, 2, 4, 1], ds);
        Check.Close([0.25, 2 * 0.75 * 0.25, 4 * 0.25 * 0.75, 0], ds, 1e-15, 0, "sigmoid backward");
        Assert.Equal(1f, A.Sigmoid(1000f)); // no overflow either way
        Assert.Equal(0f, A.Sigmoid(-1000f));
    }

    // ---- layer 2 ----------------------------------------------------------------------------------------

    [Fact]
    public void Relu6_Reference_FiniteDifference()
    {
        int n = 40;
        var x = ActivationCases.Inputs<double>(n, 1); var g = Seeded.Uniform<double>(n, 2);
        var y = new double[n]; var dx = new double[n];
        A.Relu6Backward<double>(x, g, dx);
        Check.FiniteDifference(() => { A.Relu6Forward<double>(x, y); return Check.Dot(g, y); }, x, dx, "relu6 dX");
    }

    [Fact]
    public void Sigmoid_Reference_FiniteDifference()
    {
        int n = 40;
        var x = ActivationCases.Inputs<double>(n, 3); var g = Seeded.Uniform<double>(n, 4);
        var y = new double[n]; var dx = new double[n];
        A.SigmoidForward<double>(x, y);
        A.SigmoidBackward<double>(y, g, dx);
        Check.FiniteDifference(() => { A.SigmoidForward<double>(x, y); return Check.Dot(g, y); }, x, dx, "sigmoid dX");
    }

    // ---- layer 3 (kernels against the reference: VerificationTests) -------------------------------------

    [Fact]
    public void Sigmoid_SavesOutput_AndNoGradRecordsNothing()
    {
        var d = fx.Device;
        using var x = Tensor.FromArray(d, [-50f, 0f, 50f], 3); x.RequiresGrad = true;
        using var tape = new Tape(d);
        using (tape.NoGrad())
        {
            var y = tape.Sigmoid(x);
            Check.Close([0f, 0.5f, 1f], y.ToArray(), 1e-7, 0, "sigmoid");
            Assert.Equal(0, tape.Count);
        }
        var z = tape.Relu6(x);
        Assert.Equal(["Relu6"], tape.OpNames);
        Assert.Equal([0f, 0f, 6f], z.ToArray());
    }

    [Fact]
    public void DisposedOrForeignInput_Throws()
    {
        var d = fx.Device;
        var x = Tensor.FromArray(d, [1f], 1);
        x.Dispose();
        using var tape = new Tape(d);
        Assert.Throws<ObjectDisposedException>(() => tape.Relu6(x));
        Assert.Throws<ObjectDisposedException>(() => tape.Sigmoid(x));
        Assert.Equal(0, tape.OwnedCount);
    }
}
