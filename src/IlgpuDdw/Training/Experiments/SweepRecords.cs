using System.Text.Json;
using System.Text.Json.Serialization;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Training.Experiments;

/// <summary>What one run of a sweep trains.</summary>
public enum SweepArm
{
    /// <summary>The backbone as published.</summary>
    Chain,
    /// <summary>Dense wiring (every edge, learned static weights).</summary>
    Dense,
    /// <summary>Dynamic wiring trained toward a target keep rate.</summary>
    Dynamic,
    /// <summary>The trained dense wiring pruned by edge weight to a dynamic run's keep rate, fine-tuned with the same budget.</summary>
    Pruned,
}

/// <summary>One planned run of a sweep.</summary>
/// <param name="Arm">What it trains.</param>
/// <param name="Target">Target keep rate ρ (dynamic and pruned runs), else null.</param>
/// <param name="Seed">Model and data-order seed.</param>
/// <param name="SeedIndex">0 for the first seed, 1 for the next, ...</param>
/// <param name="Label">Name for tables and plots.</param>
public sealed record SweepRun(
    [property: JsonConverter(typeof(LowerCaseEnumConverter<SweepArm>))] SweepArm Arm, float? Target, int Seed, int SeedIndex, string Label);

/// <summary>One trained point of a sweep.</summary>
/// <param name="Run">The planned run.</param>
/// <param name="TestAccuracy">Test accuracy at the last evaluation.</param>
/// <param name="TestLoss">Test loss at the last evaluation.</param>
/// <param name="KeepRate">Fraction of kept edges at the last evaluation (1 for chain).</param>
/// <param name="Macs">Static MACs per sample of the wiring.</param>
/// <param name="EffectiveMacs">MACs per test sample with dead nodes skipped (<see cref="Models.DeadNodeRule.InputCut"/>).</param>
/// <param name="Seconds">Wall time of the run.</param>
public sealed record SweepPoint(SweepRun Run, double TestAccuracy, double TestLoss, double KeepRate, long Macs, double EffectiveMacs, double Seconds)
{
    /// <summary>Measured wiring diversity (dense, dynamic and pruned runs), else null.</summary>
    public WiringDiversity? Diversity { get; init; }

    /// <summary>Evaluation speed-up of dead-node skipping (dynamic runs), else null.</summary>
    public double? SkipSpeedup { get; init; }
}

/// <summary>Mean and spread over the seeds of one arm at one target.</summary>
/// <param name="Arm">What was trained.</param>
/// <param name="Target">Target keep rate, or null.</param>
/// <param name="Runs">Seeds averaged.</param>
/// <param name="TestAccuracyMean">Mean test accuracy.</param>
/// <param name="TestAccuracyStd">Sample standard deviation of the test accuracy (0 for one seed).</param>
/// <param name="EffectiveMacsMean">Mean effective MACs per sample.</param>
/// <param name="EffectiveMacsStd">Sample standard deviation of the effective MACs.</param>
/// <param name="KeepRateMean">Mean keep rate.</param>
/// <param name="DistinctWiringsMean">Mean over seeds of the smallest per-stage count of distinct wirings (NaN for chain).</param>
/// <param name="InputDependentEdgesMean">Mean over seeds and stages of the fraction of input-dependent edges (NaN for chain).</param>
public sealed record SweepSummary(
    [property: JsonConverter(typeof(LowerCaseEnumConverter<SweepArm>))] SweepArm Arm, float? Target, int Runs,
    double TestAccuracyMean, double TestAccuracyStd, double EffectiveMacsMean, double EffectiveMacsStd, double KeepRateMean,
    double DistinctWiringsMean, double InputDependentEdgesMean)
{
    /// <summary>The summary of <paramref name="points"/> (one arm, one target).</summary>
    /// <exception cref="ArgumentException">No points, or points of several arms or targets.</exception>
    public static SweepSummary Of(IReadOnlyCollection<SweepPoint> points)
    {
        ArgumentNullException.ThrowIfNull(points);
        if (points.Count == 0) throw new ArgumentException("No sweep points to summarise.", nameof(points));
        var first = points.First().Run;
        if (points.Any(p => p.Run.Arm != first.Arm || p.Run.Target != first.Target))
            throw new ArgumentException("Sweep points of different arms or targets cannot be summarised together.", nameof(points));
        var diversity = points.Where(p => p.Diversity is { Stages.Count: > 0 }).Select(p => p.Diversity!).ToArray();
        return new(first.Arm, first.Target, points.Count, points.Average(p => p.TestAccuracy), SummaryStatistics.Std(points.Select(p => p.TestAccuracy)),
            points.Average(p => p.EffectiveMacs), SummaryStatistics.Std(points.Select(p => p.EffectiveMacs)), points.Average(p => p.KeepRate),
            diversity.Length == 0 ? double.NaN : diversity.Average(d => d.Stages.Min(s => s.DistinctWirings)),
            diversity.Length == 0 ? double.NaN : diversity.Average(d => d.Stages.Average(s => s.InputDependentEdges)));
    }
}

/// <summary>A sweep's settings, points and summary: the content of sweep.json.</summary>
/// <param name="Model">Model name.</param>
/// <param name="Device">The device it ran on.</param>
/// <param name="Budget">Name of the training budget.</param>
/// <param name="TrainImages">Training images.</param>
/// <param name="TestImages">Test images.</param>
/// <param name="Epochs">Epochs per run (the pruned runs fine-tune for as many).</param>
/// <param name="BatchSize">Training batch size.</param>
/// <param name="LearningRate">Peak learning rate.</param>
/// <param name="Gate">Gate of the dynamic runs.</param>
/// <param name="Tau">Gate threshold τ.</param>
/// <param name="Seeds">Seeds per point.</param>
/// <param name="Seed">First seed.</param>
/// <param name="Targets">Target keep rates.</param>
/// <param name="Date">When it finished (UTC, ISO 8601 round-trip format).</param>
/// <param name="Version">IlgpuDdw version.</param>
/// <param name="Points">Every run.</param>
/// <param name="Summary">One row per arm and target.</param>
public sealed record SweepResult(string Model, string Device, string Budget, int TrainImages, int TestImages, int Epochs, int BatchSize,
    float LearningRate, [property: JsonConverter(typeof(LowerCaseEnumConverter<GateKind>))] GateKind Gate, float Tau, int Seeds, int Seed,
    IReadOnlyList<float> Targets, string Date, string Version, IReadOnlyList<SweepPoint> Points, IReadOnlyList<SweepSummary> Summary)
{
    /// <summary>sweep.json: indented, camelCase, NaN and ±Infinity as strings.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, SweepJsonContext.Default.SweepResult);
}

/// <summary>JSON of sweep.json: indented, camelCase, NaN and ±Infinity as strings.</summary>
[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(SweepResult))]
internal sealed partial class SweepJsonContext : JsonSerializerContext;
