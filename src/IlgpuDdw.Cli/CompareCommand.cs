using IlgpuDdw.Training.Experiments;

namespace IlgpuDdw.Cli;

/// <summary><c>ddw compare</c>: runs a <see cref="CompareExperiment"/> and renders it (table, curves, heatmaps, wiring graphs).</summary>
internal static class CompareCommand
{
    public static Command Build()
    {
        var training = new TrainingOptionBlock("runs/compare-MODEL-yyyyMMdd-HHmmss (UTC) in the current folder");
        var seeds = new Option<int>("--seeds") { Description = "Train each wiring with K seeds (seed, seed+1, ...) and report mean and spread.", DefaultValueFactory = _ => 1 };
        var json = CommonOptions.Json("Print one JSON object (with a runs array) instead of the table.");
        var parallel = new DistributedOptionBlock();
        var cmd = new Command("compare", "Train chain, dense and dynamic wiring of one model on Fashion-MNIST with the same seed and budget; print accuracy, cost and speed side by side.")
            .With([.. training.Options, seeds, json, .. parallel.Options]);
        cmd.SetAction(parse =>
        {
            parallel.Apply(parse);
            int k = parse.GetValue(seeds);
            if (k < 1) throw new ArgumentException($"--seeds must be at least 1; got {k}.");
            var t = training.Bind(parse);
            string name = ModelZoo.Get(t.Model).Name;
            string outDir = Path.GetFullPath(t.Out ?? Path.Combine("runs", $"compare-{name}-{DateTime.UtcNow:yyyyMMdd-HHmmss}"));
            var (loadedTrain, loadedTest) = training.Data.Load(parse, t.Budget);
            var (spec, train, test) = TrainingOptionBlock.Fit(t.Model, t.InputSize, loadedTrain, loadedTest);
            RunFiles.PrepareOutput(outDir, t.Overwrite);
            bool quiet = parse.GetValue(json);
            var options = new CompareExperimentOptions
            {
                Model = spec, Wiring = t.Wiring, Training = t.Trainer, Seeds = k, Budget = t.Budget.Name, OutputDirectory = outDir, Overwrite = t.Overwrite,
                Data = DataOptionBlock.Source(training.Data.DataDirectory(parse), t.Budget.Name, loadedTrain, loadedTest),
            };
            using var device = CliApp.OpenDevice(parse);
            TrainingOptionBlock.CheckBatch(device, spec, Enum.GetValues<Wiring.WiringKind>().Select(kind => t.Wiring with { Kind = kind }), t.Trainer.BatchSize, train.Count);
            using var experiment = new CompareExperiment(device, options, train, test);
            if (!quiet && (spec.InputSize != loadedTrain.Height || spec.InputChannels != ModelZoo.Get(t.Model).InputChannels))
                Console.WriteLine(TrainingOptionBlock.Describe(spec, Wiring.WiringKind.Chain, t.Wiring.Reduction, loadedTrain));
            if (!quiet)
                Console.WriteLine($"compare {spec.Name} on {device}: budget {t.Budget.Name} ({train.Count} training images × {t.Trainer.Epochs} epoch(s), {test.Count} test images, batch {t.Trainer.BatchSize}), {k} seed(s) from {t.Trainer.Seed}; output {outDir}");
            foreach (var run in experiment.Runs)
            {
                var r = quiet ? experiment.Execute(run) : ProgressDisplay.Run(run.Label, p => experiment.Execute(run, p));
                if (run.SeedIndex == 0) WriteWiringFigures(outDir, spec, r);
                if (!quiet)
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{run.Label}: test accuracy {100 * r.Record.TestAccuracy:F2}%, keep rate {100 * r.Record.KeepRate:F1}%, {r.Record.Seconds:F0} s"));
            }
            RunFiles.Write("plots", Path.Combine(outDir, "curves-*.png"), () => Plots.Curves(Path.Combine(outDir, "curves.png"),
                experiment.Results.Select(r => (r.Run.Label, r.StepLosses, (IReadOnlyList<double>)r.Record.Epochs.Select(h => h.TestAccuracy).ToArray())).ToList()));
            var result = experiment.Finish();
            if (quiet)
            {
                Console.WriteLine(result.ToJson());
                return 0;
            }
            PrintTable(result);
            DiversityReport.PrintDiversity(result.Runs.Where(r => r.Diversity is not null)
                .Select(r => ($"{CommonOptions.Name(r.Wiring)}{(result.Seeds > 1 ? $" seed {r.Seed}" : "")}", r.Diversity!, r.SkipSpeedup)).ToArray());
            Console.WriteLine($"wrote {Path.Combine(outDir, "results.json")}, curves-loss.png, curves-accuracy.png, adjacency-*.png, wiring-*.dot, metrics.jsonl, checkpoints");
            return 0;
        });
        return cmd;
    }

    private static void PrintTable(CompareResult result)
    {
        var ci = CultureInfo.InvariantCulture;
        var table = new Table().AddColumns("wiring", "params", "MACs static", "MACs effective / sample", "router MACs", "edge keep rate",
            "test accuracy", "train images/s", "eval images/s", "peak device memory");
        foreach (var s in result.Summary)
        {
            var r = result.Runs.Where(x => x.Wiring == s.Wiring).ToArray();
            string accuracy = result.Seeds == 1 ? $"{100 * r[0].TestAccuracy:F2}%" : $"{100 * s.TestAccuracyMean:F2} ± {100 * s.TestAccuracyStd:F2}%";
            table.AddRow(CommonOptions.Name(s.Wiring), r[0].Params.ToString("N0", ci), r[0].Macs.ToString("N0", ci), s.EffectiveMacsMean.ToString("N0", ci),
                r[0].RouterMacs.ToString("N0", ci), $"{100 * s.KeepRateMean:F1}%", accuracy, s.TrainImagesPerSecondMean.ToString("F1", ci),
                s.EvalImagesPerSecondMean.ToString("F1", ci), $"{r.Max(x => x.PeakBytes) / (1024.0 * 1024):F1} MiB");
        }
        Console.WriteLine($"{result.Model} on Fashion-MNIST, {result.Device}, budget {result.Budget}" + (result.Seeds > 1 ? $", mean ± std over {result.Seeds} seeds" : ""));
        AnsiConsole.Write(table);
    }

    private static void WriteWiringFigures(string outDir, ModelSpec spec, CompareRunResult run)
    {
        string wiring = CommonOptions.Name(run.Run.Wiring.Kind);
        foreach (var stage in run.Adjacency)
            if (stage.PerClass is { } perClass)
            {
                string png = Path.Combine(outDir, $"adjacency-{wiring}-{stage.Stage}.png");
                RunFiles.Write("plot", png, () => Plots.AdjacencyHeatmap(png, $"{spec.Name} {wiring} {stage.Stage}: mean edge weight per class", stage.Nodes, perClass, FashionMnist.ClassNames));
            }
        RunFiles.WriteAllText("wiring graph", Path.Combine(outDir, $"wiring-{wiring}.dot"), WiringDot.Build($"{spec.Name} {wiring} wiring (mean weight, keep %)", run.Adjacency));
    }
}
