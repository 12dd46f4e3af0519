using IlgpuDdw.Autograd;
using IlgpuDdw.Kernels;
using IlgpuDdw.Runtime;
using R = IlgpuDdw.Kernels.Reference.Conv2dReference;

namespace IlgpuDdw.Tests;

/// <summary>Conv2d: reference, finite differences, gradient determinism, bad inputs (kernels versus reference: <see cref="Conv2dCases"/>).</summary>
[Collection("cpu")]
public sealed class Conv2dTests(DeviceFixture fx)
{
    /// <summary>One test geometry: B, C_in, H, W, C_out, K, stride, padding, groups, with or without bias.</summary>
    public sealed record Case(int B, int Cin, int H, int W, int Cout, int K, int S, int P, int G, bool Bias)
    {
        public Conv2dGeometry Geometry => new(B, Cin, H, W, Cout, K, S, P, G);
        public override string ToString() => $"{Geometry}{(Bias ? " +bias" : "")}";
    }

    /// <summary>Small cases for the finite-difference checks (each loss evaluation runs the whole reference).</summary>
    public static TheoryData<Case> SmallCases() => new()
    {
        new(1, 2, 5, 4, 3, 3, 1, 1, 1, true),
        new(2, 4, 7, 5, 6, 3, 2, 1, 2, true),
        new(1, 3, 6, 7, 3, 5, 2, 2, 3, true),
        new(3, 2, 4, 3, 2, 1, 1, 0, 1, true),
        new(1, 1, 3, 4, 2, 7, 1, 3, 1, true),
        new(2, 2, 5, 5, 4, 3, 3, 0, 2, true),
    };

    private static double[] Data(int n, int seed) => Seeded.Uniform<double>(n, seed);

    // ---- layer 1: the reference against hand-computed cases ---------------------------------------------

    private static readonly float[] OneToNine = [1, 2, 3, 4, 5, 6, 7, 8, 9];
    private static readonly float[] BoxSums3x3 = [12, 21, 16, 27, 45, 33, 24, 39, 28];

    [Fact]
    public void Reference_Forward_HandComputed()
    {
        var ones = Enumerable.Repeat(1f, 9).ToArray();
        // 3×3 box filter, padding 1: each output is the sum of its 3×3 neighbourhood, plus the bias 0.5
        var g = new Conv2dGeometry(1, 1, 3, 3, 1, 3, 1, 1, 1);
        var y = new float[9];
        R.Forward<float>(g, OneToNine, ones, [0.5f], y);
        Assert.Equal(BoxSums3x3.Select(v => v + 0.5f), y);
        // stride 2 keeps the corners; no bias
        var g2 = new Conv2dGeometry(1, 1, 3, 3, 1, 3, 2, 1, 1);
        var y2 = new float[4];
        R.Forward<float>(g2, OneToNine, ones, [], y2);
        Assert.Equal([12f, 16, 24, 28], y2);
        // two groups of a 1×1 convolution: channel 0 scaled by 2, channel 1 by −1
        var gg = new Conv2dGeometry(1, 2, 2, 2, 2, 1, 1, 0, 2);
        var yg = new double[8];
        R.Forward<double>(gg, [1, 2, 3, 4, 10, 20, 30, 40], [2, -1], [], yg);
        Assert.Equal([2.0, 4, 6, 8, -10, -20, -30, -40], yg);
        // dense 1×1 mixing two channels into one: y = x0 − 2·x1 + 1
        var gd = new Conv2dGeometry(1, 2, 1, 2, 1, 1, 1, 0, 1);
        var yd = new double[2];
        R.Forward<double>(gd, [1, 2, 10, 20], [1, -2], [1], yd);
        Assert.Equal([-18.0, -37], yd);
    }

    [Fact]
    public void Reference_Backward_HandComputed()
    {
        var ones = Enumerable.Repeat(1f, 9).ToArray();
        var g = new Conv2dGeometry(1, 1, 3, 3, 1, 3, 1, 1, 1);
        // upstream gradient 1 everywhere: dX counts the outputs each input feeds, dW[kh,kw] sums the inputs
        // tap (kh,kw) reads (the same box sums), dBias counts the outputs. Accumulates onto 1.
        var dx = Enumerable.Repeat(1f, 9).ToArray();
        R.BackwardInput<float>(g, ones, ones, dx);
        Assert.Equal([5f, 7, 5, 7, 10, 7, 5, 7, 5], dx);
        var dw = new float[9];
        R.BackwardWeight<float>(g, ones, OneToNine, dw);
        Assert.Equal(BoxSums3x3, dw);
        var db = new float[] { 1 };
        R.BackwardBias<float>(g, ones, db);
        Assert.Equal([10f], db);
        // grouped 1×1: dX = w · dY per channel, dW = <x, dY> per channel
        var gg = new Conv2dGeometry(1, 2, 1, 2, 2, 1, 1, 0, 2);
        var dxg = new double[4];
        R.BackwardInput<double>(gg, [1, 2, 3, 4], [2, -1], dxg);
        Assert.Equal([2.0, 4, -3, -4], dxg);
        var dwg = new double[2];
        R.BackwardWeight<double>(gg, [1, 2, 3, 4], [5, 6, 7, 8], dwg);
        Assert.Equal([17.0, 53], dwg);
    }

    // ---- layer 2: reference backward against central finite differences in double ----------------------

    [Theory, MemberData(nameof(SmallCases))]
    public void Reference_FiniteDifference(Case c)
    {
        var g = c.Geometry;
        var x = Data(g.InputLength, 1); var w = Data(g.WeightLength, 2); var b = Data(g.OutChannels, 3);
        var dy = Data(g.OutputLength, 4);
        var y = new double[g.OutputLength];
        double Loss() { R.Forward<double>(g, x, w, b, y); return Check.Dot(dy, y); }
        var dx = new double[x.Length]; var dw = new double[w.Length]; var db = new double[b.Length];
        R.BackwardInput<double>(g, dy, w, dx);
        R.BackwardWeight<double>(g, dy, x, dw);
        R.BackwardBias<double>(g, dy, db);
        Check.FiniteDifference(Loss, x, dx, $"conv {c} dInput");
        Check.FiniteDifference(Loss, w, dw, $"conv {c} dWeight");
        Check.FiniteDifference(Loss, b, db, $"conv {c} dBias");
    }

    // ---- layer 3 (kernels against the reference: VerificationTests): determinism, gradients, no-grad ----

    [Fact]
    public void Gradients_AreDeterministic_AndOnlyForTensorsThatRequireThem()
    {
        var d = fx.Device;
        var c = new Case(1, 5, 8, 11, 7, 5, 2, 2, 1, true);
        var g = c.Geometry;
        var (x, w, b, dy) = (Check.ToFloat(Data(g.InputLength, 11)), Check.ToFloat(Data(g.WeightLength, 12)),
            Check.ToFloat(Data(g.OutChannels, 13)), Check.ToFloat(Data(g.OutputLength, 14)));
        float[] RunWeightGrad()
        {
            using var tx = Tensor.FromArray(d, x, c.B, c.Cin, c.H, c.W); // no gradient wanted
            using var tw = Tensor.FromArray(d, w, c.Cout, c.Cin / c.G, c.K, c.K); tw.RequiresGrad = true;
            using var tb = Tensor.FromArray(d, b, c.Cout);
            using var tape = new Tape(d);
            tape.Backward(tape.Conv2d(tx, tw, tb, c.S, c.P, c.G), dy);
            Assert.Null(tx.GradOrNull);
            Assert.Null(tb.GradOrNull);
            return tw.GradToArray();
        }
        Assert.Equal(RunWeightGrad(), RunWeightGrad()); // bit-identical
    }

    [Fact]
    public void SplitKWeightGradient_IsBitIdenticalRunToRun_AndMatchesTheReference()
    {
        var d = fx.Device;
        var c = new Case(1, 5, 9, 7, 6, 3, 2, 1, 1, false); // K = 1·5·4 = 20 positions
        var g = c.Geometry;
        var (x, w, dy) = (Check.ToFloat(Data(g.InputLength, 21)), Check.ToFloat(Data(g.WeightLength, 22)), Check.ToFloat(Data(g.OutputLength, 23)));
        var expected = new float[g.WeightLength];
        R.BackwardWeight<float>(g, dy, x, expected);
        foreach (int splits in new[] { 1, 3, 7, 23 }) // 3 and 7 do not divide K; 23 > K leaves empty slices
        {
            float[] Run()
            {
                using var tx = Tensor.FromArray(d, x, c.B, c.Cin, c.H, c.W);
                using var tw = Tensor.FromArray(d, w, c.Cout, c.Cin / c.G, c.K, c.K); tw.RequiresGrad = true;
                using var tape = new Tape(d);
                tape.Backward(tape.Conv2d(tx, tw, null, c.S, c.P, c.G, Conv2dWeightPlan.Split(splits)), dy);
                return tw.GradToArray();
            }
            var first = Run();
            Assert.Equal(first, Run()); // bit-identical
            Check.Close(expected, first, Tolerance.Backward, $"split-K ×{splits}");
        }
    }

    [Fact]
    public void WeightPlan_CpuIsDirect_CudaSplitsToFillTheGpu_AndBadPlansThrow()
    {
        var stem = new Conv2dGeometry(64, 3, 224, 224, 64, 7, 2, 3, 1);
        var layer1 = new Conv2dGeometry(64, 64, 56, 56, 64, 3, 1, 1, 1);
        var last = new Conv2dGeometry(64, 512, 7, 7, 512, 3, 1, 1, 1);
        int h200 = 132 * 2048;
        Assert.Equal(Conv2dWeightPlan.Direct, Conv2dWeightPlan.For(DeviceKind.Cpu, fx.Device.MaxThreads, layer1));
        Assert.Equal(Conv2dWeightPlan.Direct, Conv2dWeightPlan.For(fx.Device, stem));
        foreach (var g in new[] { stem, layer1 })
        {
            var plan = Conv2dWeightPlan.For(DeviceKind.Cuda, h200, g);
            Assert.True(plan.SplitK);
            Assert.True((long)plan.Splits * g.BackwardWeightItems(g.OutChannelBlock, g.InChannelBlock) >= h200 / 2, $"{g}: {plan}");
        }
        Assert.Equal(Conv2dWeightPlan.Direct, Conv2dWeightPlan.For(DeviceKind.Cuda, h200, last)); // 147k tiles already fill it
        var tiny = new Conv2dGeometry(1, 2, 3, 3, 2, 3, 1, 0, 1); // K = 1: no split
        Assert.Equal(Conv2dWeightPlan.Direct, Conv2dWeightPlan.For(DeviceKind.Cuda, h200, tiny));

        var d = fx.Device;
        using var x = Tensor.FromArray(d, new float[2 * 9], 1, 2, 3, 3);
        using var w = Tensor.FromArray(d, new float[2 * 2 * 9], 2, 2, 3, 3);
        using var tape = new Tape(d);
        var e = Assert.Throws<ArgumentException>(() => tape.Conv2d(x, w, null, weightPlan: Conv2dWeightPlan.Split(0)));
        Assert.Contains("splits must be at least 1; got 0", e.Message);
        e = Assert.Throws<ArgumentException>(() => tape.Conv2d(x, w, null, weightPlan: new Conv2dWeightPlan(3, false)));
        Assert.Contains("takes 1 split; got 3", e.Message);
    }

    [Fact]
    public void NoGrad_RecordsNothing()
    {
        var d = fx.Device;
        using var tx = Tensor.FromArray(d, Check.ToFloat(Data(2 * 9, 1)), 1, 2, 3, 3); tx.RequiresGrad = true;
        using var tw = Tensor.FromArray(d, Check.ToFloat(Data(4 * 2 * 9, 2)), 4, 2, 3, 3); tw.RequiresGrad = true;
        using var tape = new Tape(d);
        using (tape.NoGrad())
        {
            var y = tape.Conv2d(tx, tw, null, padding: 1);
            Assert.False(y.RequiresGrad);
            var ey = new float[4 * 9];
            R.Forward<float>(new Conv2dGeometry(1, 2, 3, 3, 4, 3, 1, 1, 1), tx.ToArray(), tw.ToArray(), [], ey);
            Check.Close(ey, y.ToArray(), Tolerance.Forward, "no-grad y");
        }
        Assert.Equal(0, tape.Count);
    }

    // ---- bad inputs: ArgumentException naming the values, nothing allocated or launched ------------------

    public static TheoryData<int[], int[], int[]?, int, int, int, string[]> BadInputs() => new()
    {
        { [2, 3, 5], [4, 3, 3, 3], null, 1, 0, 1, ["rank 4", "[2, 3, 5]", "rank 3"] },
        { [1, 3, 5, 5], [4, 3, 3], null, 1, 0, 1, ["weight", "[4, 3, 3]"] },
        { [1, 3, 5, 5], [4, 1, 3, 3], null, 1, 0, 2, ["C_in = 3", "groups = 2"] },
        { [1, 4, 5, 5], [3, 2, 3, 3], null, 1, 0, 2, ["C_out = 3", "groups = 2"] },
        { [1, 4, 5, 5], [6, 4, 3, 3], null, 1, 0, 2, ["expected [6, 2, 3, 3]", "got [6, 4, 3, 3]"] },
        { [1, 3, 5, 5], [4, 3, 3, 1], null, 1, 0, 1, ["square", "K_h = 3", "K_w = 1"] },
        { [1, 3, 4, 6], [4, 3, 7, 7], null, 1, 1, 1, ["kernel size 7", "6 × 8", "H = 4", "padding = 1"] },
        { [1, 3, 5, 5], [4, 3, 3, 3], null, 0, 0, 1, ["stride", "0"] },
        { [1, 3, 5, 5], [4, 3, 3, 3], null, 1, -1, 1, ["padding", "-1"] },
        { [1, 3, 5, 5], [4, 3, 3, 3], null, 1, 0, 0, ["groups", "0"] },
        { [1, 3, 5, 5], [4, 3, 3, 3], [5], 1, 0, 1, ["bias", "[4]", "[5]"] },
        { [1, 3, 5, 5], [4, 3, 3, 3], [2, 2], 1, 0, 1, ["bias", "[4]", "[2, 2]"] },
    };

    [Theory, MemberData(nameof(BadInputs))]
    public void BadInput_Throws_NamingTheValues(int[] inputShape, int[] weightShape, int[]? biasShape, int stride, int padding, int groups, string[] expected)
    {
        var d = fx.Device;
        using var x = Tensor.Zeros(d, inputShape);
        using var w = Tensor.Zeros(d, weightShape);
        using var b = biasShape is null ? null : Tensor.Zeros(d, biasShape);
        using var tape = new Tape(d);
        int buffers = d.LiveBuffers;
        var e = Assert.Throws<ArgumentException>(() => tape.Conv2d(x, w, b, stride, padding, groups));
        foreach (var s in expected)
            Assert.Contains(s, e.Message);
        Assert.Equal(buffers, d.LiveBuffers);
        Assert.Equal(0, tape.OwnedCount);
        Assert.Equal(0, tape.Count);
    }
}

/// <summary>
/// The tiled (implicit-GEMM) Conv2d rung on a CPU accelerator whose groups hold up to 16 threads: every tiled
/// verification case with groups of 4 and 16 threads (the default device runs those of 1 and 2); the default plans per device.
/// </summary>
[Collection("cpu-groups")]
public sealed class Conv2dTiledTests(GroupedDeviceFixture fx)
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var c in VerificationCases.All.Where(c => c.Family == "Conv2d" && c.Name.StartsWith("tiled", StringComparison.Ordinal)))
            data.Add(c.Name);
        return data;
    }

    [Theory, MemberData(nameof(Cases))]
    public void VerificationCase_MatchesReference_WithGroupsOf16(string name)
    {
        Assert.Equal([4, 16], Conv2dCases.TilePlans(fx.Device).Select(p => p.Threads)); // the 1- and 2-thread plans run on the default device
        var c = VerificationCases.All.Single(x => x.Family == "Conv2d" && x.Name == name);
        var rows = c.Run(fx.Device).ToArray();
        Assert.Equal(2 * (2 + 2) + 2, rows.Length); // per plan: forward, input gradient and its two overwrites; the tape's two
        var failed = rows.Where(r => !r.Pass).ToArray();
        Assert.True(failed.Length == 0, string.Join("\n", failed.Select(r => r.ToString())));
    }

    [Fact]
    public void DefaultPlans_AreDirectOnTheCpu_TiledOnCudaAboveEightRows()
    {
        Assert.Equal(Conv2dTilePlan.Direct, Conv2dTilePlan.For(DeviceKind.Cpu, 4, 1, 256, 100_000));
        int h200 = 132 * 2048;
        // resnet_mini stage 1 at batch 256: 16 channels × 200,704 positions → 16 × 128 tiles of 128 threads
        var p = Conv2dTilePlan.For(DeviceKind.Cuda, h200, 1, 16, 256 * 28 * 28);
        Assert.Equal(new Conv2dTilePlan(16, 128, Conv2dTilePlan.GpuTileK), p);
        Assert.Equal(128, p.Threads);
        Assert.Equal(new Conv2dTilePlan(32, 64, Conv2dTilePlan.GpuTileK), Conv2dTilePlan.For(DeviceKind.Cuda, h200, 1, 24, 100_000));
        // many positions: 64 × 64 tiles (256 threads); a small late layer (512 channels × 7·7·8): 64 × 32 for more groups
        Assert.Equal(new Conv2dTilePlan(64, 64, Conv2dTilePlan.GpuTileK), Conv2dTilePlan.For(DeviceKind.Cuda, h200, 1, 64, 64 * 56 * 56));
        var late = Conv2dTilePlan.For(DeviceKind.Cuda, h200, 1, 512, 8 * 7 * 7);
        Assert.Equal(new Conv2dTilePlan(64, 32, Conv2dTilePlan.GpuTileK), late);
        // depthwise: one channel a group stays direct
        Assert.Equal(Conv2dTilePlan.Direct, Conv2dTilePlan.For(DeviceKind.Cuda, h200, 96, 1, 100_000));
    }

    [Theory]
    [InlineData(6, 8, 8, "multiples of 4")]
    [InlineData(8, 132, 8, "multiples of 4")]
    [InlineData(128, 8, 8, "tileM up to 64")]
    [InlineData(8, 8, 0, "tileK must be 1 to 16; got 0")]
    [InlineData(8, 8, 17, "tileK must be 1 to 16; got 17")]
    [InlineData(32, 32, 8, "need 64 threads a group; the device allows 16")]
    // TF32 plans: whole warp tiles and mma steps (the emulation takes any group, so 64 × 128 passes on groups of 16)
    [InlineData(8, 32, 8, "TF32 tiles must be multiples of 16 × 32 (one warp's mma tile)", true)]
    [InlineData(16, 16, 8, "TF32 tiles must be multiples of 16 × 32", true)]
    [InlineData(24, 32, 8, "TF32 tiles must be multiples of 16 × 32", true)]
    [InlineData(0, 0, 0, "TF32 tiles must be multiples of 16 × 32", true)]
    [InlineData(128, 32, 8, "tileM up to 64 and tileN up to 128; got 128 × 32", true)]
    [InlineData(16, 160, 8, "tileM up to 64 and tileN up to 128; got 16 × 160", true)]
    [InlineData(16, 32, 4, "TF32 tileK must be a multiple of 8 up to 16; got 4", true)]
    [InlineData(16, 32, 12, "TF32 tileK must be a multiple of 8 up to 16; got 12", true)]
    [InlineData(64, 128, 24, "TF32 tileK must be a multiple of 8 up to 16; got 24", true)]
    public void BadTilePlans_AreRefusedBeforeAnyLaunch(int m, int n, int k, string message, bool tf32 = false)
    {
        using var x = Tensor.FromArray(fx.Device, new float[2 * 3 * 5 * 5], 2, 3, 5, 5);
        using var w = Tensor.FromArray(fx.Device, new float[4 * 3 * 3 * 3], 4, 3, 3, 3);
        using var tape = new Tape(fx.Device);
        var e = Assert.Throws<ArgumentException>(() => tape.Conv2d(x, w, null, 1, 1, 1, tilePlan: new Conv2dTilePlan(m, n, k, tf32)));
        Assert.Contains(message, e.Message);
        Assert.DoesNotContain("\n", e.Message);
        Assert.Equal(0, tape.OwnedCount);
    }
}

/// <summary>The fused router's verification cases on a CPU accelerator with groups of 4 warps of 4 threads.</summary>
[Collection("cpu-groups")]
public sealed class RouterGroupsTests(GroupedDeviceFixture fx)
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var c in VerificationCases.All.Where(c => c.Name.StartsWith("router fused", StringComparison.Ordinal)))
            data.Add(c.Name);
        return data;
    }

    [Theory, MemberData(nameof(Cases))]
    public void VerificationCase_MatchesReference_WithGroupsOf16(string name)
    {
        var c = VerificationCases.All.Single(x => x.Name == name);
        var rows = c.Run(fx.Device).ToArray();
        Assert.NotEmpty(rows);
        var failed = rows.Where(r => !r.Pass).ToArray();
        Assert.True(failed.Length == 0, string.Join("\n", failed.Select(r => r.ToString())));
    }
}
