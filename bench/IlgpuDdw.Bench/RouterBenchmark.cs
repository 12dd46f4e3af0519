using BenchmarkDotNet.Attributes;
using IlgpuDdw.Autograd;
using IlgpuDdw.Kernels.Reference;
using IlgpuDdw.Nn;
using IlgpuDdw.Wiring;
using DdwDevice = IlgpuDdw.Runtime.Device;

namespace IlgpuDdw.Bench;

/// <summary>
/// A node's router, <c>a = sigmoid(FC2(ReLU(FC1(GAP(y)))))</c>, forward + backward for a node output
/// y [32, 32, 16, 16] with r = 4 (hidden 8) and out-degree 5: the Router op through a <see cref="Tape"/>
/// (global average pool, two linear layers with fused activations; backward from a fixed upstream gradient
/// dA [32, 5] to y and to every router parameter), synchronised inside each timed call, against the scalar
/// C# reference (<see cref="RouterReference"/>) of the same forward + backward in the same run (the baseline).
/// </summary>
[MemoryDiagnoser(false), Config(typeof(DdwBenchConfig))]
public class RouterBenchmark
{
    private const int Batch = 32, Channels = 32, Side = 16, Spatial = Side * Side, Reduction = 4, OutDegree = 5;

    /// <summary>Device spec (see <see cref="BenchDevices"/>).</summary>
    [ParamsSource(nameof(Devices))]
    public string Device { get; set; } = "cpu";

    /// <summary>Values of <see cref="Device"/>.</summary>
    public static IEnumerable<string> Devices => BenchDevices.FromEnvironment();

    private DdwDevice _device = null!;
    private Tape _tape = null!;
    private Tensor _y = null!;
    private Router _router = null!;
    private float[] _hy = null!, _hdA = null!, _hdY = null!;
    private RouterWeights<float> _hp = null!, _hdp = null!;

    [GlobalSetup]
    public void Setup()
    {
        _device = DdwDevice.Create(Device);
        _tape = new Tape(_device);
        _hy = BenchDevices.Uniform(Batch * Channels * Spatial, 1);
        _hdA = BenchDevices.Uniform(Batch * OutDegree, 2);
        _hdY = new float[_hy.Length];
        _y = Tensor.FromArray(_device, _hy, Batch, Channels, Side, Side);
        _y.RequiresGrad = true;
        _router = new Router(_device, Channels, OutDegree, Reduction, new SeedSequence(3));
        _hp = new RouterWeights<float>(Channels, _router.Hidden, OutDegree, _router.Fc1.Weight.ToArray(), _router.Fc1.Bias!.ToArray(),
            _router.Fc2.Weight.ToArray(), _router.Fc2.Bias!.ToArray());
        _hdp = RouterWeights<float>.Zeros(Channels, _router.Hidden, OutDegree);
        Kernels(); // compile every kernel and fill the buffer pool outside the timing
    }

    [Benchmark(Baseline = true, Description = "scalar C# forward+backward")]
    public void Scalar()
    {
        var r = RouterReference.Forward<float>(_hy, Batch, _hp, Spatial);
        RouterReference.Backward<float>(r, _hdA, Batch, _hp, Spatial, _hdY, _hdp);
    }

    [Benchmark(Description = "Router op forward+backward")]
    public void Kernels()
    {
        var a = _router.Forward(_tape, _y);
        _tape.Backward(a, _hdA);
        _tape.Clear();
        _device.Synchronize();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _tape.Dispose();
        _y.Dispose();
        _router.Dispose();
        _device.Dispose();
    }
}
