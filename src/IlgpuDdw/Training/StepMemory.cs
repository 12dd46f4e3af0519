using System.Globalization;
using IlgpuDdw.Models;
using IlgpuDdw.Runtime;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Training;

/// <summary>The estimated peak device memory of one training step.</summary>
/// <param name="Batch">The batch it was estimated for.</param>
/// <param name="PeakBytes">Peak bytes held by tensors during a steady-state step (parameters, gradients, momentum
/// buffers, activations and temporaries).</param>
/// <param name="FixedBytes">The part that does not grow with the batch (parameters, gradients, momentum, ...).</param>
/// <param name="BytesPerSample">What each further sample adds.</param>
public sealed record StepMemoryEstimate(int Batch, long PeakBytes, long FixedBytes, long BytesPerSample)
{
    /// <summary>The largest batch whose estimated peak fits in <paramref name="freeBytes"/> (0 when not even one sample fits).</summary>
    public int LargestBatch(long freeBytes) =>
        freeBytes <= FixedBytes ? 0 : BytesPerSample <= 0 ? int.MaxValue : (int)Math.Min(int.MaxValue, (freeBytes - FixedBytes) / BytesPerSample);
}

/// <summary>
/// Estimates a training step's peak device memory before anything is allocated: the step (zero-grad, forward,
/// cross-entropy, backward, SGD with momentum) runs on a dry-run device (<see cref="Device.CreateDryRun"/>), which
/// executes nothing and holds no memory but accounts every tensor the step would allocate, with the activations the
/// tape keeps, the eager freeing of activations and gradients and the Cuda path's temporaries (split-K partials).
/// Two steps are run (the second is the steady state, with momentum buffers). The CPU accelerator allocates a little
/// less (no split-K partials): the estimate is within a few per cent above its measured peak.
/// </summary>
public static class StepMemory
{
    /// <summary>Estimates the peak of a step of <paramref name="batch"/> samples, and how it grows with the batch.</summary>
    /// <exception cref="ArgumentException">Batch below 1.</exception>
    public static StepMemoryEstimate Estimate(ModelSpec spec, WiringConfig wiring, int batch)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(wiring);
        if (batch < 1) throw new ArgumentException($"Batch must be at least 1; got {batch}.", nameof(batch));
        // The dry run fills a host batch of random images: beyond DirectLimit samples the peak is extrapolated from
        // two smaller batches (it grows linearly with the batch once the batch is large).
        int limit = Math.Max(2, (int)Math.Min(int.MaxValue, DirectLimitBytes / (4L * spec.InputChannels * spec.InputSize * spec.InputSize)));
        // Neither dry run is below 2 samples: a batch of 1 has no variance where a model's last feature map is 1 × 1
        // (resnet18 at 32 × 32), so below 4 samples the two runs are 2 and 4 and the batch is read off the first.
        int high = Math.Min(batch, limit), low = high / 2;
        if (low < 2) (low, high) = (2, Math.Max(high, 4));
        long peakHigh = DryRunPeak(spec, wiring, high), peakLow = DryRunPeak(spec, wiring, low);
        long perSample = Math.Max(0, (peakHigh - peakLow) / (high - low));
        long peak = batch >= high ? peakHigh + (long)(batch - high) * perSample : peakLow + (long)(batch - low) * perSample;
        return new StepMemoryEstimate(batch, peak, Math.Max(0, peak - perSample * batch), perSample);
    }

    /// <summary>Largest host batch (bytes of images) a dry run is given; larger batches are extrapolated.</summary>
    private const long DirectLimitBytes = 64L << 20;

    /// <summary>The peak bytes of a steady-state training step on a dry-run device.</summary>
    public static long DryRunPeak(ModelSpec spec, WiringConfig wiring, int batch)
    {
        using var device = Device.CreateDryRun(GpuProfile.H200);
        using var workload = new TrainingStepWorkload(device, spec, wiring, batch);
        workload.Step(readKeepRate: false, synchronize: false);
        workload.Step(readKeepRate: false, synchronize: false);
        return device.PeakBytes;
    }

    /// <summary>
    /// Memory a training run on <paramref name="device"/> can use: a Cuda device's free memory plus its pooled
    /// buffers; on the CPU accelerator, the host's available memory (Linux <c>MemAvailable</c>, else what the runtime
    /// reports); on a dry run, the modelled GPU's memory.
    /// </summary>
    public static long FreeBytes(Device device)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (device.IsDryRun) return 141L << 30;
        if (device.Accelerator is ILGPU.Runtime.Cuda.CudaAccelerator cuda) return cuda.GetFreeMemory() + device.PooledBytes;
        return HostAvailableBytes() + device.PooledBytes;
    }

    private static long HostAvailableBytes()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
                if (line.StartsWith("MemAvailable:", StringComparison.Ordinal)
                    && long.TryParse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out long kib))
                    return kib * 1024;
        }
        catch (IOException) { /* not Linux, or not readable: fall back */ }
        catch (UnauthorizedAccessException) { }
        return GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
    }

    /// <summary>
    /// Refuses a batch whose estimated step does not fit in the device's free memory, before anything is allocated.
    /// </summary>
    /// <param name="device">The device the run will use.</param>
    /// <param name="spec">The model.</param>
    /// <param name="wiring">The wiring.</param>
    /// <param name="batch">The training batch.</param>
    /// <param name="flag">The option that set the batch, for the message (e.g. <c>--batch</c>).</param>
    /// <returns>The estimate.</returns>
    /// <exception cref="ArgumentException">It does not fit: one line with the estimate, the free memory and the
    /// largest batch that fits.</exception>
    public static StepMemoryEstimate Check(Device device, ModelSpec spec, WiringConfig wiring, int batch, string flag = "--batch")
    {
        var estimate = Estimate(spec, wiring, batch);
        long free = FreeBytes(device);
        if (estimate.PeakBytes <= free) return estimate;
        int largest = estimate.LargestBatch(free);
        string fits = largest >= 1 ? $"the largest batch that fits is about {largest.ToString("N0", CultureInfo.InvariantCulture)}"
            : "not even a batch of 1 fits";
        throw new ArgumentException(
            $"{flag} {batch.ToString(CultureInfo.InvariantCulture)}: a training step of {spec.Name} ({wiring.Kind.ToString().ToLowerInvariant()} wiring, "
            + $"{spec.InputChannels}×{spec.InputSize}×{spec.InputSize}) needs about {Format(estimate.PeakBytes)} of device memory (estimate), "
            + $"but {device} has {Format(free)} free; {fits}.");
    }

    /// <summary>Bytes as MiB or GiB with one decimal.</summary>
    public static string Format(long bytes) => bytes >= 1L << 30
        ? string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 30):N1} GiB")
        : string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 20):F1} MiB");
}
