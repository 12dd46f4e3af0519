using System.Diagnostics;
using IlgpuDdw.Autograd;
using IlgpuDdw.Models;
using IlgpuDdw.Runtime;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Training;

/// <summary>One row of a training-step benchmark.</summary>
/// <param name="Wiring">Chain, dense or dynamic.</param>
/// <param name="Batch">Batch size.</param>
/// <param name="MedianMs">Median wall time of one step (forward, loss, backward, SGD update, synchronised).</param>
/// <param name="SpreadMs">Max − min over the timed steps.</param>
/// <param name="ImagesPerSecond">Batch / median step time.</param>
/// <param name="KeepRate">Fraction of kept edges in the last step (1 for chain).</param>
/// <param name="PeakBytes">Peak device bytes held by tensors during the timed steps (parameters included).</param>
/// <param name="EvalMedianMs">Median wall time of one no-grad evaluation forward pass of the same batch.</param>
public sealed record StepBenchmarkRow(WiringKind Wiring, int Batch, double MedianMs, double SpreadMs, double ImagesPerSecond,
    double KeepRate, long PeakBytes, double EvalMedianMs);

/// <summary>
/// Times whole training steps of a model on random data: warm-up steps (kernel compilation, pool filling) outside
/// the timing, then <c>repetitions</c> steps each ended by <see cref="Device.Synchronize"/>.
/// </summary>
public static class StepBenchmark
{
    /// <summary>Runs the benchmark for one wiring and batch size.</summary>
    /// <exception cref="ArgumentException">Batch or repetitions below 1, or an unknown model.</exception>
    public static StepBenchmarkRow Run(Device device, ModelSpec spec, WiringConfig wiring, int batch, int repetitions = 5, int warmup = 2, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(spec);
        if (batch < 1) throw new ArgumentException($"Batch must be at least 1; got {batch}.", nameof(batch));
        if (repetitions < 1) throw new ArgumentException($"Repetitions must be at least 1; got {repetitions}.", nameof(repetitions));
        using var net = new DdwNet(device, spec, wiring, seed);
        var rng = new Random(seed);
        int sample = spec.InputChannels * spec.InputSize * spec.InputSize;
        var images = new float[batch * sample];
        for (int i = 0; i < images.Length; i++) images[i] = (float)(rng.NextDouble() * 2 - 1);
        var labelValues = new int[batch];
        for (int i = 0; i < batch; i++) labelValues[i] = rng.Next(spec.NumClasses);
        using var x = Tensor.FromArray(device, images, batch, spec.InputChannels, spec.InputSize, spec.InputSize);
        using var labels = IntTensor.FromArray(device, labelValues);
        using var opt = new Sgd(net.Parameters(), 0.01f, momentum: 0.9f, weightDecay: 5e-4f);
        using var tape = new Tape(device) { FreeGradsEagerly = true, FreeActivationsEagerly = true };
        double keep = 1;
        void Step()
        {
            opt.ZeroGrad();
            var loss = tape.CrossEntropy(net.Forward(tape, x), labels);
            keep = KeepRate(net); // before the backward frees the adjacency
            tape.Backward(loss);
            opt.Step();
            tape.Clear();
            device.Synchronize();
        }
        for (int i = 0; i < warmup; i++) Step();
        device.ResetPeak();
        var times = new double[repetitions];
        for (int i = 0; i < repetitions; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            Step();
            times[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        }
        long peak = device.PeakBytes;
        net.Eval();
        var evalTimes = new double[repetitions];
        for (int i = 0; i < repetitions + 1; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            using (tape.NoGrad()) net.Forward(tape, x);
            tape.Clear();
            device.Synchronize();
            if (i > 0) evalTimes[i - 1] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        }
        Array.Sort(times);
        Array.Sort(evalTimes);
        double median = Median(times);
        return new StepBenchmarkRow(wiring.Kind, batch, median, times[^1] - times[0], batch / (median / 1000.0), keep, peak, Median(evalTimes));
    }

    /// <summary>Mean keep rate over the wired stages' last adjacencies (1 when there are none).</summary>
    public static double KeepRate(DdwNet net)
    {
        double sum = 0;
        int count = 0;
        foreach (var s in net.Stages)
            if (s.LastAdjacency is { } a) { sum += a.KeepRate(); count++; }
        return count == 0 ? 1 : sum / count;
    }

    private static double Median(double[] sorted) =>
        sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
}
