using IlgpuDdw.Training.Experiments;

namespace IlgpuDdw.Cli;

/// <summary><c>ddw sweep</c>: runs a <see cref="SweepExperiment"/> and renders it (table, accuracy-versus-cost plot).</summary>
internal static class SweepCommand
{
    public static Command Build()
    {
        var training = new TrainingOptionBlock("runs/sweep-MODEL-yyyyMMdd-HHmmss (UTC) in the current folder");
        var targets = new Option<float[]>("--targets")
        {
            Description = "Target keep rates ρ in (0, 1] of the dynamic runs (each also gets a dense wiring pruned to the keep rate it reached).",
            DefaultValueFactory = _ => [0.3f, 0.5f, 0.7f],
            AllowMultipleArgumentsPerToken = true,
        };
        var seeds = new Option<int>("--seeds") { Description = "Train every point with K seeds (seed, seed+1, ...) and plot the spread.", DefaultValueFactory = _ => 1 };
        var json = CommonOptions.Json("Print sweep.json instead of the table.");
        var cmd = new Command("sweep", "Accuracy against cost: dynamic wiring at several target keep rates, chain and dense once, and dense wiring pruned to each " +
            "dynamic run's keep rate (fine-tuned with the same budget); plots test accuracy against effective MACs per sample.")
            .With([.. training.Options, targets, seeds, json]);
        cmd.SetAction(parse =>
        {
            int k = parse.GetValue(seeds);
            if (k < 1) throw new ArgumentException($"--seeds must be at least 1; got {k}.");
            var rho = parse.GetValue(targets) ?? [];
            if (rho.Length == 0) throw new ArgumentException("--targets needs at least one keep rate.");
            foreach (float t in rho)
                if (!(t > 0 && t <= 1)) throw new ArgumentException($"--targets {t.ToString(CultureInfo.InvariantCulture)} is outside (0, 1].");
            var t0 = training.Bind(parse);
            string outDir = Path.GetFullPath(t0.Out ?? Path.Combine("runs", $"sweep-{ModelZoo.Get(t0.Model).Name}-{DateTime.UtcNow:yyyyMMdd-HHmmss}"));
            var (loadedTrain, loadedTest) = training.Data.Load(parse, t0.Budget);
            var (spec, train, test) = TrainingOptionBlock.Fit(t0.Model, t0.InputSize, loadedTrain, loadedTest);
            var options = new SweepExperimentOptions
            {
                Model = spec, Targets = rho, Wiring = t0.Wiring with { Kind = WiringKind.Dynamic }, Training = t0.Trainer, Seeds = k, Budget = t0.Budget.Name,
                OutputDirectory = outDir, Overwrite = t0.Overwrite,
            };
            options.Validate();
            RunFiles.PrepareOutput(outDir, t0.Overwrite);
            options = options with { Data = DataOptionBlock.Source(training.Data.DataDirectory(parse), t0.Budget.Name, loadedTrain, loadedTest) };
            bool quiet = parse.GetValue(json);
            using var device = CliApp.OpenDevice(parse);
            TrainingOptionBlock.CheckBatch(device, spec, Enum.GetValues<WiringKind>().Select(kind => t0.Wiring with { Kind = kind }), t0.Trainer.BatchSize, train.Count);
            using var experiment = new SweepExperiment(device, options, train, test);
            if (!quiet)
                Console.WriteLine($"sweep {spec.Name} on {device}: budget {t0.Budget.Name} ({train.Count} training images × {t0.Trainer.Epochs} epoch(s), {test.Count} test images, " +
                    $"batch {t0.Trainer.BatchSize}), gate {t0.Wiring.Gate}, targets {string.Join(" ", rho.Select(SweepExperiment.TargetName))}, {k} seed(s) from {t0.Trainer.Seed}; output {outDir}");
            foreach (var run in experiment.Runs)
            {
                var p = quiet ? experiment.Execute(run) : ProgressDisplay.Run(run.Label, pr => experiment.Execute(run, pr));
                if (!quiet)
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{run.Label}: test accuracy {100 * p.TestAccuracy:F2}%, keep rate {100 * p.KeepRate:F1}%, {p.EffectiveMacs:N0} MACs/sample, {p.Seconds:F0} s"));
            }
            var result = experiment.Finish();
            string png = Path.Combine(outDir, "sweep.png");
            RunFiles.Write("plot", png, () => DiversityReport.SweepPlot(png, result));
            if (quiet)
            {
                Console.WriteLine(result.ToJson());
                return 0;
            }
            DiversityReport.PrintSweep(result);
            Console.WriteLine($"wrote {Path.Combine(outDir, "sweep.json")}, {png}, and per-arm results, metrics and checkpoints in {outDir}");
            return 0;
        });
        return cmd;
    }
}
