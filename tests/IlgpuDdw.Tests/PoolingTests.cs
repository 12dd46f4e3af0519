using IlgpuDdw.Autograd;
using IlgpuDdw.Kernels;
using R = IlgpuDdw.Kernels.Reference.PoolingReference;

namespace IlgpuDdw.Tests;

/// <summary>
/// GlobalAvgPool2d, MaxPool2d, AvgPool2d: reference, finite differences, ties and NaN, bad inputs (kernels versus
/// reference: <see cref="PoolingCases"/>).
/// </summary>
[Collection("cpu")]
public sealed class PoolingTests(DeviceFixture fx)
{
    private static Pool2dGeometry Geometry(int[] shape, int k, int s, int p) => new(shape[0] * shape[1], shape[2], shape[3], k, s, p);

    /// <summary>Distinct values spaced 0.1 apart in a seeded random order: no ties within 2·(FD step).</summary>
    private static double[] DistinctSpaced(int n, int seed)
    {
        var r = new Random(seed);
        var order = Enumerable.Range(0, n).OrderBy(_ => r.Next()).ToArray();
        return Array.ConvertAll(order, i => (i - n / 2) * 0.1);
    }

    // ---- layer 1: references against hand-computed cases ------------------------------------------------

    [Fact]
    public void GlobalAvgPool_Reference_HandComputed()
    {
        var y = new double[2];
        R.GlobalAvgPoolForward<double>([1, 2, 3, 4, 5, 6, 7, 9], 4, y);
        Assert.Equal([2.5, 6.75], y);
        var dx = new double[8];
        R.GlobalAvgPoolBackward<double>([4, 8], 4, dx);
        Assert.Equal([1, 1, 1, 1, 2, 2, 2, 2], dx);
    }

    [Fact]
    public void MaxPool_Reference_HandComputed()
    {
        // 4×4 plane 0..15, 3×3 s2 p1 (ResNet stem): windows rows/cols {0,1} and {1,2,3}
        var x = Enumerable.Range(0, 16).Select(v => (double)v).ToArray();
        var g = new Pool2dGeometry(1, 4, 4, 3, 2, 1);
        Assert.Equal((2, 2), (g.OutHeight, g.OutWidth));
        var y = new double[4]; var argmax = new int[4];
        R.MaxPoolForward<double>(x, g, y, argmax);
        Assert.Equal([5, 7, 13, 15], y);
        Assert.Equal([5, 7, 13, 15], argmax);
        var dx = new double[16];
        R.MaxPoolBackward<double>(argmax, [1, 2, 3, 4], g, dx);
        Assert.Equal([0, 0, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0, 0, 3, 0, 4], dx);

        // overlapping windows sharing a maximum: [0, 9, 1, 2], 1×2 windows... as a 1×4 plane with k2 s1 → 3 outputs
        // (k = 2 needs H ≥ 2, so use a 2×4 plane whose second row is smaller)
        g = new Pool2dGeometry(1, 2, 4, 2, 1, 0);
        y = new double[3]; argmax = new int[3];
        R.MaxPoolForward<double>([0, 9, 1, 2, -5, -5, -5, -5], g, y, argmax);
        Assert.Equal([9, 9, 2], y);
        Assert.Equal([1, 1, 3], argmax);
        dx = new double[8];
        R.MaxPoolBackward<double>(argmax, [1, 2, 4], g, dx);
        Assert.Equal([0, 3, 0, 4, 0, 0, 0, 0], dx);

        // ties: the first maximum in row-major order wins
        R.MaxPoolForward<double>([3, 3, 1, 3, 3, 3, 3, 3], g, y, argmax);
        Assert.Equal([0, 1, 3], argmax);
    }

    [Fact]
    public void AvgPool_Reference_HandComputed()
    {
        var x = Enumerable.Range(0, 16).Select(v => (double)v).ToArray();
        var g = new Pool2dGeometry(1, 4, 4, 3, 2, 1);
        var y = new double[4];
        R.AvgPoolForward<double>(x, g, countIncludePad: true, y);
        Check.Close([10 / 9.0, 24 / 9.0, 51 / 9.0, 10], y, 1e-12, 0, "avg include pad");
        R.AvgPoolForward<double>(x, g, countIncludePad: false, y);
        Assert.Equal([2.5, 4, 8.5, 10], y);
        var dx = new double[16];
        R.AvgPoolBackward<double>([9, 18, 27, 36], g, countIncludePad: true, dx);
        Assert.Equal([1, 3, 2, 2, 4, 10, 6, 6, 3, 7, 4, 4, 3, 7, 4, 4], dx);
        dx = new double[16];
        R.AvgPoolBackward<double>([4, 6, 6, 9], g, countIncludePad: false, dx); // shares 1, 1, 1, 1
        Assert.Equal([1, 2, 1, 1, 2, 4, 2, 2, 1, 2, 1, 1, 1, 2, 1, 1], dx);
    }

    // ---- layer 2: reference backward against central finite differences in double ----------------------

    [Fact]
    public void GlobalAvgPool_Reference_FiniteDifference()
    {
        int planes = 6, spatial = 35;
        var x = Seeded.Uniform<double>(planes * spatial, 1); var g = Seeded.Uniform<double>(planes, 2);
        var y = new double[planes];
        var dx = new double[x.Length];
        R.GlobalAvgPoolBackward<double>(g, spatial, dx);
        Check.FiniteDifference(() => { R.GlobalAvgPoolForward<double>(x, spatial, y); return Check.Dot(g, y); }, x, dx, "global avg pool dX");
    }

    [Theory]
    [InlineData(3, 2, 1)]
    [InlineData(2, 2, 0)]
    [InlineData(3, 1, 1)]
    [InlineData(2, 3, 0)]
    [InlineData(5, 2, 2)]
    [InlineData(2, 1, 1)]
    public void MaxPool_And_AvgPool_Reference_FiniteDifference(int k, int s, int p)
    {
        int[] shape = [2, 3, 7, 5];
        var geo = Geometry(shape, k, s, p);
        var x = DistinctSpaced(geo.InputLength, 3); var g = Seeded.Uniform<double>(geo.OutputLength, 4);
        var y = new double[geo.OutputLength]; var argmax = new int[geo.OutputLength];
        double MaxLoss() { R.MaxPoolForward<double>(x, geo, y, argmax); return Check.Dot(g, y); }
        MaxLoss();
        var dx = new double[x.Length];
        R.MaxPoolBackward<double>(argmax, g, geo, dx);
        Check.FiniteDifference(MaxLoss, x, dx, $"max pool k{k} s{s} p{p} dX", maxChecks: 128);
        foreach (bool includePad in new[] { true, false })
        {
            dx = new double[x.Length];
            R.AvgPoolBackward<double>(g, geo, includePad, dx);
            Check.FiniteDifference(() => { R.AvgPoolForward<double>(x, geo, includePad, y); return Check.Dot(g, y); },
                x, dx, $"avg pool k{k} s{s} p{p} includePad {includePad} dX", maxChecks: 128);
        }
    }

    // ---- layer 3 (kernels against the reference: VerificationTests): ties, NaN, saved argmax ------------

    [Fact]
    public void MaxPool_Kernel_TiesPickFirst_NaNPropagates_GradientAccumulates()
    {
        var d = fx.Device;
        // 2×4 plane, k2 s1: windows share the 9 (its gradient is the sum of both), a NaN wins its windows
        using var tx = Tensor.FromArray(d, [0, 9, 1, float.NaN, 3, 3, -5, -5], 1, 1, 2, 4); tx.RequiresGrad = true;
        tx.Grad.Fill(0.5f); // backward accumulates into an existing gradient
        using var tape = new Tape(d);
        var y = tape.MaxPool2d(tx, 2, 1);
        var yv = y.ToArray();
        Assert.Equal(9f, yv[0]);
        Assert.Equal(9f, yv[1]);
        Assert.True(float.IsNaN(yv[2]));
        tape.Backward(y, [1, 2, 4]);
        Assert.Equal([0.5f, 3.5f, 0.5f, 4.5f, 0.5f, 0.5f, 0.5f, 0.5f], tx.GradToArray());

        using var ties = Tensor.FromArray(d, [3, 3, 3, 3, 3, 3], 1, 1, 2, 3); ties.RequiresGrad = true;
        tape.Backward(tape.MaxPool2d(ties, 2, 1), [1, 10]);
        Assert.Equal([1f, 10, 0, 0, 0, 0], ties.GradToArray()); // windows start at 0 and 1: each picks its first element
    }

    [Fact]
    public void MaxPool_SavesArgmaxOnTape_OnlyWhenRecording()
    {
        var d = fx.Device;
        using var x = Tensor.FromArray(d, Check.ToFloat(DistinctSpaced(2 * 3 * 5 * 4, 40)), 2, 3, 5, 4); x.RequiresGrad = true;
        using var tape = new Tape(d);
        int before = d.LiveBuffers;
        tape.MaxPool2d(x, 3, 2, 1);
        Assert.Equal(2, tape.OwnedCount); // y and argmax
        tape.Clear();
        Assert.Equal(before, d.LiveBuffers);
        using (tape.NoGrad())
            tape.MaxPool2d(x, 3, 2, 1);
        Assert.Equal(1, tape.OwnedCount);
        Assert.Equal(before + 1, d.LiveBuffers);
    }

    // ---- bad inputs: ArgumentException naming the values, nothing launched --------------------------

    public static TheoryData<string, int[], int, int, int, string> BadPools() => new()
    {
        { "MaxPool2d", new[] { 2, 3, 4 }, 3, 2, 1, "[2, 3, 4]" },
        { "AvgPool2d", new[] { 1, 1, 4, 4 }, 0, 1, 0, "kernel 0" },
        { "MaxPool2d", new[] { 1, 1, 4, 4 }, 3, 0, 1, "stride 0" },
        { "AvgPool2d", new[] { 1, 1, 4, 4 }, 3, -1, 1, "stride -1" },
        { "MaxPool2d", new[] { 1, 1, 6, 6 }, 3, 2, 2, "got padding 2 with kernel 3" },
        { "AvgPool2d", new[] { 1, 1, 6, 6 }, 3, 1, -1, "padding -1" },
        { "MaxPool2d", new[] { 1, 2, 2, 7 }, 5, 1, 1, "[1, 2, 2, 7]" },
        { "AvgPool2d", new[] { 1, 2, 7, 2 }, 5, 2, 1, "5×5 window with padding 1" },
    };

    [Theory, MemberData(nameof(BadPools))]
    public void BadPool_Throws_NamingValues(string op, int[] shape, int k, int s, int p, string expected)
    {
        var d = fx.Device;
        using var x = Tensor.Zeros(d, shape); x.RequiresGrad = true;
        using var tape = new Tape(d);
        int before = d.LiveBuffers;
        var e = Assert.Throws<ArgumentException>(() => op == "MaxPool2d" ? tape.MaxPool2d(x, k, s, p) : tape.AvgPool2d(x, k, s, p));
        Assert.Contains(expected, e.Message);
        Assert.Contains(op, e.Message);
        Assert.Equal(before, d.LiveBuffers);
        Assert.Equal(0, tape.OwnedCount);
    }

    [Fact]
    public void GlobalAvgPool_BadRank_Throws()
    {
        var d = fx.Device;
        using var x = Tensor.Zeros(d, 2, 3);
        using var tape = new Tape(d);
        var e = Assert.Throws<ArgumentException>(() => tape.GlobalAvgPool2d(x));
        Assert.Contains("GlobalAvgPool2d", e.Message);
        Assert.Contains("[2, 3]", e.Message);
        Assert.Equal(0, tape.OwnedCount);
    }

    [Fact]
    public void StrideDefaultsToKernel()
    {
        var d = fx.Device;
        using var x = Tensor.FromArray(d, Enumerable.Range(0, 24).Select(v => (float)v).ToArray(), 1, 1, 4, 6);
        using var tape = new Tape(d);
        var y = tape.MaxPool2d(x, 2);
        Assert.Equal(new[] { 1, 1, 2, 3 }, y.Shape);
        Assert.Equal([7f, 9, 11, 19, 21, 23], y.ToArray());
        Assert.Equal([3.5f, 5.5f, 7.5f, 15.5f, 17.5f, 19.5f], tape.AvgPool2d(x, 2).ToArray());
    }
}
