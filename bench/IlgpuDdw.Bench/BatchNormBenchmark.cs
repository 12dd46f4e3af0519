using BenchmarkDotNet.Attributes;
using IlgpuDdw.Kernels.Reference;
using DdwDevice = IlgpuDdw.Runtime.Device;

namespace IlgpuDdw.Bench;

/// <summary>
/// Training-mode BatchNorm2d forward + backward at [16, 32, 28, 28]: the kernels launched in the order the
/// BatchNorm2d op launches them (batch statistics with the running-statistics update, normalize; channel sums,
/// gamma/beta gradients, input gradient), synchronised inside each timed call, against the scalar C# reference
/// (<see cref="BatchNormReference"/>) of the same forward + backward in the same run (the baseline).
/// </summary>
[MemoryDiagnoser(false), Config(typeof(DdwBenchConfig))]
public class BatchNormBenchmark
{
    private const int Batch = 16, Channels = 32, Side = 28, Spatial = Side * Side, N = Batch * Channels * Spatial;
    private const float Momentum = 0.1f, Eps = 1e-5f;

    /// <summary>Device spec (see <see cref="BenchDevices"/>).</summary>
    [ParamsSource(nameof(Devices))]
    public string Device { get; set; } = "cpu";

    /// <summary>Values of <see cref="Device"/>.</summary>
    public static IEnumerable<string> Devices => BenchDevices.FromEnvironment();

    private DdwDevice _device = null!;
    private Tensor _x = null!, _y = null!, _dy = null!, _dx = null!, _gamma = null!, _beta = null!, _dGamma = null!, _dBeta = null!;
    private Tensor _runningMean = null!, _runningVar = null!, _mean = null!, _invstd = null!, _sumDy = null!, _sumDyXhat = null!;
    private float[] _hx = null!, _hy = null!, _hdy = null!, _hdx = null!, _hGamma = null!, _hBeta = null!, _hdGamma = null!, _hdBeta = null!;
    private float[] _hRunningMean = null!, _hRunningVar = null!, _hMean = null!, _hInvstd = null!;

    [GlobalSetup]
    public void Setup()
    {
        _device = DdwDevice.Create(Device);
        _hx = BenchDevices.Uniform(N, 1);
        _hdy = BenchDevices.Uniform(N, 2);
        _hGamma = BenchDevices.Uniform(Channels, 3).Select(v => 1f + 0.5f * v).ToArray();
        _hBeta = BenchDevices.Uniform(Channels, 4);
        _hy = new float[N];
        _hdx = new float[N];
        _hdGamma = new float[Channels];
        _hdBeta = new float[Channels];
        _hRunningMean = new float[Channels];
        _hRunningVar = Enumerable.Repeat(1f, Channels).ToArray();
        _hMean = new float[Channels];
        _hInvstd = new float[Channels];
        int[] shape = [Batch, Channels, Side, Side];
        _x = Tensor.FromArray(_device, _hx, shape);
        _dy = Tensor.FromArray(_device, _hdy, shape);
        _y = Tensor.Empty(_device, shape);
        _dx = Tensor.Zeros(_device, shape);
        _gamma = Tensor.FromArray(_device, _hGamma, Channels);
        _beta = Tensor.FromArray(_device, _hBeta, Channels);
        _runningMean = Tensor.FromArray(_device, _hRunningMean, Channels);
        _runningVar = Tensor.FromArray(_device, _hRunningVar, Channels);
        Tensor ChannelZeros() => Tensor.Zeros(_device, Channels);
        (_dGamma, _dBeta, _mean, _invstd, _sumDy, _sumDyXhat) = (ChannelZeros(), ChannelZeros(), ChannelZeros(), ChannelZeros(), ChannelZeros(), ChannelZeros());
        Kernels(); // compile every kernel outside the timing
    }

    [Benchmark(Baseline = true, Description = "scalar C# forward+backward")]
    public void Scalar()
    {
        BatchNormReference.Forward<float>(_hx, Batch, Channels, Spatial, _hGamma, _hBeta, _hRunningMean, _hRunningVar, true, Momentum, Eps,
            _hy, _hMean, _hInvstd);
        BatchNormReference.Backward<float>(_hx, _hdy, Batch, Channels, Spatial, _hMean, _hInvstd, _hGamma, true, _hdx, _hdGamma, _hdBeta);
    }

    [Benchmark(Description = "BatchNorm2d kernels forward+backward")]
    public void Kernels()
    {
        var d = _device;
        var k = d.Kernels;
        int ce = d.Extent(Channels), e = d.Extent(N);
        k.BatchNormForwardStatistics(d.Stream, ce, Channels, ce, Batch, Spatial, Eps, Momentum, _x.View, _mean.View, _invstd.View,
            _runningMean.View, _runningVar.View);
        k.BatchNormForwardNormalize(d.Stream, e, N, e, Channels, Spatial, _x.View, _mean.View, _invstd.View, _gamma.View, _beta.View, _y.View);
        k.BatchNormBackwardChannelSums(d.Stream, ce, Channels, ce, Batch, Spatial, _x.View, _dy.View, _mean.View, _invstd.View,
            _sumDy.View, _sumDyXhat.View);
        k.Axpy(d.Stream, ce, Channels, ce, 1f, _sumDyXhat.View, _dGamma.View);
        k.Axpy(d.Stream, ce, Channels, ce, 1f, _sumDy.View, _dBeta.View);
        k.BatchNormBackwardInput(d.Stream, e, N, e, Channels, Spatial, 1f / (Batch * Spatial), _x.View, _dy.View, _mean.View, _invstd.View,
            _gamma.View, _sumDy.View, _sumDyXhat.View, _dx.View);
        d.Synchronize();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var t in new[] { _x, _y, _dy, _dx, _gamma, _beta, _dGamma, _dBeta, _runningMean, _runningVar, _mean, _invstd, _sumDy, _sumDyXhat })
            t.Dispose();
        _device.Dispose();
    }
}
