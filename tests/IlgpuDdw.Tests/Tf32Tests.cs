using IlgpuDdw.Autograd;
using IlgpuDdw.Kernels;
using IlgpuDdw.Runtime;
using IlgpuDdw.Verification;
using Tf32 = IlgpuDdw.Kernels.Conv2dKernels.Tf32;

namespace IlgpuDdw.Tests;

/// <summary>
/// The TF32 rounding and the m16n8k8 fragment layout against hand cases, and the TF32 plans (defaults, refusals). The
/// TF32 kernels themselves run against the reference in the "TF32 tiled" verification cases: on the default CPU device
/// (groups of 2 threads, warps of 2) through <see cref="VerificationTests"/>, on groups of 16 in <see cref="Tf32TiledTests"/>.
/// </summary>
[Collection("cpu")]
public sealed class Tf32Tests(DeviceFixture fx)
{
    private static float F(uint bits) => BitConverter.UInt32BitsToSingle(bits);

    private static uint Bits(float x) => BitConverter.SingleToUInt32Bits(x);

    [Theory]
    [InlineData(0x3F800000u, 0x3F800000u)] // 1 is a TF32 value
    [InlineData(0x3F800FFFu, 0x3F800000u)] // just below half a TF32 ulp above 1: down
    [InlineData(0x3F801000u, 0x3F802000u)] // 1 + 2^-11, a tie: away from zero (ties-to-even would give 1)
    [InlineData(0xBF801000u, 0xBF802000u)] // −(1 + 2^-11): away from zero, to −(1 + 2^-10)
    [InlineData(0x3F801001u, 0x3F802000u)] // above the tie: up
    [InlineData(0x3F803000u, 0x3F804000u)] // 1 + 3·2^-11, a tie: away
    [InlineData(0x3FFFF000u, 0x40000000u)] // 2 − 2^-11, a tie: rounds up into the next exponent, to 2
    [InlineData(0x7F7FE000u, 0x7F7FE000u)] // the largest TF32 value
    [InlineData(0x7F7FF000u, 0x7F800000u)] // halfway past it: +∞
    [InlineData(0x7F7FFFFFu, 0x7F800000u)] // float.MaxValue: +∞
    [InlineData(0xFF7FFFFFu, 0xFF800000u)] // float.MinValue: −∞
    [InlineData(0x00000001u, 0x00000000u)] // the smallest subnormal: +0
    [InlineData(0x00000FFFu, 0x00000000u)] // a subnormal below the tie: +0
    [InlineData(0x00001000u, 0x00002000u)] // a subnormal tie: away, to the smallest TF32 subnormal
    [InlineData(0x80001000u, 0x80002000u)] // its negative
    [InlineData(0x80000FFFu, 0x80000000u)] // a negative subnormal to −0
    [InlineData(0x007FF000u, 0x00800000u)] // the largest subnormals round up into the smallest normal
    [InlineData(0x00000000u, 0x00000000u)] // +0
    [InlineData(0x80000000u, 0x80000000u)] // −0
    [InlineData(0x7F800000u, 0x7F800000u)] // +∞
    [InlineData(0xFF800000u, 0xFF800000u)] // −∞
    [InlineData(0x7FC00000u, 0x7FC00000u)] // the quiet NaN
    [InlineData(0x7F800001u, 0x7F800001u)] // a NaN whose payload lies in the cleared bits stays that NaN (not +∞)
    [InlineData(0xFFFFFFFFu, 0xFFFFFFFFu)] // a negative NaN with every payload bit
    public void Round_IsCvtRna_TiesAwayFromZero_At10MantissaBits(uint input, uint expected)
    {
        uint got = Bits(Tf32.Round(F(input)));
        Assert.True(got == expected, $"Round(0x{input:X8}) = 0x{got:X8}, expected 0x{expected:X8}");
    }

    [Fact]
    public void Round_KeepsTenMantissaBits_AndIsWithinHalfAUlp()
    {
        var r = new Random(7);
        for (int i = 0; i < 10_000; i++)
        {
            float x = (float)((r.NextDouble() * 2 - 1) * Math.Pow(2, r.Next(-140, 120)));
            float t = Tf32.Round(x);
            Assert.Equal(0u, Bits(t) & 0x1FFFu);
            Assert.Equal(t, Tf32.Round(t)); // idempotent
            double ulp = Math.Pow(2, Math.Max(-126, Math.Floor(Math.Log2(Math.Abs((double)x)))) - 10);
            Assert.True(Math.Abs((double)t - x) <= ulp / 2, $"Round({x:R}) = {t:R}");
        }
    }

    /// <summary>The layout of the PTX ISA's figures for mma.m16n8k8 with .tf32, written out for two lanes, and each fragment covering its matrix once.</summary>
    [Fact]
    public void FragmentLayout_IsThePtxIsaTable_AndCoversEachMatrixOnce()
    {
        // lane 5: groupID 1, threadID_in_group 1; lane 30: groupID 7, threadID_in_group 2
        Assert.Equal([(1, 1), (9, 1), (1, 5), (9, 5)], Enumerable.Range(0, 4).Select(reg => (Tf32.ARow(5, reg), Tf32.ACol(5, reg))));
        Assert.Equal([(7, 2), (15, 2), (7, 6), (15, 6)], Enumerable.Range(0, 4).Select(reg => (Tf32.ARow(30, reg), Tf32.ACol(30, reg))));
        Assert.Equal([(1, 1), (5, 1)], Enumerable.Range(0, 2).Select(reg => (Tf32.BRow(5, reg), Tf32.BCol(5))));
        Assert.Equal([(2, 7), (6, 7)], Enumerable.Range(0, 2).Select(reg => (Tf32.BRow(30, reg), Tf32.BCol(30))));
        Assert.Equal([(1, 2), (1, 3), (9, 2), (9, 3)], Enumerable.Range(0, 4).Select(reg => (Tf32.CRow(5, reg), Tf32.CCol(5, reg))));
        Assert.Equal([(7, 4), (7, 5), (15, 4), (15, 5)], Enumerable.Range(0, 4).Select(reg => (Tf32.CRow(30, reg), Tf32.CCol(30, reg))));
        var lanes = Enumerable.Range(0, 32).ToArray();
        Assert.Equal(16 * 8, lanes.SelectMany(l => Enumerable.Range(0, 4).Select(reg => (Tf32.ARow(l, reg), Tf32.ACol(l, reg))))
            .Where(p => p.Item1 < 16 && p.Item2 < 8).Distinct().Count());
        Assert.Equal(8 * 8, lanes.SelectMany(l => Enumerable.Range(0, 2).Select(reg => (Tf32.BRow(l, reg), Tf32.BCol(l))))
            .Where(p => p.Item1 < 8 && p.Item2 < 8).Distinct().Count());
        Assert.Equal(16 * 8, lanes.SelectMany(l => Enumerable.Range(0, 4).Select(reg => (Tf32.CRow(l, reg), Tf32.CCol(l, reg))))
            .Where(p => p.Item1 < 16 && p.Item2 < 8).Distinct().Count());
    }

    [Fact]
    public void DefaultPlans_WithTf32_KeepTheGpuBlocks_AndEmulateOnTheCpu()
    {
        int h200 = 132 * 2048;
        Assert.Equal(new Conv2dTilePlan(16, 128, Conv2dTilePlan.Tf32TileK, true), Conv2dTilePlan.For(DeviceKind.Cuda, h200, 1, 16, 256 * 28 * 28, tf32: true));
        Assert.Equal(new Conv2dTilePlan(64, 64, Conv2dTilePlan.Tf32TileK, true), Conv2dTilePlan.For(DeviceKind.Cuda, h200, 1, 64, 64 * 56 * 56, tf32: true));
        Assert.Equal(new Conv2dTilePlan(64, 32, Conv2dTilePlan.Tf32TileK, true), Conv2dTilePlan.For(DeviceKind.Cuda, h200, 1, 512, 8 * 7 * 7, tf32: true));
        Assert.Equal(Conv2dTilePlan.CpuTf32, Conv2dTilePlan.For(DeviceKind.Cpu, 4, 1, 16, 1000, tf32: true));
        // depthwise and one-channel inputs stay on the FP32 direct kernels
        Assert.Equal(Conv2dTilePlan.Direct, Conv2dTilePlan.For(DeviceKind.Cuda, h200, 96, 1, 100_000, tf32: true));
        Assert.Equal(Conv2dTilePlan.Direct, Conv2dTilePlan.For(DeviceKind.Cpu, 4, 96, 1, 100_000, tf32: true));
        // every default TF32 plan fits the kernels' checks on a GPU
        using var dry = Device.CreateDryRun(GpuProfile.H200);
        foreach (int rows in new[] { 8, 16, 24, 64, 512 })
            Conv2dTilePlan.For(DeviceKind.Cuda, h200, 1, rows, 10_000, tf32: true).Validate(dry);
        // the emulation takes any group: 32 lanes on the default device's 2 threads
        Assert.Equal(2, Conv2dTilePlan.CpuTf32.LaunchThreads(fx.Device));
        Assert.Equal(32, Conv2dTilePlan.CpuTf32.LaunchThreads(dry));
    }

    /// <summary>
    /// Each lane's sums run in a fixed order whatever the group: the emulation gives bitwise the same result on groups of 2
    /// threads (warps of 2, 16 passes over the 32 lanes) as on groups of 16 (warps of 4, 2 passes), forward and input gradient.
    /// </summary>
    [Fact]
    public void Emulation_IsBitwiseTheSame_OnEveryGroupAndWarpSize()
    {
        var g = new Conv2dGeometry(2, 6, 7, 9, 20, 3, 2, 1, 2);
        var x = Seeded.Uniform<float>(g.InputLength, 11);
        var w = Seeded.Uniform<float>(g.WeightLength, 12);
        var dy = Seeded.Uniform<float>(g.OutputLength, 13);
        var plan = new Conv2dTilePlan(16, 32, 16, true);
        using var grouped = Device.CreateCpu(threadsPerWarp: 4, warpsPerGroup: 4);
        (float[] Y, float[] DX) Run(Device d)
        {
            using var tx = Tensor.FromArray(d, x, g.InputLength);
            using var tw = Tensor.FromArray(d, w, g.WeightLength);
            using var tdy = Tensor.FromArray(d, dy, g.OutputLength);
            using var ty = Tensor.Empty(d, g.OutputLength);
            using var tdx = Tensor.Empty(d, g.InputLength);
            Ops.Conv2dForward(d, g, plan, tx.View, tw.View, null, ty.View);
            Ops.Conv2dBackwardInput(d, g, plan, tdy.View, tw.View, tdx.View, 0);
            return (ty.ToArray(), tdx.ToArray());
        }
        var (y2, dx2) = Run(fx.Device);
        var (y16, dx16) = Run(grouped);
        Assert.True(Overwrite.BitEqual(y2, y16));
        Assert.True(Overwrite.BitEqual(dx2, dx16));
        // and it is not the FP32 result: the operands were rounded
        var y32 = new float[g.OutputLength];
        Kernels.Reference.Conv2dReference.Forward<float>(g, x, w, [], y32);
        Assert.False(Overwrite.BitEqual(y2, y32));
    }

    [Fact]
    public void DryRun_WithTf32_RecordsTheTf32Kernels_AtTheTf32Peak()
    {
        using var dry = Device.CreateDryRun(GpuProfile.H200);
        dry.Tf32 = true;
        var profile = Training.StepProfile.Run(dry, Models.ModelZoo.Get("resnet18", 224), new Wiring.WiringConfig { Kind = Wiring.WiringKind.Chain }, 64, GpuProfile.H200);
        Assert.True(profile.Tf32);
        var kernels = profile.Trace.Kernels.ToDictionary(k => k.Kernel);
        Assert.Contains("Conv2dForwardTiledTf32", kernels.Keys);
        Assert.Contains("Conv2dBackwardInputTiledTf32", kernels.Keys);
        Assert.DoesNotContain("Conv2dForwardTiled", kernels.Keys);
        Assert.DoesNotContain("Conv2dBackwardInputTiled", kernels.Keys);
        Assert.Contains("Conv2dBackwardWeightTiledTf32", kernels.Keys); // the weight gradient's GEMM too
        Assert.DoesNotContain("Conv2dBackwardWeightTiled", kernels.Keys);
        Assert.DoesNotContain("Conv2dBackwardWeightSplit", kernels.Keys);
        var forward = kernels["Conv2dForwardTiledTf32"];
        Assert.Equal(256, forward.ThreadsPerGroup); // whole warps: 64 × 64 tiles, 8 warps
        Assert.Equal(0, forward.ThreadsPerGroup % 32);
        // each TF32 launch's floor is its FLOPs at the TF32 peak or its bytes at the bandwidth: summed, between the two bounds
        var gpu = GpuProfile.H200;
        foreach (var k in profile.Trace.Kernels.Where(k => k.Kernel.EndsWith("Tf32", StringComparison.Ordinal)))
        {
            Assert.InRange(k.FloorSumUs, k.Flops / gpu.Tf32PeakFlops * 1e6 * (1 - 1e-9), (k.Flops / gpu.Tf32PeakFlops + k.Bytes / gpu.Bandwidth) * 1e6 * (1 + 1e-9));
            Assert.True(k.FloorSumUs < k.Flops / gpu.PeakFlops * 1e6, $"{k.Kernel}: floor {k.FloorSumUs} µs is not below the FP32 compute floor");
        }
        var cost = KernelCosts.Conv2dForwardTiledTf32(new Conv2dGeometry(64, 64, 56, 56, 64, 3, 1, 1, 1), 64, 64, 16, default, default, default, 0, default);
        Assert.True(cost.Tf32);
        Assert.Equal(Math.Max(cost.Flops / 494e12, cost.Bytes / gpu.Bandwidth), gpu.FloorSeconds(cost.Flops, cost.Bytes, tf32: true), 15);
        Assert.Equal(cost.Flops, KernelCosts.Conv2dForwardTiled(new Conv2dGeometry(64, 64, 56, 56, 64, 3, 1, 1, 1), 64, 64, 16, default, default, default, 0, default).Flops);
    }
}

/// <summary>The TF32 verification cases on a CPU accelerator with groups of 16 threads in warps of 4 (2 emulation passes a 16 × 32 block).</summary>
[Collection("cpu-groups")]
public sealed class Tf32TiledTests(GroupedDeviceFixture fx)
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var c in VerificationCases.All.Where(c => c.Tf32)) data.Add(c.Name);
        return data;
    }

    [Theory, MemberData(nameof(Cases))]
    public void VerificationCase_MatchesReference_WithGroupsOf16(string name)
    {
        var c = VerificationCases.All.Single(x => x.Tf32 && x.Name == name);
        var rows = c.Run(fx.Device).ToArray();
        // per plan: forward and input gradient against FP32 and the emulation's double reference, two overwrites, the weight
        // gradient at 1 and 3 splits against both (the last plan also above K); the tape's two
        Assert.Equal(3 * (4 + 2 + 4) + 2 + 2, rows.Length);
        var failed = rows.Where(r => !r.Pass).ToArray();
        Assert.True(failed.Length == 0, string.Join("\n", failed.Select(r => r.ToString())));
    }

    [Fact]
    public void OnlyTheConv2dTf32Cases_AreTf32_AndVerifyLeavesThemOutByDefault()
    {
        int geometries = Conv2dCases.Geometries.Length; // one TF32 case a Conv2d geometry
        Assert.Equal(geometries, VerificationCases.All.Count(c => c.Tf32));
        Assert.All(VerificationCases.All.Where(c => c.Tf32), c => Assert.Equal("Conv2d", c.Family));
        Assert.Equal(VerificationCases.All.Count - geometries, VerificationCases.Matching(null, tf32: false).Count);
        Assert.Equal(VerificationCases.All.Count, VerificationCases.Matching(null, tf32: true).Count);
    }
}
