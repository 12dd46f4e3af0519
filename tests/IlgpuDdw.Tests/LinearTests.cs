using IlgpuDdw.Autograd;
using IlgpuDdw.Verification;
using L = IlgpuDdw.Kernels.Reference.LinearReference;

namespace IlgpuDdw.Tests;

/// <summary>Linear: reference, finite differences for input/weight/bias, kernels versus reference, bad inputs.</summary>
[Collection("cpu")]
public sealed class LinearTests(DeviceFixture fx)
{
    // ---- layer 1 ----------------------------------------------------------------------------------------

    [Fact]
    public void Reference_HandComputed()
    {
        double[] x = [1, 2];                       // [1, 2]
        double[] w = [1, 0, 0, 1, 1, 1];           // [3, 2]
        double[] b = [0.5, -1, 0];
        var y = new double[3];
        L.Forward<double>(x, w, b, 1, 2, 3, y);
        Assert.Equal([1.5, 1, 3], y);
        L.Forward<double>(x, w, [], 1, 2, 3, y);
        Assert.Equal([1, 2, 3], y);
        double[] g = [1, 2, 3];
        var dx = new double[2]; var dw = new double[6]; var db = new double[3];
        L.BackwardInput<double>(g, w, 1, 2, 3, dx);
        L.BackwardWeight<double>(g, x, 1, 2, 3, dw);
        L.BackwardBias<double>(g, 1, 3, db);
        Assert.Equal([4, 5], dx);
        Assert.Equal([1, 2, 2, 4, 3, 6], dw);
        Assert.Equal([1, 2, 3], db);
    }

    // ---- layer 2 ----------------------------------------------------------------------------------------

    [Theory]
    [InlineData(1, 4, 5)]
    [InlineData(3, 7, 2)]
    public void Reference_FiniteDifference(int batch, int inF, int outF)
    {
        var x = Check.Uniform(batch * inF, 1); var w = Check.Uniform(outF * inF, 2); var b = Check.Uniform(outF, 3);
        var g = Check.Uniform(batch * outF, 4);
        var y = new double[batch * outF];
        double Loss() { L.Forward<double>(x, w, b, batch, inF, outF, y); return Check.Dot(g, y); }
        var dx = new double[x.Length]; var dw = new double[w.Length]; var db = new double[b.Length];
        L.BackwardInput<double>(g, w, batch, inF, outF, dx);
        L.BackwardWeight<double>(g, x, batch, inF, outF, dw);
        L.BackwardBias<double>(g, batch, outF, db);
        Check.FiniteDifference(Loss, x, dx, "linear dX");
        Check.FiniteDifference(Loss, w, dw, "linear dW");
        Check.FiniteDifference(Loss, b, db, "linear dB");
    }

    // ---- layer 3 ----------------------------------------------------------------------------------------

    public static TheoryData<int, int, int, bool> Shapes => new()
    {
        { 1, 1, 1, true }, { 1, 5, 3, true }, { 3, 7, 5, true }, { 4, 6, 9, false }, { 2, 13, 2, true },
        { 5, 3, 8, true }, { 2, 33, 10, false }, { 7, 4, 4, true },
    };

    [Theory, MemberData(nameof(Shapes))]
    public void Kernels_MatchReference(int batch, int inF, int outF, bool hasBias)
    {
        var d = fx.Device;
        var x = Check.ToFloat(Check.Uniform(batch * inF, 10)); var w = Check.ToFloat(Check.Uniform(outF * inF, 11));
        var b = hasBias ? Check.ToFloat(Check.Uniform(outF, 12)) : [];
        var g = Check.ToFloat(Check.Uniform(batch * outF, 13));
        using var tx = Tensor.FromArray(d, x, batch, inF); tx.RequiresGrad = true;
        using var tw = Tensor.FromArray(d, w, outF, inF); tw.RequiresGrad = true;
        using var tb = hasBias ? Tensor.FromArray(d, b, outF) : null;
        if (tb is not null) tb.RequiresGrad = true;
        // Pre-existing gradients: the backward must accumulate onto them.
        tx.Grad.CopyFrom(Check.ToFloat(Check.Uniform(x.Length, 14)));
        tw.Grad.CopyFrom(Check.ToFloat(Check.Uniform(w.Length, 15)));
        tb?.Grad.CopyFrom(Check.ToFloat(Check.Uniform(outF, 16)));
        var edx = tx.GradToArray(); var edw = tw.GradToArray(); var edb = tb?.GradToArray() ?? [];

        using var tape = new Tape(d);
        var y = tape.Linear(tx, tw, tb);
        Assert.Equal([batch, outF], y.Shape);
        tape.Backward(y, g);

        var ey = new float[batch * outF];
        L.Forward<float>(x, w, b, batch, inF, outF, ey);
        L.BackwardInput<float>(g, w, batch, inF, outF, edx);
        L.BackwardWeight<float>(g, x, batch, inF, outF, edw);
        Check.Close(ey, y.ToArray(), Check.ForwardAtol, Check.ForwardRtol, "y");
        Check.Close(edx, tx.GradToArray(), Check.BackwardAtol, Check.BackwardRtol, "dX");
        Check.Close(edw, tw.GradToArray(), Check.BackwardAtol, Check.BackwardRtol, "dW");
        if (tb is not null)
        {
            L.BackwardBias<float>(g, batch, outF, edb);
            Check.Close(edb, tb.GradToArray(), Check.BackwardAtol, Check.BackwardRtol, "dB");
        }
    }

    [Fact]
    public void OnlyInputsThatRequireGrad_GetGradients()
    {
        var d = fx.Device;
        using var x = Tensor.FromArray(d, Check.ToFloat(Check.Uniform(6, 20)), 2, 3);
        using var w = Tensor.FromArray(d, Check.ToFloat(Check.Uniform(12, 21)), 4, 3); w.RequiresGrad = true;
        using var b = Tensor.FromArray(d, new float[4], 4);
        using var tape = new Tape(d);
        tape.Backward(tape.Sum(tape.Linear(x, w, b)));
        Assert.Null(x.GradOrNull);
        Assert.Null(b.GradOrNull);
        Assert.NotNull(w.GradOrNull);
    }

    [Fact]
    public void FlattenedFeatureMap_Works()
    {
        var d = fx.Device;
        var data = Check.ToFloat(Check.Uniform(2 * 3 * 2 * 2, 30));
        using var map = Tensor.FromArray(d, data, 2, 3, 2, 2); map.RequiresGrad = true;
        using var w = Tensor.FromArray(d, Check.ToFloat(Check.Uniform(5 * 12, 31)), 5, 12);
        using var tape = new Tape(d);
        var y = tape.Linear(tape.Reshape(map, 2, 12), w, null);
        tape.Backward(tape.Sum(y));
        Assert.Equal([2, 5], y.Shape);
        var edx = new float[24];
        L.BackwardInput<float>(Enumerable.Repeat(1f, 10).ToArray(), w.ToArray(), 2, 12, 5, edx);
        Check.Close(edx, map.GradToArray(), Check.BackwardAtol, Check.BackwardRtol, "dMap");
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
        Assert.Equal(0, tape.OwnedCount);
    }

    [Fact]
    public void VerifySuite_Passes()
    {
        var failed = new LinearVerifySuite().Run(fx.Device).Where(r => !r.Pass).ToArray();
        Assert.True(failed.Length == 0, string.Join("; ", failed.Select(r => $"{r.Op} {r.Shape} abs {r.MaxAbsError:E2}")));
    }
}
