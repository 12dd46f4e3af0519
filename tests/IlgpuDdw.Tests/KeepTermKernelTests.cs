using ILGPU;
using ILGPU.Runtime;
using IlgpuDdw.Kernels;
using IlgpuDdw.Training;
using IlgpuDdw.Verification;
using MathNet.Numerics;
using Beta = MathNet.Numerics.Distributions.Beta;
using Device = IlgpuDdw.Runtime.Device;

namespace IlgpuDdw.Tests;

/// <summary>The keep-term kernels on the default CPU accelerator (groups of 1 and its widest).</summary>
[Collection("cpu")]
public sealed class KeepTermKernelTests(DeviceFixture fx)
{
    [Fact]
    public void TheLiveMaskCuts_TheDeadNodesOutEdges()
    {
        // node 1 of 2 dead for sample 0 (its one in-edge cut), live for sample 1: its out-edge's gradient is 0 for sample 0 only
        var d = fx.Device;
        float[] adjacency = [0, 0, 0.5f, 0, 0, 0.7f, 0, 0, 0, /* sample 1 */ 0, 0.3f, 0.5f, 0, 0, 0.7f, 0, 0, 0];
        float[] packed = [0.2f, 0.9f, 0.4f, 0.6f, /* row 1 */ 0.8f, 0.7f];
        using var x = Tensor.FromArray(d, packed, packed.Length);
        using var a = Tensor.FromArray(d, adjacency, adjacency.Length);
        using var terms = Tensor.Empty(d, 1);
        using var local = Tensor.Empty(d, packed.Length);
        d.Kernels.KeepRate(d.Stream, new KernelConfig(1, 1), 2, 2, 0.5f, 4f, 0.4f, 1f, 1f, 0, x.View, a.View, terms.View, local.View);
        var g = local.ToArray();
        Assert.Equal(0f, g[4]);
        Assert.NotEqual(0f, g[5]);
        Assert.All(g.Take(4), v => Assert.NotEqual(0f, v));
        var state = new StageKeepState(2, 2, adjacency, [[0.2, 0.9, 0.4, 0.6], [0.8, 0.7]], 0.5, 4);
        double keep = state.KeepRate();
        Assert.Equal((keep - 0.4) * (keep - 0.4), terms.ToArray()[0], 6);
    }

    [Fact]
    public void BetaCdf_MatchesMathNet_AcrossTheUnitInterval()
    {
        foreach (var (a, b) in new[] { (0.6, 0.4), (0.5, 0.5), (2.0, 5.0), (1.0, 1.0) })
        {
            float lnB = (float)SpecialFunctions.BetaLn(a, b);
            for (double z = -12; z <= 12; z += 0.25)
            {
                float zf = (float)z;
                double p = 1 / (1 + Math.Exp(-zf)), q = 1 / (1 + Math.Exp(zf));
                float f = KeepTermKernels.BetaCdf((float)p, (float)q, (float)Math.Log(p), (float)Math.Log(q), (float)a, (float)b, lnB);
                Assert.True(Math.Abs(f - Beta.CDF(a, b, p)) < 2e-6, $"Beta({a}, {b}) CDF at p = {p}: {f} vs {Beta.CDF(a, b, p)}");
            }
        }
    }
}

/// <summary>The keep-term verification cases on a CPU accelerator whose groups hold 16 threads (1, 3 and 16 a group).</summary>
[Collection("cpu-groups")]
public sealed class KeepTermKernelGroupTests(GroupedDeviceFixture fx)
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var c in VerificationCases.All.Where(c => c.Name.StartsWith("keep terms", StringComparison.Ordinal)))
            data.Add(c.Name);
        return data;
    }

    [Theory, MemberData(nameof(Cases))]
    public void VerificationCase_MatchesReference_WithGroupsOf16(string name)
    {
        Assert.Equal([1, 3, 16], KeepTermCases.Threads(fx.Device));
        var rows = VerificationCases.All.Single(c => c.Name == name).Run(fx.Device).ToArray();
        Assert.Equal(3 * 5, rows.Length);
        var failed = rows.Where(r => !r.Pass).ToArray();
        Assert.True(failed.Length == 0, string.Join("\n", failed.Select(r => r.ToString())));
    }
}
