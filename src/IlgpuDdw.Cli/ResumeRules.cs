namespace IlgpuDdw.Cli;

/// <summary>What <c>train --resume F</c> restores, which flags may change on resume, and the refusal of the others.</summary>
/// <param name="Info">The checkpoint's configuration.</param>
/// <param name="Options">The training options of the continued run.</param>
/// <param name="DataDirectory">The data folder.</param>
/// <param name="TrainImages">Training images (null = all).</param>
/// <param name="TestImages">Test images (null = all).</param>
internal sealed record ResumePlan(CheckpointInfo Info, TrainerOptions Options, string DataDirectory, int? TrainImages, int? TestImages)
{
    /// <summary>Help of <c>--resume</c>.</summary>
    public const string ResumeHelp =
        "Continue the run saved in this checkpoint. Everything comes from the checkpoint (model, wiring and gate, every training option, " +
        "the data folder, image counts and budget); a flag that names another value is refused. Only --device, --tf32, --out, --overwrite, " +
        "--eval-batch, --log-every, --max-loss, --max-loss-ratio and --max-grad-norm may change; --epochs only with --extend [default: none, a new run].";

    /// <summary>Help of <c>--extend</c>.</summary>
    public const string ExtendHelp =
        "With --resume: allow --epochs above the run's total. The cosine learning-rate and τ schedules are recomputed for the new total, " +
        "so from the resumed step on the rate follows the longer curve (it steps up to that curve's value at the step).";

    // Fashion-MNIST's split sizes (FashionMnist.Load checks them), for "--train-images 0 / --test-images 0 = all".
    private const int TrainSplit = 60_000, TestSplit = 10_000;

    /// <summary>Whether the run has trained all the epochs of <see cref="Options"/>.</summary>
    public bool IsComplete => Info.Epoch >= Options.Epochs;

    /// <summary>
    /// Reads the checkpoint and checks the flags given with <c>--resume</c> against it.
    /// </summary>
    /// <exception cref="ArgumentException">One line naming every conflicting flag with both values.</exception>
    public static ResumePlan Build(ParseResult p, TrainingOptionBlock t, Option<string> wiring, Option<bool> extend, string path)
    {
        var info = Checkpoint.ReadInfo(path);
        var saved = info.Options ?? throw new InvalidDataException($"{path}: a model-only checkpoint cannot be resumed (no training options).");
        var data = info.Data;
        var conflicts = new List<string>();
        var handled = new HashSet<Option>();
        bool Given(Option o) => p.GetResult(o) is { Implicit: false };
        void Same<T>(Option<T> option, Func<T, string> flag, string? run)
        {
            handled.Add(option);
            if (!Given(option)) return;
            string value = flag(p.GetValue(option)!);
            if (run is not null && value != run) conflicts.Add($"{option.Name} {value} (the run has {run})");
        }
        static string F(float v) => v.ToString("R", CultureInfo.InvariantCulture);
        static string I(int v) => v.ToString(CultureInfo.InvariantCulture);
        static string Gradient(GateGradient g) => g == GateGradient.KeptOnly ? "kept-only" : "straight-through";

        Same(t.Model, m => ModelZoo.Get(m!).Name, info.Model);
        Same(t.InputSize, s => I(s!.Value), I(info.InputSize));
        Same(wiring, w => CommonOptions.Name(CommonOptions.ParseWiring(w)), CommonOptions.Name(info.Wiring.Kind));
        var gate = t.Gate.Bind(p);
        Same(t.Gate.Tau, _ => F(gate.Tau), F(info.Wiring.Tau));
        Same(t.Gate.Reduction, _ => I(gate.Reduction), I(info.Wiring.Reduction));
        Same(t.Gate.Gradient, _ => Gradient(gate.Gradient), Gradient(info.Wiring.Gradient));
        Same(t.Gate.Gate, _ => gate.Gate.ToString(), info.Wiring.Gate.ToString());
        Same(t.Gate.Temperature, _ => F(gate.GateTemperature), F(info.Wiring.GateTemperature));
        Same(t.Gate.TopKFraction, _ => F(gate.TopKFraction), F(info.Wiring.TopKFraction));
        Same(t.Gate.InEdgeNorm, _ => gate.NormalizeInEdges ? "on" : "off", info.Wiring.NormalizeInEdges ? "on" : "off");
        Same(t.Budget.Preset, b => Budget.Get(b).Name, data?.Budget);
        Same(t.Budget.Batch, b => I(b!.Value), I(saved.BatchSize));
        Same(t.Budget.Lr, v => F(v!.Value), F(saved.LearningRate));
        Same(t.Budget.TrainImages, n => I(n is 0 ? TrainSplit : n!.Value), data is null ? null : I(data.TrainImages));
        Same(t.Budget.TestImages, n => I(n is 0 ? TestSplit : n!.Value), data is null ? null : I(data.TestImages));
        Same(t.Data.Data, d => Path.GetFullPath(d!), data?.Directory);
        Same(t.Trainer.Seed, I, I(saved.Seed));
        Same(t.Trainer.Augment, a => a ? "on" : "off", saved.Augment ? "on" : "off");
        Same(t.Trainer.Smoothing, F, F(saved.LabelSmoothing));
        Same(t.Trainer.Sparsity, F, F(saved.SparsityWeight));
        Same(t.Trainer.TauWarmup, F, F(saved.TauWarmupFraction));
        Same(t.Trainer.KeepTarget, v => v is float r ? F(r) : "off", saved.KeepTarget is float k ? F(k) : "off");
        Same(t.Trainer.KeepTargetWarmup, F, F(saved.KeepTargetWarmupFraction));
        Same(t.Trainer.KeepTargetWeight, F, F(saved.KeepTargetWeight));
        Same(t.Trainer.KeepTemperature, F, F(saved.KeepTemperature));
        Same(t.Trainer.BatchShaping, F, F(saved.BatchShapingWeight));
        Same(t.Trainer.BatchShapingAlpha, F, F(saved.BatchShapingAlpha));
        Same(t.Trainer.BatchShapingBeta, F, F(saved.BatchShapingBeta));
        Same(t.Trainer.NoiseOffFraction, F, F(saved.NoiseOffFraction));

        var options = saved;
        handled.Add(t.Budget.Epochs);
        if (p.GetValue(t.Budget.Epochs) is int epochs && epochs != saved.Epochs)
        {
            if (!p.GetValue(extend)) conflicts.Add($"--epochs {epochs} (the run has {saved.Epochs}; add --extend to change the run's length)");
            else if (epochs < saved.Epochs) conflicts.Add($"--epochs {epochs} (the run has {saved.Epochs}; --extend only lengthens a run)");
            else options = options with { Epochs = epochs };
        }
        else if (p.GetValue(extend) && !Given(t.Budget.Epochs))
        {
            throw new ArgumentException("--extend needs --epochs with the run's new total.");
        }

        // Safe on resume: taken from the flag when given, else from the checkpoint.
        var run = t.Run;
        if (Given(run.EvalBatch)) options = options with { EvalBatchSize = p.GetValue(run.EvalBatch) };
        if (Given(run.LogEvery)) options = options with { LogInterval = p.GetValue(run.LogEvery) };
        if (Given(run.MaxLoss)) options = options with { MaxLoss = p.GetValue(run.MaxLoss) };
        if (Given(run.MaxLossRatio)) options = options with { MaxLossRatio = p.GetValue(run.MaxLossRatio) };
        if (Given(run.MaxGradNorm)) options = options with { MaxGradNorm = p.GetValue(run.MaxGradNorm) };
        options.Validate();
        handled.UnionWith(run.SafeOnResume);
        handled.Add(t.Out);

        // Any other flag (one added later and not listed above) is refused rather than silently ignored.
        foreach (var o in t.Options)
            if (!handled.Contains(o) && Given(o)) conflicts.Add($"{o.Name} (cannot be changed on resume)");
        if (conflicts.Count > 0)
            throw new ArgumentException($"--resume {path}: {string.Join("; ", conflicts)}. Omit them (the checkpoint's values are used) or start a new run.");

        var budget = t.Budget.Bind(p);
        return new ResumePlan(info, options, data?.Directory ?? t.Data.DataDirectory(p),
            data is null ? budget.TrainImages : data.TrainImages, data is null ? budget.TestImages : data.TestImages);
    }

    /// <summary>Refuses data whose files differ from those the run trained on.</summary>
    /// <exception cref="InvalidDataException">A file's SHA-256 differs (names the file and both checksums).</exception>
    public void CheckData(DataSource current)
    {
        if (Info.Data is not { } run) return;
        foreach (var (file, sha) in run.Sha256)
            if (current.Sha256.TryGetValue(file, out var now) && !string.Equals(now, sha, StringComparison.OrdinalIgnoreCase))
                throw new InvalidDataException($"{current.Directory}: {file} has SHA-256 {now}, but the run trained on a file with {sha}; resume needs the same data.");
    }
}
