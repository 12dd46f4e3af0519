using BenchmarkDotNet.Attributes;
using IlgpuDdw.Autograd;
using IlgpuDdw.Kernels.Reference;
using DdwDevice = IlgpuDdw.Runtime.Device;

namespace IlgpuDdw.Bench;

/// <summary>
/// Training-mode BatchNorm2d forward + backward at [16, 32, 28, 28] through the op (<see cref="Ops.BatchNorm2d"/>: batch
/// statistics with the running-statistics update, normalize; channel sums, gamma/beta gradients, input gradient),
/// synchronised inside each timed call (dy is uploaded in each), for each reduction rung (<see cref="Rung"/>: the one-thread-per-channel first
/// rung, the chunked partials, the device's default plan), against the scalar C# reference
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

    /// <summary>Reduction rung: per-channel, chunks (the CPU default's shape, 64 chunks a channel) or default (the device's plan).</summary>
    [Params("per-channel", "chunks", "default")]
    public string Rung { get; set; } = "default";

    private DdwDevice _device = null!;
    private Tensor _x = null!, _gamma = null!, _beta = null!, _runningMean = null!, _runningVar = null!;
    private float[] _hx = null!, _hy = null!, _hdy = null!, _hdx = null!, _hGamma = null!, _hBeta = null!, _hdGamma = null!, _hdBeta = null!;
    private float[] _hRunningMean = null!, _hRunningVar = null!, _hMean = null!, _hInvstd = null!;
    private BatchNormPlan? _plan;

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
        _x = Tensor.FromArray(_device, _hx, Batch, Channels, Side, Side);
        _x.RequiresGrad = true;
        _gamma = Tensor.FromArray(_device, _hGamma, Channels);
        _beta = Tensor.FromArray(_device, _hBeta, Channels);
        _gamma.RequiresGrad = _beta.RequiresGrad = true;
        _runningMean = Tensor.FromArray(_device, _hRunningMean, Channels);
        _runningVar = Tensor.FromArray(_device, _hRunningVar, Channels);
        _plan = Rung switch
        {
            "per-channel" => new BatchNormPlan(BatchNormReduction.PerChannel, 1, 1),
            "chunks" => new BatchNormPlan(BatchNormReduction.Chunks, Batch * Spatial / 64, 1),
            _ => null,
        };
        Kernels(); // compile every kernel outside the timing
    }

    [Benchmark(Baseline = true, Description = "scalar C# forward+backward")]
    public void Scalar()
    {
        BatchNormReference.Forward<float>(_hx, Batch, Channels, Spatial, _hGamma, _hBeta, _hRunningMean, _hRunningVar, true, Momentum, Eps,
            _hy, _hMean, _hInvstd);
        BatchNormReference.Backward<float>(_hx, _hdy, Batch, Channels, Spatial, _hMean, _hInvstd, _hGamma, true, _hdx, _hdGamma, _hdBeta);
    }

    [Benchmark(Description = "BatchNorm2d op forward+backward")]
    public void Kernels()
    {
        using var tape = new Tape(_device);
        var y = tape.BatchNorm2d(_x, _gamma, _beta, _runningMean, _runningVar, training: true, Momentum, Eps, _plan);
        tape.Backward(y, _hdy);
        _device.Synchronize();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var t in new[] { _x, _gamma, _beta, _runningMean, _runningVar }) t.Dispose();
        _device.Dispose();
    }
}
