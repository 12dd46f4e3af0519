namespace IlgpuDdw.Training;

/// <summary>JSON of a checkpoint's metadata values: compact, C# property names, NaN and ±Infinity as strings, enums by name.</summary>
[JsonSourceGenerationOptions(NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals, UseStringEnumConverter = true)]
[JsonSerializable(typeof(TrainerOptions))]
[JsonSerializable(typeof(Wiring.WiringConfig))]
[JsonSerializable(typeof(DataSource))]
[JsonSerializable(typeof(IReadOnlyList<EpochResult>))]
[JsonSerializable(typeof(List<EpochResult>))]
[JsonSerializable(typeof(List<float>))]
internal sealed partial class CheckpointJsonContext : JsonSerializerContext;

/// <summary>JSON of metrics.jsonl lines: compact, camelCase, NaN and ±Infinity as strings.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(EpochMetrics))]
internal sealed partial class MetricsJsonContext : JsonSerializerContext;
