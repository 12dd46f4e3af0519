using System.Diagnostics;
using System.Globalization;
using IlgpuDdw.Data;
using IlgpuDdw.Runtime;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Training.Experiments;

/// <summary>
/// Accuracy against cost: <c>using var e = new SweepExperiment(device, options, train, test); var result = e.Run();</c>.
/// Per seed it trains chain and dense wiring, dynamic wiring at every target keep rate, and for every target the
/// static baseline at the same cost: the trained dense wiring, each stage pruned by edge weight to the keep rate the
/// dynamic run reached in that stage (<see cref="PruneMask"/>), fine-tuned with the same budget. To wrap each run
/// (e.g. in a progress display), call <see cref="Execute"/> for every entry of <see cref="Runs"/>, then <see cref="Finish"/>.
/// </summary>
public sealed class SweepExperiment : IDisposable
{
    private readonly Device _device;
    private readonly ImageDataset _train;
    private readonly ImageDataset _test;
    private readonly CompareExperiment _baseline;
    private readonly CompareExperiment[] _dynamic;
    private readonly MetricsWriter[] _pruned;
    private readonly List<SweepPoint> _points = new();

    /// <summary>Plans the runs and prepares the output folder and its sub-folders.</summary>
    /// <exception cref="ArgumentException">Invalid options.</exception>
    /// <exception cref="RunFileException">The output folder is a file, is not empty (without
    /// <see cref="SweepExperimentOptions.Overwrite"/>) or cannot be written.</exception>
    public SweepExperiment(Device device, SweepExperimentOptions options, ImageDataset train, ImageDataset test)
    {
        _device = device ?? throw new ArgumentNullException(nameof(device));
        Options = options ?? throw new ArgumentNullException(nameof(options));
        _train = train ?? throw new ArgumentNullException(nameof(train));
        _test = test ?? throw new ArgumentNullException(nameof(test));
        options.Validate();
        string dir = options.OutputDirectory;
        RunFiles.PrepareOutput(dir, options.Overwrite);
        CompareExperimentOptions Sub(string name, WiringKind[] wirings, float? target) => new()
        {
            Model = options.Model, Wirings = wirings, Wiring = options.Wiring, Training = options.Training with { KeepTarget = target },
            Seeds = options.Seeds, Budget = options.Budget, OutputDirectory = Path.Combine(dir, name), Overwrite = options.Overwrite, Data = options.Data,
        };
        var opened = new List<IDisposable>();
        try
        {
            _baseline = new CompareExperiment(device, Sub("baseline", [WiringKind.Chain, WiringKind.Dense], null), train, test);
            opened.Add(_baseline);
            _dynamic = new CompareExperiment[options.Targets.Count];
            _pruned = new MetricsWriter[options.Targets.Count];
            for (int t = 0; t < options.Targets.Count; t++)
            {
                _dynamic[t] = new CompareExperiment(device, Sub($"dynamic-{TargetName(options.Targets[t])}", [WiringKind.Dynamic], options.Targets[t]), train, test);
                opened.Add(_dynamic[t]);
                string pruned = Path.Combine(dir, $"pruned-{TargetName(options.Targets[t])}");
                RunFiles.PrepareOutput(pruned, options.Overwrite);
                _pruned[t] = new MetricsWriter(Path.Combine(pruned, "metrics.jsonl"), append: false);
                opened.Add(_pruned[t]);
            }
        }
        catch
        {
            foreach (var d in opened) d.Dispose();
            throw;
        }
        var runs = new List<SweepRun>();
        for (int s = 0; s < options.Seeds; s++)
        {
            int seed = options.Training.Seed + s;
            string suffix = options.Seeds == 1 ? "" : $" seed {seed}";
            runs.Add(new SweepRun(SweepArm.Chain, null, seed, s, "chain" + suffix));
            runs.Add(new SweepRun(SweepArm.Dense, null, seed, s, "dense" + suffix));
            foreach (float t in options.Targets) runs.Add(new SweepRun(SweepArm.Dynamic, t, seed, s, $"dynamic ρ={TargetName(t)}{suffix}"));
            foreach (float t in options.Targets) runs.Add(new SweepRun(SweepArm.Pruned, t, seed, s, $"pruned dense ρ={TargetName(t)}{suffix}"));
        }
        Runs = runs;
    }

    public SweepExperimentOptions Options { get; }

    /// <summary>The planned runs, seed by seed: chain, dense, dynamic at every target, pruned dense at every target.</summary>
    public IReadOnlyList<SweepRun> Runs { get; }

    /// <summary>The points trained so far.</summary>
    public IReadOnlyList<SweepPoint> Points => _points;

    /// <summary>Runs every planned run not yet executed, then <see cref="Finish"/>.</summary>
    public SweepResult Run(IProgress<TrainProgress>? progress = null)
    {
        foreach (var run in Runs.Where(r => !_points.Any(p => p.Run == r)).ToArray()) Execute(run, progress);
        return Finish();
    }

    /// <summary>Trains and evaluates one planned run. A pruned run needs the dense and dynamic runs of its seed (and target) first.</summary>
    /// <exception cref="InvalidOperationException">A pruned run before the runs it starts from.</exception>
    public SweepPoint Execute(SweepRun run, IProgress<TrainProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(run);
        SweepPoint point;
        if (run.Arm == SweepArm.Pruned) point = ExecutePruned(run, progress);
        else
        {
            var (experiment, kind) = run.Arm switch
            {
                SweepArm.Chain => (_baseline, WiringKind.Chain),
                SweepArm.Dense => (_baseline, WiringKind.Dense),
                _ => (_dynamic[TargetIndex(run)], WiringKind.Dynamic),
            };
            var r = experiment.Execute(experiment.Runs.Single(c => c.Wiring.Kind == kind && c.Seed == run.Seed), progress).Record;
            point = new SweepPoint(run, r.TestAccuracy, r.TestLoss, r.KeepRate, r.Macs, r.Diversity?.EffectiveMacs ?? r.EffectiveMacs, r.Seconds)
            {
                Diversity = r.Diversity, SkipSpeedup = r.SkipSpeedup,
            };
        }
        _points.Add(point);
        return point;
    }

    private SweepPoint ExecutePruned(SweepRun run, IProgress<TrainProgress>? progress)
    {
        int t = TargetIndex(run);
        var dynamic = _points.FirstOrDefault(p => p.Run.Arm == SweepArm.Dynamic && p.Run.Target == run.Target && p.Run.Seed == run.Seed)
            ?? throw new InvalidOperationException($"{run.Label} needs the dynamic run at ρ={TargetName(run.Target!.Value)} with seed {run.Seed} first.");
        if (!_points.Any(p => p.Run.Arm == SweepArm.Dense && p.Run.Seed == run.Seed))
            throw new InvalidOperationException($"{run.Label} needs the dense run with seed {run.Seed} first.");
        var clock = Stopwatch.StartNew();
        string dense = Path.Combine(Options.OutputDirectory, "baseline", $"dense-seed{run.Seed}.safetensors");
        using var model = Checkpoint.LoadModel(_device, dense);
        var keep = dynamic.Diversity!.Stages.ToDictionary(s => s.Stage, s => s.KeepRate);
        foreach (var stage in model.Stages)
            if (stage.Wiring is { EdgeLogits: { } logits } w)
                w.EdgeMask = PruneMask(logits.ToArray(), w.Nodes, keep[stage.Spec.Name]);
        using var trainer = new Trainer(model, _train, _test, Options.Training with { KeepTarget = null, Seed = run.Seed })
        {
            Metrics = _pruned[t], Data = Options.Data, Progress = progress,
        };
        trainer.Run();
        var eval = trainer.LastEval!;
        var cost = Models.CostModel.Compute(Options.Model, WiringKind.Dense, Options.Wiring.Reduction);
        _device.TrimPool();
        return new SweepPoint(run, eval.Accuracy, eval.Loss, eval.KeepRate, cost.TotalMacs, eval.Diversity!.EffectiveMacs, clock.Elapsed.TotalSeconds)
        {
            Diversity = eval.Diversity,
        };
    }

    /// <summary>
    /// The static pruning of one dense stage: keeps the <c>k = clamp(round(keepRate · E), 1, E)</c> edges with the largest
    /// logits (ties to the lower edge index) and, when none of them enters the output node n, swaps the weakest kept edge
    /// for the strongest edge into n (a stage whose output has no in-edge would output 0).
    /// </summary>
    /// <param name="logits">The E edge logits in <see cref="Adjacency.EdgeIndex"/> order.</param>
    /// <param name="nodes">n.</param>
    /// <param name="keepRate">Fraction of edges to keep, in [0, 1].</param>
    /// <returns>E flags, true = kept.</returns>
    /// <exception cref="ArgumentException">A length other than E, fewer than 2 nodes, or a keep rate outside [0, 1].</exception>
    public static bool[] PruneMask(IReadOnlyList<float> logits, int nodes, double keepRate)
    {
        ArgumentNullException.ThrowIfNull(logits);
        if (nodes < 2) throw new ArgumentException($"A stage with edges has at least 2 nodes; got {nodes}.", nameof(nodes));
        int edges = Adjacency.EdgeCountOf(nodes);
        if (logits.Count != edges) throw new ArgumentException($"A {nodes}-node stage has {edges} edge logits; got {logits.Count}.", nameof(logits));
        if (!(keepRate >= 0 && keepRate <= 1)) throw new ArgumentException($"Keep rate {keepRate} is outside [0, 1].", nameof(keepRate));
        int k = Math.Clamp((int)Math.Round(keepRate * edges, MidpointRounding.AwayFromZero), 1, edges);
        var order = Enumerable.Range(0, edges).OrderByDescending(e => logits[e]).ThenBy(e => e).ToArray();
        var mask = new bool[edges];
        foreach (int e in order.Take(k)) mask[e] = true;
        var intoOutput = Enumerable.Range(0, nodes).Select(i => Adjacency.EdgeIndex(nodes, i, nodes)).ToHashSet();
        if (!intoOutput.Any(e => mask[e]))
        {
            mask[order[k - 1]] = false;
            mask[order.First(intoOutput.Contains)] = true;
        }
        return mask;
    }

    /// <summary>Summarises the points trained so far and writes sweep.json (and each sub-folder's results.json).</summary>
    public SweepResult Finish()
    {
        _baseline.Finish();
        foreach (var d in _dynamic) d.Finish();
        var o = Options;
        var summary = _points.GroupBy(p => (p.Run.Arm, p.Run.Target)).Select(g => SweepSummary.Of(g.ToArray())).ToArray();
        var result = new SweepResult(o.Model.Name, _device.ToString(), o.Budget, _train.Count, _test.Count, o.Training.Epochs, o.Training.BatchSize,
            o.Training.LearningRate, o.Wiring.Gate, o.Wiring.Tau, o.Seeds, o.Training.Seed, o.Targets.ToArray(),
            DateTime.UtcNow.ToString("o", CultureInfo.InvariantCulture), Checkpoint.LibraryVersion, _points.ToArray(), summary);
        RunFiles.WriteAllText("sweep results", Path.Combine(o.OutputDirectory, "sweep.json"), result.ToJson());
        return result;
    }

    /// <summary>A target as written in folder names and labels (0.3, 0.55).</summary>
    public static string TargetName(float target) => target.ToString("0.###", CultureInfo.InvariantCulture);

    private int TargetIndex(SweepRun run) => Options.Targets.ToList().IndexOf(run.Target ?? float.NaN) is int i and >= 0 ? i
        : throw new ArgumentException($"{run.Label} is not a run of this sweep.", nameof(run));

    /// <summary>Closes the metrics files.</summary>
    public void Dispose()
    {
        _baseline.Dispose();
        foreach (var d in _dynamic) d.Dispose();
        foreach (var p in _pruned) p.Dispose();
    }
}
