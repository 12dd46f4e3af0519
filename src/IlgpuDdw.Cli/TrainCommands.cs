using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using IlgpuDdw.Autograd;
using IlgpuDdw.Cli.Reports;
using IlgpuDdw.Data;
using IlgpuDdw.Models;
using IlgpuDdw.Runtime;
using IlgpuDdw.Training;
using IlgpuDdw.Wiring;
using Spectre.Console;

namespace IlgpuDdw.Cli;

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

/// <summary><c>ddw train</c>, <c>ddw eval</c>, <c>ddw wiring</c> and <c>ddw compare</c>.</summary>
internal static class TrainCommands
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    private sealed class Common
    {
        public readonly Option<string> Model = new("--model", "-m") { Description = $"Model: {string.Join(", ", ModelZoo.Names)}.", DefaultValueFactory = _ => "resnet_mini" };
        public readonly Option<string?> Data = new("--data") { Description = $"Fashion-MNIST directory (default {FashionMnist.DefaultDirectory})." };
        public readonly Option<float> Tau = new("--tau") { Description = "Gate threshold τ in [0, 1).", DefaultValueFactory = _ => 0.5f };
        public readonly Option<int> Reduction = new("--router-reduction") { Description = "Router reduction r.", DefaultValueFactory = _ => 4 };
        public readonly Option<string> Gradient = new("--gate-gradient") { Description = "kept-only | straight-through", DefaultValueFactory = _ => "kept-only" };
        public readonly Option<string> Budget = new("--budget") { Description = "smoke | default | full", DefaultValueFactory = _ => "default" };
        public readonly Option<int?> Epochs = new("--epochs") { Description = "Epochs (overrides the budget)." };
        public readonly Option<int?> Batch = new("--batch") { Description = "Batch size (overrides the budget)." };
        public readonly Option<float?> Lr = new("--lr") { Description = "Peak learning rate (overrides the budget)." };
        public readonly Option<int?> TrainLimit = new("--train-images") { Description = "Use the first N training images (overrides the budget; 0 = all)." };
        public readonly Option<int?> TestLimit = new("--test-images") { Description = "Use the first N test images (overrides the budget; 0 = all)." };
        public readonly Option<int> Seed = new("--seed") { Description = "Seed of initialisation, shuffling and augmentation.", DefaultValueFactory = _ => 0 };
        public readonly Option<bool> Augment = new("--augment") { Description = "Random crop (padding 2) and horizontal flip." };
        public readonly Option<float> Smoothing = new("--label-smoothing") { Description = "Label smoothing ε.", DefaultValueFactory = _ => 0f };
        public readonly Option<float> Sparsity = new("--sparsity") { Description = "Sparsity loss weight λ (λ·mean of the router outputs).", DefaultValueFactory = _ => 0f };
        public readonly Option<float> TauWarmup = new("--tau-warmup") { Description = "Fraction of training over which τ rises from 0 to its value.", DefaultValueFactory = _ => 0f };
        public readonly Option<string?> Out = new("--out", "-o") { Description = "Output directory." };

        public void AddTo(Command c, bool training = true)
        {
            c.Options.Add(Model);
            c.Options.Add(Data);
            if (!training) return;
            foreach (var o in new Option[] { Tau, Reduction, Gradient, Budget, Epochs, Batch, Lr, TrainLimit, TestLimit, Seed, Augment, Smoothing, Sparsity, TauWarmup, Out })
                c.Options.Add(o);
        }

        public WiringConfig Wiring(ParseResult p, WiringKind kind)
        {
            var g = p.GetValue(Gradient)!.Trim().ToLowerInvariant() switch
            {
                "kept-only" or "keptonly" => GateGradient.KeptOnly,
                "straight-through" or "straightthrough" => GateGradient.StraightThrough,
                var other => throw new ArgumentException($"Unknown gate gradient '{other}'. Use kept-only or straight-through."),
            };
            var w = new WiringConfig { Kind = kind, Tau = p.GetValue(Tau), Reduction = p.GetValue(Reduction), Gradient = g };
            w.Validate();
            return w;
        }

        public (Budget Budget, TrainerOptions Options) Training(ParseResult p)
        {
            var b = Cli.Budget.Get(p.GetValue(Budget)!);
            b = b with
            {
                Epochs = p.GetValue(Epochs) ?? b.Epochs,
                BatchSize = p.GetValue(Batch) ?? b.BatchSize,
                LearningRate = p.GetValue(Lr) ?? b.LearningRate,
                TrainImages = p.GetValue(TrainLimit) is int t ? (t == 0 ? null : t) : b.TrainImages,
                TestImages = p.GetValue(TestLimit) is int v ? (v == 0 ? null : v) : b.TestImages,
            };
            if (b.TrainImages is < 1 || b.TestImages is < 1) throw new ArgumentException("--train-images and --test-images must be positive (0 = all).");
            var o = new TrainerOptions
            {
                Epochs = b.Epochs, BatchSize = b.BatchSize, LearningRate = b.LearningRate, Seed = p.GetValue(Seed), Augment = p.GetValue(Augment),
                LabelSmoothing = p.GetValue(Smoothing), SparsityWeight = p.GetValue(Sparsity), TauWarmupFraction = p.GetValue(TauWarmup),
            };
            o.Validate();
            return (b, o);
        }

        public (ImageDataset Train, ImageDataset Test) LoadData(ParseResult p, Budget? budget, bool train = true)
        {
            var options = new FashionMnistOptions { Directory = p.GetValue(Data) };
            var test = FashionMnist.Load(DatasetSplit.Test, options);
            if (budget?.TestImages is int nt && nt < test.Count) test = test.Subset(nt);
            if (!train) return (test, test);
            var tr = FashionMnist.Load(DatasetSplit.Train, options);
            if (budget?.TrainImages is int n && n < tr.Count) tr = tr.Subset(n);
            return (tr, test);
        }
    }

    public static IEnumerable<Command> Build()
    {
        yield return Compare();
        yield return Train();
        yield return Eval();
        yield return WiringCmd();
    }

    /// <summary>Progress: a live bar on a terminal, plain lines when redirected or under CI.</summary>
    private static T WithProgress<T>(string title, Func<IProgress<TrainProgress>, T> work)
    {
        bool plain = Console.IsOutputRedirected || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI"));
        if (plain)
        {
            var last = Stopwatch.StartNew();
            var progress = new PlainProgress(p =>
            {
                if (p.Batch == p.Batches || last.Elapsed.TotalSeconds >= 15)
                {
                    last.Restart();
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{title}: epoch {p.Epoch + 1}/{p.Epochs} batch {p.Batch}/{p.Batches} loss {p.Loss:F4} acc {100 * p.Accuracy:F1}% {p.ImagesPerSecond:F1} img/s"));
                }
            });
            return work(progress);
        }
        T result = default!;
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(title));
                result = work(new PlainProgress(p =>
                {
                    task.MaxValue = p.Batches * p.Epochs;
                    task.Value = p.Epoch * p.Batches + p.Batch;
                    task.Description = Markup.Escape(string.Create(CultureInfo.InvariantCulture,
                        $"{title} e{p.Epoch + 1}/{p.Epochs} loss {p.Loss:F3} acc {100 * p.Accuracy:F1}% {p.ImagesPerSecond:F0} img/s"));
                }));
            });
        return result;
    }

    private sealed class PlainProgress(Action<TrainProgress> report) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress value) => report(value);
    }

    private sealed record RunResult(string Wiring, int Seed, long Params, long Macs, double EffectiveMacs, long RouterMacs, double KeepRate,
        double TestAccuracy, double TestLoss, double TrainImagesPerSecond, double EvalImagesPerSecond, long PeakBytes, double Seconds,
        IReadOnlyList<EpochResult> Epochs);

    private static Command Compare()
    {
        var c = new Common();
        var seeds = new Option<int>("--seeds") { Description = "Train each wiring with K seeds (seed, seed+1, ...) and report mean and spread.", DefaultValueFactory = _ => 1 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object (with a runs array) instead of the table." };
        var cmd = new Command("compare", "Train chain, dense and dynamic wiring of one model on Fashion-MNIST with the same seed and budget; print accuracy, cost and speed side by side.");
        c.AddTo(cmd);
        cmd.Options.Add(seeds);
        cmd.Options.Add(json);
        cmd.SetAction(parse =>
        {
            int k = parse.GetValue(seeds);
            if (k < 1) throw new ArgumentException($"--seeds must be at least 1; got {k}.");
            var (budget, options) = c.Training(parse);
            string modelName = parse.GetValue(c.Model)!;
            var spec = ModelZoo.Get(modelName);
            var wirings = new[] { WiringKind.Chain, WiringKind.Dense, WiringKind.Dynamic }.Select(w => c.Wiring(parse, w)).ToArray();
            string outDir = Path.GetFullPath(parse.GetValue(c.Out) ?? Path.Combine("runs", $"compare-{spec.Name}-{DateTime.UtcNow:yyyyMMdd-HHmmss}"));
            var (train, test) = c.LoadData(parse, budget);
            Directory.CreateDirectory(outDir);
            bool quiet = parse.GetValue(json);
            using var device = CliApp.OpenDevice(parse);
            if (!quiet)
                Console.WriteLine($"compare {spec.Name} on {device}: budget {budget.Name} ({train.Count} training images × {budget.Epochs} epoch(s), {test.Count} test images, batch {budget.BatchSize}), {k} seed(s) from {options.Seed}; output {outDir}");
            var runs = new List<RunResult>();
            var curves = new List<(string, IReadOnlyList<float>, IReadOnlyList<double>)>();
            using var metrics = new MetricsWriter(Path.Combine(outDir, "metrics.jsonl"), append: false);
            foreach (var wiring in wirings)
            {
                for (int s = 0; s < k; s++)
                {
                    int seed = options.Seed + s;
                    string label = k == 1 ? Name(wiring.Kind) : $"{Name(wiring.Kind)} seed {seed}";
                    var clock = Stopwatch.StartNew();
                    using var model = new DdwNet(device, spec, wiring, seed);
                    using var trainer = new Trainer(model, train, test, options with { Seed = seed })
                    {
                        Metrics = metrics,
                        CheckpointPath = Path.Combine(outDir, $"{Name(wiring.Kind)}-seed{seed}.safetensors"),
                    };
                    var history = quiet ? RunQuiet(trainer) : WithProgress(label, p => { trainer.Progress = p; return trainer.Run(); });
                    var eval = trainer.LastEval!;
                    var cost = CostModel.Compute(spec, wiring.Kind, wiring.Reduction);
                    var last = history[^1];
                    runs.Add(new RunResult(Name(wiring.Kind), seed, cost.TotalParameters, cost.TotalMacs, eval.EffectiveMacs, cost.RouterMacs, eval.KeepRate,
                        eval.Accuracy, eval.Loss, history.Average(h => h.TrainImagesPerSecond), eval.ImagesPerSecond, history.Max(h => h.PeakBytes),
                        clock.Elapsed.TotalSeconds, history));
                    curves.Add((label, trainer.StepLosses.ToArray(), history.Select(h => h.TestAccuracy).ToArray()));
                    if (s == 0) WriteWiringFigures(outDir, spec, wiring.Kind, model, eval);
                    device.TrimPool();
                    if (!quiet)
                        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"{label}: test accuracy {100 * last.TestAccuracy:F2}%, keep rate {100 * eval.KeepRate:F1}%, {clock.Elapsed.TotalSeconds:F0} s"));
                }
            }
            Plots.Curves(Path.Combine(outDir, "curves.png"), curves);
            var summary = runs.GroupBy(r => r.Wiring).Select(g => new
            {
                wiring = g.Key,
                runs = g.Count(),
                testAccuracyMean = g.Average(r => r.TestAccuracy),
                testAccuracyStd = Std(g.Select(r => r.TestAccuracy)),
                effectiveMacsMean = g.Average(r => r.EffectiveMacs),
                keepRateMean = g.Average(r => r.KeepRate),
                trainImagesPerSecondMean = g.Average(r => r.TrainImagesPerSecond),
                evalImagesPerSecondMean = g.Average(r => r.EvalImagesPerSecond),
            }).ToArray();
            var result = new
            {
                model = spec.Name, device = device.ToString(), budget = budget.Name, trainImages = train.Count, testImages = test.Count,
                epochs = budget.Epochs, batchSize = budget.BatchSize, learningRate = budget.LearningRate, seeds = k, seed = options.Seed,
                tau = wirings[2].Tau, routerReduction = wirings[2].Reduction, gateGradient = wirings[2].Gradient.ToString(),
                sparsity = options.SparsityWeight, tauWarmup = options.TauWarmupFraction, date = DateTime.UtcNow.ToString("o", CultureInfo.InvariantCulture),
                version = Checkpoint.LibraryVersion,
                runs = runs.Select(r => new
                {
                    wiring = r.Wiring, seed = r.Seed, @params = r.Params, macs = r.Macs, effectiveMacs = r.EffectiveMacs, routerMacs = r.RouterMacs,
                    keepRate = r.KeepRate, testAccuracy = r.TestAccuracy, testLoss = r.TestLoss, trainImagesPerSecond = r.TrainImagesPerSecond,
                    evalImagesPerSecond = r.EvalImagesPerSecond, peakBytes = r.PeakBytes, seconds = r.Seconds, epochs = r.Epochs,
                }),
                summary,
            };
            string text = JsonSerializer.Serialize(result, Json);
            File.WriteAllText(Path.Combine(outDir, "results.json"), text);
            if (quiet)
            {
                Console.WriteLine(text);
                return 0;
            }
            PrintCompareTable(device, spec, budget, runs, k);
            Console.WriteLine($"wrote {Path.Combine(outDir, "results.json")}, curves-loss.png, curves-accuracy.png, adjacency-*.png, wiring-*.dot, metrics.jsonl, checkpoints");
            return 0;
        });
        return cmd;
    }

    private static IReadOnlyList<EpochResult> RunQuiet(Trainer t) => t.Run();

    private static string Name(WiringKind k) => k.ToString().ToLowerInvariant();

    private static double Std(IEnumerable<double> values)
    {
        var v = values.ToArray();
        if (v.Length < 2) return 0;
        double m = v.Average();
        return Math.Sqrt(v.Sum(x => (x - m) * (x - m)) / (v.Length - 1));
    }

    private static void PrintCompareTable(Device device, ModelSpec spec, Budget budget, List<RunResult> runs, int seeds)
    {
        var ci = CultureInfo.InvariantCulture;
        var table = new Table().AddColumns("wiring", "params", "MACs static", "MACs effective / sample", "router MACs", "edge keep rate",
            "test accuracy", "train images/s", "eval images/s", "peak device memory");
        foreach (var g in runs.GroupBy(r => r.Wiring))
        {
            var r = g.ToArray();
            string Acc() => seeds == 1 ? $"{100 * r[0].TestAccuracy:F2}%" : $"{100 * r.Average(x => x.TestAccuracy):F2} ± {100 * Std(r.Select(x => x.TestAccuracy)):F2}%";
            table.AddRow(g.Key, r[0].Params.ToString("N0", ci), r[0].Macs.ToString("N0", ci), r.Average(x => x.EffectiveMacs).ToString("N0", ci),
                r[0].RouterMacs.ToString("N0", ci), $"{100 * r.Average(x => x.KeepRate):F1}%", Acc(), r.Average(x => x.TrainImagesPerSecond).ToString("F1", ci),
                r.Average(x => x.EvalImagesPerSecond).ToString("F1", ci), $"{r.Max(x => x.PeakBytes) / (1024.0 * 1024):F1} MiB");
        }
        Console.WriteLine($"{spec.Name} on Fashion-MNIST, {device}, budget {budget.Name}" + (seeds > 1 ? $", mean ± std over {seeds} seeds" : ""));
        AnsiConsole.Write(table);
    }

    private static void WriteWiringFigures(string outDir, ModelSpec spec, WiringKind kind, DdwNet model, EvalResult eval)
    {
        var stages = new List<(string, int, double[], double[]?)>();
        for (int s = 0; s < spec.Stages.Count; s++)
        {
            int n = spec.Stages[s].Nodes.Count, m = n + 1;
            var perClass = eval.MeanAdjacency[s];
            double[] mean;
            if (perClass is null)
            {
                mean = new double[m * m];
                for (int i = 0; i + 1 < m; i++) mean[i * m + Math.Min(i + 1, n)] = 1; // chain: node i → i+1, last → output
            }
            else
            {
                long total = eval.ClassCounts.Sum();
                mean = new double[m * m];
                for (int c = 0; c < perClass.Length; c++)
                    for (int e = 0; e < m * m; e++) mean[e] += perClass[c][e] * eval.ClassCounts[c] / Math.Max(1, total);
                Plots.AdjacencyHeatmap(Path.Combine(outDir, $"adjacency-{Name(kind)}-{spec.Stages[s].Name}.png"),
                    $"{spec.Name} {Name(kind)} {spec.Stages[s].Name}: mean edge weight per class", n, perClass, FashionMnist.ClassNames);
            }
            stages.Add((spec.Stages[s].Name, n, mean, eval.EdgeKeep[s]));
        }
        File.WriteAllText(Path.Combine(outDir, $"wiring-{Name(kind)}.dot"), WiringDot.Build($"{spec.Name} {Name(kind)} wiring (mean weight, keep %)", stages));
    }

    private static Command Train()
    {
        var c = new Common();
        var wiring = new Option<string>("--wiring", "-w") { Description = "chain | dense | dynamic", DefaultValueFactory = _ => "dynamic" };
        var resume = new Option<string?>("--resume") { Description = "Continue the run saved in this checkpoint (its settings are used; --epochs may extend it)." };
        var cmd = new Command("train", "Train one wiring of a model on Fashion-MNIST; writes a checkpoint after every epoch and metrics as JSON lines.");
        c.AddTo(cmd);
        cmd.Options.Add(wiring);
        cmd.Options.Add(resume);
        cmd.SetAction(parse =>
        {
            var (budget, options) = c.Training(parse);
            var (train, test) = c.LoadData(parse, budget);
            using var device = CliApp.OpenDevice(parse);
            Trainer trainer;
            string outDir;
            if (parse.GetValue(resume) is { } from)
            {
                trainer = Checkpoint.Resume(device, from, train, test, parse.GetValue(c.Epochs));
                outDir = Path.GetFullPath(parse.GetValue(c.Out) ?? Path.GetDirectoryName(Path.GetFullPath(from))!);
                Console.WriteLine($"resuming {from} at epoch {trainer.Epoch + 1} of {trainer.Options.Epochs}");
            }
            else
            {
                var w = c.Wiring(parse, CliApp.ParseWiring(parse.GetValue(wiring)!));
                var model = DdwNet.Create(device, parse.GetValue(c.Model)!, w, options.Seed);
                trainer = new Trainer(model, train, test, options);
                outDir = Path.GetFullPath(parse.GetValue(c.Out) ?? Path.Combine("runs", $"train-{model.Spec.Name}-{Name(w.Kind)}-{DateTime.UtcNow:yyyyMMdd-HHmmss}"));
            }
            Directory.CreateDirectory(outDir);
            using var model_ = (DdwNet)trainer.Model;
            using var t = trainer;
            using var metrics = new MetricsWriter(Path.Combine(outDir, "metrics.jsonl"));
            trainer.Metrics = metrics;
            trainer.CheckpointPath = Path.Combine(outDir, "checkpoint.safetensors");
            Console.WriteLine($"training {model_.Spec.Name} ({Name(model_.Wiring.Kind)}) on {device}: {train.Count} images × {trainer.Options.Epochs} epochs; output {outDir}");
            WithProgress("train", p => { trainer.Progress = p; return trainer.Run(); });
            var table = new Table().AddColumns("epoch", "train loss", "train acc", "test loss", "test acc", "keep rate", "MACs / sample", "train img/s", "eval img/s");
            foreach (var h in trainer.History)
                table.AddRow((h.Epoch + 1).ToString(CultureInfo.InvariantCulture), $"{h.TrainLoss:F4}", $"{100 * h.TrainAccuracy:F2}%", $"{h.TestLoss:F4}",
                    $"{100 * h.TestAccuracy:F2}%", $"{100 * h.KeepRate:F1}%", h.EffectiveMacs.ToString("N0", CultureInfo.InvariantCulture),
                    $"{h.TrainImagesPerSecond:F1}", $"{h.EvalImagesPerSecond:F1}");
            AnsiConsole.Write(table);
            Console.WriteLine($"checkpoint: {trainer.CheckpointPath}");
            return 0;
        });
        return cmd;
    }

    private static Command Eval()
    {
        var c = new Common();
        var checkpoint = new Option<string>("--checkpoint", "-c") { Description = "Checkpoint file.", Required = true };
        var json = new Option<bool>("--json") { Description = "Print one JSON object." };
        var noSkip = new Option<bool>("--no-skip") { Description = "Compute every node (no dead-node skipping)." };
        var cmd = new Command("eval", "Evaluate a checkpoint on the Fashion-MNIST test set.");
        cmd.Options.Add(checkpoint);
        cmd.Options.Add(c.Data);
        cmd.Options.Add(c.TestLimit);
        cmd.Options.Add(json);
        cmd.Options.Add(noSkip);
        cmd.SetAction(parse =>
        {
            string path = parse.GetValue(checkpoint)!;
            var info = Checkpoint.ReadInfo(path);
            var budget = new Budget("eval", null, parse.GetValue(c.TestLimit) is int n and > 0 ? n : null, 1, 1, 0.1f);
            var (_, test) = c.LoadData(parse, budget, train: false);
            using var device = CliApp.OpenDevice(parse);
            using var model = Checkpoint.LoadModel(device, path);
            model.SetSkipDeadNodes(!parse.GetValue(noSkip));
            var r = Evaluator.Evaluate(model, test);
            var cost = CostModel.Compute(model.Spec, model.Wiring.Kind, model.Wiring.Reduction);
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    checkpoint = path, model = info.Model, wiring = Name(info.Wiring.Kind), epoch = info.Epoch, device = device.ToString(), images = test.Count,
                    testAccuracy = r.Accuracy, testLoss = r.Loss, keepRate = r.KeepRate, @params = cost.TotalParameters, macs = cost.TotalMacs,
                    effectiveMacs = r.EffectiveMacs, imagesPerSecond = r.ImagesPerSecond,
                }, Json));
                return 0;
            }
            var table = new Table().AddColumns("model", "wiring", "epochs", "test images", "test accuracy", "test loss", "keep rate", "MACs static", "MACs effective", "images/s");
            table.AddRow(info.Model, Name(info.Wiring.Kind), info.Epoch.ToString(CultureInfo.InvariantCulture), test.Count.ToString(CultureInfo.InvariantCulture),
                $"{100 * r.Accuracy:F2}%", $"{r.Loss:F4}", $"{100 * r.KeepRate:F1}%", cost.TotalMacs.ToString("N0", CultureInfo.InvariantCulture),
                r.EffectiveMacs.ToString("N0", CultureInfo.InvariantCulture), $"{r.ImagesPerSecond:F1}");
            Console.WriteLine($"device: {device}");
            AnsiConsole.Write(table);
            return 0;
        });
        return cmd;
    }

    private static Command WiringCmd()
    {
        var c = new Common();
        var checkpoint = new Option<string>("--checkpoint", "-c") { Description = "Checkpoint file.", Required = true };
        var index = new Option<int[]>("--index", "-i") { Description = "Test image indices (repeatable).", DefaultValueFactory = _ => [0], AllowMultipleArgumentsPerToken = true };
        var outDir = new Option<string?>("--out", "-o") { Description = "Directory for the PNGs (default: next to the checkpoint)." };
        var cmd = new Command("wiring", "Print and plot the adjacency matrices the model chose for given test images.");
        cmd.Options.Add(checkpoint);
        cmd.Options.Add(index);
        cmd.Options.Add(c.Data);
        cmd.Options.Add(outDir);
        cmd.SetAction(parse =>
        {
            string path = parse.GetValue(checkpoint)!;
            var indices = parse.GetValue(index) ?? [0];
            Checkpoint.ReadInfo(path);
            var (_, test) = c.LoadData(parse, null, train: false);
            foreach (int i in indices)
                if (i < 0 || i >= test.Count) throw new ArgumentException($"--index {i} is outside the test set (0..{test.Count - 1}).");
            using var device = CliApp.OpenDevice(parse);
            using var model = Checkpoint.LoadModel(device, path);
            model.Eval();
            string dir = Path.GetFullPath(parse.GetValue(outDir) ?? Path.GetDirectoryName(Path.GetFullPath(path))!);
            Directory.CreateDirectory(dir);
            using var tape = new Tape(device);
            foreach (int i in indices)
            {
                using (tape.NoGrad())
                {
                    var x = tape.Own(Tensor.FromArray(device, test.Image(i), 1, test.Channels, test.Height, test.Width));
                    var logits = model.Forward(tape, x);
                    int predicted = Ops.Argmax(logits)[0];
                    Console.WriteLine($"test image {i}: label {FashionMnist.ClassNames[test.Labels[i]]}, predicted {FashionMnist.ClassNames[predicted]}");
                    var figures = new List<(string, int, float[,])>();
                    for (int s = 0; s < model.Stages.Count; s++)
                    {
                        var st = model.Stages[s];
                        int n = st.Nodes.Count, m = n + 1;
                        var a = new float[m, m];
                        if (st.LastAdjacency is { } adj)
                        {
                            var r = adj.Read();
                            for (int p = 0; p < m; p++) for (int q = 0; q < m; q++) a[p, q] = r[0, p, q];
                        }
                        else
                        {
                            for (int p = 0; p < n; p++) a[p, p + 1] = 1;
                        }
                        figures.Add((st.Spec.Name, n, a));
                        var table = new Table().Title($"{Markup.Escape(st.Spec.Name)} ({Name(st.Kind)})").AddColumn("from \\ to");
                        for (int q = 1; q < m; q++) table.AddColumn(q == n ? "out" : q.ToString(CultureInfo.InvariantCulture));
                        for (int p = 0; p < n; p++)
                            table.AddRow(new[] { p.ToString(CultureInfo.InvariantCulture) }.Concat(Enumerable.Range(1, n).Select(q => q <= p ? "" : a[p, q] == 0 ? "[grey]cut[/]" : a[p, q].ToString("F3", CultureInfo.InvariantCulture))).ToArray());
                        AnsiConsole.Write(table);
                    }
                    string png = Path.Combine(dir, $"wiring-{i}.png");
                    Plots.SampleAdjacency(png, $"image {i} ({FashionMnist.ClassNames[test.Labels[i]]})", figures);
                    Console.WriteLine($"wrote {png}");
                }
                tape.Clear();
            }
            return 0;
        });
        return cmd;
    }
}
