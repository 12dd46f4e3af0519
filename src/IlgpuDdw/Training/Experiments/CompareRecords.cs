using IlgpuDdw.Models;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Training.Experiments;

/// <summary>One planned run of a comparison.</summary>
/// <param name="Wiring">The wiring it trains.</param>
/// <param name="Seed">Model and data-order seed.</param>
/// <param name="SeedIndex">0 for the first seed of its wiring, 1 for the next, ...</param>
/// <param name="Label">Name for tables and curves: the wiring, with the seed when there are several.</param>
public sealed record CompareRun(WiringConfig Wiring, int Seed, int SeedIndex, string Label);

/// <summary>One trained run: the numbers results.json holds.</summary>
/// <param name="Wiring">Chain, dense or dynamic.</param>
/// <param name="Seed">Model and data-order seed.</param>
/// <param name="Params">Parameters.</param>
/// <param name="Macs">Static MACs per sample.</param>
/// <param name="EffectiveMacs">MACs per test sample actually computed (last evaluation).</param>
/// <param name="RouterMacs">Router MACs per sample (static).</param>
/// <param name="KeepRate">Fraction of kept edges at the last evaluation.</param>
/// <param name="TestAccuracy">Test accuracy at the last evaluation.</param>
/// <param name="TestLoss">Test loss at the last evaluation.</param>
/// <param name="TrainImagesPerSecond">Training throughput, mean over the epochs.</param>
/// <param name="EvalImagesPerSecond">Throughput of the last evaluation.</param>
/// <param name="PeakBytes">Peak device bytes of training, maximum over the epochs.</param>
/// <param name="Seconds">Wall time of the run (model build, training, evaluations).</param>
/// <param name="Epochs">Every epoch's numbers.</param>
public sealed record RunRecord(
    [property: JsonConverter(typeof(LowerCaseEnumConverter<WiringKind>))] WiringKind Wiring,
    int Seed, long Params, long Macs, double EffectiveMacs, long RouterMacs, double KeepRate, double TestAccuracy, double TestLoss,
    double TrainImagesPerSecond, double EvalImagesPerSecond, long PeakBytes, double Seconds, IReadOnlyList<EpochResult> Epochs)
{
    /// <summary>Measured wiring diversity at the last evaluation (dense and dynamic), else null.</summary>
    public WiringDiversity? Diversity { get; init; }

    /// <summary>Evaluation throughput with dead-node skipping over without, measured after training (dynamic), else null.</summary>
    public double? SkipSpeedup { get; init; }
}

/// <summary>Mean (and spread) of the runs of one wiring.</summary>
/// <param name="Wiring">Chain, dense or dynamic.</param>
/// <param name="Runs">Runs (seeds) averaged.</param>
/// <param name="TestAccuracyMean">Mean test accuracy.</param>
/// <param name="TestAccuracyStd">Sample standard deviation of the test accuracy (0 for one run).</param>
/// <param name="EffectiveMacsMean">Mean effective MACs per sample.</param>
/// <param name="KeepRateMean">Mean keep rate.</param>
/// <param name="TrainImagesPerSecondMean">Mean training throughput.</param>
/// <param name="EvalImagesPerSecondMean">Mean evaluation throughput.</param>
public sealed record SummaryStatistics(
    [property: JsonConverter(typeof(LowerCaseEnumConverter<WiringKind>))] WiringKind Wiring,
    int Runs, double TestAccuracyMean, double TestAccuracyStd, double EffectiveMacsMean, double KeepRateMean,
    double TrainImagesPerSecondMean, double EvalImagesPerSecondMean)
{
    /// <summary>The statistics of <paramref name="runs"/> (all of one wiring).</summary>
    public static SummaryStatistics Of(WiringKind wiring, IReadOnlyCollection<RunRecord> runs)
    {
        ArgumentNullException.ThrowIfNull(runs);
        if (runs.Count == 0) throw new ArgumentException($"No runs of {wiring} wiring to summarise.", nameof(runs));
        return new(wiring, runs.Count, runs.Average(r => r.TestAccuracy), Std(runs.Select(r => r.TestAccuracy)), runs.Average(r => r.EffectiveMacs),
            runs.Average(r => r.KeepRate), runs.Average(r => r.TrainImagesPerSecond), runs.Average(r => r.EvalImagesPerSecond));
    }

    /// <summary>Sample standard deviation (n − 1 in the denominator); 0 for fewer than two values.</summary>
    public static double Std(IEnumerable<double> values)
    {
        var v = values.ToArray();
        if (v.Length < 2) return 0;
        double m = v.Average();
        return Math.Sqrt(v.Sum(x => (x - m) * (x - m)) / (v.Length - 1));
    }
}

/// <summary>A comparison's settings, runs and per-wiring summary: the content of results.json.</summary>
/// <param name="Model">Model name.</param>
/// <param name="Device">The device it ran on.</param>
/// <param name="Budget">Name of the training budget.</param>
/// <param name="TrainImages">Training images.</param>
/// <param name="TestImages">Test images.</param>
/// <param name="Epochs">Epochs per run.</param>
/// <param name="BatchSize">Training batch size.</param>
/// <param name="LearningRate">Peak learning rate.</param>
/// <param name="Seeds">Seeds per wiring.</param>
/// <param name="Seed">First seed.</param>
/// <param name="Tau">Gate threshold τ.</param>
/// <param name="RouterReduction">Router reduction r.</param>
/// <param name="GateGradient">Gate gradient mode.</param>
/// <param name="Sparsity">Sparsity loss weight λ.</param>
/// <param name="TauWarmup">τ warm-up fraction.</param>
/// <param name="Date">When it finished (UTC, ISO 8601 round-trip format).</param>
/// <param name="Version">IlgpuDdw version.</param>
/// <param name="Runs">Every run, wiring by wiring.</param>
/// <param name="Summary">One row per wiring.</param>
public sealed record CompareResult(string Model, string Device, string Budget, int TrainImages, int TestImages, int Epochs, int BatchSize,
    float LearningRate, int Seeds, int Seed, float Tau, int RouterReduction,
    [property: JsonConverter(typeof(JsonStringEnumConverter<GateGradient>))] GateGradient GateGradient,
    float Sparsity, float TauWarmup, string Date, string Version, IReadOnlyList<RunRecord> Runs, IReadOnlyList<SummaryStatistics> Summary)
{
    /// <summary>results.json: indented, camelCase (the epochs keep their C# names), NaN and ±Infinity as strings.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, ExperimentJsonContext.Default.CompareResult);
}

/// <summary>One stage's mean wiring over the test set, for heatmaps and wiring graphs.</summary>
/// <param name="Stage">Stage name.</param>
/// <param name="Nodes">Node count n (node n is the stage output).</param>
/// <param name="PerClass">Mean adjacency per class, [classes][(n+1)²] row-major; null for chain wiring.</param>
/// <param name="Mean">Mean adjacency over all test samples, [(n+1)²] (chain: 1 on i → i+1).</param>
/// <param name="EdgeKeep">Fraction of test samples keeping each edge, [(n+1)²]; null for chain wiring.</param>
public sealed record StageAdjacency(string Stage, int Nodes, IReadOnlyList<double[]>? PerClass, double[] Mean, double[]? EdgeKeep)
{
    /// <summary>Every stage's adjacency from an evaluation of a model of <paramref name="spec"/>.</summary>
    public static IReadOnlyList<StageAdjacency> FromEvaluation(ModelSpec spec, EvalResult eval)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(eval);
        var stages = new List<StageAdjacency>();
        long total = eval.ClassCounts.Sum();
        for (int s = 0; s < spec.Stages.Count; s++)
        {
            int n = spec.Stages[s].Nodes.Count, m = n + 1;
            var perClass = eval.MeanAdjacency[s];
            var mean = new double[m * m];
            if (perClass is null)
            {
                for (int i = 0; i + 1 < m; i++) mean[i * m + Math.Min(i + 1, n)] = 1; // chain: node i → i+1, last → output
            }
            else
            {
                for (int c = 0; c < perClass.Length; c++)
                    for (int e = 0; e < m * m; e++) mean[e] += perClass[c][e] * eval.ClassCounts[c] / Math.Max(1, total);
            }
            stages.Add(new StageAdjacency(spec.Stages[s].Name, n, perClass, mean, eval.EdgeKeep[s]));
        }
        return stages;
    }
}

/// <summary>One trained run with what its figures need.</summary>
/// <param name="Run">The planned run.</param>
/// <param name="Record">Its numbers.</param>
/// <param name="StepLosses">Training loss of every step.</param>
/// <param name="Adjacency">Per stage: the mean wiring at the last evaluation.</param>
public sealed record CompareRunResult(CompareRun Run, RunRecord Record, IReadOnlyList<float> StepLosses, IReadOnlyList<StageAdjacency> Adjacency);

/// <summary>Enum values as lower-case names (chain, dense, dynamic).</summary>
internal sealed class LowerCaseEnumConverter<TEnum>() : JsonStringEnumConverter<TEnum>(JsonNamingPolicy.CamelCase) where TEnum : struct, Enum;

/// <summary>JSON of results.json: indented, camelCase, NaN and ±Infinity as strings.</summary>
[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(CompareResult))]
internal sealed partial class ExperimentJsonContext : JsonSerializerContext;
