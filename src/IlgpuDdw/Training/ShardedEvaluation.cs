using IlgpuDdw.Data;

namespace IlgpuDdw.Training;

/// <summary>
/// Evaluation over several ranks: each rank evaluates its contiguous block of the data and the results are
/// combined as the sums they are means of (loss and accuracy per sample, effective MACs and edge keep per sample,
/// mean adjacency per class, keep rate per sample), so every rank gets the numbers of the whole set; the correct
/// counts are exact, so the accuracy equals one process's.
/// </summary>
internal static class ShardedEvaluation
{
    public static EvalResult Evaluate(DataParallel parallel, ImageDataset data, Func<ImageDataset, EvalResult> evaluate)
    {
        var shard = parallel.Shard(data);
        var r = evaluate(shard);
        double n = shard.Count;
        var packed = new List<double> { n, r.Loss * n, Math.Round(r.Accuracy * n), r.KeepRate * n, double.IsNaN(r.EffectiveMacs) ? 0 : r.EffectiveMacs * n };
        foreach (long c in r.ClassCounts) packed.Add(c);
        foreach (var stage in r.MeanAdjacency)
            if (stage is not null)
                for (int c = 0; c < stage.Length; c++)
                    foreach (var v in stage[c]) packed.Add(v * r.ClassCounts[c]);
        foreach (var stage in r.EdgeKeep)
            if (stage is not null) foreach (var v in stage) packed.Add(v * n);
        var sums = packed.ToArray();
        parallel.Sum(sums);
        var seconds = new double[] { n / Math.Max(r.ImagesPerSecond, 1e-12) };
        parallel.Communicator.AllReduce<double>(seconds, Distributed.ReduceOp.Max);

        double total = sums[0];
        int at = 5;
        var classCounts = new long[r.ClassCounts.Count];
        for (int c = 0; c < classCounts.Length; c++) classCounts[c] = (long)Math.Round(sums[at++]);
        var meanAdjacency = r.MeanAdjacency.Select(stage =>
        {
            if (stage is null) return null;
            var merged = new double[stage.Length][];
            for (int c = 0; c < stage.Length; c++)
            {
                merged[c] = new double[stage[c].Length];
                for (int k = 0; k < merged[c].Length; k++) merged[c][k] = classCounts[c] > 0 ? sums[at++] / classCounts[c] : sums[at++] * 0;
            }
            return merged;
        }).ToArray();
        var edgeKeep = r.EdgeKeep.Select(stage =>
        {
            if (stage is null) return null;
            var merged = new double[stage.Length];
            for (int k = 0; k < merged.Length; k++) merged[k] = sums[at++] / total;
            return merged;
        }).ToArray();
        return new EvalResult(sums[1] / total, sums[2] / total, total / seconds[0], sums[3] / total,
            double.IsNaN(r.EffectiveMacs) ? double.NaN : sums[4] / total, meanAdjacency, edgeKeep, classCounts);
    }
}
