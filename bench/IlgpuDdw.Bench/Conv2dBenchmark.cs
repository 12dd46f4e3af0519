using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using ILGPU;
using IlgpuDdw.Autograd;
using IlgpuDdw.Kernels;
using IlgpuDdw.Runtime;
using Device = IlgpuDdw.Runtime.Device;

namespace IlgpuDdw.Bench;

/// <summary>
/// 3×3 convolution, 32 → 32 channels, 28×28, padding 1, batch 16: the Conv2d kernels of the device's default rung
/// (<see cref="Conv2dTilePlan.For"/>: the register-blocked kernels on the CPU accelerator, the tiled implicit GEMM on
/// Cuda; the weight gradient's direct rung) launched through <see cref="KernelSet"/> (compiled during setup, synchronised inside each timed call) against a
/// scalar C# loop of the same convolution in the same run (the baseline of each category). Forward, and forward
/// + backward (input and weight gradients). The GFLOP/s column counts 2 flops per multiply-add; the Ratio column is
/// kernel time / scalar time (below 1: the kernels are faster). Device: the DDW_DEVICE environment variable
/// (default cpu). On the CPU accelerator the kernels use every core while the baseline uses one, so other load on
/// the machine slows the kernels more than the baseline.
/// </summary>
[MemoryDiagnoser(false)]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory), CategoriesColumn]
[Config(typeof(Conv2dBenchmarkConfig))]
public class Conv2dBenchmark
{
    internal static readonly Conv2dGeometry Geometry = new(batch: 16, inChannels: 32, height: 28, width: 28,
        outChannels: 32, kernelSize: 3, stride: 1, padding: 1, groups: 1);

    private Device _device = null!;
    private Tensor _x = null!, _w = null!, _b = null!, _y = null!, _dy = null!, _dx = null!, _dw = null!;
    private float[] _hx = null!, _hw = null!, _hb = null!, _hy = null!, _hdy = null!, _hdx = null!, _hdw = null!;

    [GlobalSetup]
    public void Setup()
    {
        var g = Geometry;
        _device = Device.Create(Environment.GetEnvironmentVariable(Device.EnvironmentVariable) ?? "cpu");
        _hx = Random(g.InputLength, 1);
        _hw = Random(g.WeightLength, 2);
        _hb = Random(g.OutChannels, 3);
        _hdy = Random(g.OutputLength, 4);
        _hy = new float[g.OutputLength];
        _hdx = new float[g.InputLength];
        _hdw = new float[g.WeightLength];
        _x = Tensor.FromArray(_device, _hx, g.Batch, g.InChannels, g.Height, g.Width);
        _w = Tensor.FromArray(_device, _hw, g.OutChannels, g.InChannels, g.KernelSize, g.KernelSize);
        _b = Tensor.FromArray(_device, _hb, g.OutChannels);
        _dy = Tensor.FromArray(_device, _hdy, g.Batch, g.OutChannels, g.OutHeight, g.OutWidth);
        _y = Tensor.Empty(_device, g.Batch, g.OutChannels, g.OutHeight, g.OutWidth);
        _dx = Tensor.Zeros(_device, g.Batch, g.InChannels, g.Height, g.Width);
        _dw = Tensor.Zeros(_device, g.OutChannels, g.InChannels, g.KernelSize, g.KernelSize);
        KernelForwardBackward(); // compile every kernel outside the timing
    }

    private static float[] Random(int n, int seed)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(r.NextDouble() * 2 - 1);
        return a;
    }

    [Benchmark(Baseline = true, Description = "scalar C# forward"), BenchmarkCategory("Forward")]
    public void ScalarForward() => ScalarConv.Forward(Geometry, _hx, _hw, _hb, _hy);

    [Benchmark(Description = "Conv2d kernel forward (default rung)"), BenchmarkCategory("Forward")]
    public void KernelForward()
    {
        LaunchForward();
        _device.Synchronize();
    }

    [Benchmark(Baseline = true, Description = "scalar C# forward+backward"), BenchmarkCategory("ForwardBackward")]
    public void ScalarForwardBackward()
    {
        ScalarConv.Forward(Geometry, _hx, _hw, _hb, _hy);
        ScalarConv.Backward(Geometry, _hx, _hw, _hdy, _hdx, _hdw);
    }

    [Benchmark(Description = "Conv2d kernels forward+backward (default rung)"), BenchmarkCategory("ForwardBackward")]
    public void KernelForwardBackward()
    {
        var g = Geometry;
        var d = _device;
        LaunchForward();
        var tiles = Conv2dTilePlan.For(d.Kind, d.MaxThreads, g.Groups, g.InPerGroup, g.Batch * g.Height * g.Width);
        if (tiles.IsTiled)
        {
            var config = new KernelConfig((int)tiles.Blocks(g.Groups, g.InPerGroup, g.Batch * g.Height * g.Width), tiles.Threads);
            d.Kernels.Conv2dBackwardInputTiled(d.Stream, config, g, tiles.TileM, tiles.TileN, tiles.TileK, 1, _dy.View, _w.View, _dx.View);
        }
        else
        {
            int ni = g.BackwardInputItems(g.InChannelBlock), ei = d.Extent(ni);
            d.Kernels.Conv2dBackwardInput(d.Stream, ei, ni, ei, g, g.InChannelBlock, 1, _dy.View, _w.View, _dx.View);
        }
        int nw = g.BackwardWeightItems(g.OutChannelBlock, g.InChannelBlock), ew = d.Extent(nw);
        d.Kernels.Conv2dBackwardWeight(d.Stream, ew, nw, ew, g, g.OutChannelBlock, g.InChannelBlock, _dy.View, _x.View, _dw.View);
        d.Synchronize();
    }

    private void LaunchForward()
    {
        var g = Geometry;
        var d = _device;
        int positions = g.Batch * g.OutHeight * g.OutWidth;
        var tiles = Conv2dTilePlan.For(d.Kind, d.MaxThreads, g.Groups, g.OutPerGroup, positions);
        if (tiles.IsTiled)
        {
            var config = new KernelConfig((int)tiles.Blocks(g.Groups, g.OutPerGroup, positions), tiles.Threads);
            d.Kernels.Conv2dForwardTiled(d.Stream, config, g, tiles.TileM, tiles.TileN, tiles.TileK, _x.View, _w.View, _b.View, 1, _y.View);
            return;
        }
        int n = g.ForwardItems(g.OutChannelBlock), ext = d.Extent(n);
        d.Kernels.Conv2dForward(d.Stream, ext, n, ext, g, g.OutChannelBlock, _x.View, _w.View, _b.View, 1, _y.View);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var t in new[] { _x, _w, _b, _y, _dy, _dx, _dw }) t.Dispose();
        _device.Dispose();
    }
}

/// <summary>The scalar baseline: direct convolution loops over plain arrays (valid kernel taps hoisted per output).</summary>
internal static class ScalarConv
{
    public static void Forward(Conv2dGeometry g, float[] x, float[] w, float[] bias, float[] y)
    {
        int k = g.KernelSize, s = g.Stride, p = g.Padding, h = g.Height, wd = g.Width;
        int cin = g.InChannels, cout = g.OutChannels, ho = g.OutHeight, wo = g.OutWidth;
        for (int b = 0; b < g.Batch; b++)
            for (int co = 0; co < cout; co++)
                for (int oh = 0; oh < ho; oh++)
                {
                    int ih0 = oh * s - p;
                    int khLo = Math.Max(0, -ih0), khHi = Math.Min(k, h - ih0);
                    for (int ow = 0; ow < wo; ow++)
                    {
                        int iw0 = ow * s - p;
                        int kwLo = Math.Max(0, -iw0), kwHi = Math.Min(k, wd - iw0);
                        float acc = bias[co];
                        for (int ci = 0; ci < cin; ci++)
                            for (int kh = khLo; kh < khHi; kh++)
                            {
                                int xr = ((b * cin + ci) * h + ih0 + kh) * wd + iw0;
                                int wr = ((co * cin + ci) * k + kh) * k;
                                for (int kw = kwLo; kw < kwHi; kw++)
                                    acc += w[wr + kw] * x[xr + kw];
                            }
                        y[((b * cout + co) * ho + oh) * wo + ow] = acc;
                    }
                }
    }

    /// <summary>Input and weight gradients in one scatter pass over the output positions (accumulates).</summary>
    public static void Backward(Conv2dGeometry g, float[] x, float[] w, float[] dy, float[] dx, float[] dw)
    {
        int k = g.KernelSize, s = g.Stride, p = g.Padding, h = g.Height, wd = g.Width;
        int cin = g.InChannels, cout = g.OutChannels, ho = g.OutHeight, wo = g.OutWidth;
        for (int b = 0; b < g.Batch; b++)
            for (int co = 0; co < cout; co++)
                for (int oh = 0; oh < ho; oh++)
                {
                    int ih0 = oh * s - p;
                    int khLo = Math.Max(0, -ih0), khHi = Math.Min(k, h - ih0);
                    for (int ow = 0; ow < wo; ow++)
                    {
                        int iw0 = ow * s - p;
                        int kwLo = Math.Max(0, -iw0), kwHi = Math.Min(k, wd - iw0);
                        float gy = dy[((b * cout + co) * ho + oh) * wo + ow];
                        for (int ci = 0; ci < cin; ci++)
                            for (int kh = khLo; kh < khHi; kh++)
                            {
                                int xr = ((b * cin + ci) * h + ih0 + kh) * wd + iw0;
                                int wr = ((co * cin + ci) * k + kh) * k;
                                for (int kw = kwLo; kw < kwHi; kw++)
                                {
                                    dx[xr + kw] += gy * w[wr + kw];
                                    dw[wr + kw] += gy * x[xr + kw];
                                }
                            }
                    }
                }
    }
}

/// <summary>Adds the GFLOP/s column.</summary>
public sealed class Conv2dBenchmarkConfig : ManualConfig
{
    /// <summary>Creates the config.</summary>
    public Conv2dBenchmarkConfig() => AddColumn(new GflopsColumn());
}

/// <summary>GFLOP/s = 2 · multiply-adds / median time (forward: 1× the forward MACs; forward+backward: 3×).</summary>
public sealed class GflopsColumn : IColumn
{
    /// <inheritdoc/>
    public string Id => nameof(GflopsColumn);
    /// <inheritdoc/>
    public string ColumnName => "GFLOP/s";
    /// <inheritdoc/>
    public bool AlwaysShow => true;
    /// <inheritdoc/>
    public ColumnCategory Category => ColumnCategory.Custom;
    /// <inheritdoc/>
    public int PriorityInCategory => 0;
    /// <inheritdoc/>
    public bool IsNumeric => true;
    /// <inheritdoc/>
    public UnitType UnitType => UnitType.Dimensionless;
    /// <inheritdoc/>
    public string Legend => "2·MACs / median time, in 10^9 per second";
    /// <inheritdoc/>
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    /// <inheritdoc/>
    public bool IsAvailable(Summary summary) => true;
    /// <inheritdoc/>
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    /// <inheritdoc/>
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var stats = summary[benchmarkCase]?.ResultStatistics;
        if (stats is null || benchmarkCase.Descriptor.Categories.Length == 0) return "-";
        long passes = benchmarkCase.Descriptor.Categories[0] == "Forward" ? 1 : 3;
        double flops = 2.0 * Conv2dBenchmark.Geometry.Macs * passes;
        return (flops / stats.Median).ToString("F2"); // ns → GFLOP/s
    }
}
