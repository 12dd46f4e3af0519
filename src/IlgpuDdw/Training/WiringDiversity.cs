using IlgpuDdw.Data;
using IlgpuDdw.Models;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Training;

/// <summary>
/// How much one stage's wiring varies between inputs, over an evaluated set. An edge (i, j), 0 ≤ i &lt; j ≤ n, is kept
/// for a sample when its adjacency entry is &gt; 0; a sample's wiring is the set of its kept edges. Edge arrays are
/// indexed by <see cref="Adjacency.EdgeIndex"/> (i-major: 0→1, 0→2, …, 0→n, 1→2, …).
/// </summary>
/// <param name="Stage">Stage name.</param>
/// <param name="Nodes">Node count n (node n is the stage output).</param>
/// <param name="Samples">Samples counted.</param>
/// <param name="KeepRate">Kept edges over all edges of all samples.</param>
/// <param name="DistinctWirings">Number of different wirings among the samples.</param>
/// <param name="EffectiveWirings">exp(H), H = −Σ_w p_w ln p_w over the wirings' shares p_w: 1 for one wiring, the count
/// when every wiring is equally common.</param>
/// <param name="InputDependentEdges">Fraction of edges kept for at least 5% and at most 95% of the samples.</param>
/// <param name="ClassKeepDeviation">Root of the mean over edges of Σ_c (N_c/N)(p_ce − p_e)²: how far the classes' keep
/// rates p_ce lie from the overall p_e (0 when the wiring does not depend on the class).</param>
/// <param name="ClassKeepDeviationNull">The same with the labels randomly permuted (mean over seeded shuffles): what
/// sampling noise alone gives. A deviation well above it means the wiring depends on the class.</param>
/// <param name="EdgeKeep">Fraction of samples keeping each edge, [E].</param>
/// <param name="ClassEdgeKeep">Per class: the fraction of its samples keeping each edge, [classes][E] (0 for a class without samples).</param>
public sealed record StageDiversity(string Stage, int Nodes, long Samples, double KeepRate, int DistinctWirings, double EffectiveWirings,
    double InputDependentEdges, double ClassKeepDeviation, double ClassKeepDeviationNull, double[] EdgeKeep, double[][] ClassEdgeKeep)
{
    /// <summary>Lowest per-sample keep fraction of an input-dependent edge.</summary>
    public const double InputDependentLow = 0.05;

    /// <summary>Highest per-sample keep fraction of an input-dependent edge.</summary>
    public const double InputDependentHigh = 0.95;
}

/// <summary>Measured wiring diversity of a model over an evaluated set (dense or dynamic wiring).</summary>
/// <param name="Samples">Samples evaluated.</param>
/// <param name="Stages">One row per stage with at least two nodes (a single-node stage has no edges).</param>
/// <param name="EffectiveMacs">Mean MACs per sample under <see cref="DeadNodeRule.InputCut"/> (what dead-node skipping computes).</param>
/// <param name="EffectiveMacsNoPath">Mean MACs per sample under <see cref="DeadNodeRule.NoPathToOutput"/> (the oracle bound).</param>
/// <param name="FullMacs">Mean MACs per sample with every node computed (<see cref="DeadNodeRule.None"/>).</param>
public sealed record WiringDiversity(long Samples, IReadOnlyList<StageDiversity> Stages, double EffectiveMacs, double EffectiveMacsNoPath, double FullMacs);

/// <summary>
/// Collects per-sample adjacencies batch by batch and computes a <see cref="WiringDiversity"/>:
/// <c>var acc = new WiringDiversityAccumulator(spec, kind, r, classes); acc.Add(adjacency, labels); … acc.Result()</c>.
/// </summary>
public sealed class WiringDiversityAccumulator
{
    private readonly ModelSpec _spec;
    private readonly WiringKind _wiring;
    private readonly int _reduction;
    private readonly int _classes;
    private readonly StageTally?[] _stages;
    private readonly List<int> _labels = new();
    private double _macsCut, _macsPath, _macsFull;

    /// <summary>An empty accumulator for a model of <paramref name="spec"/> under <paramref name="wiring"/> (dense or dynamic).</summary>
    /// <exception cref="ArgumentException">Chain wiring, a reduction below 1 or fewer than one class.</exception>
    public WiringDiversityAccumulator(ModelSpec spec, WiringKind wiring, int routerReduction, int classes)
    {
        _spec = spec ?? throw new ArgumentNullException(nameof(spec));
        if (wiring is not (WiringKind.Dense or WiringKind.Dynamic))
            throw new ArgumentException($"Wiring diversity needs dense or dynamic wiring; got {wiring}.", nameof(wiring));
        if (routerReduction < 1) throw new ArgumentException($"Router reduction must be at least 1; got {routerReduction}.", nameof(routerReduction));
        if (classes < 1) throw new ArgumentException($"Classes must be at least 1; got {classes}.", nameof(classes));
        _wiring = wiring;
        _reduction = routerReduction;
        _classes = classes;
        _stages = spec.Stages.Select(s => s.Nodes.Count < 2 ? null : new StageTally(s.Name, s.Nodes.Count)).ToArray();
    }

    /// <summary>Samples added so far.</summary>
    public long Samples => _labels.Count;

    /// <summary>
    /// Adds one batch: per stage its adjacency, row-major [B, n+1, n+1] (entries for single-node stages are ignored and
    /// may be null), and the B labels.
    /// </summary>
    /// <exception cref="ArgumentException">Wrong stage count, a length that does not match B·(n+1)², or a label outside 0..classes−1.</exception>
    public void Add(IReadOnlyList<float[]?> adjacency, ReadOnlySpan<int> labels)
    {
        ArgumentNullException.ThrowIfNull(adjacency);
        if (adjacency.Count != _stages.Length)
            throw new ArgumentException($"Model '{_spec.Name}' has {_stages.Length} stages but {adjacency.Count} adjacencies were given.", nameof(adjacency));
        int batch = labels.Length;
        if (batch == 0) return;
        foreach (int label in labels)
            if (label < 0 || label >= _classes) throw new ArgumentException($"Label {label} is outside 0..{_classes - 1}.", nameof(labels));
        for (int s = 0; s < _stages.Length; s++)
            if (_stages[s] is { } t)
            {
                int m = t.Nodes + 1;
                var a = adjacency[s] ?? throw new ArgumentException($"Stage '{t.Name}' needs an adjacency.", nameof(adjacency));
                if (a.Length != batch * m * m)
                    throw new ArgumentException($"Stage '{t.Name}' needs {batch}×{m}×{m} = {batch * m * m} adjacency entries for {batch} labels, got {a.Length}.", nameof(adjacency));
            }
        for (int s = 0; s < _stages.Length; s++) _stages[s]?.Add(adjacency[s]!, batch);
        _macsCut += batch * CostModel.Effective(_spec, _wiring, adjacency, _reduction, DeadNodeRule.InputCut).TotalMacs;
        _macsPath += batch * CostModel.Effective(_spec, _wiring, adjacency, _reduction, DeadNodeRule.NoPathToOutput).TotalMacs;
        _macsFull += batch * CostModel.Effective(_spec, _wiring, adjacency, _reduction, DeadNodeRule.None).TotalMacs;
        foreach (int label in labels) _labels.Add(label);
    }

    /// <summary>
    /// The diversity of the samples added. The label-shuffle null averages <paramref name="nullShuffles"/> random
    /// permutations of the labels drawn from <paramref name="nullSeed"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">No samples were added.</exception>
    /// <exception cref="ArgumentException"><paramref name="nullShuffles"/> below 1.</exception>
    public WiringDiversity Result(int nullSeed = 0, int nullShuffles = 8)
    {
        if (_labels.Count == 0) throw new InvalidOperationException("No samples were added to the wiring-diversity accumulator.");
        if (nullShuffles < 1) throw new ArgumentException($"Null shuffles must be at least 1; got {nullShuffles}.", nameof(nullShuffles));
        var labels = _labels.ToArray();
        var shuffles = new int[nullShuffles][];
        var rng = new SplitMix64(unchecked((ulong)nullSeed * 0x9E3779B97F4A7C15UL + 1));
        for (int k = 0; k < nullShuffles; k++)
        {
            var p = (int[])labels.Clone();
            for (int i = p.Length - 1; i > 0; i--)
            {
                int j = rng.NextInt(i + 1);
                (p[i], p[j]) = (p[j], p[i]);
            }
            shuffles[k] = p;
        }
        var stages = _stages.Where(t => t is not null).Select(t => t!.Result(labels, shuffles, _classes)).ToArray();
        double n = labels.Length;
        return new WiringDiversity(labels.Length, stages, _macsCut / n, _macsPath / n, _macsFull / n);
    }

    /// <summary>The wirings seen in one stage: each distinct kept-edge set once, and which one every sample had.</summary>
    private sealed class StageTally(string name, int nodes)
    {
        private readonly Dictionary<string, int> _index = new(StringComparer.Ordinal);
        private readonly List<bool[]> _patterns = new();
        private readonly List<long> _counts = new();
        private readonly List<int> _sampleWiring = new();

        public string Name { get; } = name;
        public int Nodes { get; } = nodes;

        public void Add(float[] adjacency, int batch)
        {
            int m = Nodes + 1, edges = Adjacency.EdgeCountOf(Nodes);
            var bits = new bool[edges];
            var key = new char[edges];
            for (int b = 0; b < batch; b++)
            {
                int e = 0;
                for (int i = 0; i < Nodes; i++)
                    for (int j = i + 1; j <= Nodes; j++, e++)
                    {
                        bits[e] = adjacency[b * m * m + i * m + j] > 0;
                        key[e] = bits[e] ? '1' : '0';
                    }
                string k = new(key);
                if (!_index.TryGetValue(k, out int w))
                {
                    w = _patterns.Count;
                    _index.Add(k, w);
                    _patterns.Add((bool[])bits.Clone());
                    _counts.Add(0);
                }
                _counts[w]++;
                _sampleWiring.Add(w);
            }
        }

        public StageDiversity Result(int[] labels, int[][] shuffles, int classes)
        {
            int edges = Adjacency.EdgeCountOf(Nodes);
            double total = _sampleWiring.Count;
            var kept = new long[edges];
            double entropy = 0;
            for (int w = 0; w < _patterns.Count; w++)
            {
                double p = _counts[w] / total;
                entropy -= p * Math.Log(p);
                for (int e = 0; e < edges; e++)
                    if (_patterns[w][e]) kept[e] += _counts[w];
            }
            var edgeKeep = kept.Select(k => k / total).ToArray();
            var classKeep = ClassKeep(labels, classes, out var classCount);
            double deviation = Deviation(classKeep, classCount, edgeKeep);
            double nullDeviation = shuffles.Average(s =>
            {
                var ck = ClassKeep(s, classes, out var cc);
                return Deviation(ck, cc, edgeKeep);
            });
            int dependent = edgeKeep.Count(p => p >= StageDiversity.InputDependentLow && p <= StageDiversity.InputDependentHigh);
            return new StageDiversity(Name, Nodes, _sampleWiring.Count, kept.Sum() / (total * edges), _patterns.Count, Math.Exp(entropy),
                (double)dependent / edges, deviation, nullDeviation, edgeKeep, classKeep);
        }

        /// <summary>Per class, the fraction of its samples keeping each edge; <paramref name="classCount"/> = samples per class.</summary>
        private double[][] ClassKeep(int[] labels, int classes, out long[] classCount)
        {
            int edges = Adjacency.EdgeCountOf(Nodes);
            var keep = new double[classes][];
            for (int c = 0; c < classes; c++) keep[c] = new double[edges];
            classCount = new long[classes];
            for (int b = 0; b < labels.Length; b++)
            {
                int c = labels[b];
                classCount[c]++;
                var pattern = _patterns[_sampleWiring[b]];
                for (int e = 0; e < edges; e++)
                    if (pattern[e]) keep[c][e]++;
            }
            for (int c = 0; c < classes; c++)
                if (classCount[c] > 0)
                    for (int e = 0; e < edges; e++) keep[c][e] /= classCount[c];
            return keep;
        }

        private static double Deviation(double[][] classKeep, long[] classCount, double[] edgeKeep)
        {
            double total = classCount.Sum(), sum = 0;
            for (int c = 0; c < classKeep.Length; c++)
                for (int e = 0; e < edgeKeep.Length; e++)
                {
                    double d = classKeep[c][e] - edgeKeep[e];
                    sum += classCount[c] / total * d * d;
                }
            return Math.Sqrt(sum / edgeKeep.Length);
        }
    }
}
