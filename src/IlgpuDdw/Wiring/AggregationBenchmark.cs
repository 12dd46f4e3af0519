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
    /// repetitions, seed 1, <see cref="DefaultKeepRates"/>, the device's <see cref="AggregationPlan"/>; a given
    /// <paramref name="forward"/>, <paramref name="backward"/> or <paramref name="chunk"/> replaces that part of it).
    /// </summary>
    /// <exception cref="ArgumentException">A size below 1, nodes below 2, a keep rate outside (0, 1], or a plan the device cannot run.</exception>
    public static IReadOnlyList<AggregationBenchmarkRow> Run(Device device, int batch = 32, int nodes = 6, int channels = 32,
        int height = 16, int width = 16, int repetitions = 7, int seed = 1, IReadOnlyList<double>? keepRates = null,
        AggregationForward? forward = null, AggregationBackward? backward = null, int? chunk = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        keepRates ??= DefaultKeepRates;
        if (batch < 1 || channels < 1 || height < 1 || width < 1 || repetitions < 1)
            throw new ArgumentException($"Benchmark sizes must be at least 1: batch {batch}, channels {channels}, {height}×{width}, repetitions {repetitions}.");
        if (nodes < 2) throw new ArgumentException($"A stage needs at least 2 nodes; got {nodes}.", nameof(nodes));
        foreach (var r in keepRates)
            if (!(r > 0 && r <= 1)) throw new ArgumentException($"Keep rate {r} is outside (0, 1].", nameof(keepRates));
        if (keepRates.Count == 0) throw new ArgumentException("No keep rates given.", nameof(keepRates));

        using var workload = new AggregationWorkload(device, batch, nodes, channels, height, width, seed, forward, backward, chunk);
        var rows = new List<AggregationBenchmarkRow>();
        foreach (var rate in keepRates)
        {
            var a = workload.SetKeepRate(rate);
            workload.Step(); // warm-up: compiles the kernels, fills the pool
            var times = new double[repetitions];
            for (int r = 0; r < repetitions; r++)
            {
                long t0 = Stopwatch.GetTimestamp();
                workload.Step();
                times[r] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            }
            Array.Sort(times);
            double median = repetitions % 2 == 1 ? times[repetitions / 2] : (times[repetitions / 2 - 1] + times[repetitions / 2]) / 2;
            double ratio = rows.Count == 0 ? 1 : median / rows[0].MedianMs;
            rows.Add(new AggregationBenchmarkRow(Adjacency.KeepRate(a), median, times[^1] - times[0], ratio, BytesPerSample(a, workload.SampleSize)));
        }
        return rows;
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

/// <summary>
/// The work <see cref="AggregationBenchmark"/> times, reusable by other harnesses: one stage's node outputs
/// y_0..y_{n−1} and upstream gradients dX_1..dX_n (seeded uniform values in [−1, 1), on the device and as host
/// copies), an adjacency set per keep rate by <see cref="SetKeepRate"/>, and <see cref="Step"/>: the forward of
/// every target 1..n, then its backward to the node outputs and to A, targets in reverse order (as the tape runs
/// them), ended by <see cref="Device.Synchronize"/>, with the device's <see cref="AggregationPlan"/> or the kernels and
/// chunk length given to the constructor. Owns its tensors.
/// </summary>
public sealed class AggregationWorkload : IDisposable
{
    private readonly Device _device;
    private readonly Tensor[] _ys, _dXs, _xs, _dYs;
    private readonly Adjacency _adjacency;
    private readonly Tensor _dA;
    private readonly int _seed;
    private readonly Func<AggregationPlan, AggregationPlan> _plan;

    /// <summary>
    /// Allocates and fills the tensors (node outputs first, then the upstream gradients, from one seeded generator);
    /// <paramref name="forward"/>, <paramref name="backward"/> and <paramref name="chunk"/>, when given, replace those parts
    /// of the device's plan in <see cref="Step"/>.
    /// </summary>
    /// <exception cref="ArgumentException">A size below 1, nodes below 2, or a chunk below 1.</exception>
    public AggregationWorkload(Device device, int batch = 32, int nodes = 6, int channels = 32, int height = 16, int width = 16, int seed = 1,
        AggregationForward? forward = null, AggregationBackward? backward = null, int? chunk = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (batch < 1 || channels < 1 || height < 1 || width < 1)
            throw new ArgumentException($"Aggregation workload sizes must be at least 1: batch {batch}, channels {channels}, {height}×{width}.");
        if (nodes < 2) throw new ArgumentException($"A stage needs at least 2 nodes; got {nodes}.", nameof(nodes));
        if (chunk < 1) throw new ArgumentException($"The chunk length must be at least 1; got {chunk}.", nameof(chunk));
        _device = device;
        _plan = p => p with { Forward = forward ?? p.Forward, Backward = backward ?? p.Backward, Chunk = chunk ?? p.Chunk };
        _seed = seed;
        SampleSize = channels * height * width;
        var shape = new[] { batch, channels, height, width };
        var rng = new Random(seed);
        float[] Random() => Enumerable.Range(0, batch * SampleSize).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        HostNodeOutputs = Enumerable.Range(0, nodes).Select(_ => Random()).ToArray();
        HostOutputGradients = Enumerable.Range(0, nodes).Select(_ => Random()).ToArray();
        _ys = HostNodeOutputs.Select(h => Tensor.FromArray(device, h, shape)).ToArray();
        _dXs = HostOutputGradients.Select(h => Tensor.FromArray(device, h, shape)).ToArray();
        _xs = Enumerable.Range(0, nodes).Select(_ => Tensor.Empty(device, shape)).ToArray();
        _dYs = Enumerable.Range(0, nodes).Select(_ => Tensor.Zeros(device, shape)).ToArray();
        _adjacency = new Adjacency(device, nodes, batch);
        _dA = Tensor.Zeros(device, batch, nodes + 1, nodes + 1);
    }

    /// <summary>Samples B.</summary>
    public int Batch => _adjacency.Batch;

    /// <summary>Nodes n (the output node has index n).</summary>
    public int Nodes => _adjacency.Nodes;

    /// <summary>Elements per sample of one node output (C·H·W).</summary>
    public int SampleSize { get; }

    /// <summary>Host copies of the node outputs y_0..y_{n−1}, each <c>[B·C·H·W]</c>.</summary>
    public IReadOnlyList<float[]> HostNodeOutputs { get; }

    /// <summary>Host copies of the upstream gradients dX_1..dX_n (index j − 1 for target j), each <c>[B·C·H·W]</c>.</summary>
    public IReadOnlyList<float[]> HostOutputGradients { get; }

    /// <summary>
    /// Writes <see cref="AggregationBenchmark.RandomAdjacency"/> at <paramref name="rate"/> (seeded by this
    /// workload's seed) and returns it as <c>[b, i, j]</c>.
    /// </summary>
    /// <exception cref="ArgumentException">A keep rate outside (0, 1].</exception>
    public float[,,] SetKeepRate(double rate)
    {
        if (!(rate > 0 && rate <= 1)) throw new ArgumentException($"Keep rate {rate} is outside (0, 1].", nameof(rate));
        var a = AggregationBenchmark.RandomAdjacency(Batch, Nodes, rate, _seed);
        _adjacency.Write(a);
        return a;
    }

    /// <summary>One forward + backward of every aggregation of the stage, synchronised (gradients accumulate).</summary>
    /// <exception cref="ArgumentException">The plan cannot run on the device.</exception>
    public void Step() => AggregationLaunch.WithPlan(_plan, () =>
    {
        int n = Nodes;
        for (int j = 1; j <= n; j++)
            AggregationLaunch.Forward(_adjacency, j, _ys[..j], _xs[j - 1]);
        for (int j = n; j >= 1; j--)
            AggregationLaunch.Backward(_adjacency, j, _ys[..j], _dXs[j - 1], _dYs[..j], null, _dA);
        _device.Synchronize();
        return 0;
    });

    /// <summary>Disposes every tensor.</summary>
    public void Dispose()
    {
        foreach (var t in _ys.Concat(_dXs).Concat(_xs).Concat(_dYs)) t.Dispose();
        _adjacency.Dispose();
        _dA.Dispose();
    }
}
