using BenchmarkDotNet.Attributes;
using IlgpuDdw.Runtime;

namespace IlgpuDdw.Bench;

/// <summary>
/// 1M-element ReLU: the grid-stride kernel on the chosen device against a plain C# loop (the baseline) in the
/// same run. Device: the DDW_DEVICE environment variable (default cpu for this suite).
/// </summary>
[MemoryDiagnoser(false)]
public class ReluBenchmark
{
    private const int N = 1 << 20;
    private Device _device = null!;
    private Tensor _x = null!, _y = null!;
    private float[] _hx = null!, _hy = null!;

    [GlobalSetup]
    public void Setup()
    {
        _device = Device.Create(Environment.GetEnvironmentVariable(Device.EnvironmentVariable) ?? "cpu");
        var r = new Random(1);
        _hx = new float[N];
        for (int i = 0; i < N; i++) _hx[i] = (float)(r.NextDouble() * 2 - 1);
        _hy = new float[N];
        _x = Tensor.FromArray(_device, _hx, N);
        _y = Tensor.Empty(_device, N);
        Kernel(); // compile outside the timing
        _device.Synchronize();
    }

    [Benchmark(Baseline = true, Description = "plain C# loop")]
    public void PlainLoop()
    {
        var x = _hx; var y = _hy;
        for (int i = 0; i < x.Length; i++) y[i] = x[i] > 0f ? x[i] : 0f;
    }

    [Benchmark(Description = "ReLU kernel")]
    public void Kernel()
    {
        int ext = _device.Extent(N);
        _device.Kernels.ReluForward(_device.Stream, ext, N, ext, _x.View, _y.View);
        _device.Synchronize();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _x.Dispose(); _y.Dispose(); _device.Dispose();
    }
}
