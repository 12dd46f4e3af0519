using BenchmarkDotNet.Attributes;
using IlgpuDdw.Kernels.Reference;
using IlgpuDdw.Wiring;
using DdwDevice = IlgpuDdw.Runtime.Device;

namespace IlgpuDdw.Bench;

/// <summary>
/// The adjacency-masked aggregation of one stage (batch 32, 6 nodes, 32 channels, 16×16), forward of every
/// target then its backward to the node outputs and to A (<see cref="AggregationWorkload.Step"/>, the work
/// <c>ddw bench aggregation</c> times), at keep rates 100/75/50/25% of the edges (a seeded random A per rate),
/// against the same masked sums in scalar C# (<see cref="AggregationReference"/>, cut edges skipped) in the
/// same run (the baseline of each keep rate).
/// </summary>
[MemoryDiagnoser(false), Config(typeof(DdwBenchConfig))]
public class AggregationKernelBenchmark
{
    /// <summary>Device spec (see <see cref="BenchDevices"/>).</summary>
    [ParamsSource(nameof(Devices))]
    public string Device { get; set; } = "cpu";

    /// <summary>Values of <see cref="Device"/>.</summary>
    public static IEnumerable<string> Devices => BenchDevices.FromEnvironment();

    /// <summary>Fraction of the B·E edges kept.</summary>
    [Params(1.0, 0.75, 0.5, 0.25)]
    public double KeepRate { get; set; }

    private DdwDevice _device = null!;
    private AggregationWorkload _workload = null!;
    private float[] _adjacency = null!, _dA = null!;
    private float[][] _xs = null!, _dYs = null!;
    private bool[] _cutEdgeRows = null!;

    [GlobalSetup]
    public void Setup()
    {
        _device = DdwDevice.Create(Device);
        _workload = new AggregationWorkload(_device);
        var a = _workload.SetKeepRate(KeepRate);
        _adjacency = new float[a.Length];
        Buffer.BlockCopy(a, 0, _adjacency, 0, a.Length * sizeof(float));
        _dA = new float[a.Length];
        int n = _workload.Nodes, length = _workload.Batch * _workload.SampleSize;
        _xs = Enumerable.Range(0, n).Select(_ => new float[length]).ToArray();
        _dYs = Enumerable.Range(0, n).Select(_ => new float[length]).ToArray();
        _cutEdgeRows = new bool[n]; // kept-only gate: no adjacency gradient on cut edges
        _workload.Step(); // compile every kernel outside the timing
    }

    [Benchmark(Baseline = true, Description = "scalar C# masked sums forward+backward")]
    public void Scalar()
    {
        int n = _workload.Nodes, batch = _workload.Batch;
        var ys = _workload.HostNodeOutputs;
        var dXs = _workload.HostOutputGradients;
        for (int j = 1; j <= n; j++)
            AggregationReference.Forward<float>(_adjacency, ys, batch, n, j, _xs[j - 1]);
        for (int j = n; j >= 1; j--)
        {
            AggregationReference.BackwardSources<float>(_adjacency, dXs[j - 1], batch, n, j, _dYs);
            AggregationReference.BackwardAdjacency<float>(_adjacency, ys, dXs[j - 1], batch, n, j, _cutEdgeRows, _dA);
        }
    }

    [Benchmark(Description = "aggregation kernels forward+backward")]
    public void Kernels() => _workload.Step();

    [GlobalCleanup]
    public void Cleanup()
    {
        _workload.Dispose();
        _device.Dispose();
    }
}
