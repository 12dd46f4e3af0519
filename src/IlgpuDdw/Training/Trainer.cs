using System.Diagnostics;
using IlgpuDdw.Autograd;
using IlgpuDdw.Data;
using IlgpuDdw.Models;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Training;

/// <summary>Training settings. Defaults suit the small Fashion-MNIST configurations.</summary>
public sealed record TrainerOptions
{
    /// <summary>Epochs to train.</summary>
    public int Epochs { get; init; } = 1;

    /// <summary>Training batch size.</summary>
    public int BatchSize { get; init; } = 64;

    /// <summary>Evaluation batch size.</summary>
    public int EvalBatchSize { get; init; } = 256;

    /// <summary>Peak learning rate (cosine decay to 0 after the warm-up).</summary>
    public float LearningRate { get; init; } = 0.1f;

    /// <summary>Linear learning-rate warm-up, as a fraction of all steps.</summary>
    public float WarmupFraction { get; init; } = 0.05f;

    /// <summary>SGD momentum.</summary>
    public float Momentum { get; init; } = 0.9f;

    /// <summary>Nesterov momentum.</summary>
    public bool Nesterov { get; init; }

    /// <summary>Weight decay.</summary>
    public float WeightDecay { get; init; } = 5e-4f;

    /// <summary>Decoupled (SGDW) instead of L2 weight decay.</summary>
    public bool DecoupledWeightDecay { get; init; }

    /// <summary>Label smoothing ε of the cross-entropy.</summary>
    public float LabelSmoothing { get; init; }

    /// <summary>Random crop (padding 2) and horizontal flip of training images.</summary>
    public bool Augment { get; init; }

    /// <summary>Seed of shuffling and augmentation (the model has its own init seed).</summary>
    public int Seed { get; init; }

    /// <summary>Sparsity loss weight λ: adds λ·mean(a) over every router output (dynamic wiring).</summary>
    public float SparsityWeight { get; init; }

    /// <summary>τ warm-up: τ rises linearly from 0 to the model's τ over this fraction of all steps (0 = off).</summary>
    public float TauWarmupFraction { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid value.</summary>
    public void Validate()
    {
        if (Epochs < 1) throw new ArgumentException($"Epochs must be at least 1; got {Epochs}.");
        if (BatchSize < 1) throw new ArgumentException($"Batch size must be at least 1; got {BatchSize}.");
        if (EvalBatchSize < 1) throw new ArgumentException($"Evaluation batch size must be at least 1; got {EvalBatchSize}.");
        if (!(LearningRate > 0) || !float.IsFinite(LearningRate)) throw new ArgumentException($"Learning rate must be positive; got {LearningRate}.");
        if (WarmupFraction is < 0 or > 1) throw new ArgumentException($"Warm-up fraction must be in [0, 1]; got {WarmupFraction}.");
        if (TauWarmupFraction is < 0 or > 1) throw new ArgumentException($"τ warm-up fraction must be in [0, 1]; got {TauWarmupFraction}.");
        if (SparsityWeight < 0 || !float.IsFinite(SparsityWeight)) throw new ArgumentException($"Sparsity weight must be ≥ 0; got {SparsityWeight}.");
        if (LabelSmoothing is < 0 or >= 1) throw new ArgumentException($"Label smoothing must be in [0, 1); got {LabelSmoothing}.");
    }
}

/// <summary>One epoch's numbers.</summary>
/// <param name="Epoch">0-based epoch.</param>
/// <param name="TrainLoss">Mean training loss.</param>
/// <param name="TrainAccuracy">Training accuracy (on augmented batches).</param>
/// <param name="TestLoss">Mean test loss.</param>
/// <param name="TestAccuracy">Test accuracy.</param>
/// <param name="TrainImagesPerSecond">Training throughput (forward + backward + step).</param>
/// <param name="EvalImagesPerSecond">Evaluation throughput.</param>
/// <param name="KeepRate">Mean fraction of kept edges at evaluation (1 for chain).</param>
/// <param name="EffectiveMacs">Mean MACs per test sample actually computed (dead nodes skipped).</param>
/// <param name="LearningRate">Learning rate at the end of the epoch.</param>
/// <param name="Tau">Gate threshold at the end of the epoch.</param>
/// <param name="PeakBytes">Peak device bytes held by tensors during the epoch's training steps.</param>
public sealed record EpochResult(int Epoch, double TrainLoss, double TrainAccuracy, double TestLoss, double TestAccuracy,
    double TrainImagesPerSecond, double EvalImagesPerSecond, double KeepRate, double EffectiveMacs, float LearningRate, float Tau, long PeakBytes);

/// <summary>Evaluation numbers.</summary>
/// <param name="Loss">Mean loss.</param>
/// <param name="Accuracy">Accuracy.</param>
/// <param name="ImagesPerSecond">Throughput.</param>
/// <param name="KeepRate">Mean fraction of kept edges over the wired stages (1 when none).</param>
/// <param name="EffectiveMacs">Mean MACs per sample actually computed.</param>
/// <param name="MeanAdjacency">Per stage with wiring: mean adjacency per class, [classes][n+1, n+1] flattened, else null.</param>
/// <param name="EdgeKeep">Per stage with wiring: the fraction of samples keeping each edge, [(n+1)²], else null.</param>
/// <param name="ClassCounts">Test samples per class.</param>
public sealed record EvalResult(double Loss, double Accuracy, double ImagesPerSecond, double KeepRate, double EffectiveMacs,
    IReadOnlyList<double[][]?> MeanAdjacency, IReadOnlyList<double[]?> EdgeKeep, IReadOnlyList<long> ClassCounts);

/// <summary>Progress of a running epoch (reported after every training batch).</summary>
/// <param name="Epoch">0-based epoch.</param>
/// <param name="Epochs">Epochs in the run.</param>
/// <param name="Batch">Batches done in this epoch.</param>
/// <param name="Batches">Batches per epoch.</param>
/// <param name="Loss">Running mean training loss of the epoch.</param>
/// <param name="Accuracy">Running training accuracy of the epoch.</param>
/// <param name="ImagesPerSecond">Training throughput so far in this epoch.</param>
public sealed record TrainProgress(int Epoch, int Epochs, int Batch, int Batches, double Loss, double Accuracy, double ImagesPerSecond);

/// <summary>Raised when the loss becomes NaN or infinite; training stops and nothing is saved.</summary>
public sealed class TrainingDivergedException(string message) : InvalidOperationException(message);

/// <summary>
/// Trains a <see cref="DdwNet"/> on an <see cref="ImageDataset"/>: SGD with momentum and weight decay, cosine
/// learning rate with linear warm-up, optional label smoothing, sparsity loss and τ warm-up, evaluation after every
/// epoch, metrics as JSON lines, checkpoints. Batches are prepared on a background thread while the device computes.
/// Usable from code: <c>using var t = new Trainer(model, train, test, options); t.Run();</c>.
/// </summary>
public sealed class Trainer : IDisposable
{
    private readonly TrainerOptions _options;
    private readonly BatchLoader _loader;
    private readonly CosineSchedule _schedule;
    private readonly List<EpochResult> _history = new();
    private readonly float _targetTau;

    /// <summary>Creates a trainer (validates the options and that the data fit the model).</summary>
    /// <exception cref="ArgumentException">Invalid options, or images whose shape or class count does not fit the model.</exception>
    public Trainer(DdwNet model, ImageDataset train, ImageDataset test, TrainerOptions options)
    {
        Model = model ?? throw new ArgumentNullException(nameof(model));
        Train = train ?? throw new ArgumentNullException(nameof(train));
        Test = test ?? throw new ArgumentNullException(nameof(test));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        options.Validate();
        CheckData(model, train, "training");
        CheckData(model, test, "test");
        _loader = new BatchLoader(train, new BatchLoaderOptions
        {
            BatchSize = options.BatchSize,
            Shuffle = true,
            Seed = options.Seed,
            DropLast = train.Count > options.BatchSize,
            Augmentation = options.Augment ? new Augmentation() : null,
        });
        TotalSteps = _loader.BatchesPerEpoch * options.Epochs;
        _schedule = new CosineSchedule(options.LearningRate, TotalSteps, (int)Math.Round(options.WarmupFraction * TotalSteps));
        Optimizer = new Sgd(model.Parameters(), options.LearningRate, options.Momentum, options.Nesterov, options.WeightDecay, options.DecoupledWeightDecay);
        _targetTau = model.Wiring.Tau;
    }

    private static void CheckData(DdwNet model, ImageDataset data, string what)
    {
        var s = model.Spec;
        if (data.Channels != s.InputChannels || data.Height != s.InputSize || data.Width != s.InputSize)
            throw new ArgumentException($"The {what} images are {data.Channels}×{data.Height}×{data.Width} but {s.Name} expects {s.InputChannels}×{s.InputSize}×{s.InputSize}.");
        if (data.ClassCount > s.NumClasses)
            throw new ArgumentException($"The {what} data has {data.ClassCount} classes but {s.Name} has {s.NumClasses} outputs.");
        if (data.Count == 0) throw new ArgumentException($"The {what} data is empty.");
    }

    /// <summary>The model.</summary>
    public DdwNet Model { get; }

    /// <summary>Training data.</summary>
    public ImageDataset Train { get; }

    /// <summary>Test data.</summary>
    public ImageDataset Test { get; }

    /// <summary>The optimizer (its momentum buffers are saved in checkpoints).</summary>
    public Sgd Optimizer { get; }

    /// <summary>The options.</summary>
    public TrainerOptions Options => _options;

    /// <summary>Epochs completed.</summary>
    public int Epoch { get; private set; }

    /// <summary>Training steps completed.</summary>
    public int Step { get; private set; }

    /// <summary>Steps of the whole run.</summary>
    public int TotalSteps { get; }

    /// <summary>Results of the completed epochs.</summary>
    public IReadOnlyList<EpochResult> History => _history;

    /// <summary>Training loss of every step so far (for curves).</summary>
    public List<float> StepLosses { get; } = new();

    /// <summary>The evaluation of the last completed epoch (null before the first).</summary>
    public EvalResult? LastEval { get; private set; }

    /// <summary>Receives progress after every training batch.</summary>
    public IProgress<TrainProgress>? Progress { get; set; }

    /// <summary>Receives one JSON record per epoch when set.</summary>
    public MetricsWriter? Metrics { get; set; }

    /// <summary>When set, a checkpoint is written here (atomically) after every epoch.</summary>
    public string? CheckpointPath { get; set; }

    /// <summary>Whether every epoch has run.</summary>
    public bool IsComplete => Epoch >= _options.Epochs;

    /// <summary>Runs the remaining epochs; returns the history.</summary>
    /// <exception cref="TrainingDivergedException">The loss became NaN or infinite (the last checkpoint is kept).</exception>
    public IReadOnlyList<EpochResult> Run(CancellationToken cancellationToken = default)
    {
        while (!IsComplete)
        {
            cancellationToken.ThrowIfCancellationRequested();
            RunEpoch(cancellationToken);
        }
        return _history;
    }

    /// <summary>The τ in force at a step (τ warm-up: linear from 0 to the target).</summary>
    public float TauAt(int step)
    {
        if (_options.TauWarmupFraction <= 0) return _targetTau;
        double span = _options.TauWarmupFraction * TotalSteps;
        return (float)(_targetTau * Math.Min(1.0, (step + 1) / Math.Max(1.0, span)));
    }

    /// <summary>Trains one epoch, evaluates, logs and (when configured) saves a checkpoint.</summary>
    public EpochResult RunEpoch(CancellationToken cancellationToken = default)
    {
        if (IsComplete) throw new InvalidOperationException($"All {_options.Epochs} epochs have run.");
        var device = Model.Device;
        int epoch = Epoch;
        Model.Train();
        device.ResetPeak();
        using var tape = new Tape(device) { FreeGradsEagerly = true, FreeActivationsEagerly = true };
        double lossSum = 0;
        long correct = 0, seen = 0;
        var trainClock = Stopwatch.StartNew();
        int batchIndex = 0;
        bool sparsity = _options.SparsityWeight > 0 && Model.Wiring.Kind == WiringKind.Dynamic;
        foreach (var batch in _loader.Epoch(epoch, 0, cancellationToken))
        {
            Optimizer.LearningRate = _schedule.At(Step);
            if (Model.Wiring.Kind == WiringKind.Dynamic) Model.SetTau(TauAt(Step));
            var x = tape.Own(Tensor.FromArray(device, batch.Images, batch.Shape));
            using var labels = IntTensor.FromArray(device, batch.Labels);
            var logits = Model.Forward(tape, x);
            var loss = tape.CrossEntropy(logits, labels, _options.LabelSmoothing);
            var objective = loss;
            if (sparsity)
            {
                var routerOutputs = Model.LastRouterOutputs().ToList();
                int count = routerOutputs.Sum(a => a.Length);
                foreach (var a in routerOutputs)
                    objective = tape.Add(objective, tape.Scale(tape.Sum(a), _options.SparsityWeight / count));
            }
            correct += Ops.CountCorrect(logits, labels);
            float lossValue = loss.ToArray()[0]; // read before the backward frees it
            Optimizer.ZeroGrad();
            tape.Backward(objective);
            if (!float.IsFinite(lossValue))
            {
                tape.Clear();
                throw new TrainingDivergedException(
                    $"The training loss became {lossValue} at epoch {epoch + 1}, step {Step + 1} (learning rate {Optimizer.LearningRate:G3}); training stopped."
                    + (CheckpointPath is not null && File.Exists(CheckpointPath) ? $" The last good checkpoint is kept at {CheckpointPath}." : " No checkpoint was written."));
            }
            Optimizer.Step();
            tape.Clear();
            StepLosses.Add(lossValue);
            lossSum += lossValue * batch.Count;
            seen += batch.Count;
            Step++;
            batchIndex++;
            Progress?.Report(new TrainProgress(epoch, _options.Epochs, batchIndex, _loader.BatchesPerEpoch, lossSum / seen, (double)correct / seen,
                seen / trainClock.Elapsed.TotalSeconds));
        }
        device.Synchronize();
        double trainSeconds = trainClock.Elapsed.TotalSeconds;
        long peak = device.PeakBytes;
        var eval = Evaluate(Test);
        LastEval = eval;
        Epoch++;
        var result = new EpochResult(epoch, lossSum / seen, (double)correct / seen, eval.Loss, eval.Accuracy, seen / trainSeconds,
            eval.ImagesPerSecond, eval.KeepRate, eval.EffectiveMacs, Optimizer.LearningRate, Model.Wiring.Kind == WiringKind.Dynamic ? TauAt(Step - 1) : Model.Wiring.Tau, peak);
        _history.Add(result);
        Metrics?.Write(new Dictionary<string, object?>
        {
            ["model"] = Model.Spec.Name, ["wiring"] = Model.Wiring.Kind.ToString().ToLowerInvariant(), ["seed"] = Model.Seed,
            ["epoch"] = epoch + 1, ["step"] = Step, ["trainLoss"] = result.TrainLoss, ["trainAccuracy"] = result.TrainAccuracy,
            ["testLoss"] = result.TestLoss, ["testAccuracy"] = result.TestAccuracy, ["trainImagesPerSecond"] = result.TrainImagesPerSecond,
            ["evalImagesPerSecond"] = result.EvalImagesPerSecond, ["keepRate"] = result.KeepRate, ["effectiveMacs"] = result.EffectiveMacs,
            ["learningRate"] = result.LearningRate, ["tau"] = result.Tau, ["peakBytes"] = result.PeakBytes,
        });
        if (CheckpointPath is not null) Checkpoint.Save(CheckpointPath, this);
        return result;
    }

    /// <summary>
    /// Evaluates on <paramref name="data"/> (no gradients; batch norm uses running statistics; dynamic wiring skips
    /// dead nodes): loss, accuracy, throughput, keep rate, effective MACs per sample and per-class mean adjacency.
    /// </summary>
    public EvalResult Evaluate(ImageDataset data) => Evaluator.Evaluate(Model, data, _options.EvalBatchSize, _options.LabelSmoothing);

    /// <summary>Restores counters and history from a checkpoint (used by <see cref="Checkpoint.Resume"/>).</summary>
    internal void Restore(int epoch, int step, IEnumerable<EpochResult> history, IEnumerable<float> stepLosses)
    {
        Epoch = epoch;
        Step = step;
        _history.Clear();
        _history.AddRange(history);
        StepLosses.Clear();
        StepLosses.AddRange(stepLosses);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _loader.Dispose();
        Optimizer.Dispose();
    }
}

/// <summary>Evaluation of a model on a dataset.</summary>
public static class Evaluator
{
    /// <summary>See <see cref="Trainer.Evaluate"/>.</summary>
    public static EvalResult Evaluate(DdwNet model, ImageDataset data, int batchSize = 256, float labelSmoothing = 0f)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        if (batchSize < 1) throw new ArgumentException($"Batch size must be at least 1; got {batchSize}.", nameof(batchSize));
        var device = model.Device;
        bool wasTraining = model.Training;
        model.Eval();
        using var loader = new BatchLoader(data, new BatchLoaderOptions { BatchSize = batchSize, Shuffle = false });
        using var tape = new Tape(device);
        int stages = model.Stages.Count;
        var classMean = new double[stages][][];
        var classCount = new long[data.ClassCount];
        var edgeKeep = new double[stages][];
        for (int s = 0; s < stages; s++)
        {
            int m = model.Stages[s].Nodes.Count + 1;
            bool wired = model.Stages[s].Kind != WiringKind.Chain;
            classMean[s] = wired ? Enumerable.Range(0, data.ClassCount).Select(_ => new double[m * m]).ToArray() : null!;
            edgeKeep[s] = wired ? new double[m * m] : null!;
        }
        double lossSum = 0, macsSum = 0, keepSum = 0;
        long correct = 0, seen = 0, keepBatches = 0;
        double seconds = 0;
        foreach (var batch in loader.Epoch(0))
        {
            long t0 = Stopwatch.GetTimestamp();
            float lossValue;
            int batchCorrect;
            var adjacency = new float[]?[stages];
            using (tape.NoGrad())
            {
                var x = tape.Own(Tensor.FromArray(device, batch.Images, batch.Shape));
                using var labels = IntTensor.FromArray(device, batch.Labels);
                var logits = model.Forward(tape, x);
                batchCorrect = Ops.CountCorrect(logits, labels);
                lossValue = tape.CrossEntropy(logits, labels, labelSmoothing).ToArray()[0];
                for (int s = 0; s < stages; s++)
                    adjacency[s] = model.Stages[s].LastAdjacency?.Tensor.ToArray();
            }
            tape.Clear();
            seconds += Stopwatch.GetElapsedTime(t0).TotalSeconds;
            correct += batchCorrect;
            lossSum += (double)lossValue * batch.Count;
            seen += batch.Count;
            var rule = model.Stages.All(s => s.SkipDeadNodes) ? DeadNodeRule.InputCut : DeadNodeRule.None;
            var cost = CostModel.Effective(model.Spec, model.Wiring.Kind, model.Wiring.Kind == WiringKind.Chain ? null : adjacency, model.Wiring.Reduction, rule);
            macsSum += cost.TotalMacs * batch.Count;
            for (int s = 0; s < stages; s++)
            {
                if (adjacency[s] is not { } a) continue;
                int m = model.Stages[s].Nodes.Count + 1;
                keepSum += cost.Stages[s].EdgeKeepRate;
                keepBatches++;
                for (int b = 0; b < batch.Count; b++)
                {
                    var dst = classMean[s][batch.Labels[b]];
                    for (int k = 0; k < m * m; k++)
                    {
                        float v = a[b * m * m + k];
                        dst[k] += v;
                        if (v > 0) edgeKeep[s][k]++;
                    }
                }
            }
            foreach (int label in batch.Labels) classCount[label]++;
        }
        for (int s = 0; s < stages; s++)
            if (classMean[s] is { } perClass)
                for (int c = 0; c < perClass.Length; c++)
                    if (classCount[c] > 0) for (int k = 0; k < perClass[c].Length; k++) perClass[c][k] /= classCount[c];
        foreach (var e in edgeKeep)
            if (e is not null) for (int k = 0; k < e.Length; k++) e[k] /= seen;
        model.Train(wasTraining);
        return new EvalResult(lossSum / seen, (double)correct / seen, seen / Math.Max(seconds, 1e-9),
            keepBatches == 0 ? 1 : keepSum / keepBatches, macsSum / seen, classMean.Select(c => (double[][]?)c).ToArray(),
            edgeKeep.Select(e => (double[]?)e).ToArray(), classCount);
    }
}
