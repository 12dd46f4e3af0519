using IlgpuDdw.Models;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Training.Experiments;

/// <summary>
/// What <see cref="SweepExperiment"/> trains: chain and dense wiring once per seed, dynamic wiring at every target keep
/// rate, and at every target a static baseline (the trained dense wiring pruned to the dynamic run's keep rate, then
/// fine-tuned with the same budget).
/// </summary>
public sealed record SweepExperimentOptions
{
    public required ModelSpec Model { get; init; }

    /// <summary>Target keep rates ρ in (0, 1], in order (the dynamic runs' <see cref="TrainerOptions.KeepTarget"/>).</summary>
    public required IReadOnlyList<float> Targets { get; init; }

    /// <summary>Gate, τ and router settings of the dynamic runs (its <see cref="WiringConfig.Kind"/> is replaced per run).</summary>
    public WiringConfig Wiring { get; init; } = new();

    /// <summary>Training settings of every run; run s uses seed <see cref="TrainerOptions.Seed"/> + s. The keep target is set per dynamic run.</summary>
    public TrainerOptions Training { get; init; } = new();

    /// <summary>Seeds per point (default 1).</summary>
    public int Seeds { get; init; } = 1;

    /// <summary>Name of the training budget, recorded in the result.</summary>
    public string Budget { get; init; } = "custom";

    /// <summary>
    /// Output folder (required: the pruned baselines start from the dense checkpoints written there). Holds
    /// <c>baseline/</c> (chain and dense), <c>dynamic-ρ/</c> per target (each a comparison's results.json, metrics and
    /// checkpoints), <c>pruned-ρ/metrics.jsonl</c> and <c>sweep.json</c>.
    /// </summary>
    public required string OutputDirectory { get; init; }

    /// <summary>Write into a non-empty <see cref="OutputDirectory"/>.</summary>
    public bool Overwrite { get; init; }

    /// <summary>The data source recorded in every checkpoint, when known.</summary>
    public DataSource? Data { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid value.</summary>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(Model);
        if (Targets is null || Targets.Count == 0) throw new ArgumentException("A sweep needs at least one target keep rate.");
        foreach (float t in Targets)
            if (!(t > 0 && t <= 1)) throw new ArgumentException($"Target keep rate {t} is outside (0, 1].");
        if (Targets.Distinct().Count() != Targets.Count) throw new ArgumentException($"Targets repeat: {string.Join(", ", Targets)}.");
        if (Seeds < 1) throw new ArgumentException($"Seeds must be at least 1; got {Seeds}.");
        if (string.IsNullOrWhiteSpace(OutputDirectory)) throw new ArgumentException("A sweep needs an output directory.");
        if (Model.Stages.All(s => s.Nodes.Count < 2)) throw new ArgumentException($"Model '{Model.Name}' has no stage with two or more nodes: nothing to wire.");
        Wiring.Validate();
        Training.Validate();
    }
}
