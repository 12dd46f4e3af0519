using System.Text.Json.Serialization;

namespace IlgpuDdw.Cli.Reports;

/// <summary><c>info --model M --json</c>: a model's parameters and MACs per sample.</summary>
internal sealed record ModelInfoReport(string Model, string Wiring, int InputSize, int InputChannels, int Classes, int RouterReduction,
    long Params, long Macs, long BackboneParams, long BackboneMacs, long EdgeParams, long RouterParams, long RouterMacs, long AggregationMacs,
    IReadOnlyList<StageInfoReport> Stages)
{
    /// <summary>With <c>--batch</c>: the estimated peak device memory of a training step.</summary>
    public StepMemoryReport? StepMemory { get; init; }

    public static ModelInfoReport From(ModelSpec spec, string wiring, int reduction, ModelCost cost) => new(
        spec.Name, wiring, spec.InputSize, spec.InputChannels, spec.NumClasses, reduction, cost.TotalParameters, cost.TotalMacs,
        cost.BackboneParameters, cost.BackboneMacs, cost.EdgeParameters, cost.RouterParameters, cost.Stages.Sum(x => x.RouterMacs),
        cost.Stages.Sum(x => x.AggregationMacs),
        cost.Stages.Select(x => new StageInfoReport(x.Name, x.Nodes, x.Width, x.Resolution, x.TotalParameters, x.TotalMacs, x.Parameters, x.Macs,
            x.EdgeParameters, x.RouterParameters, x.RouterMacs, x.AggregationMacs)).ToArray());
}

/// <summary>The step-memory estimate of <c>info --model M --batch B</c>.</summary>
internal sealed record StepMemoryReport(int Batch, long PeakBytes, long FixedBytes, long BytesPerSample, string Device, long FreeBytes, int LargestBatch);

/// <summary>One stage of <see cref="ModelInfoReport"/>.</summary>
internal sealed record StageInfoReport(string Name, int Nodes, int Width, int Resolution, long Params, long Macs, long BackboneParams,
    long BackboneMacs, long EdgeParams, long RouterParams, long RouterMacs, long AggregationMacs);

/// <summary><c>bench --json</c>; <c>tf32</c>: whether the convolutions ran on TF32 (<c>--tf32</c>).</summary>
internal sealed record StepBenchmarkReport(string Device, string Model, int InputSize, int Repetitions, IReadOnlyList<StepBenchmarkReportRow> Rows, bool Tf32);

/// <summary>One row of <see cref="StepBenchmarkReport"/>.</summary>
internal sealed record StepBenchmarkReportRow(string Wiring, int Batch, double MedianStepMs, double SpreadMs, double ImagesPerSecond,
    double RatioToDense, double KeepRate, long PeakBytes, double EvalMedianMs);

/// <summary><c>bench aggregation --json</c>.</summary>
internal sealed record AggregationBenchmarkReport(string Device, int Batch, int Nodes, int Channels, int Height, int Width, int Repetitions,
    string Kernels, IReadOnlyList<AggregationBenchmarkReportRow> Rows);

/// <summary>One row of <see cref="AggregationBenchmarkReport"/>.</summary>
internal sealed record AggregationBenchmarkReportRow(double KeepRate, double MedianMs, double SpreadMs, double RatioToFull, double BytesPerSample);

/// <summary><c>eval --json</c>.</summary>
internal sealed record EvalReport(string Checkpoint, string Model, string Wiring, int Epoch, string Device, int Images, double TestAccuracy,
    double TestLoss, double KeepRate, long Params, long Macs, double EffectiveMacs, double ImagesPerSecond)
{
    /// <summary>Measured wiring diversity (dense and dynamic).</summary>
    public Training.WiringDiversity? Diversity { get; init; }

    /// <summary>Measured evaluation speed-up of dead-node skipping (dynamic).</summary>
    public double? SkipSpeedup { get; init; }
}

/// <summary>JSON of <c>info</c> and <c>bench</c>: compact, camelCase.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(ModelInfoReport))]
[JsonSerializable(typeof(StepBenchmarkReport))]
[JsonSerializable(typeof(AggregationBenchmarkReport))]
internal sealed partial class CliJsonContext : JsonSerializerContext;

/// <summary>JSON of <c>eval</c>: indented, camelCase, NaN and ±Infinity as strings.</summary>
[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(EvalReport))]
internal sealed partial class EvalJsonContext : JsonSerializerContext;
