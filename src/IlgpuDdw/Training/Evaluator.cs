using IlgpuDdw.Data;
using IlgpuDdw.Models;
using IlgpuDdw.Nn;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Training;

/// <summary>Evaluation of a model on a dataset.</summary>
public static class Evaluator
{
    /// <summary>
    /// See <see cref="Trainer.Evaluate"/>. Keep rate, effective MACs and adjacency need a <see cref="DdwNet"/>; for
    /// another model they are 1, NaN and empty.
    /// </summary>
    public static EvalResult Evaluate(Module model, ImageDataset data, int batchSize = 256, float labelSmoothing = 0f)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        if (batchSize < 1) throw new ArgumentException($"Batch size must be at least 1; got {batchSize}.", nameof(batchSize));
        var device = model.Device;
        bool wasTraining = model.Training;
        model.Eval();
        using var loader = new BatchLoader(data, new BatchLoaderOptions { BatchSize = batchSize, Shuffle = false });
        using var tape = new Tape(device);
        var net = model as DdwNet;
        int stages = net?.Stages.Count ?? 0;
        var classMean = new double[stages][][];
        var classCount = new long[data.ClassCount];
        var edgeKeep = new double[stages][];
        for (int s = 0; s < stages; s++)
        {
            int m = net!.Stages[s].Nodes.Count + 1;
            bool wired = net.Stages[s].Kind != WiringKind.Chain;
            classMean[s] = wired ? Enumerable.Range(0, data.ClassCount).Select(_ => new double[m * m]).ToArray() : null!;
            edgeKeep[s] = wired ? new double[m * m] : null!;
        }
        var diversity = net is not null && net.Wiring.Kind != WiringKind.Chain
            ? new WiringDiversityAccumulator(net.Spec, net.Wiring.Kind, net.Wiring.Reduction, data.ClassCount) : null;
        double lossSum = 0, macsSum = 0, keepSum = 0;
        long correct = 0, seen = 0, keepBatches = 0;
        double seconds = 0;
        foreach (var batch in loader.Epoch(0))
        {
            long t0 = Stopwatch.GetTimestamp();
            float lossValue;
            int batchCorrect;
            var adjacency = new float[]?[stages];
            using (tape.NoGrad())
            {
                var x = tape.Own(Tensor.FromArray(device, batch.Images, batch.Shape));
                using var labels = IntTensor.FromArray(device, batch.Labels);
                var logits = model.Forward(tape, x);
                batchCorrect = Ops.CountCorrect(logits, labels);
                lossValue = tape.CrossEntropy(logits, labels, labelSmoothing).ToArray()[0];
                for (int s = 0; s < stages; s++)
                    adjacency[s] = net!.Stages[s].LastAdjacency?.Tensor.ToArray();
            }
            tape.Clear();
            seconds += Stopwatch.GetElapsedTime(t0).TotalSeconds;
            correct += batchCorrect;
            lossSum += (double)lossValue * batch.Count;
            seen += batch.Count;
            foreach (int label in batch.Labels) classCount[label]++;
            if (net is null) continue;
            diversity?.Add(adjacency, batch.Labels);
            var rule = net.Stages.All(s => s.SkipDeadNodes) ? DeadNodeRule.InputCut : DeadNodeRule.None;
            var cost = CostModel.Effective(net.Spec, net.Wiring.Kind, net.Wiring.Kind == WiringKind.Chain ? null : adjacency, net.Wiring.Reduction, rule);
            macsSum += cost.TotalMacs * batch.Count;
            for (int s = 0; s < stages; s++)
            {
                if (adjacency[s] is not { } a) continue;
                int m = net.Stages[s].Nodes.Count + 1;
                keepSum += cost.Stages[s].EdgeKeepRate;
                keepBatches++;
                for (int b = 0; b < batch.Count; b++)
                {
                    var dst = classMean[s][batch.Labels[b]];
                    for (int k = 0; k < m * m; k++)
                    {
                        float v = a[b * m * m + k];
                        dst[k] += v;
                        if (v > 0) edgeKeep[s][k]++;
                    }
                }
            }
        }
        for (int s = 0; s < stages; s++)
            if (classMean[s] is { } perClass)
                for (int c = 0; c < perClass.Length; c++)
                    if (classCount[c] > 0) for (int k = 0; k < perClass[c].Length; k++) perClass[c][k] /= classCount[c];
        foreach (var e in edgeKeep)
            if (e is not null) for (int k = 0; k < e.Length; k++) e[k] /= seen;
        model.Train(wasTraining);
        return new EvalResult(lossSum / seen, (double)correct / seen, seen / Math.Max(seconds, 1e-9),
            keepBatches == 0 ? 1 : keepSum / keepBatches, net is null ? double.NaN : macsSum / seen, classMean.Select(c => (double[][]?)c).ToArray(),
            edgeKeep.Select(e => (double[]?)e).ToArray(), classCount)
        {
            Diversity = diversity is { Samples: > 0 } ? diversity.Result() : null,
        };
    }

    /// <summary>Images of the warm-up evaluation before each timed one in <see cref="MeasureSkipSpeedup"/>.</summary>
    public const int WarmupImages = 8;

    /// <summary>
    /// Evaluates <paramref name="model"/> with dead-node skipping off, then on (each after a warm-up on the first
    /// <see cref="WarmupImages"/> images, so kernel compilation stays out of the timing), and restores
    /// its setting: the two results and the measured speed-up (only dynamic wiring skips nodes).
    /// </summary>
    public static SkipComparison MeasureSkipSpeedup(DdwNet model, ImageDataset data, int batchSize = 256, float labelSmoothing = 0f)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        bool skipping = model.Stages.All(s => s.SkipDeadNodes);
        var warm = data.Subset(Math.Min(data.Count, Math.Min(batchSize, WarmupImages)));
        try
        {
            model.SetSkipDeadNodes(false);
            Evaluate(model, warm, batchSize, labelSmoothing);
            var full = Evaluate(model, data, batchSize, labelSmoothing);
            model.SetSkipDeadNodes(true);
            Evaluate(model, warm, batchSize, labelSmoothing);
            var skip = Evaluate(model, data, batchSize, labelSmoothing);
            return new SkipComparison(skip, full);
        }
        finally
        {
            model.SetSkipDeadNodes(skipping);
        }
    }
}

/// <summary>One evaluation with dead-node skipping and one without, in the same run (<see cref="Evaluator.MeasureSkipSpeedup"/>).</summary>
/// <param name="Skipping">With dead nodes skipped.</param>
/// <param name="Full">With every node computed.</param>
public sealed record SkipComparison(EvalResult Skipping, EvalResult Full)
{
    /// <summary>Evaluation throughput with skipping over throughput without.</summary>
    public double Speedup => Skipping.ImagesPerSecond / Full.ImagesPerSecond;
}
