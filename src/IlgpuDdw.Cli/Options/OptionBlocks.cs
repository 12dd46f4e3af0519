using System.CommandLine;
using IlgpuDdw.Data;
using IlgpuDdw.Training;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Cli.Options;

/// <summary>How much a command trains: images, epochs and batch sizes.</summary>
/// <param name="Name">smoke | default | full.</param>
/// <param name="TrainImages">Training images used (the first N of the training split; null = all).</param>
/// <param name="TestImages">Test images used (null = all).</param>
/// <param name="Epochs">Epochs.</param>
/// <param name="BatchSize">Training batch size.</param>
/// <param name="LearningRate">Peak learning rate.</param>
internal sealed record Budget(string Name, int? TrainImages, int? TestImages, int Epochs, int BatchSize, float LearningRate)
{
    public static Budget Get(string name) => name.Trim().ToLowerInvariant() switch
    {
        // CI: seconds per wiring.
        "smoke" => new("smoke", 256, 128, 1, 32, 0.02f),
        // A 2-core machine without a GPU: the three wirings of resnet_mini in about ten minutes.
        "default" => new("default", 2560, 1000, 1, 32, 0.02f),
        // A GPU: the whole data set.
        "full" => new("full", null, null, 15, 128, 0.05f),
        _ => throw new ArgumentException($"Unknown budget '{name}'. Use smoke, default or full."),
    };
}

/// <summary>A group of options several commands share, declared once; a command adds <see cref="Options"/> and binds them after parsing.</summary>
internal abstract class OptionBlock
{
    /// <summary>The options in help order.</summary>
    public abstract IEnumerable<Option> Options { get; }
}

/// <summary><c>--data</c>: where Fashion-MNIST is read from.</summary>
internal sealed class DataOptionBlock : OptionBlock
{
    public readonly Option<string?> Data = new("--data") { Description = $"Fashion-MNIST directory (default {FashionMnist.DefaultDirectory})." };

    public override IEnumerable<Option> Options => [Data];

    public FashionMnistOptions Bind(ParseResult p) => new() { Directory = p.GetValue(Data) };

    /// <summary>The first <paramref name="testImages"/> test images (null = all).</summary>
    public ImageDataset LoadTest(ParseResult p, int? testImages)
    {
        var test = FashionMnist.Load(DatasetSplit.Test, Bind(p));
        return testImages is int n && n < test.Count ? test.Subset(n) : test;
    }

    /// <summary>The budget's training and test images.</summary>
    public (ImageDataset Train, ImageDataset Test) Load(ParseResult p, Budget budget)
    {
        var test = LoadTest(p, budget.TestImages);
        var train = FashionMnist.Load(DatasetSplit.Train, Bind(p));
        if (budget.TrainImages is int n && n < train.Count) train = train.Subset(n);
        return (train, test);
    }
}

/// <summary><c>--tau --router-reduction --gate-gradient --gate --gate-temperature --top-k-fraction</c>: the wiring settings beyond its kind.</summary>
internal sealed class GateOptionBlock : OptionBlock
{
    public readonly Option<float> Tau = new("--tau") { Description = "Gate threshold τ in [0, 1).", DefaultValueFactory = _ => 0.5f };
    public readonly Option<int> Reduction = CommonOptions.RouterReduction();
    public readonly Option<string> Gradient = new("--gate-gradient") { Description = "kept-only | straight-through", DefaultValueFactory = _ => "kept-only" };
    public readonly Option<string> Gate = new("--gate")
    {
        Description = "Gate of dynamic wiring: threshold (a > τ keeps a) | continuous (max(0, (a − τ)/(1 − τ))) | stochastic (gate logit + logistic noise, straight-through) | topk (k largest in-edges per node).",
        DefaultValueFactory = _ => "threshold",
    };
    public readonly Option<float> Temperature = new("--gate-temperature") { Description = "Temperature T of the stochastic gate's straight-through gradient.", DefaultValueFactory = _ => 1f };
    public readonly Option<float> TopKFraction = new("--top-k-fraction") { Description = "Fraction of each node's in-edges the topk gate keeps (at least one).", DefaultValueFactory = _ => 0.5f };

    public override IEnumerable<Option> Options => [Tau, Reduction, Gradient, Gate, Temperature, TopKFraction];

    /// <summary>The settings (validated), with the default kind.</summary>
    public WiringConfig Bind(ParseResult p)
    {
        var g = p.GetValue(Gradient)!.Trim().ToLowerInvariant() switch
        {
            "kept-only" or "keptonly" => GateGradient.KeptOnly,
            "straight-through" or "straightthrough" => GateGradient.StraightThrough,
            var other => throw new ArgumentException($"Unknown gate gradient '{other}'. Use kept-only or straight-through."),
        };
        var gate = p.GetValue(Gate)!.Trim().ToLowerInvariant() switch
        {
            "threshold" => GateKind.Threshold,
            "continuous" => GateKind.Continuous,
            "stochastic" => GateKind.Stochastic,
            "topk" or "top-k" => GateKind.TopK,
            var other => throw new ArgumentException($"Unknown gate '{other}'. Use threshold, continuous, stochastic or topk."),
        };
        var w = new WiringConfig
        {
            Tau = p.GetValue(Tau), Reduction = p.GetValue(Reduction), Gradient = g, Gate = gate, GateTemperature = p.GetValue(Temperature), TopKFraction = p.GetValue(TopKFraction),
        };
        w.Validate();
        return w;
    }
}

/// <summary><c>--budget --epochs --batch --lr --train-images --test-images</c>: a budget with its overrides.</summary>
internal sealed class BudgetOptionBlock : OptionBlock
{
    public readonly Option<string> Preset = new("--budget") { Description = "smoke | default | full", DefaultValueFactory = _ => "default" };
    public readonly Option<int?> Epochs = new("--epochs") { Description = "Epochs (overrides the budget)." };
    public readonly Option<int?> Batch = new("--batch") { Description = "Batch size (overrides the budget)." };
    public readonly Option<float?> Lr = new("--lr") { Description = "Peak learning rate (overrides the budget)." };
    public readonly Option<int?> TrainImages = new("--train-images") { Description = "Use the first N training images (overrides the budget; 0 = all)." };
    public readonly Option<int?> TestImages = CommonOptions.TestImages();

    public override IEnumerable<Option> Options => [Preset, Epochs, Batch, Lr, TrainImages, TestImages];

    public Budget Bind(ParseResult p)
    {
        var b = Budget.Get(p.GetValue(Preset)!);
        b = b with
        {
            Epochs = p.GetValue(Epochs) ?? b.Epochs,
            BatchSize = p.GetValue(Batch) ?? b.BatchSize,
            LearningRate = p.GetValue(Lr) ?? b.LearningRate,
            TrainImages = p.GetValue(TrainImages) is int t ? (t == 0 ? null : t) : b.TrainImages,
            TestImages = p.GetValue(TestImages) is int v ? (v == 0 ? null : v) : b.TestImages,
        };
        if (b.TrainImages is < 1 || b.TestImages is < 1) throw new ArgumentException("--train-images and --test-images must be positive (0 = all).");
        return b;
    }
}

/// <summary>
/// <c>--seed --augment --label-smoothing --sparsity --tau-warmup --keep-target --keep-target-warmup --keep-target-weight
/// --keep-temperature --batch-shaping --batch-shaping-alpha --batch-shaping-beta --noise-off-fraction</c>: the trainer settings a budget leaves open.
/// </summary>
internal sealed class TrainerOptionBlock : OptionBlock
{
    public readonly Option<int> Seed = new("--seed") { Description = "Seed of initialisation, shuffling and augmentation.", DefaultValueFactory = _ => 0 };
    public readonly Option<bool> Augment = new("--augment") { Description = "Random crop (padding 2) and horizontal flip." };
    public readonly Option<float> Smoothing = new("--label-smoothing") { Description = "Label smoothing ε.", DefaultValueFactory = _ => 0f };
    public readonly Option<float> Sparsity = new("--sparsity") { Description = "Sparsity loss weight λ (λ·mean of the router outputs).", DefaultValueFactory = _ => 0f };
    public readonly Option<float> TauWarmup = new("--tau-warmup") { Description = "Fraction of training over which τ rises from 0 to its value.", DefaultValueFactory = _ => 0f };

    public readonly Option<float?> KeepTarget = new("--keep-target") { Description = "Target keep rate ρ in (0, 1] per stage: adds Σ_s (k̂_s − ρ)² over the batch (dynamic wiring)." };
    public readonly Option<float> KeepTargetWarmup = new("--keep-target-warmup") { Description = "Fraction of training over which the keep target falls from 1 to ρ.", DefaultValueFactory = _ => 0.25f };
    public readonly Option<float> KeepTargetWeight = new("--keep-target-weight") { Description = "Weight of the keep-target term.", DefaultValueFactory = _ => 1f };
    public readonly Option<float> KeepTemperature = new("--keep-temperature") { Description = "Temperature T of the soft keep indicator sigmoid((a − τ)/T) of the keep-target and batch-shaping terms.", DefaultValueFactory = _ => 0.1f };
    public readonly Option<float> BatchShaping = new("--batch-shaping") { Description = "Batch-shaping weight λ: each edge's keep values over the batch pushed toward a Beta(α, β) prior.", DefaultValueFactory = _ => 0f };
    public readonly Option<float> BatchShapingAlpha = new("--batch-shaping-alpha") { Description = "α of the batch-shaping Beta prior.", DefaultValueFactory = _ => 0.6f };
    public readonly Option<float> BatchShapingBeta = new("--batch-shaping-beta") { Description = "β of the batch-shaping Beta prior.", DefaultValueFactory = _ => 0.4f };
    public readonly Option<float> NoiseOffFraction = new("--noise-off-fraction") { Description = "Stochastic gate: the last fraction of training run without gate noise.", DefaultValueFactory = _ => 0.1f };

    public override IEnumerable<Option> Options =>
        [Seed, Augment, Smoothing, Sparsity, TauWarmup, KeepTarget, KeepTargetWarmup, KeepTargetWeight, KeepTemperature, BatchShaping, BatchShapingAlpha, BatchShapingBeta, NoiseOffFraction];

    /// <summary>The trainer options (validated) for <paramref name="budget"/>.</summary>
    public TrainerOptions Bind(ParseResult p, Budget budget)
    {
        var o = new TrainerOptions
        {
            Epochs = budget.Epochs, BatchSize = budget.BatchSize, LearningRate = budget.LearningRate, Seed = p.GetValue(Seed), Augment = p.GetValue(Augment),
            LabelSmoothing = p.GetValue(Smoothing), SparsityWeight = p.GetValue(Sparsity), TauWarmupFraction = p.GetValue(TauWarmup),
            KeepTarget = p.GetValue(KeepTarget), KeepTargetWarmupFraction = p.GetValue(KeepTargetWarmup), KeepTargetWeight = p.GetValue(KeepTargetWeight),
            KeepTemperature = p.GetValue(KeepTemperature),
            BatchShapingWeight = p.GetValue(BatchShaping), BatchShapingAlpha = p.GetValue(BatchShapingAlpha), BatchShapingBeta = p.GetValue(BatchShapingBeta),
            NoiseOffFraction = p.GetValue(NoiseOffFraction),
        };
        o.Validate();
        return o;
    }
}

/// <summary>What <c>compare</c> and <c>train</c> were asked to train.</summary>
/// <param name="Model">Model name.</param>
/// <param name="Budget">Budget with its overrides.</param>
/// <param name="Wiring">τ, router reduction, gate gradient, gate and its settings (the kind is the default).</param>
/// <param name="Trainer">Trainer options.</param>
/// <param name="Out">Output directory, when given.</param>
internal sealed record TrainingSettings(string Model, Budget Budget, WiringConfig Wiring, TrainerOptions Trainer, string? Out);

/// <summary>The training options of <c>compare</c> and <c>train</c>: model, data, gate, budget, trainer, output.</summary>
internal sealed class TrainingOptionBlock : OptionBlock
{
    public readonly Option<string> Model = CommonOptions.Model();
    public readonly DataOptionBlock Data = new();
    public readonly GateOptionBlock Gate = new();
    public readonly BudgetOptionBlock Budget = new();
    public readonly TrainerOptionBlock Trainer = new();
    public readonly Option<string?> Out = CommonOptions.Out();

    public override IEnumerable<Option> Options => [Model, .. Data.Options, .. Gate.Options, .. Budget.Options, .. Trainer.Options, Out];

    public TrainingSettings Bind(ParseResult p)
    {
        var budget = Budget.Bind(p);
        var trainer = Trainer.Bind(p, budget);
        return new TrainingSettings(p.GetValue(Model)!, budget, Gate.Bind(p), trainer, p.GetValue(Out));
    }
}
