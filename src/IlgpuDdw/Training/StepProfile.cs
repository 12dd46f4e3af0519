using IlgpuDdw.Models;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Training;

/// <summary>The launch trace of one training step (see <see cref="StepProfile.Run"/>).</summary>
/// <param name="Device">The device, as text.</param>
/// <param name="Model">Model name.</param>
/// <param name="InputSize">Input resolution.</param>
/// <param name="Wiring">Chain, dense or dynamic.</param>
/// <param name="Batch">Batch size.</param>
/// <param name="DryRun">Whether the device only recorded launches (<see cref="Device.CreateDryRun"/>).</param>
/// <param name="Timing">How the launches were timed.</param>
/// <param name="Trace">The step's launches, synchronisations and allocations against the GPU's roofline.</param>
/// <param name="WallUs">Wall time of the step until the device finished, in µs; null on a dry run.</param>
/// <param name="PeakBytes">Peak device bytes held by tensors during the step (parameters included; also on a dry run).</param>
/// <param name="Tf32">Whether the convolutions ran on TF32 (<see cref="Device.Tf32"/>).</param>
public sealed record StepProfileResult(string Device, string Model, int InputSize, WiringKind Wiring, int Batch, bool DryRun, LaunchTiming Timing,
    TraceSummary Trace, double? WallUs, long PeakBytes, bool Tf32 = false);

/// <summary>
/// Traces one training step of <see cref="TrainingStepWorkload"/> (zero-grad, forward, cross-entropy, backward, SGD
/// update, tape clear; no keep-rate read and no final synchronisation) after warm-up steps that compile the
/// kernels, fill the tensor pool and create the momentum buffers (two reach the steady state: the first step creates
/// the parameter gradients that the second keeps alive while it runs, so it can still miss the pool).
/// </summary>
public static class StepProfile
{
    /// <summary>Builds the workload, runs <paramref name="warmup"/> untraced steps, then traces one step.</summary>
    /// <exception cref="ArgumentException">Batch below 1, warm-up below 0, or a timing the device cannot do.</exception>
    public static StepProfileResult Run(Device device, ModelSpec spec, WiringConfig wiring, int batch, GpuProfile gpu, int warmup = 2,
        LaunchTiming timing = LaunchTiming.None, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(gpu);
        if (warmup < 0) throw new ArgumentException($"Warm-up steps must be at least 0; got {warmup}.", nameof(warmup));
        var previousTracer = device.Tracer;
        var previousTiming = device.Timing;
        device.CheckTiming(timing);
        using var workload = new TrainingStepWorkload(device, spec, wiring, batch, seed);
        for (int i = 0; i < warmup; i++) workload.Step(readKeepRate: false, synchronize: false);
        device.Synchronize();
        device.ResetPeak();
        var trace = new LaunchTrace();
        double? wall = null;
        device.Tracer = trace;
        device.Timing = timing;
        try
        {
            long t0 = Stopwatch.GetTimestamp();
            workload.Step(readKeepRate: false, synchronize: false);
            if (!device.IsDryRun)
            {
                device.Accelerator.Synchronize(); // the end of the step, not part of it
                wall = Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
            }
            device.CompleteTimings();
        }
        finally
        {
            device.Tracer = previousTracer;
            device.Timing = previousTiming;
        }
        return new StepProfileResult(device.ToString(), spec.Name, spec.InputSize, wiring.Kind, batch, device.IsDryRun, timing,
            trace.Summarize(gpu), wall, device.PeakBytes, device.Tf32);
    }
}
