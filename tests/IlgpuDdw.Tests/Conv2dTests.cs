using IlgpuDdw.Autograd;
using IlgpuDdw.Kernels;
using IlgpuDdw.Models;
using IlgpuDdw.Runtime;
using IlgpuDdw.Training;
using IlgpuDdw.Wiring;
using Device = IlgpuDdw.Runtime.Device;
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
        new(2, 5, 6, 5, 5, 3, 1, 1, 5, false), // depthwise 3×3, stride 1 (the plane-tile kernels' main case)
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
        // Cuda: the tiled GEMM C_out × C_in·K² per slice, blocks × slices × threads reaching half the device's threads
        foreach (var g in new[] { stem, layer1, last })
        {
            var plan = Conv2dWeightPlan.For(DeviceKind.Cuda, h200, g);
            Assert.True(plan.SplitK && plan.Tiles.IsTiled && !plan.Tiles.Tf32, $"{g}: {plan}");
            long blocks = plan.Tiles.Blocks(g.Groups, g.OutPerGroup, g.InPerGroup * g.KernelSize * g.KernelSize);
            Assert.True(plan.Splits * blocks * plan.Tiles.Threads >= h200 / 2, $"{g}: {plan}");
            Assert.True(plan.Splits * blocks >= 264, $"{g}: {plan}");
            Assert.Equal(plan.Tiles with { TileK = Conv2dTilePlan.Tf32TileK, Tf32 = true }, Conv2dWeightPlan.For(DeviceKind.Cuda, h200, g, tf32: true).Tiles);
        }
        Assert.Equal(1, Conv2dWeightPlan.For(DeviceKind.Cuda, h200, last).Splits); // 576 blocks of 256 threads already fill it
        Assert.Equal(Conv2dWeightPlan.Tiled(1, Conv2dTilePlan.CpuTf32), Conv2dWeightPlan.For(DeviceKind.Cpu, fx.Device.MaxThreads, layer1, tf32: true)); // the emulation
        // fewer than 8 output channels a group: the split rung's work items
        var narrow = new Conv2dGeometry(64, 64, 56, 56, 4, 3, 1, 1, 1);
        var split = Conv2dWeightPlan.For(DeviceKind.Cuda, h200, narrow);
        Assert.True(split.SplitK && !split.Tiles.IsTiled && split.Splits > 1, $"{split}");
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
        e = Assert.Throws<ArgumentException>(() => tape.Conv2d(x, w, null, weightPlan: new Conv2dWeightPlan(1, false, new Conv2dTilePlan(4, 4, 2))));
        Assert.Contains("tiled weight-gradient rung takes 1 to 65535 splits with split-K on; got 1 without split-K", e.Message);
        e = Assert.Throws<ArgumentException>(() => tape.Conv2d(x, w, null, weightPlan: Conv2dWeightPlan.Tiled(2, new Conv2dTilePlan(6, 4, 2))));
        Assert.Contains("tiles must be multiples of 4", e.Message);
        Assert.Equal(0, tape.OwnedCount);
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
        Assert.Equal(2 * (2 + 2 + 2) + 1 + 2, rows.Length); // per plan: forward, input gradient and its two overwrites, the weight gradient at 1 and 3 splits (the last plan also above K); the tape's two
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

/// <summary>
/// The plane-tile Conv2d rung (depthwise and narrow grouped convolutions) on a CPU accelerator whose groups hold up to 16
/// threads: every plane-tile verification case with groups of 4, 8 and 16 threads (the default device runs those of 1 and 2),
/// the kernels against the reference at odd shapes, the default plans per device, and bad plans.
/// </summary>
[Collection("cpu-groups")]
public sealed class Conv2dPlaneTests(GroupedDeviceFixture fx)
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var c in VerificationCases.All.Where(c => c.Family == "Conv2d" && c.Name.StartsWith("plane tiles", StringComparison.Ordinal)))
            data.Add(c.Name);
        return data;
    }

    [Theory, MemberData(nameof(Cases))]
    public void VerificationCase_MatchesReference_WithGroupsOf16(string name)
    {
        Assert.Equal([4, 8, 16], Conv2dCases.PlanePlans(fx.Device).Select(p => p.Threads));
        var c = VerificationCases.All.Single(x => x.Family == "Conv2d" && x.Name == name);
        var rows = c.Run(fx.Device).ToArray();
        Assert.Equal(3 * 5 + 5, rows.Length); // per plan: forward, input gradient and its two overwrites, weight gradient; the tape's four passes and a second pass
        var failed = rows.Where(r => !r.Pass).ToArray();
        Assert.True(failed.Length == 0, string.Join("\n", failed.Select(r => r.ToString())));
    }

    /// <summary>Depthwise and few-channel grouped geometries with a plan each: odd and non-square planes, tiles that do not divide them.</summary>
    public static TheoryData<Conv2dTests.Case, int, int, int> OddShapes() => new()
    {
        { new(1, 1, 7, 5, 1, 3, 1, 1, 1, true), 2, 3, 4 },     // one channel
        { new(3, 5, 9, 6, 5, 3, 2, 1, 5, true), 2, 2, 16 },    // stride 2, batch 3
        { new(1, 6, 8, 11, 6, 5, 1, 2, 6, false), 3, 4, 8 },   // 5×5, padding 2
        { new(3, 6, 7, 9, 6, 5, 2, 0, 6, true), 4, 2, 16 },    // 5×5, stride 2, no padding
        { new(1, 5, 9, 7, 5, 3, 1, 0, 5, false), 4, 4, 3 },    // no padding, 3 threads
        { new(3, 5, 11, 9, 5, 3, 1, 1, 5, true), 4, 3, 16 },   // the inverted residual's 3×3, a tile of 4 × 3 over 11 × 9
        { new(2, 6, 7, 5, 6, 3, 2, 2, 3, true), 3, 2, 8 },     // 2 channels a group, padding 2
        { new(1, 6, 5, 7, 3, 3, 1, 1, 3, true), 2, 5, 16 },    // 2 input channels → 1 output channel a group
        { new(2, 4, 6, 5, 8, 2, 1, 0, 4, false), 3, 3, 16 },   // 2 × 2 kernel: 4 lanes a tap in the weight gradient
        { new(3, 5, 6, 9, 5, 1, 2, 0, 5, true), 2, 4, 4 },     // 1 × 1, stride 2: inputs without taps
        { new(1, 5, 4, 6, 5, 3, 2, 1, 5, false), 16, 16, 16 }, // a tile larger than the plane
    };

    [Theory, MemberData(nameof(OddShapes))]
    public void PlaneKernels_MatchTheReference_AtOddShapes(Conv2dTests.Case c, int tileHeight, int tileWidth, int threads)
    {
        var d = fx.Device;
        var g = c.Geometry;
        var (x, w, b, dy) = (Seeded.Uniform<float>(g.InputLength, 31), Seeded.Uniform<float>(g.WeightLength, 32),
            Seeded.Uniform<float>(g.OutChannels, 33), Seeded.Uniform<float>(g.OutputLength, 34));
        var dx0 = Seeded.Uniform<float>(g.InputLength, 35);
        var dw0 = Seeded.Uniform<float>(g.WeightLength, 36);
        var ey = new float[g.OutputLength];
        R.Forward<float>(g, x, w, c.Bias ? b : [], ey);
        var edx = (float[])dx0.Clone();
        R.BackwardInput<float>(g, dy, w, edx);
        var edw = (float[])dw0.Clone();
        R.BackwardWeight<float>(g, dy, x, edw);
        var edxWritten = new float[g.InputLength];
        R.BackwardInput<float>(g, dy, w, edxWritten);

        using var tx = Tensor.FromArray(d, x, g.InputLength);
        using var tw = Tensor.FromArray(d, w, g.WeightLength);
        using var tb = Tensor.FromArray(d, b, g.OutChannels);
        using var tdy = Tensor.FromArray(d, dy, g.OutputLength);
        using var ty = Tensor.Empty(d, g.OutputLength);
        using var tdx = Tensor.Empty(d, g.InputLength);
        using var tdw = Tensor.Empty(d, g.WeightLength);
        var plan = new Conv2dPlanePlan(tileHeight, tileWidth, threads, 1);
        plan.Validate(d, g);
        Ops.Conv2dForwardPlanes(d, g, plan, tx.View, tw.View, c.Bias ? tb.View : null, ty.View);
        Check.Close(ey, ty.ToArray(), Tolerance.Forward, $"{c} forward");

        float[] Input(float fill, int accumulate)
        {
            if (float.IsNaN(fill) || fill != 0f) tdx.Fill(fill); else tdx.CopyFrom(dx0);
            Ops.Conv2dBackwardInputPlanes(d, g, plan, tdy.View, tw.View, tdx.View, accumulate);
            return tdx.ToArray();
        }
        Check.Close(edx, Input(0f, 1), Tolerance.Backward, $"{c} input gradient, accumulated");
        var written = Input(float.NaN, 0); // overwrite over a NaN-poisoned buffer
        Check.Close(edxWritten, written, Tolerance.Backward, $"{c} input gradient, overwritten");
        tdx.Fill(0f);
        Ops.Conv2dBackwardInputPlanes(d, g, plan, tdy.View, tw.View, tdx.View, 1);
        Assert.True(Overwrite.BitEqual(tdx.ToArray(), written), $"{c}: the overwrite differs bitwise from accumulating onto zeros");

        int units = g.Batch * Conv2dKernels.PlaneTiles(g.OutHeight, g.OutWidth, tileHeight, tileWidth);
        foreach (int splits in new[] { 1, 3, units + 2 }.Distinct()) // more splits than units leaves empty slices
        {
            float[] Weight()
            {
                tdw.CopyFrom(dw0);
                Ops.Conv2dBackwardWeightPlanes(d, g, plan with { Splits = splits }, tdy.View, tx.View, tdw.View);
                return tdw.ToArray();
            }
            var first = Weight();
            Check.Close(edw, first, Tolerance.Backward, $"{c} weight gradient ×{splits}");
            Assert.Equal(first, Weight()); // bit-identical run to run
        }
    }

    [Fact]
    public void PlanePlan_ThroughTheTape_InGradientGroups_MatchesTheReference()
    {
        var d = fx.Device;
        var c = new Conv2dTests.Case(3, 6, 7, 8, 6, 3, 1, 1, 6, true);
        var g = c.Geometry;
        var (x, w, b, dy) = (Seeded.Uniform<float>(g.InputLength, 41), Seeded.Uniform<float>(g.WeightLength, 42),
            Seeded.Uniform<float>(g.OutChannels, 43), Seeded.Uniform<float>(g.OutputLength, 44));
        var edw = new float[g.WeightLength];
        R.BackwardWeight<float>(g, dy, x, edw);
        var edb = new float[g.OutChannels];
        R.BackwardBias<float>(g, dy, edb);
        using var tx = Tensor.FromArray(d, x, c.B, c.Cin, c.H, c.W);
        using var tw = Tensor.FromArray(d, w, c.Cout, c.Cin / c.G, c.K, c.K); tw.RequiresGrad = true;
        using var tb = Tensor.FromArray(d, b, c.Cout); tb.RequiresGrad = true;
        using var tape = new Tape(d) { GradientGroupSize = 2 }; // groups of 2 and 1 samples
        var trace = new LaunchTrace();
        d.Tracer = trace;
        try
        {
            tape.Backward(tape.Conv2d(tx, tw, tb, c.S, c.P, c.G, planePlan: new Conv2dPlanePlan(3, 4, 16, 2)), dy);
        }
        finally
        {
            d.Tracer = null;
        }
        Check.Close(edw, tw.GradToArray(), Tolerance.Backward, "weight gradient in groups of 2");
        Check.Close(edb, tb.GradToArray(), Tolerance.Backward, "bias gradient in groups of 2");
        Assert.Equal(1, trace.Launches.Count(l => l.Kernel == "Conv2dForwardPlanes"));
        Assert.Equal(2, trace.Launches.Count(l => l.Kernel == "Conv2dBackwardWeightPlanes"));
        Assert.DoesNotContain(trace.Launches, l => l.Kernel is "Conv2dForward" or "Conv2dBackwardWeight" or "Conv2dBackwardWeightSplit");
    }

    [Fact]
    public void DefaultPlans_AreDirectOnTheCpu_PlaneTilesOnCudaBelowEightChannelsAGroup()
    {
        int h200 = 132 * 2048;
        var first = new Conv2dGeometry(64, 32, 112, 112, 32, 3, 1, 1, 32);  // mobilenet_v2's first depthwise 3×3
        var down = new Conv2dGeometry(64, 96, 112, 112, 96, 3, 2, 1, 96);   // its first stride-2 one
        var last = new Conv2dGeometry(64, 960, 7, 7, 960, 3, 1, 1, 960);
        var dense = new Conv2dGeometry(64, 64, 56, 56, 64, 3, 1, 1, 1);
        foreach (var g in new[] { first, down, last })
        {
            Assert.Equal(Conv2dPlanePlan.Direct, Conv2dPlanePlan.ForForward(DeviceKind.Cpu, g));
            Assert.Equal(Conv2dPlanePlan.Direct, Conv2dPlanePlan.ForInput(DeviceKind.Cpu, g));
            Assert.Equal(Conv2dPlanePlan.Direct, Conv2dPlanePlan.ForWeight(DeviceKind.Cpu, fx.Device.MaxThreads, g));
            var forward = Conv2dPlanePlan.ForForward(DeviceKind.Cuda, g);
            var input = Conv2dPlanePlan.ForInput(DeviceKind.Cuda, g);
            var weight = Conv2dPlanePlan.ForWeight(DeviceKind.Cuda, h200, g);
            foreach (var p in new[] { forward, input, weight })
            {
                Assert.Equal(Conv2dPlanePlan.GpuThreads, p.Threads);
                Assert.True(p.TileWidth <= Conv2dPlanePlan.GpuMaxTileWidth && p.TileHeight * p.TileWidth <= Conv2dKernels.MaxPlaneTile, $"{g}: {p}");
                Assert.True(Conv2dKernels.PlaneWindow(g, p.TileHeight, p.TileWidth) <= Conv2dKernels.MaxPlaneStage, $"{g}: {p}");
            }
            Assert.True((long)Conv2dKernels.PlaneTiles(g.OutHeight, g.OutWidth, forward.TileHeight, forward.TileWidth) * g.OutChannels * g.Batch >= 264);
            Assert.True((long)Conv2dKernels.PlaneTiles(g.Height, g.Width, input.TileHeight, input.TileWidth) * g.InChannels * g.Batch >= 264);
            Assert.True((long)weight.Splits * g.OutChannels >= h200 / Conv2dPlanePlan.GpuThreads, $"{g}: {weight}"); // one wave of groups
        }
        Assert.Equal(new Conv2dPlanePlan(16, 28, 128, 1), Conv2dPlanePlan.ForForward(DeviceKind.Cuda, first));
        Assert.Equal(new Conv2dPlanePlan(14, 28, 128, 1), Conv2dPlanePlan.ForForward(DeviceKind.Cuda, down)); // 56 × 56 outputs
        Assert.Equal(new Conv2dPlanePlan(7, 7, 128, 1), Conv2dPlanePlan.ForForward(DeviceKind.Cuda, last));   // one tile a plane
        Assert.Equal(66, Conv2dPlanePlan.ForWeight(DeviceKind.Cuda, h200, first).Splits);                    // 32 planes × 66 ≥ 2,112 groups
        // 8 channels a group and more: the tiled GEMM's; kernels above 7 × 7: direct
        Assert.Equal(Conv2dPlanePlan.Direct, Conv2dPlanePlan.ForForward(DeviceKind.Cuda, dense));
        Assert.Equal(Conv2dPlanePlan.Direct, Conv2dPlanePlan.ForWeight(DeviceKind.Cuda, h200, dense));
        var grouped = new Conv2dGeometry(64, 64, 28, 28, 64, 3, 1, 1, 16); // 4 channels a group
        Assert.True(Conv2dPlanePlan.ForForward(DeviceKind.Cuda, grouped).IsPlane);
        Assert.True(Conv2dPlanePlan.ForWeight(DeviceKind.Cuda, h200, grouped).IsPlane);
        Assert.Equal(Conv2dPlanePlan.Direct, Conv2dPlanePlan.ForForward(DeviceKind.Cuda, new Conv2dGeometry(2, 4, 20, 20, 4, 9, 1, 4, 4)));
    }

    [Theory]
    [InlineData("mobilenet_v2", 224, 64)]
    [InlineData("mobilenet_mini", 28, 256)]
    public void DryRun_DepthwiseConvolutions_RunOnPlaneTiles_AndFillTheGpu(string model, int size, int batch)
    {
        using var dry = Device.CreateDryRun(GpuProfile.H200);
        var profile = StepProfile.Run(dry, ModelZoo.Get(model, size), new WiringConfig { Kind = WiringKind.Chain }, batch, GpuProfile.H200, warmup: 2);
        var t = profile.Trace;
        int Launches(string kernel) => t.Kernels.SingleOrDefault(k => k.Kernel == kernel)?.Launches ?? 0;
        int blocks = ModelZoo.Get(model, size).Stages.Sum(s => s.Nodes.Count); // one depthwise 3×3 an inverted residual
        Assert.Equal(blocks, Launches("Conv2dForwardPlanes"));
        Assert.Equal(blocks, Launches("Conv2dBackwardInputPlanes"));
        Assert.Equal(blocks, Launches("Conv2dBackwardWeightPlanes"));
        Assert.Equal(0, Launches("Conv2dForward"));
        Assert.Equal(0, Launches("Conv2dBackwardInput"));
        Assert.Equal(0, Launches("Conv2dBackwardWeight"));
        Assert.Empty(t.Underfilled);
        Assert.Equal(0, t.Allocations); // the partials come from the pool
        Assert.All(t.Kernels.Where(k => k.Kernel.EndsWith("Planes", StringComparison.Ordinal)), k => Assert.Equal(Conv2dPlanePlan.GpuThreads, k.ThreadsPerGroup));
    }

    [Theory]
    [InlineData(0, 3, 16, 1, "at least 1 × 1 and hold at most 512 positions; got 0 × 3")]
    [InlineData(16, 33, 16, 1, "hold at most 512 positions; got 16 × 33")]
    [InlineData(4, 128, 16, 1, "reads a 2313-float window at K = 3, stride 2; at most 2304 fit")]
    [InlineData(2, 2, 17, 1, "take 1 to 16 threads a group on this device; got 17")]
    [InlineData(2, 2, 16, 0, "splits must be 1 to")]
    public void BadPlanePlans_AreRefusedBeforeAnyLaunch(int tileHeight, int tileWidth, int threads, int splits, string message)
    {
        using var x = Tensor.FromArray(fx.Device, new float[2 * 4 * 9 * 9], 2, 4, 9, 9);
        using var w = Tensor.FromArray(fx.Device, new float[4 * 9], 4, 1, 3, 3);
        using var tape = new Tape(fx.Device);
        var e = Assert.Throws<ArgumentException>(() => tape.Conv2d(x, w, null, 2, 1, 4, planePlan: new Conv2dPlanePlan(tileHeight, tileWidth, threads, splits)));
        Assert.Contains(message, e.Message);
        Assert.Equal(0, tape.OwnedCount);
    }

    [Fact]
    public void PlanePlan_RefusesKernelsAboveSevenBySeven()
    {
        using var x = Tensor.FromArray(fx.Device, new float[2 * 5 * 5], 1, 2, 5, 5);
        using var w = Tensor.FromArray(fx.Device, new float[2 * 81], 2, 1, 9, 9);
        using var tape = new Tape(fx.Device);
        var e = Assert.Throws<ArgumentException>(() => tape.Conv2d(x, w, null, 1, 2, 2, planePlan: new Conv2dPlanePlan(2, 2, 4, 1)));
        Assert.Contains("kernels of at most 49 taps; got 9 × 9", e.Message);
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
