using IlgpuDdw.Models;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Training.Experiments;

/// <summary>What <see cref="CompareExperiment"/> trains: one model under several wirings, each with several seeds.</summary>
public sealed record CompareExperimentOptions
{
    public required ModelSpec Model { get; init; }

    /// <summary>The wirings to train, in order (default chain, dense, dynamic).</summary>
    public IReadOnlyList<WiringKind> Wirings { get; init; } = [WiringKind.Chain, WiringKind.Dense, WiringKind.Dynamic];

    /// <summary>τ, router reduction and gate gradient shared by every wiring (its <see cref="WiringConfig.Kind"/> is replaced).</summary>
    public WiringConfig Wiring { get; init; } = new();

    /// <summary>Training settings; run s of a wiring uses seed <see cref="TrainerOptions.Seed"/> + s for the model and the data order.</summary>
    public TrainerOptions Training { get; init; } = new();

    /// <summary>Seeds per wiring (default 1).</summary>
    public int Seeds { get; init; } = 1;

    /// <summary>Name of the training budget, recorded in the result.</summary>
    public string Budget { get; init; } = "custom";

    /// <summary>
    /// When set: checkpoints (<c>WIRING-seedN.safetensors</c>), <c>metrics.jsonl</c> and <c>results.json</c> go here.
    /// A folder that already holds anything is refused unless <see cref="Overwrite"/>.
    /// </summary>
    public string? OutputDirectory { get; init; }

    /// <summary>Write into a non-empty <see cref="OutputDirectory"/> (files of the same names are replaced).</summary>
    public bool Overwrite { get; init; }

    /// <summary>The data source recorded in every run's checkpoint (for resume checks), when known.</summary>
    public DataSource? Data { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid value.</summary>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(Model);
        if (Seeds < 1) throw new ArgumentException($"Seeds must be at least 1; got {Seeds}.");
        if (Wirings is null || Wirings.Count == 0) throw new ArgumentException("Compare needs at least one wiring.");
        if (Wirings.Distinct().Count() != Wirings.Count) throw new ArgumentException($"Wirings repeat: {string.Join(", ", Wirings)}.");
        Wiring.Validate();
        Training.Validate();
    }
}
