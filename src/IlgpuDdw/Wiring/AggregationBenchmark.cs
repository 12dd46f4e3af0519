using System.Diagnostics;
using IlgpuDdw.Runtime;

namespace IlgpuDdw.Wiring;

/// <summary>One keep rate of <see cref="AggregationBenchmark.Run"/>.</summary>
/// <param name="KeepRate">Fraction of the B·E edges kept.</param>
/// <param name="MedianMs">Median wall time of one forward+backward of every aggregation of the stage, ms.</param>
/// <param name="SpreadMs">Max − min of the repetitions, ms.</param>
/// <param name="RatioToFirst">MedianMs over the first row's (100% keep rate by default).</param>
/// <param name="BytesPerSample">Ideal device traffic per sample of one forward+backward (see <see cref="AggregationBenchmark"/>).</param>
public sealed record AggregationBenchmarkRow(double KeepRate, double MedianMs, double SpreadMs, double RatioToFirst, double BytesPerSample);

/// <summary>
/// Times the adjacency-masked aggregation of one stage (forward of every target 1..n, then its backward to
/// the node outputs and to A, targets in reverse order, as the tape runs them) at several keep rates. For
/// each rate a seeded random A keeps exactly round(rate · B · E) of the B · E edges (kept weights in
/// (0.5, 1)); kernels are compiled in a warm-up run outside the timing, and every timed repetition ends with
/// <see cref="Device.Synchronize"/>. Bytes per sample count each kept edge as five sample vectors (read y_i;
/// read and write dY_i; read y_i and dX_j for dA) and each target as one (write x_j) plus one (read dX_j)
/// when any of its in-edges is kept, 4 bytes per float; caches may serve some of it.
/// </summary>
public static class AggregationBenchmark
{
    /// <summary>The keep rates of <c>ddw bench aggregation</c>: 100%, 75%, 50%, 25%.</summary>
    public static IReadOnlyList<double> DefaultKeepRates { get; } = [1.0, 0.75, 0.5, 0.25];

    /// <summary>
    /// Runs the benchmark on <paramref name="device"/> (defaults: batch 32, 6 nodes, 32 channels, 16×16, 7
    /// repetitions, seed 1, <see cref="DefaultKeepRates"/>).
    /// </summary>
    /// <exception cref="ArgumentException">A size below 1, nodes below 2, or a keep rate outside (0, 1].</exception>
    public static IReadOnlyList<AggregationBenchmarkRow> Run(Device device, int batch = 32, int nodes = 6, int channels = 32,
        int height = 16, int width = 16, int repetitions = 7, int seed = 1, IReadOnlyList<double>? keepRates = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        keepRates ??= DefaultKeepRates;
        if (batch < 1 || channels < 1 || height < 1 || width < 1 || repetitions < 1)
            throw new ArgumentException($"Benchmark sizes must be at least 1: batch {batch}, channels {channels}, {height}×{width}, repetitions {repetitions}.");
        if (nodes < 2) throw new ArgumentException($"A stage needs at least 2 nodes; got {nodes}.", nameof(nodes));
        foreach (var r in keepRates)
            if (!(r > 0 && r <= 1)) throw new ArgumentException($"Keep rate {r} is outside (0, 1].", nameof(keepRates));
        if (keepRates.Count == 0) throw new ArgumentException("No keep rates given.", nameof(keepRates));

        int sample = channels * height * width;
        var shape = new[] { batch, channels, height, width };
        var rng = new Random(seed);
        Tensor Random() => Tensor.FromArray(device, Enumerable.Range(0, batch * sample).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray(), shape);
        var ys = Enumerable.Range(0, nodes).Select(_ => Random()).ToArray();
        var dXs = Enumerable.Range(0, nodes).Select(_ => Random()).ToArray();
        var xs = Enumerable.Range(0, nodes).Select(_ => Tensor.Empty(device, shape)).ToArray();
        var dYs = Enumerable.Range(0, nodes).Select(_ => (Tensor?)Tensor.Zeros(device, shape)).ToArray();
        using var adjacency = new Adjacency(device, nodes, batch);
        using var dA = Tensor.Zeros(device, batch, nodes + 1, nodes + 1);
        try
        {
            void Step()
            {
                for (int j = 1; j <= nodes; j++)
                    AggregationLaunch.Forward(adjacency, j, ys[..j], xs[j - 1]);
                for (int j = nodes; j >= 1; j--)
                {
                    AggregationLaunch.BackwardSources(adjacency, j, ys[..j], dXs[j - 1], dYs[..j]);
                    AggregationLaunch.BackwardAdjacency(adjacency, j, ys[..j], dXs[j - 1], dA);
                }
                device.Synchronize();
            }

            var rows = new List<AggregationBenchmarkRow>();
            foreach (var rate in keepRates)
            {
                var a = RandomAdjacency(batch, nodes, rate, seed);
                adjacency.Write(a);
                Step(); // warm-up: compiles the kernels, fills the pool
                var times = new double[repetitions];
                for (int r = 0; r < repetitions; r++)
                {
                    long t0 = Stopwatch.GetTimestamp();
                    Step();
                    times[r] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                }
                Array.Sort(times);
                double median = repetitions % 2 == 1 ? times[repetitions / 2] : (times[repetitions / 2 - 1] + times[repetitions / 2]) / 2;
                double ratio = rows.Count == 0 ? 1 : median / rows[0].MedianMs;
                rows.Add(new AggregationBenchmarkRow(Adjacency.KeepRate(a), median, times[^1] - times[0], ratio, BytesPerSample(a, sample)));
            }
            return rows;
        }
        finally
        {
            foreach (var t in ys.Concat(dXs).Concat(xs).Concat(dYs!)) t!.Dispose();
        }
    }

    /// <summary>
    /// A <c>[batch, n+1, n+1]</c> adjacency keeping exactly round(rate · batch · E) edges chosen by a seeded
    /// shuffle of all batch · E edges; kept weights uniform in (0.5, 1).
    /// </summary>
    public static float[,,] RandomAdjacency(int batch, int nodes, double rate, int seed)
    {
        int edges = Adjacency.EdgeCountOf(nodes);
        var all = new List<(int B, int I, int J)>();
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < nodes; i++)
                for (int j = i + 1; j <= nodes; j++)
                    all.Add((b, i, j));
        var rng = new Random(seed);
        var order = all.OrderBy(_ => rng.Next()).ToArray();
        int kept = (int)Math.Round(rate * batch * edges);
        var a = new float[batch, nodes + 1, nodes + 1];
        for (int k = 0; k < kept; k++)
            a[order[k].B, order[k].I, order[k].J] = 0.5f + 0.5f * (float)(1 - rng.NextDouble());
        return a;
    }

    /// <summary>Ideal traffic per sample of one forward+backward under adjacency <paramref name="a"/> (see the class summary).</summary>
    public static double BytesPerSample(float[,,] a, int sampleSize)
    {
        int batch = a.GetLength(0), size = a.GetLength(1);
        long vectors = 0;
        for (int b = 0; b < batch; b++)
            for (int j = 1; j < size; j++)
            {
                int kept = 0;
                for (int i = 0; i < j; i++) if (a[b, i, j] != 0f) kept++;
                vectors += 1 + (kept > 0 ? 1 : 0) + 5L * kept;
            }
        return (double)vectors * sampleSize * sizeof(float) / batch;
    }
}
