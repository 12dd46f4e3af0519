using BenchmarkDotNet.Attributes;
using IlgpuDdw.Models;
using IlgpuDdw.Training;
using IlgpuDdw.Wiring;
using DdwDevice = IlgpuDdw.Runtime.Device;

namespace IlgpuDdw.Bench;

/// <summary>
/// Whole training steps (forward, cross-entropy, backward, SGD with momentum 0.9 and weight decay 5e-4,
/// synchronised; <see cref="TrainingStepWorkload.Step"/>, the step <c>ddw bench</c> times) under chain, dense
/// and dynamic wiring, dense being the baseline (the Ratio column is each wiring's time over dense's for the
/// same model and device). Models: <c>resnet_mini</c> at 28×28, batch 16, and <c>resnet18</c> at 32×32, batch 4.
/// Two warm-up steps (kernel compilation, buffer pool) run in the setup.
/// </summary>
[MemoryDiagnoser(false), Config(typeof(DdwBenchConfig))]
public class TrainingStepBenchmark
{
    private static readonly Dictionary<string, (int InputSize, int Batch)> Shapes = new()
    {
        ["resnet_mini"] = (28, 16),
        ["resnet18"] = (32, 4),
    };

    /// <summary>Device spec (see <see cref="BenchDevices"/>).</summary>
    [ParamsSource(nameof(Devices))]
    public string Device { get; set; } = "cpu";

    /// <summary>Values of <see cref="Device"/>.</summary>
    public static IEnumerable<string> Devices => BenchDevices.FromEnvironment();

    /// <summary>Model name (input size and batch from the table above).</summary>
    [Params("resnet_mini", "resnet18")]
    public string Model { get; set; } = "resnet_mini";

    private DdwDevice _device = null!;
    private TrainingStepWorkload _workload = null!;

    private void Setup(WiringKind kind)
    {
        var (size, batch) = Shapes[Model];
        _device = DdwDevice.Create(Device);
        _workload = new TrainingStepWorkload(_device, ModelZoo.Get(Model, size), new WiringConfig { Kind = kind }, batch);
        _workload.Step();
        _workload.Step();
    }

    [GlobalSetup(Target = nameof(Chain))]
    public void SetupChain() => Setup(WiringKind.Chain);

    [GlobalSetup(Target = nameof(Dense))]
    public void SetupDense() => Setup(WiringKind.Dense);

    [GlobalSetup(Target = nameof(Dynamic))]
    public void SetupDynamic() => Setup(WiringKind.Dynamic);

    [Benchmark(Description = "chain step")]
    public void Chain() => _workload.Step();

    [Benchmark(Baseline = true, Description = "dense step")]
    public void Dense() => _workload.Step();

    [Benchmark(Description = "dynamic step")]
    public void Dynamic() => _workload.Step();

    [GlobalCleanup]
    public void Cleanup()
    {
        _workload.Dispose();
        _device.Dispose();
    }
}
