using IlgpuDdw.Data;
using IlgpuDdw.Distributed;
using IlgpuDdw.Models;
using IlgpuDdw.Nn;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Training;

/// <summary>
/// Raised when training diverges: a NaN, infinite or exploding loss or gradient norm (see the limits of
/// <see cref="TrainerOptions"/>) stops it before the optimizer step, and a state with non-finite tensors is never
/// saved. The last checkpoint written is kept.
/// </summary>
public sealed class TrainingDivergedException(string message) : InvalidOperationException(message);

/// <summary>
/// Trains a <see cref="Module"/> on an <see cref="ImageDataset"/>: minimises the sum of its objective terms with SGD
/// (momentum, weight decay), cosine learning rate with linear warm-up, evaluation after every epoch, metrics as
/// JSON lines, checkpoints. Batches are prepared on a background thread while the device computes. A
/// <see cref="DdwNet"/> also gets the shape check of the data, the τ warm-up, the wiring statistics of the
/// evaluation and checkpoints. Usable from code: <c>using var t = new Trainer(model, train, test, options); t.Run();</c>.
/// </summary>
public sealed class Trainer : IDisposable
{
    private readonly TrainerOptions _options;
    private readonly BatchLoader _loader;
    private readonly CosineSchedule _schedule;
    private readonly List<EpochResult> _history = new();
    private readonly DdwNet? _net;
    private readonly float _targetTau;
    // The device-side status: [0] the divergence guard (StepGuard), then one record per step of the logging interval
    // (the term values, copied before the backward pass frees them; the correct count; Σ grad²), read once per interval.
    // Allocated outside the tensor pool: it is bookkeeping, not part of the step's tensors or their peak.
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _status;
    private readonly float[] _statusHost;
    private readonly int _interval; // steps per host read
    private readonly int _recordLength; // floats per step record
    private readonly List<PendingStep> _pending = new(); // steps queued since the last read
    private readonly Dictionary<int, IntTensor> _labels = new(); // one label buffer per batch size: no allocation per step
    private readonly StagedUpload<float> _imageUpload; // page-locked double buffers: uploads that do not wait for the device
    private readonly StagedUpload<int> _labelUpload;
    private readonly DataParallel? _parallel; // more than one rank

    /// <summary>Creates a trainer (validates the options and that the data fit the model).</summary>
    /// <param name="model">The model; a <see cref="DdwNet"/> for τ warm-up, wiring statistics and checkpoints.</param>
    /// <param name="train">Training data.</param>
    /// <param name="test">Test data (evaluated after every epoch).</param>
    /// <param name="options">Training settings.</param>
    /// <param name="terms">The objective, summed; the first term is the reported training loss. Default:
    /// <see cref="ObjectiveTerms.FromOptions"/>.</param>
    /// <param name="parallel">Data-parallel settings; null: <see cref="DataParallelOptions.Default"/> (<see cref="Communicator.World"/>:
    /// one process unless started by <c>mpirun</c> / <c>srun</c>). Over N &gt; 1 ranks the batch size is
    /// the global batch: each rank trains on its block of every batch (see <see cref="DataParallelOptions"/>).</param>
    /// <exception cref="ArgumentException">Invalid options, no terms, or images whose shape or class count does not fit the model.</exception>
    public Trainer(Module model, ImageDataset train, ImageDataset test, TrainerOptions options, IEnumerable<IObjectiveTerm>? terms = null,
        DataParallelOptions? parallel = null)
    {
        Model = model ?? throw new ArgumentNullException(nameof(model));
        Train = train ?? throw new ArgumentNullException(nameof(train));
        Test = test ?? throw new ArgumentNullException(nameof(test));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        options.Validate();
        _net = model as DdwNet;
        CheckData(train, "training");
        CheckData(test, "test");
        Terms = terms?.ToArray() ?? ObjectiveTerms.FromOptions(options, model);
        if (Terms.Count == 0) throw new ArgumentException("The objective needs at least one term.", nameof(terms));
        parallel ??= DataParallelOptions.Default;
        parallel.Validate();
        Communicator = parallel.Communicator ?? Communicator.World;
        int ranks = Communicator.Size;
        if (ranks > 1 && Math.Min(options.BatchSize, train.Count) < ranks)
            throw new ArgumentException($"The batch size {options.BatchSize} (the global batch) is smaller than the {ranks} ranks.");
        _loader = new BatchLoader(train, new BatchLoaderOptions
        {
            BatchSize = options.BatchSize,
            Shuffle = true,
            Seed = options.Seed,
            DropLast = train.Count > options.BatchSize,
            Augmentation = options.Augment ? new Augmentation() : null,
            ShardCount = ranks,
            ShardIndex = Communicator.Rank,
        });
        TotalSteps = _loader.BatchesPerEpoch * options.Epochs;
        _schedule = new CosineSchedule(options.LearningRate, TotalSteps, (int)Math.Round(options.WarmupFraction * TotalSteps));
        Optimizer = new Sgd(model.Parameters(), options.LearningRate, options.Momentum, options.Nesterov, options.WeightDecay, options.DecoupledWeightDecay);
        _targetTau = _net?.Wiring.Tau ?? 0f;
        _recordLength = Terms.Count + 2; // the terms, the batch's correct count, the squared gradient norm
        _interval = ranks > 1 ? 1 : options.LogInterval;
        _statusHost = new float[1 + _interval * _recordLength];
        _status = model.Device.Accelerator.Allocate1D<float>(_statusHost.Length);
        _status.MemSetToZero();
        if (ranks > 1) _parallel = new DataParallel(model, Optimizer, Communicator, parallel);
        GradientGroupSize = parallel.GradientGroupFor(model.Device);
        _imageUpload = new StagedUpload<float>(model.Device);
        _labelUpload = new StagedUpload<int>(model.Device);
    }

    /// <summary>Samples per gradient group of every step (<see cref="DataParallelOptions.GradientGroupSize"/> resolved for the device; 0: the whole batch).</summary>
    public int GradientGroupSize { get; }

    /// <summary>The ranks this trainer runs on (a single process: rank 0 of 1). Only rank 0 writes checkpoints and metrics and reports progress.</summary>
    public Communicator Communicator { get; }

    /// <summary>Whether batch norm uses the statistics of the global batch (more than one rank with <see cref="DataParallelOptions.SyncBatchNorm"/>).</summary>
    public bool SyncBatchNorm => _parallel?.SyncBatchNorm ?? false;

    /// <summary>Seconds the training loop waited for gradient all-reduces after the backward passes (0 for one process).</summary>
    public double AllReduceWaitSeconds => _parallel?.WaitSeconds ?? 0;

    private void CheckData(ImageDataset data, string what)
    {
        if (_net?.Spec is { } s)
        {
            if (data.Channels != s.InputChannels || data.Height != s.InputSize || data.Width != s.InputSize)
                throw new ArgumentException($"The {what} images are {data.Channels}×{data.Height}×{data.Width} but {s.Name} expects {s.InputChannels}×{s.InputSize}×{s.InputSize}.");
            if (data.ClassCount > s.NumClasses)
                throw new ArgumentException($"The {what} data has {data.ClassCount} classes but {s.Name} has {s.NumClasses} outputs.");
        }
        if (data.Count == 0) throw new ArgumentException($"The {what} data is empty.");
    }

    public Module Model { get; }

    /// <summary>The objective's terms (summed); the first is the reported training loss.</summary>
    public IReadOnlyList<IObjectiveTerm> Terms { get; }

    public ImageDataset Train { get; }

    public ImageDataset Test { get; }

    /// <summary>The optimizer (its momentum buffers are saved in checkpoints).</summary>
    public Sgd Optimizer { get; }

    public TrainerOptions Options => _options;

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

    /// <summary>The data the run trains on, recorded in its checkpoints (for resume checks); null if not known.</summary>
    public DataSource? Data { get; set; }

    /// <summary>Global L2 norm of the objective's gradient at the last step (NaN before the first).</summary>
    public float LastGradientNorm { get; private set; } = float.NaN;

    /// <summary>Whether every epoch has run.</summary>
    public bool IsComplete => Epoch >= _options.Epochs;

    /// <summary>Runs the remaining epochs; returns the history.</summary>
    /// <exception cref="TrainingDivergedException">The loss or the gradient norm became non-finite or passed a limit
    /// of <see cref="TrainerOptions"/> (the last checkpoint is kept).</exception>
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
        using var tape = new Tape(device) { FreeGradsEagerly = true, FreeActivationsEagerly = true, Observer = _parallel,
            BatchNormGroup = SyncBatchNorm ? Communicator : null, GradientGroupSize = GradientGroupSize };
        var tally = new EpochTally(Terms.Count);
        var values = new float[Terms.Count];
        bool dynamic = _net?.Wiring.Kind == WiringKind.Dynamic;
        float lossLimit = _options.MaxLossRatio > 0 && _history.Count > 0 ? (float)(_options.MaxLossRatio * _history[0].TrainLoss) : 0f;
        _pending.Clear();
        device.Kernels.Fill(device.Stream, 1, 1, 1, 0f, _status.View.SubView(0, 1)); // the guard: no step has stopped training
        foreach (var batch in _loader.Epoch(epoch, 0, cancellationToken))
        {
            Optimizer.LearningRate = _schedule.At(Step);
            if (dynamic) { _net!.SetTau(TauAt(Step)); _net.SetGateNoise(Step, Step < (1.0 - _options.NoiseOffFraction) * TotalSteps); }
            var x = tape.Own(Tensor.Empty(device, batch.Shape));
            _imageUpload.Upload(batch.Images, x.View); // page-locked, queued: no wait for the device
            var labels = Labels(batch.Labels);
            var logits = Model.Forward(tape, x);
            int globalCount = _parallel is null ? batch.Count : Math.Min(_options.BatchSize, Train.Count - batch.Index * _options.BatchSize);
            var context = new ObjectiveContext(Model, logits, labels, epoch, Step, TotalSteps) { Group = _parallel is null ? null : Communicator, GlobalBatch = globalCount };
            Tensor? objective = null;
            var parts = new Tensor[Terms.Count];
            for (int t = 0; t < Terms.Count; t++)
            {
                parts[t] = Terms[t].Compute(tape, context);
                objective = objective is null ? parts[t] : tape.Add(objective, parts[t]);
            }
            int slot = _pending.Count;
            var record = _status.View.SubView(1 + slot * _recordLength, _recordLength);
            Ops.CountCorrect(logits, labels, record.SubView(Terms.Count, 1));
            for (int t = 0; t < parts.Length; t++) // copied before the backward frees them
                device.Kernels.Copy(device.Stream, 1, 1, 1, parts[t].View, record.SubView(t, 1));
            if (_parallel is null)
            {
                Optimizer.ZeroGrad();
                tape.Backward(objective!);
            }
            else
            {
                _parallel.ZeroGrad();
                _parallel.Backward(tape, objective!, batch.Count, globalCount);
            }
            SumSquaredGradients(record.SubView(Terms.Count + 1, 1));
            _pending.Add(new PendingStep(Step, Optimizer.LearningRate, batch.Count, globalCount, lossLimit));
            if (_parallel is null)
            {
                // The guards on the device: a bad step (and every later one until the host reads) leaves the weights as they are.
                device.Kernels.StepGuard(device.Stream, 1, 1, 1, Terms.Count, slot, _recordLength, _options.MaxLoss, lossLimit, _options.MaxGradNorm, _status.View);
                Optimizer.Step(_status.View.SubView(0, 1));
                tape.Clear();
                Step++;
                if (_pending.Count == _interval) ReadInterval(tally, epoch, values);
            }
            else
            {
                ReadInterval(tally, epoch, values, tape); // every step: the guards need the ranks' combined loss first
                Optimizer.Step();
                tape.Clear();
                Step++;
            }
        }
        ReadInterval(tally, epoch, values);
        long correct = tally.Correct, seen = tally.Seen;
        var termSums = tally.TermSums;
        var trainClock = tally.Clock;
        device.Synchronize();
        double trainSeconds = trainClock.Elapsed.TotalSeconds;
        long peak = device.PeakBytes;
        if (_options.RecalibrateBnImages > 0 && _net is not null && epoch + 1 == _options.Epochs)
        {
            double before = Evaluate(Test).Accuracy;
            var recalibration = BatchNormRecalibration.Recalibrate(_net, Train, Math.Min(_options.RecalibrateBnImages, Train.Count), _options.EvalBatchSize);
            LastRecalibration = (recalibration, before);
        }
        var eval = Evaluate(Test);
        LastEval = eval;
        Epoch++;
        var result = new EpochResult(epoch, termSums[0] / seen, (double)correct / seen, eval.Loss, eval.Accuracy, seen / trainSeconds,
            eval.ImagesPerSecond, eval.KeepRate, eval.EffectiveMacs, Optimizer.LearningRate, dynamic ? TauAt(Step - 1) : _targetTau, peak)
        { Terms = Means(termSums, seen) };
        _history.Add(result);
        if (Communicator.IsRoot)
        {
            Metrics?.Write(EpochMetrics.From(RunModelName, RunWiringName, RunSeed, Step, result));
            if (CheckpointPath is not null) Checkpoint.Save(CheckpointPath, this);
        }
        if (_parallel is not null) Communicator.Barrier(); // no rank runs ahead of rank 0's checkpoint
        return result;
    }

    /// <summary>
    /// The precise batch-norm pass after the last epoch (<see cref="TrainerOptions.RecalibrateBnImages"/>) and the test
    /// accuracy before it (the last epoch's result holds the accuracy after it); null when none ran.
    /// </summary>
    public (RecalibrationResult Result, double TestAccuracyBefore)? LastRecalibration { get; private set; }

    /// <summary>The model name of this run's metrics records.</summary>
    internal string RunModelName => _net?.Spec.Name ?? Model.GetType().Name;

    /// <summary>The wiring name of this run's metrics records (none for a model that is not a <see cref="DdwNet"/>).</summary>
    internal string RunWiringName => _net?.Wiring.Kind.ToString().ToLowerInvariant() ?? "none";

    /// <summary>The seed of this run's metrics records.</summary>
    internal int RunSeed => _net?.Seed ?? _options.Seed;

    /// <summary>The batch's labels on the device, in the buffer kept for this batch size.</summary>
    private IntTensor Labels(int[] labels)
    {
        if (_labels.TryGetValue(labels.Length, out var buffer))
            buffer.CopyFrom(labels, _labelUpload);
        else
            _labels[labels.Length] = buffer = IntTensor.FromArray(Model.Device, labels);
        return buffer;
    }

    /// <summary>One step queued since the last read of the status: what the host needs to account for it.</summary>
    private readonly record struct PendingStep(int Step, float LearningRate, int LocalCount, int GlobalCount, float LossLimit);

    /// <summary>The running sums of one epoch's training steps, as the host reads them.</summary>
    private sealed class EpochTally(int terms)
    {
        public readonly double[] TermSums = new double[terms];
        public long Correct, Seen;
        public int Batches;
        public readonly Stopwatch Clock = Stopwatch.StartNew();
    }

    /// <summary>Writes Σ grad² over every parameter's gradient into <paramref name="target"/> (partial sums per tensor or over the one gradient buffer, then one total, all on the device).</summary>
    private void SumSquaredGradients(ArrayView<float> target)
    {
        var d = Model.Device;
        int count = 0;
        var flat = Optimizer.Gradients(); // one buffer: one sum of squares
        if (flat is { } all) count = Chunks((int)all.Length).Count;
        else
            foreach (var p in Optimizer.Parameters)
                if (p.GradOrNull is { } g) count += Chunks(g.Length).Count;
        if (count == 0)
        {
            d.Kernels.Fill(d.Stream, 1, 1, 1, 0f, target);
            return;
        }
        using var partial = Tensor.Empty(d, count);
        int offset = 0;
        if (flat is { } span)
            SumSquares(span, 0);
        else
            foreach (var p in Optimizer.Parameters)
                if (p.GradOrNull is { } g) offset = SumSquares(g.View, offset);
        Ops.SumInto(d, partial.View, count, 1f, target);

        int SumSquares(ArrayView<float> g, int at)
        {
            var (chunk, k) = Chunks((int)g.Length);
            int ext = d.Extent(k);
            d.Kernels.SumChunks(d.Stream, ext, k, ext, chunk, (int)g.Length, 1f, 1, g, partial.View.SubView(at, k));
            return at + k;
        }

        static (int Chunk, int Count) Chunks(int n)
        {
            int chunk = Math.Max(1, (int)Math.Ceiling(Math.Sqrt(n)));
            return (chunk, (n + chunk - 1) / chunk);
        }
    }

    /// <summary>
    /// Reads the status of the steps queued since the last read (one host read), accounts for them in order and reports
    /// their progress; throws <see cref="TrainingDivergedException"/> at the first step that stopped training (the guard
    /// on the device, or with several ranks the host check of the combined values), with <see cref="Step"/> set to it.
    /// </summary>
    private void ReadInterval(EpochTally tally, int epoch, float[] values, Tape? tape = null)
    {
        if (_pending.Count == 0) return;
        var d = Model.Device;
        int used = 1 + _pending.Count * _recordLength;
        d.Download(_status.View.SubView(0, used), _statusHost.AsSpan(0, used)); // the interval's one read (counted by the launch trace)
        int stopped = (int)_statusHost[0]; // 1 + the slot of the first step the device guard stopped, or 0
        var steps = _pending.ToArray();
        _pending.Clear();
        for (int i = 0; i < steps.Length; i++)
        {
            var p = steps[i];
            var record = _statusHost.AsSpan(1 + i * _recordLength, _recordLength);
            record[..values.Length].CopyTo(values);
            LastGradientNorm = MathF.Sqrt(record[^1]);
            int batchCorrect = (int)record[Terms.Count];
            if (_parallel is not null) batchCorrect = ReduceStep(values, batchCorrect, p.LocalCount, p.GlobalCount);
            string? problem = Divergence(values, LastGradientNorm, p.LossLimit);
            if (stopped == i + 1 || (_parallel is not null && problem is not null))
            {
                tape?.Clear();
                Step = p.Step;
                throw new TrainingDivergedException(
                    $"{problem ?? "The step's divergence guard stopped training"} at epoch {epoch + 1}, step {p.Step + 1} (learning rate {p.LearningRate:G3}); training stopped before the optimizer step."
                    + (CheckpointPath is not null && File.Exists(CheckpointPath) ? $" The last good checkpoint is kept at {CheckpointPath}." : " No checkpoint was written."));
            }
            tally.Correct += batchCorrect;
            StepLosses.Add(values[0]);
            for (int t = 0; t < values.Length; t++) tally.TermSums[t] += values[t] * p.GlobalCount;
            tally.Seen += p.GlobalCount;
            tally.Batches++;
            if (Communicator.IsRoot) Progress?.Report(new TrainProgress(epoch, _options.Epochs, tally.Batches, _loader.BatchesPerEpoch, tally.TermSums[0] / tally.Seen,
                (double)tally.Correct / tally.Seen, tally.Seen / tally.Clock.Elapsed.TotalSeconds) { Terms = Means(tally.TermSums, tally.Seen) });
        }
    }

    /// <summary>
    /// What is wrong with a step whose term values and gradient norm are given, or null when it may proceed: the checks
    /// of <see cref="Kernels.OptimizerKernels.StepGuard"/> (the terms summed in float, in order), with
    /// <paramref name="lossLimit"/> the ratio guard's limit on the first term (0: off).
    /// </summary>
    private string? Divergence(float[] values, float gradientNorm, float lossLimit)
    {
        var o = _options;
        float total = 0f;
        foreach (float v in values) total += v;
        if (!float.IsFinite(total)) return $"The training loss became {total}";
        if (o.MaxLoss > 0 && total > o.MaxLoss) return $"The training loss became {total:G4}, above the limit MaxLoss (--max-loss) = {o.MaxLoss:G}";
        if (lossLimit > 0 && values[0] > lossLimit)
            return $"The training loss became {values[0]:G4}, above MaxLossRatio (--max-loss-ratio) = {o.MaxLossRatio:G} × the first epoch's mean {_history[0].TrainLoss:G4}";
        if (!float.IsFinite(gradientNorm)) return $"The gradient norm became {gradientNorm}";
        if (o.MaxGradNorm > 0 && gradientNorm > o.MaxGradNorm)
            return $"The gradient norm became {gradientNorm:G4}, above the limit MaxGradNorm (--max-grad-norm) = {o.MaxGradNorm:G}";
        return null;
    }

    /// <summary>
    /// Evaluates on <paramref name="data"/> (no gradients; batch norm uses running statistics; dynamic wiring skips
    /// dead nodes): loss, accuracy, throughput, keep rate, effective MACs per sample and per-class mean adjacency.
    /// </summary>
    public EvalResult Evaluate(ImageDataset data) => _parallel is null
        ? Evaluator.Evaluate(Model, data, _options.EvalBatchSize, _options.LabelSmoothing)
        : ShardedEvaluation.Evaluate(_parallel, data, shard => Evaluator.Evaluate(Model, shard, _options.EvalBatchSize, _options.LabelSmoothing));

    /// <summary>
    /// Combines one step's numbers over the ranks: the term values weighted by each rank's share of the global batch
    /// (the global batch's mean; a term computed over the global batch already is unchanged), the correct
    /// predictions summed. Returns the global correct count.
    /// </summary>
    private int ReduceStep(float[] values, int correct, int localCount, int globalCount)
    {
        var packed = new double[values.Length + 1];
        double share = (double)localCount / globalCount;
        for (int t = 0; t < values.Length; t++) packed[t] = values[t] * share;
        packed[^1] = correct;
        _parallel!.Sum(packed);
        for (int t = 0; t < values.Length; t++) values[t] = (float)packed[t];
        return (int)Math.Round(packed[^1]);
    }

    private TermValue[] Means(double[] sums, long count) => Terms.Select((t, i) => new TermValue(t.Name, sums[i] / count)).ToArray();

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
        _parallel?.Dispose();
        _loader.Dispose();
        Optimizer.Dispose();
        _status.Dispose();
        _imageUpload.Dispose();
        _labelUpload.Dispose();
        foreach (var l in _labels.Values) l.Dispose();
        _labels.Clear();
    }
}
