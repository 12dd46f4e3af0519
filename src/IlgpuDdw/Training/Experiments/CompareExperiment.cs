using IlgpuDdw.Data;
using IlgpuDdw.Models;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Training.Experiments;

/// <summary>
/// Trains one model under several wirings with the same data, budget and seeds, and collects comparable numbers:
/// <c>using var e = new CompareExperiment(device, options, train, test); var result = e.Run();</c>. To wrap each run
/// (e.g. in a progress display), call <see cref="Execute"/> for every entry of <see cref="Runs"/>, then
/// <see cref="Finish"/>.
/// </summary>
public sealed class CompareExperiment : IDisposable
{
    private readonly Device _device;
    private readonly ImageDataset _train;
    private readonly ImageDataset _test;
    private readonly MetricsWriter? _metrics;
    private readonly List<CompareRunResult> _results = new();

    /// <summary>Plans the runs and, with an output directory, creates it and starts a new metrics.jsonl there.</summary>
    /// <exception cref="ArgumentException">Invalid options.</exception>
    /// <exception cref="RunFileException">The output directory is a file, is not empty (without
    /// <see cref="CompareExperimentOptions.Overwrite"/>) or cannot be written.</exception>
    public CompareExperiment(Device device, CompareExperimentOptions options, ImageDataset train, ImageDataset test)
    {
        _device = device ?? throw new ArgumentNullException(nameof(device));
        Options = options ?? throw new ArgumentNullException(nameof(options));
        _train = train ?? throw new ArgumentNullException(nameof(train));
        _test = test ?? throw new ArgumentNullException(nameof(test));
        options.Validate();
        var runs = new List<CompareRun>();
        foreach (var kind in options.Wirings)
            for (int s = 0; s < options.Seeds; s++)
            {
                int seed = options.Training.Seed + s;
                string name = Name(kind);
                runs.Add(new CompareRun(options.Wiring with { Kind = kind }, seed, s, options.Seeds == 1 ? name : $"{name} seed {seed}"));
            }
        Runs = runs;
        if (options.OutputDirectory is { } dir)
        {
            RunFiles.PrepareOutput(dir, options.Overwrite);
            _metrics = new MetricsWriter(Path.Combine(dir, "metrics.jsonl"), append: false);
        }
    }

    public CompareExperimentOptions Options { get; }

    /// <summary>The planned runs: every wiring, each with every seed.</summary>
    public IReadOnlyList<CompareRun> Runs { get; }

    /// <summary>The runs executed so far.</summary>
    public IReadOnlyList<CompareRunResult> Results => _results;

    /// <summary>Runs every planned run not yet executed, then <see cref="Finish"/>.</summary>
    public CompareResult Run(IProgress<TrainProgress>? progress = null)
    {
        foreach (var run in Runs.Where(r => !_results.Any(x => x.Run == r)).ToArray()) Execute(run, progress);
        return Finish();
    }

    /// <summary>Builds, trains and evaluates the model of one run (writing its checkpoint and metrics lines).</summary>
    public CompareRunResult Execute(CompareRun run, IProgress<TrainProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(run);
        var spec = Options.Model;
        var clock = Stopwatch.StartNew();
        using var model = new DdwNet(_device, spec, run.Wiring, run.Seed);
        using var trainer = new Trainer(model, _train, _test, Options.Training with { Seed = run.Seed })
        {
            Metrics = _metrics,
            Data = Options.Data,
            CheckpointPath = Options.OutputDirectory is { } dir ? Path.Combine(dir, $"{Name(run.Wiring.Kind)}-seed{run.Seed}.safetensors") : null,
            Progress = progress,
        };
        var history = trainer.Run();
        var eval = trainer.LastEval!;
        var cost = CostModel.Compute(spec, run.Wiring.Kind, run.Wiring.Reduction);
        var record = new RunRecord(run.Wiring.Kind, run.Seed, cost.TotalParameters, cost.TotalMacs, eval.EffectiveMacs, cost.RouterMacs, eval.KeepRate,
            eval.Accuracy, eval.Loss, history.Average(h => h.TrainImagesPerSecond), eval.ImagesPerSecond, history.Max(h => h.PeakBytes),
            clock.Elapsed.TotalSeconds, history.ToArray())
        {
            Diversity = eval.Diversity,
            SkipSpeedup = run.Wiring.Kind == WiringKind.Dynamic ? Evaluator.MeasureSkipSpeedup(model, _test, Options.Training.EvalBatchSize).Speedup : null,
        };
        var result = new CompareRunResult(run, record, trainer.StepLosses.ToArray(), StageAdjacency.FromEvaluation(spec, eval));
        _results.Add(result);
        _device.TrimPool();
        return result;
    }

    /// <summary>Summarises the executed runs; with an output directory, writes results.json there.</summary>
    public CompareResult Finish()
    {
        var o = Options;
        var runs = _results.Select(r => r.Record).ToArray();
        var summary = runs.GroupBy(r => r.Wiring).Select(g => SummaryStatistics.Of(g.Key, g.ToArray())).ToArray();
        var result = new CompareResult(o.Model.Name, _device.ToString(), o.Budget, _train.Count, _test.Count, o.Training.Epochs, o.Training.BatchSize,
            o.Training.LearningRate, o.Seeds, o.Training.Seed, o.Wiring.Tau, o.Wiring.Reduction, o.Wiring.Gradient, o.Training.SparsityWeight,
            o.Training.TauWarmupFraction, DateTime.UtcNow.ToString("o", CultureInfo.InvariantCulture), Checkpoint.LibraryVersion, runs, summary);
        if (o.OutputDirectory is { } dir) RunFiles.WriteAllText("results", Path.Combine(dir, "results.json"), result.ToJson());
        return result;
    }

    private static string Name(WiringKind kind) => kind.ToString().ToLowerInvariant();

    /// <summary>Closes metrics.jsonl.</summary>
    public void Dispose() => _metrics?.Dispose();
}
