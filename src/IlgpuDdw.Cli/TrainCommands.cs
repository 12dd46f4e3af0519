using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using IlgpuDdw.Autograd;
using IlgpuDdw.Cli.Options;
using IlgpuDdw.Cli.Reports;
using IlgpuDdw.Data;
using IlgpuDdw.Models;
using IlgpuDdw.Runtime;
using IlgpuDdw.Training;
using Spectre.Console;

namespace IlgpuDdw.Cli;

/// <summary><c>ddw compare</c>, <c>ddw train</c>, <c>ddw eval</c>, <c>ddw recalibrate-bn</c> and <c>ddw wiring</c>.</summary>
internal static class TrainCommands
{
    public static IEnumerable<Command> Build()
    {
        yield return CompareCommand.Build();
        yield return Train();
        yield return Eval();
        yield return RecalibrateBn();
        yield return WiringCmd();
    }

    private static Command Train()
    {
        var training = new TrainingOptionBlock();
        var wiring = CommonOptions.Wiring("dynamic");
        var resume = new Option<string?>("--resume") { Description = ResumePlan.ResumeHelp };
        var extend = new Option<bool>("--extend") { Description = ResumePlan.ExtendHelp };
        var cmd = new Command("train", "Train one wiring of a model on Fashion-MNIST; writes a checkpoint after every epoch and metrics as JSON lines.")
            .With([.. training.Options, wiring, resume, extend]);
        cmd.SetAction(parse =>
        {
            string outDir;
            Func<Device, Trainer> start;
            Func<Trainer, MetricsWriter> openMetrics;
            if (parse.GetValue(resume) is { } from)
            {
                var plan = ResumePlan.Build(parse, training, wiring, extend, from);
                if (plan.IsComplete)
                {
                    Console.WriteLine($"run already complete (epoch {plan.Info.Epoch} of {plan.Options.Epochs}); nothing to do");
                    return 0;
                }
                string checkpointDir = Path.GetDirectoryName(Path.GetFullPath(from))!;
                outDir = Path.GetFullPath(parse.GetValue(training.Out) ?? checkpointDir);
                if (outDir == checkpointDir) RunFiles.CheckWritable(outDir);
                else RunFiles.PrepareOutput(outDir, parse.GetValue(training.Run.Overwrite));
                if (plan.Info.Data is null)
                    Console.WriteLine($"note: {from} records no data settings (older version); using --data, --budget, --train-images and --test-images as given");
                var (train, test) = DataOptionBlock.Load(plan.DataDirectory, plan.TrainImages, plan.TestImages);
                var source = DataOptionBlock.Source(plan.DataDirectory, plan.Info.Data?.Budget, train, test);
                plan.CheckData(source);
                string checkpoint = outDir == checkpointDir ? Path.GetFullPath(from) : Path.Combine(outDir, "checkpoint.safetensors");
                start = device =>
                {
                    var trainer = Checkpoint.Resume(device, from, train, test, options: plan.Options);
                    trainer.Data ??= source;
                    trainer.CheckpointPath = checkpoint;
                    Console.WriteLine($"resuming {from} at epoch {trainer.Epoch + 1} of {trainer.Options.Epochs}");
                    return trainer;
                };
                openMetrics = trainer => MetricsWriter.ForResume(Path.Combine(outDir, "metrics.jsonl"), trainer);
            }
            else
            {
                var t = training.Bind(parse);
                var w = t.Wiring with { Kind = CommonOptions.ParseWiring(parse.GetValue(wiring)!) };
                var spec = ModelZoo.Get(t.Model);
                outDir = Path.GetFullPath(t.Out ?? Path.Combine("runs", $"train-{spec.Name}-{CommonOptions.Name(w.Kind)}-{DateTime.UtcNow:yyyyMMdd-HHmmss}"));
                RunFiles.PrepareOutput(outDir, t.Overwrite);
                var (train, test) = training.Data.Load(parse, t.Budget);
                var source = DataOptionBlock.Source(training.Data.DataDirectory(parse), t.Budget.Name, train, test);
                start = device =>
                {
                    var created = new DdwNet(device, spec, w, t.Trainer.Seed);
                    try
                    {
                        return new Trainer(created, train, test, t.Trainer) { Data = source, CheckpointPath = Path.Combine(outDir, "checkpoint.safetensors") };
                    }
                    catch
                    {
                        created.Dispose();
                        throw;
                    }
                };
                openMetrics = _ => new MetricsWriter(Path.Combine(outDir, "metrics.jsonl"), append: false);
            }
            using var device = CliApp.OpenDevice(parse);
            using var trainer = start(device);
            using var model = (DdwNet)trainer.Model;
            using var metrics = openMetrics(trainer);
            trainer.Metrics = metrics;
            Console.WriteLine($"training {model.Spec.Name} ({CommonOptions.Name(model.Wiring.Kind)}) on {device}: {trainer.Train.Count} images × {trainer.Options.Epochs} epochs; output {outDir}");
            ProgressDisplay.Run("train", p => { trainer.Progress = p; return trainer.Run(); });
            var table = new Table().AddColumns("epoch", "train loss", "train acc", "test loss", "test acc", "keep rate", "MACs / sample", "train img/s", "eval img/s");
            foreach (var h in trainer.History)
                table.AddRow((h.Epoch + 1).ToString(CultureInfo.InvariantCulture), $"{h.TrainLoss:F4}", $"{100 * h.TrainAccuracy:F2}%", $"{h.TestLoss:F4}",
                    $"{100 * h.TestAccuracy:F2}%", $"{100 * h.KeepRate:F1}%", h.EffectiveMacs.ToString("N0", CultureInfo.InvariantCulture),
                    $"{h.TrainImagesPerSecond:F1}", $"{h.EvalImagesPerSecond:F1}");
            AnsiConsole.Write(table);
            if (trainer.LastRecalibration is { } recalibration)
                Console.WriteLine($"batch norm recalibrated on {recalibration.Result.Images} training images ({recalibration.Result.Layers} layers): "
                    + $"test accuracy {100 * recalibration.TestAccuracyBefore:F2}% before, {100 * trainer.History[^1].TestAccuracy:F2}% after");
            Console.WriteLine($"checkpoint: {trainer.CheckpointPath}");
            return 0;
        });
        return cmd;
    }

    private static Command Eval()
    {
        var checkpoint = CommonOptions.Checkpoint();
        var data = new DataOptionBlock();
        var testImages = CommonOptions.TestImages();
        var json = CommonOptions.Json();
        var noSkip = new Option<bool>("--no-skip") { Description = "Compute every node (no dead-node skipping)." };
        var cmd = new Command("eval", "Evaluate a checkpoint on the Fashion-MNIST test set.").With([checkpoint, .. data.Options, testImages, json, noSkip]);
        cmd.SetAction(parse =>
        {
            string path = parse.GetValue(checkpoint)!;
            var info = Checkpoint.ReadInfo(path);
            var test = data.LoadTest(parse, parse.GetValue(testImages) is int n and > 0 ? n : null);
            using var device = CliApp.OpenDevice(parse);
            using var model = Checkpoint.LoadModel(device, path);
            model.SetSkipDeadNodes(!parse.GetValue(noSkip));
            var r = Evaluator.Evaluate(model, test);
            var cost = CostModel.Compute(model.Spec, model.Wiring.Kind, model.Wiring.Reduction);
            if (parse.GetValue(json))
            {
                var report = new EvalReport(path, info.Model, CommonOptions.Name(info.Wiring.Kind), info.Epoch, device.ToString(), test.Count, r.Accuracy,
                    r.Loss, r.KeepRate, cost.TotalParameters, cost.TotalMacs, r.EffectiveMacs, r.ImagesPerSecond);
                Console.WriteLine(JsonSerializer.Serialize(report, EvalJsonContext.Default.EvalReport));
                return 0;
            }
            var table = new Table().AddColumns("model", "wiring", "epochs", "test images", "test accuracy", "test loss", "keep rate", "MACs static", "MACs effective", "images/s");
            table.AddRow(info.Model, CommonOptions.Name(info.Wiring.Kind), info.Epoch.ToString(CultureInfo.InvariantCulture), test.Count.ToString(CultureInfo.InvariantCulture),
                $"{100 * r.Accuracy:F2}%", $"{r.Loss:F4}", $"{100 * r.KeepRate:F1}%", cost.TotalMacs.ToString("N0", CultureInfo.InvariantCulture),
                r.EffectiveMacs.ToString("N0", CultureInfo.InvariantCulture), $"{r.ImagesPerSecond:F1}");
            Console.WriteLine($"device: {device}");
            AnsiConsole.Write(table);
            return 0;
        });
        return cmd;
    }

    private static Command RecalibrateBn()
    {
        var checkpoint = CommonOptions.Checkpoint();
        var data = new DataOptionBlock();
        var images = new Option<int>("--images") { Description = "Training images to recompute the statistics on (the first N).", DefaultValueFactory = _ => 2048 };
        var testImages = CommonOptions.TestImages();
        var outFile = new Option<string?>("--out", "-o") { Description = "Checkpoint to write (default: F with .recalibrated before its extension)." };
        var overwrite = new Option<bool>("--overwrite") { Description = "Allow --out to name an existing file, the input included." };
        var batch = new Option<int>("--batch") { Description = "Images per forward pass.", DefaultValueFactory = _ => 256 };
        var cmd = new Command("recalibrate-bn",
            "Precise batch norm: recompute every batch norm's running statistics with the final wiring on N training images, report test accuracy before and after, write a new checkpoint.")
            .With([checkpoint, .. data.Options, images, testImages, outFile, overwrite, batch]);
        cmd.SetAction(parse =>
        {
            string path = Path.GetFullPath(parse.GetValue(checkpoint)!);
            int n = parse.GetValue(images), batchSize = parse.GetValue(batch);
            if (n < 1) throw new ArgumentException($"--images {n} must be at least 1.");
            if (batchSize < 2) throw new ArgumentException($"--batch {batchSize} must be at least 2.");
            string output = Path.GetFullPath(parse.GetValue(outFile)
                ?? Path.Combine(Path.GetDirectoryName(path)!, Path.GetFileNameWithoutExtension(path) + ".recalibrated" + Path.GetExtension(path)));
            if (File.Exists(output) && !parse.GetValue(overwrite))
                throw new ArgumentException(output == path
                    ? $"--out {output} is the input checkpoint; pass --overwrite to replace it."
                    : $"--out {output} exists; pass --overwrite to replace it.");
            Checkpoint.ReadInfo(path);
            var (train, test) = DataOptionBlock.Load(data.DataDirectory(parse), n, parse.GetValue(testImages) is int t and > 0 ? t : null);
            using var device = CliApp.OpenDevice(parse);
            using var model = Checkpoint.LoadModel(device, path);
            var before = Evaluator.Evaluate(model, test);
            var result = BatchNormRecalibration.Recalibrate(model, train, n, batchSize);
            var after = Evaluator.Evaluate(model, test);
            Checkpoint.SaveFrom(path, output, model, new Dictionary<string, string>
            {
                ["bn_recalibrated_images"] = n.ToString(CultureInfo.InvariantCulture),
            });
            Console.WriteLine($"device: {device}");
            var table = new Table().AddColumns("", "test accuracy", "test loss", "keep rate");
            table.AddRow("before", $"{100 * before.Accuracy:F2}%", $"{before.Loss:F4}", $"{100 * before.KeepRate:F1}%");
            table.AddRow("after", $"{100 * after.Accuracy:F2}%", $"{after.Loss:F4}", $"{100 * after.KeepRate:F1}%");
            AnsiConsole.Write(table);
            Console.WriteLine($"recalibrated {result.Layers} batch norms on {result.Images} training images ({result.Batches} batches of up to {batchSize}); {test.Count} test images");
            Console.WriteLine($"wrote {output}");
            return 0;
        });
        return cmd;
    }

    private static Command WiringCmd()
    {
        var data = new DataOptionBlock();
        var checkpoint = CommonOptions.Checkpoint();
        var index = new Option<int[]>("--index", "-i") { Description = "Test image indices (repeatable).", DefaultValueFactory = _ => [0], AllowMultipleArgumentsPerToken = true };
        var outDir = CommonOptions.Out("Directory for the PNGs (default: next to the checkpoint).");
        var cmd = new Command("wiring", "Print and plot the adjacency matrices the model chose for given test images.").With([checkpoint, index, .. data.Options, outDir]);
        cmd.SetAction(parse =>
        {
            string path = parse.GetValue(checkpoint)!;
            var indices = parse.GetValue(index) ?? [0];
            Checkpoint.ReadInfo(path);
            var test = data.LoadTest(parse, null);
            foreach (int i in indices)
                if (i < 0 || i >= test.Count) throw new ArgumentException($"--index {i} is outside the test set (0..{test.Count - 1}).");
            using var device = CliApp.OpenDevice(parse);
            using var model = Checkpoint.LoadModel(device, path);
            model.Eval();
            string dir = Path.GetFullPath(parse.GetValue(outDir) ?? Path.GetDirectoryName(Path.GetFullPath(path))!);
            RunFiles.CheckWritable(dir);
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
                        var table = new Table().Title($"{Markup.Escape(st.Spec.Name)} ({CommonOptions.Name(st.Kind)})").AddColumn("from \\ to");
                        for (int q = 1; q < m; q++) table.AddColumn(q == n ? "out" : q.ToString(CultureInfo.InvariantCulture));
                        for (int p = 0; p < n; p++)
                            table.AddRow(new[] { p.ToString(CultureInfo.InvariantCulture) }.Concat(Enumerable.Range(1, n).Select(q => q <= p ? "" : a[p, q] == 0 ? "[grey]cut[/]" : a[p, q].ToString("F3", CultureInfo.InvariantCulture))).ToArray());
                        AnsiConsole.Write(table);
                    }
                    string png = Path.Combine(dir, $"wiring-{i}.png");
                    RunFiles.Write("plot", png, () => Plots.SampleAdjacency(png, $"image {i} ({FashionMnist.ClassNames[test.Labels[i]]})", figures));
                    Console.WriteLine($"wrote {png}");
                }
                tape.Clear();
            }
            return 0;
        });
        return cmd;
    }
}
