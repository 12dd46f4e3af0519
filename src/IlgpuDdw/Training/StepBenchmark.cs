using IlgpuDdw.Models;
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
        using var workload = new TrainingStepWorkload(device, spec, wiring, batch, seed);
        for (int i = 0; i < warmup; i++) workload.Step();
        device.ResetPeak();
        var times = new double[repetitions];
        for (int i = 0; i < repetitions; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            workload.Step();
            times[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        }
        long peak = device.PeakBytes;
        var evalTimes = new double[repetitions];
        for (int i = 0; i < repetitions + 1; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            workload.EvalForward();
            if (i > 0) evalTimes[i - 1] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        }
        Array.Sort(times);
        Array.Sort(evalTimes);
        double median = Median(times);
        return new StepBenchmarkRow(wiring.Kind, batch, median, times[^1] - times[0], batch / (median / 1000.0), workload.LastKeepRate, peak, Median(evalTimes));
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

/// <summary>
/// The work <see cref="StepBenchmark"/> times, reusable by other harnesses: a <see cref="DdwNet"/> built from a
/// spec and wiring, one seeded random batch (uniform images in [−1, 1), uniform labels), SGD (lr 0.01, momentum
/// 0.9, weight decay 5e-4) and a tape that frees gradients and activations eagerly. Owns all of it.
/// </summary>
public sealed class TrainingStepWorkload : IDisposable
{
    private readonly Device _device;
    private readonly Tensor _x;
    private readonly IntTensor _labels;
    private readonly Sgd _optimizer;
    private readonly Tape _tape;

    /// <summary>Builds the network (initialised from <paramref name="seed"/>), the batch, the optimizer and the tape.</summary>
    /// <exception cref="ArgumentException">Batch below 1.</exception>
    public TrainingStepWorkload(Device device, ModelSpec spec, WiringConfig wiring, int batch, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(wiring);
        if (batch < 1) throw new ArgumentException($"Batch must be at least 1; got {batch}.", nameof(batch));
        _device = device;
        Batch = batch;
        Net = new DdwNet(device, spec, wiring, seed);
        var rng = new Random(seed);
        int sample = spec.InputChannels * spec.InputSize * spec.InputSize;
        var images = new float[batch * sample];
        for (int i = 0; i < images.Length; i++) images[i] = (float)(rng.NextDouble() * 2 - 1);
        var labelValues = new int[batch];
        for (int i = 0; i < batch; i++) labelValues[i] = rng.Next(spec.NumClasses);
        _x = Tensor.FromArray(device, images, batch, spec.InputChannels, spec.InputSize, spec.InputSize);
        _labels = IntTensor.FromArray(device, labelValues);
        _optimizer = new Sgd(Net.Parameters(), 0.01f, momentum: 0.9f, weightDecay: 5e-4f);
        // the trainer's gradient groups (DataParallelOptions' device default), so a benchmarked step is a training step
        _tape = new Tape(device) { FreeGradsEagerly = true, FreeActivationsEagerly = true, GradientGroupSize = DataParallelOptions.Default.GradientGroupFor(device) };
    }

    public DdwNet Net { get; }

    /// <summary>Samples per step.</summary>
    public int Batch { get; }

    /// <summary>Mean keep rate of the last <see cref="Step()"/> (see <see cref="StepBenchmark.KeepRate"/>; 1 before any step).</summary>
    public double LastKeepRate { get; private set; } = 1;

    /// <summary>
    /// One training step in training mode: zero the gradients, forward, cross-entropy loss, backward, SGD update,
    /// clear the tape, <see cref="Device.Synchronize"/>.
    /// </summary>
    public void Step() => Step(readKeepRate: true, synchronize: true);

    /// <summary>
    /// One training step as <see cref="Step()"/>, optionally without reading the keep rate back to the host
    /// (<see cref="LastKeepRate"/> then keeps its value) and without the final synchronisation: what a launch
    /// trace of the step alone records.
    /// </summary>
    public void Step(bool readKeepRate, bool synchronize)
    {
        Net.Train();
        _optimizer.ZeroGrad();
        var loss = _tape.CrossEntropy(Net.Forward(_tape, _x), _labels);
        if (readKeepRate)
            LastKeepRate = StepBenchmark.KeepRate(Net); // before the backward frees the adjacency
        _tape.Backward(loss);
        _optimizer.Step();
        _tape.Clear();
        if (synchronize)
            _device.Synchronize();
    }

    /// <summary>One no-grad forward pass of the batch in evaluation mode, synchronised.</summary>
    public void EvalForward()
    {
        Net.Eval();
        using (_tape.NoGrad()) Net.Forward(_tape, _x);
        _tape.Clear();
        _device.Synchronize();
    }

    /// <summary>Disposes the tape, optimizer state, batch and network.</summary>
    public void Dispose()
    {
        _tape.Dispose();
        _optimizer.Dispose();
        _labels.Dispose();
        _x.Dispose();
        Net.Dispose();
    }
}
