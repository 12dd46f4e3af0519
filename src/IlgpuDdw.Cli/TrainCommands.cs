namespace IlgpuDdw.Cli;

/// <summary><c>ddw compare</c>, <c>ddw sweep</c>, <c>ddw train</c>, <c>ddw eval</c>, <c>ddw recalibrate-bn</c> and <c>ddw wiring</c>.</summary>
internal static class TrainCommands
{
    public static IEnumerable<Command> Build()
    {
        yield return CompareCommand.Build();
        yield return SweepCommand.Build();
        yield return Train();
        yield return Eval();
        yield return RecalibrateBn();
        yield return WiringCommand.Build();
    }

    private static Command Train()
    {
        var training = new TrainingOptionBlock("runs/train-MODEL-WIRING-yyyyMMdd-HHmmss (UTC) in the current folder; with --resume, the checkpoint's folder");
        var wiring = CommonOptions.Wiring("dynamic");
        var resume = new Option<string?>("--resume") { Description = ResumePlan.ResumeHelp };
        var extend = new Option<bool>("--extend") { Description = ResumePlan.ExtendHelp };
        var init = new Option<string?>("--init")
        {
            Description = "Start the backbone from this torchvision-named safetensors file (DdwNet.LoadTorchvision: a 3-channel stem is summed to 1, a classifier of another class count stays initialised) [default: none, random initialisation].",
        };
        var parallel = new DistributedOptionBlock();
        var tf32 = CommonOptions.Tf32();
        var cmd = new Command("train", "Train one wiring of a model on Fashion-MNIST; writes a checkpoint after every epoch and metrics as JSON lines.")
            .With([.. training.Options, wiring, resume, extend, init, tf32, .. parallel.Options]);
        cmd.SetAction(parse =>
        {
            parallel.Apply(parse);
            string outDir;
            ModelSpec runSpec;
            WiringConfig runWiring;
            int runBatch, runImages;
            Func<Device, Trainer> start;
            Func<Trainer, MetricsWriter> openMetrics;
            if (parse.GetValue(resume) is { } from)
            {
                if (parse.GetValue(init) is not null) throw new ArgumentException("--init cannot be used with --resume: the checkpoint holds the weights.");
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
                (train, test) = (train.Resize(plan.Info.InputSize), test.Resize(plan.Info.InputSize));
                string checkpoint = outDir == checkpointDir ? Path.GetFullPath(from) : Path.Combine(outDir, "checkpoint.safetensors");
                (runSpec, runWiring, runBatch, runImages) = (plan.Info.Spec(), plan.Info.Wiring, plan.Options.BatchSize, train.Count);
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
                string name = ModelZoo.Get(t.Model).Name;
                outDir = Path.GetFullPath(t.Out ?? Path.Combine("runs", $"train-{name}-{CommonOptions.Name(w.Kind)}-{DateTime.UtcNow:yyyyMMdd-HHmmss}"));
                var (loadedTrain, loadedTest) = training.Data.Load(parse, t.Budget);
                var (spec, train, test) = TrainingOptionBlock.Fit(t.Model, t.InputSize, loadedTrain, loadedTest);
                RunFiles.PrepareOutput(outDir, t.Overwrite);
                var source = DataOptionBlock.Source(training.Data.DataDirectory(parse), t.Budget.Name, loadedTrain, loadedTest);
                Console.WriteLine(TrainingOptionBlock.Describe(spec, w.Kind, w.Reduction, loadedTrain));
                (runSpec, runWiring, runBatch, runImages) = (spec, w, t.Trainer.BatchSize, train.Count);
                start = device =>
                {
                    var created = new DdwNet(device, spec, w, t.Trainer.Seed);
                    try
                    {
                        if (parse.GetValue(init) is { } initFile)
                        {
                            string full = Path.GetFullPath(initFile);
                            InteropCommands.Print(RunFiles.Read("torchvision weights", full, () => created.LoadTorchvision(full)));
                        }
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
            using var device = CliApp.OpenDevice(parse, tf32);
            TrainingOptionBlock.CheckBatch(device, runSpec, [runWiring], runBatch, runImages);
            using var trainer = start(device);
            using var model = (DdwNet)trainer.Model;
            using var metrics = openMetrics(trainer);
            trainer.Metrics = metrics;
            Console.WriteLine($"training {model.Spec.Name} ({CommonOptions.Name(model.Wiring.Kind)}) on {device}{CliApp.Numerics(device)}: {trainer.Train.Count} images × {trainer.Options.Epochs} epochs; output {outDir}");
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
        var noSkip = new Option<bool>("--no-skip") { Description = "Compute every node (no dead-node skipping) [default: off, dead nodes are skipped]." };
        var noSpeedup = new Option<bool>("--no-speedup") { Description = "Dynamic wiring: evaluate once, without timing the speed-up of dead-node skipping (a second evaluation) [default: off, the speed-up is measured]." };
        var cmd = new Command("eval", "Evaluate a checkpoint on the Fashion-MNIST test set: accuracy, cost, wiring diversity and the measured speed-up of dead-node skipping.")
            .With([checkpoint, .. data.Options, testImages, json, noSkip, noSpeedup]);
        cmd.SetAction(parse =>
        {
            string path = parse.GetValue(checkpoint)!;
            var info = Checkpoint.ReadInfo(path);
            var test = data.LoadTest(parse, parse.GetValue(testImages) is int n and > 0 ? n : null);
            using var device = CliApp.OpenDevice(parse);
            using var model = Checkpoint.LoadModel(device, path);
            test = test.Resize(model.Spec.InputSize);
            bool skip = !parse.GetValue(noSkip);
            model.SetSkipDeadNodes(skip);
            // dynamic wiring: evaluate with and without dead-node skipping in this run to measure the speed-up
            var timed = model.Wiring.Kind == WiringKind.Dynamic && !parse.GetValue(noSpeedup) ? Evaluator.MeasureSkipSpeedup(model, test) : null;
            var r = timed is null ? Evaluator.Evaluate(model, test) : skip ? timed.Skipping : timed.Full;
            var cost = CostModel.Compute(model.Spec, model.Wiring.Kind, model.Wiring.Reduction);
            if (parse.GetValue(json))
            {
                var report = new EvalReport(path, info.Model, CommonOptions.Name(info.Wiring.Kind), info.Epoch, device.ToString(), test.Count, r.Accuracy,
                    r.Loss, r.KeepRate, cost.TotalParameters, cost.TotalMacs, r.EffectiveMacs, r.ImagesPerSecond) { Diversity = r.Diversity, SkipSpeedup = timed?.Speedup };
                Console.WriteLine(JsonSerializer.Serialize(report, EvalJsonContext.Default.EvalReport));
                return 0;
            }
            var table = new Table().AddColumns("model", "wiring", "epochs", "test images", "test accuracy", "test loss", "keep rate", "MACs static", "MACs effective", "images/s");
            table.AddRow(info.Model, CommonOptions.Name(info.Wiring.Kind), info.Epoch.ToString(CultureInfo.InvariantCulture), test.Count.ToString(CultureInfo.InvariantCulture),
                $"{100 * r.Accuracy:F2}%", $"{r.Loss:F4}", $"{100 * r.KeepRate:F1}%", cost.TotalMacs.ToString("N0", CultureInfo.InvariantCulture),
                r.EffectiveMacs.ToString("N0", CultureInfo.InvariantCulture), $"{r.ImagesPerSecond:F1}");
            Console.WriteLine($"device: {device}");
            AnsiConsole.Write(table);
            if (r.Diversity is { } d) DiversityReport.PrintDiversity([(CommonOptions.Name(info.Wiring.Kind), d, timed?.Speedup)]);
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
        var outFile = new Option<string?>("--out", "-o") { Description = "Checkpoint to write [default: F with .recalibrated before its extension]." };
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
            (train, test) = (train.Resize(model.Spec.InputSize), test.Resize(model.Spec.InputSize));
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
}
