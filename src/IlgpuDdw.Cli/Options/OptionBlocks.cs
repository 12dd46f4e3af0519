namespace IlgpuDdw.Cli.Options;

/// <summary>How much a command trains: images, epochs and batch sizes.</summary>
/// <param name="Name">smoke | default | full.</param>
/// <param name="TrainImages">Training images used (the first N of the training split; null = all).</param>
/// <param name="TestImages">Test images used (null = all).</param>
/// <param name="Epochs">Epochs.</param>
/// <param name="BatchSize">Training batch size.</param>
/// <param name="LearningRate">Peak learning rate.</param>
/// <param name="Model">The model trained when <c>--model</c> is not given.</param>
/// <param name="InputSize">The input side of that model (null: the data's, 28); another <c>--model</c> gets the data's side.</param>
internal sealed record Budget(string Name, int? TrainImages, int? TestImages, int Epochs, int BatchSize, float LearningRate, string Model, int? InputSize = null)
{
    /// <summary>The budget names, in order of size.</summary>
    public static readonly string[] Names = ["smoke", "default", "full"];

    /// <summary>What each budget sets, for help texts: <c>smoke = 256/128 images, 1 epoch, batch 32, lr 0.02; ...</c>.</summary>
    public static string Describe() => string.Join("; ", Names.Select(n => Get(n) is var b
        ? string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"{n} = {b.Model} at {b.InputSize ?? FashionMnist.ImageSize}×{b.InputSize ?? FashionMnist.ImageSize}, {(b.TrainImages is int tr ? tr.ToString("N0", System.Globalization.CultureInfo.InvariantCulture) : "all")}/{(b.TestImages is int te ? te.ToString("N0", System.Globalization.CultureInfo.InvariantCulture) : "all")} training/test images, {b.Epochs} epoch{(b.Epochs == 1 ? "" : "s")}, batch {b.BatchSize}, lr {b.LearningRate}")
        : ""));

    /// <summary>One field of every budget, for the help text of the flag that overrides it: <c>smoke 1, default 1, full 15</c>.</summary>
    public static string Each(Func<Budget, string> field) => string.Join(", ", Names.Select(n => $"{n} {field(Get(n))}"));

    public static Budget Get(string name) => name.Trim().ToLowerInvariant() switch
    {
        // CI: seconds per wiring.
        "smoke" => new("smoke", 256, 128, 1, 32, 0.02f, "resnet_mini"),
        // A 2-core machine without a GPU: the three wirings of resnet_micro at 14×14 in under ten minutes, each above 82%.
        "default" => new("default", 32768, 2000, 1, 64, 0.1f, "resnet_micro", 14),
        // A GPU: the whole data set.
        "full" => new("full", null, null, 15, 128, 0.05f, "resnet_mini"),
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
    public readonly Option<string?> Data = new("--data") { Description = $"Fashion-MNIST directory [default: {FashionMnist.DefaultDirectory}]." };

    public override IEnumerable<Option> Options => [Data];

    /// <summary>The data folder, full path (the default when <c>--data</c> is not given).</summary>
    public string DataDirectory(ParseResult p) => Path.GetFullPath(p.GetValue(Data) ?? FashionMnist.DefaultDirectory);

    /// <summary>The first <paramref name="testImages"/> test images (null = all).</summary>
    /// <exception cref="ArgumentException">More images than the split holds.</exception>
    public ImageDataset LoadTest(ParseResult p, int? testImages) => Load(DataDirectory(p), DatasetSplit.Test, testImages, "--test-images");

    /// <summary>The budget's training and test images.</summary>
    public (ImageDataset Train, ImageDataset Test) Load(ParseResult p, Budget budget) => Load(DataDirectory(p), budget.TrainImages, budget.TestImages);

    /// <summary>The first <paramref name="trainImages"/> training and <paramref name="testImages"/> test images of <paramref name="directory"/> (null = all).</summary>
    /// <exception cref="ArgumentException">More images than a split holds.</exception>
    public static (ImageDataset Train, ImageDataset Test) Load(string directory, int? trainImages, int? testImages) =>
        (Load(directory, DatasetSplit.Train, trainImages, "--train-images"), Load(directory, DatasetSplit.Test, testImages, "--test-images"));

    /// <summary>What a run records about data loaded by <see cref="Load(string, int?, int?)"/> (the files passed their published checksums).</summary>
    public static DataSource Source(string directory, string? budget, ImageDataset train, ImageDataset test) => new()
    {
        Directory = directory, Budget = budget, TrainImages = train.Count, TestImages = test.Count,
        Sha256 = new SortedDictionary<string, string>(FashionMnist.Sha256.ToDictionary(), StringComparer.Ordinal),
    };

    private static ImageDataset Load(string directory, DatasetSplit split, int? count, string flag)
    {
        var data = RunFiles.Read("Fashion-MNIST data in", directory, () =>
        {
            if (System.IO.Directory.Exists(directory)) _ = System.IO.Directory.EnumerateFileSystemEntries(directory).Any(); // an unreadable folder says so
            return FashionMnist.Load(split, new FashionMnistOptions { Directory = directory });
        });
        if (count is not int n || n == data.Count) return data;
        try { return data.Subset(n); }
        catch (ArgumentOutOfRangeException e) { throw new ArgumentException($"{flag} {n}: {e.Message.Split(" (Parameter", 2)[0]}.", e); }
    }
}

/// <summary><c>--tau --router-reduction --gate-gradient --gate --gate-temperature --top-k-fraction --in-edge-norm</c>: the wiring settings beyond its kind.</summary>
internal sealed class GateOptionBlock : OptionBlock
{
    public readonly Option<float> Tau = new("--tau") { Description = "Gate threshold τ in [0, 1).", DefaultValueFactory = _ => 0.5f };
    public readonly Option<int> Reduction = CommonOptions.RouterReduction();
    public readonly Option<string> Gradient = new("--gate-gradient") { Description = "kept-only | straight-through", DefaultValueFactory = _ => "kept-only" };
    public readonly Option<string> Gate = new("--gate")
    {
        Description = "Gate of dynamic wiring: threshold (a > τ keeps a) | continuous (max(0, (a − τ)/(1 − τ))) | stochastic (gate logit + logistic noise, straight-through) | topk (k largest in-edges per node).",
        DefaultValueFactory = _ => "continuous",
    };
    public readonly Option<float> Temperature = new("--gate-temperature") { Description = "Temperature T of the stochastic gate's straight-through gradient.", DefaultValueFactory = _ => 1f };
    public readonly Option<float> TopKFraction = new("--top-k-fraction") { Description = "Fraction of each node's in-edges the topk gate keeps (at least one).", DefaultValueFactory = _ => 0.5f };

    public readonly Option<bool> InEdgeNorm = new("--in-edge-norm")
    {
        Description = "Dense and dynamic wiring: scale each node's in-edge weights to sum to at most 1 per sample before it aggregates, so a node fed by many kept edges keeps the scale of one input (chain wiring is unchanged) [default: off].",
    };

    public override IEnumerable<Option> Options => [Tau, Reduction, Gradient, Gate, Temperature, TopKFraction, InEdgeNorm];

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
            NormalizeInEdges = p.GetValue(InEdgeNorm),
        };
        w.Validate();
        return w;
    }
}

/// <summary><c>--budget --epochs --batch --lr --train-images --test-images</c>: a budget with its overrides.</summary>
internal sealed class BudgetOptionBlock : OptionBlock
{
    public readonly Option<string> Preset = new("--budget") { Description = $"smoke | default | full: {Budget.Describe()}.", DefaultValueFactory = _ => "default" };
    public readonly Option<int?> Epochs = new("--epochs") { Description = $"Epochs [default: the budget's: {Budget.Each(b => b.Epochs.ToString(CultureInfo.InvariantCulture))}]." };
    public readonly Option<int?> Batch = new("--batch") { Description = $"Batch size [default: the budget's: {Budget.Each(b => b.BatchSize.ToString(CultureInfo.InvariantCulture))}]." };
    public readonly Option<float?> Lr = new("--lr") { Description = $"Peak learning rate [default: the budget's: {Budget.Each(b => b.LearningRate.ToString(CultureInfo.InvariantCulture))}]." };
    public readonly Option<int?> TrainImages = new("--train-images")
    {
        Description = $"Use the first N training images (0 = all) [default: the budget's: {Budget.Each(b => b.TrainImages?.ToString(CultureInfo.InvariantCulture) ?? "all")}].",
    };
    public readonly Option<int?> TestImages = CommonOptions.TestImages($"the budget's: {Budget.Each(b => b.TestImages?.ToString(CultureInfo.InvariantCulture) ?? "all")}");

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
/// --keep-temperature --batch-shaping --batch-shaping-alpha --batch-shaping-beta --noise-off-fraction --recalibrate-bn</c>: the trainer settings a budget leaves open.
/// </summary>
internal sealed class TrainerOptionBlock : OptionBlock
{
    /// <summary>
    /// The default formulation of dynamic wiring (with the continuous gate of <see cref="GateOptionBlock"/>): keep target
    /// 0.6 at weight 20 and batch shaping 7: at the default budget the setting that kept every wiring above 82% with
    /// several wirings per stage (README, "Gates and budget terms").
    /// </summary>
    public const float DefaultKeepTarget = 0.6f, DefaultKeepTargetWeight = 20f, DefaultBatchShaping = 7f;

    public readonly Option<int> Seed = new("--seed") { Description = "Seed of initialisation, shuffling and augmentation.", DefaultValueFactory = _ => 0 };
    public readonly Option<bool> Augment = new("--augment") { Description = "Random crop (padding 2) and horizontal flip [default: off]." };
    public readonly Option<float> Smoothing = new("--label-smoothing") { Description = "Label smoothing ε.", DefaultValueFactory = _ => 0f };
    public readonly Option<float> Sparsity = new("--sparsity") { Description = "Sparsity loss weight λ (λ·mean of the router outputs).", DefaultValueFactory = _ => 0f };
    public readonly Option<float> TauWarmup = new("--tau-warmup") { Description = "Fraction of training over which τ rises from 0 to its value.", DefaultValueFactory = _ => 0f };

    public readonly Option<float> KeepTarget = new("--keep-target")
    {
        Description = "Target keep rate ρ in (0, 1] per stage: adds Σ_s (k̂_s − ρ)² over the batch (dynamic wiring; --keep-target-weight 0 drops the term).",
        DefaultValueFactory = _ => DefaultKeepTarget,
    };
    public readonly Option<float> KeepTargetWarmup = new("--keep-target-warmup") { Description = "Fraction of training over which the keep target falls from 1 to ρ.", DefaultValueFactory = _ => 0.25f };
    public readonly Option<float> KeepTargetWeight = new("--keep-target-weight") { Description = "Weight of the keep-target term (0: no keep-target term).", DefaultValueFactory = _ => DefaultKeepTargetWeight };
    public readonly Option<float> KeepTemperature = new("--keep-temperature") { Description = "Temperature T of the soft keep indicator sigmoid((a − τ)/T) of the keep-target and batch-shaping terms.", DefaultValueFactory = _ => 0.1f };
    public readonly Option<float> BatchShaping = new("--batch-shaping") { Description = "Batch-shaping weight λ: each edge's keep values over the batch pushed toward a Beta(α, β) prior (0: off).", DefaultValueFactory = _ => DefaultBatchShaping };
    public readonly Option<float> BatchShapingAlpha = new("--batch-shaping-alpha") { Description = "α of the batch-shaping Beta prior.", DefaultValueFactory = _ => 0.6f };
    public readonly Option<float> BatchShapingBeta = new("--batch-shaping-beta") { Description = "β of the batch-shaping Beta prior.", DefaultValueFactory = _ => 0.4f };
    public readonly Option<float> NoiseOffFraction = new("--noise-off-fraction") { Description = "Stochastic gate: the last fraction of training run without gate noise.", DefaultValueFactory = _ => 0.1f };
    public readonly Option<int> RecalibrateBn = new("--recalibrate-bn") { Description = "After the last epoch, recompute batch-norm running statistics with the final wiring on N training images (0 = off).", DefaultValueFactory = _ => 0 };

    public override IEnumerable<Option> Options =>
        [Seed, Augment, Smoothing, Sparsity, TauWarmup, KeepTarget, KeepTargetWarmup, KeepTargetWeight, KeepTemperature, BatchShaping, BatchShapingAlpha, BatchShapingBeta, NoiseOffFraction, RecalibrateBn];

    /// <summary>The trainer options (validated) for <paramref name="budget"/>.</summary>
    public TrainerOptions Bind(ParseResult p, Budget budget)
    {
        var o = new TrainerOptions
        {
            Epochs = budget.Epochs, BatchSize = budget.BatchSize, LearningRate = budget.LearningRate, Seed = p.GetValue(Seed), Augment = p.GetValue(Augment),
            LabelSmoothing = p.GetValue(Smoothing), SparsityWeight = p.GetValue(Sparsity), TauWarmupFraction = p.GetValue(TauWarmup),
            KeepTarget = p.GetValue(KeepTargetWeight) == 0 ? null : p.GetValue(KeepTarget), KeepTargetWarmupFraction = p.GetValue(KeepTargetWarmup), KeepTargetWeight = p.GetValue(KeepTargetWeight),
            KeepTemperature = p.GetValue(KeepTemperature),
            BatchShapingWeight = p.GetValue(BatchShaping), BatchShapingAlpha = p.GetValue(BatchShapingAlpha), BatchShapingBeta = p.GetValue(BatchShapingBeta),
            NoiseOffFraction = p.GetValue(NoiseOffFraction), RecalibrateBnImages = p.GetValue(RecalibrateBn),
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
/// <param name="Overwrite">Whether a non-empty output directory may be written into.</param>
/// <param name="InputSize">The requested input side (null: the data's, raised to the model's minimum).</param>
internal sealed record TrainingSettings(string Model, Budget Budget, WiringConfig Wiring, TrainerOptions Trainer, string? Out, bool Overwrite = false, int? InputSize = null);

/// <summary>The training options of <c>compare</c> and <c>train</c>: model, data, gate, budget, trainer, output.</summary>
internal sealed class TrainingOptionBlock(string outDefault) : OptionBlock
{
    public readonly Option<string?> Model = new("--model", "-m")
    {
        Description = $"Model: {string.Join(", ", ModelZoo.Names)} [default: the budget's: {IlgpuDdw.Cli.Options.Budget.Each(b => b.Model)}].",
    };
    public readonly Option<int?> InputSize = new("--input-size")
    {
        Description = "Resize the images to S×S (bilinear, once per run) and build the model for S×S inputs [default: the budget's for its own model: " +
            $"{IlgpuDdw.Cli.Options.Budget.Each(b => (b.InputSize ?? FashionMnist.ImageSize).ToString(CultureInfo.InvariantCulture))}; with another --model the data's side, 28, raised to the model's minimum input (e.g. 32 for resnet18)].",
    };
    public readonly DataOptionBlock Data = new();
    public readonly GateOptionBlock Gate = new();
    public readonly BudgetOptionBlock Budget = new();
    public readonly TrainerOptionBlock Trainer = new();
    public readonly Option<string?> Out = CommonOptions.Out($"Output directory [default: {outDefault}].");
    public readonly RunOptionBlock Run = new();

    public override IEnumerable<Option> Options => [Model, InputSize, .. Data.Options, .. Gate.Options, .. Budget.Options, .. Trainer.Options, Out, .. Run.Options];

    public TrainingSettings Bind(ParseResult p)
    {
        var budget = Budget.Bind(p);
        var trainer = Run.Apply(p, Trainer.Bind(p, budget));
        // the budget's model runs at the budget's input size; a model named on the command line at the data's side
        var model = p.GetValue(Model);
        int? inputSize = p.GetValue(InputSize) ?? (model is null ? budget.InputSize : null);
        return new TrainingSettings(model ?? budget.Model, budget, Gate.Bind(p), trainer, p.GetValue(Out), p.GetValue(Run.Overwrite), inputSize);
    }

    /// <summary>
    /// The zoo model <paramref name="model"/> for the loaded data (its stem takes the images' channels, its classifier
    /// the data's classes) at <paramref name="inputSize"/>² (default: the images' side, raised to the model's minimum),
    /// and the data resized to that side.
    /// </summary>
    /// <exception cref="ArgumentException">Unknown model, or an input size below the model's minimum.</exception>
    public static (ModelSpec Spec, ImageDataset Train, ImageDataset Test) Fit(string model, int? inputSize, ImageDataset train, ImageDataset test)
    {
        var native = ModelZoo.Get(model).WithData(train.Channels, train.ClassCount);
        if (inputSize is < 1) throw new ArgumentException($"--input-size {inputSize}: must be positive.");
        int size = inputSize ?? Math.Max(train.Height, native.MinimumInputSize);
        var spec = ModelZoo.Get(model, size, train.Channels, train.ClassCount);
        return (spec, train.Resize(size), test.Resize(size));
    }

    /// <summary>
    /// Refuses a batch larger than the training set (it is not capped) or one whose step would not fit in the
    /// device's memory (estimated before anything is allocated, see <see cref="StepMemory"/>).
    /// </summary>
    /// <exception cref="ArgumentException">One line naming the batch: the image count, or the estimate, the free memory and the largest batch that fits.</exception>
    public static void CheckBatch(Runtime.Device device, ModelSpec spec, IEnumerable<WiringConfig> wirings, int batch, int trainImages)
    {
        if (batch > trainImages)
            throw new ArgumentException($"--batch {batch} is larger than the {trainImages.ToString("N0", CultureInfo.InvariantCulture)} training images; use at most {trainImages} or more --train-images.");
        foreach (var w in wirings) StepMemory.Check(device, spec, w, batch);
    }

    /// <summary>One line for the console: the model's configuration, its parameters and MACs under <paramref name="wiring"/>, and the resize.</summary>
    public static string Describe(ModelSpec spec, WiringKind wiring, int reduction, ImageDataset original)
    {
        var cost = CostModel.Compute(spec, wiring, reduction);
        var ci = CultureInfo.InvariantCulture;
        string resize = original.Height == spec.InputSize && original.Width == spec.InputSize ? ""
            : $"; images resized from {original.Height}×{original.Width} to {spec.InputSize}×{spec.InputSize} (bilinear)";
        return $"{spec.Name} for {spec.InputChannels}×{spec.InputSize}×{spec.InputSize} inputs and {spec.NumClasses} classes, {CommonOptions.Name(wiring)} wiring: "
            + $"{cost.TotalParameters.ToString("N0", ci)} parameters, {cost.TotalMacs.ToString("N0", ci)} MACs per sample{resize}";
    }
}

/// <summary>
/// <c>--overwrite --eval-batch --log-every --max-loss --max-loss-ratio --max-grad-norm</c>: how a run treats its output folder,
/// and the settings that do not change what it computes (so a resume may change them).
/// </summary>
internal sealed class RunOptionBlock : OptionBlock
{
    private static readonly TrainerOptions Defaults = new();

    public readonly Option<bool> Overwrite = new("--overwrite") { Description = "Write into a non-empty --out (files of the same names are replaced, metrics.jsonl starts afresh). Without it a non-empty --out is refused." };
    public readonly Option<int> EvalBatch = new("--eval-batch") { Description = "Evaluation batch size.", DefaultValueFactory = _ => Defaults.EvalBatchSize };
    public readonly Option<int> LogEvery = new("--log-every")
    {
        Description = "Steps per logging interval: the host reads the steps' losses and guard results once per interval (and at each epoch's end), so the device never waits between steps; the divergence guards run on the device and skip the optimizer step of a bad step and those after it. Results do not depend on it. Data-parallel runs read every step.",
        DefaultValueFactory = _ => Defaults.LogInterval,
    };
    public readonly Option<float> MaxLoss = new("--max-loss")
    {
        Description = "Divergence guard: stop before the optimizer step when a step's objective exceeds this (0 = off; NaN/∞ always stop).",
        DefaultValueFactory = _ => Defaults.MaxLoss,
    };
    public readonly Option<float> MaxLossRatio = new("--max-loss-ratio")
    {
        Description = "Divergence guard: from epoch 2 on, stop before the optimizer step when a step's training loss exceeds this multiple of epoch 1's mean (0 = off).",
        DefaultValueFactory = _ => Defaults.MaxLossRatio,
    };
    public readonly Option<float> MaxGradNorm = new("--max-grad-norm")
    {
        Description = "Divergence guard: stop before the optimizer step when the gradient's global L2 norm exceeds this (0 = off; NaN/∞ always stop).",
        DefaultValueFactory = _ => Defaults.MaxGradNorm,
    };

    public override IEnumerable<Option> Options => [Overwrite, EvalBatch, LogEvery, MaxLoss, MaxLossRatio, MaxGradNorm];

    /// <summary>Options a resume may change: they do not alter the arithmetic of training.</summary>
    public IEnumerable<Option> SafeOnResume => Options;

    /// <summary><paramref name="options"/> with this block's values (validated).</summary>
    public TrainerOptions Apply(ParseResult p, TrainerOptions options)
    {
        var o = options with
        {
            EvalBatchSize = p.GetValue(EvalBatch), LogInterval = p.GetValue(LogEvery), MaxLoss = p.GetValue(MaxLoss), MaxLossRatio = p.GetValue(MaxLossRatio), MaxGradNorm = p.GetValue(MaxGradNorm),
        };
        o.Validate();
        return o;
    }
}
