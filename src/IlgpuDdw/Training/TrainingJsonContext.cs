namespace IlgpuDdw.Training;

/// <summary>
/// JSON of a checkpoint's metadata values: compact, camelCase, NaN and ±Infinity as strings, enums by name. Older
/// checkpoints used the C# property names and 0-based history epochs; <see cref="Checkpoint"/> reads both.
/// </summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals, UseStringEnumConverter = true)]
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
