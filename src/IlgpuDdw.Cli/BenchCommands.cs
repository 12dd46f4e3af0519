namespace IlgpuDdw.Cli;

/// <summary><c>ddw bench ...</c>: quick timings without BenchmarkDotNet.</summary>
internal static class BenchCommands
{
    public static Command Build()
    {
        var model = CommonOptions.Model("Model name (see ddw info --model).");
        var batches = new Option<int[]>("--batch", "-b") { Description = "Batch sizes (repeatable).", DefaultValueFactory = _ => [32], AllowMultipleArgumentsPerToken = true };
        var size = CommonOptions.InputSize();
        var reps = CommonOptions.Repetitions("Timed steps per row.", 5);
        var json = CommonOptions.Json("Print one JSON object instead of a table.");
        var tf32 = CommonOptions.Tf32();
        var bench = new Command("bench", "Quick benchmarks (median of repetitions, warm-up outside the timing).").With([model, batches, size, reps, json, tf32]);
        bench.Subcommands.Add(Aggregation());
        bench.SetAction(parse =>
        {
            var spec = parse.GetValue(size) is int s ? Models.ModelZoo.Get(parse.GetValue(model)!, s) : Models.ModelZoo.Get(parse.GetValue(model)!);
            int repetitions = parse.GetValue(reps);
            var bs = parse.GetValue(batches) ?? [32];
            foreach (var b in bs) if (b < 1) throw new ArgumentException($"--batch must be at least 1; got {b}.");
            using var device = CliApp.OpenDevice(parse, tf32);
            foreach (var b in bs)
                foreach (var kind in new[] { WiringKind.Dense, WiringKind.Chain, WiringKind.Dynamic })
                    Training.StepMemory.Check(device, spec, new WiringConfig { Kind = kind }, b);
            var rows = new List<Training.StepBenchmarkRow>();
            foreach (var b in bs)
                foreach (var kind in new[] { WiringKind.Dense, WiringKind.Chain, WiringKind.Dynamic })
                {
                    rows.Add(Training.StepBenchmark.Run(device, spec, new WiringConfig { Kind = kind }, b, repetitions));
                    device.TrimPool();
                }
            double DenseMs(int b) => rows.First(r => r.Batch == b && r.Wiring == WiringKind.Dense).MedianMs;
            if (parse.GetValue(json))
            {
                var report = new StepBenchmarkReport(device.ToString(), spec.Name, spec.InputSize, repetitions, rows.Select(r => new StepBenchmarkReportRow(
                    CommonOptions.Name(r.Wiring), r.Batch, r.MedianMs, r.SpreadMs, r.ImagesPerSecond, r.MedianMs / DenseMs(r.Batch), r.KeepRate, r.PeakBytes,
                    r.EvalMedianMs)).ToArray(), device.Tf32);
                Console.WriteLine(JsonSerializer.Serialize(report, CliJsonContext.Default.StepBenchmarkReport));
                return 0;
            }
            Console.WriteLine($"device: {device}{CliApp.Numerics(device)}; model {spec.Name} at {spec.InputSize}×{spec.InputSize}; training step = forward + loss + backward + SGD; {repetitions} timed steps");
            var table = new Table().AddColumns("wiring", "batch", "median step ms", "spread ms", "images/s", "ratio to dense", "keep rate", "peak memory", "eval ms");
            foreach (var r in rows)
                table.AddRow(CommonOptions.Name(r.Wiring), r.Batch.ToString(), $"{r.MedianMs:F1}", $"{r.SpreadMs:F1}", $"{r.ImagesPerSecond:F1}",
                    $"{r.MedianMs / DenseMs(r.Batch):F3}", $"{r.KeepRate:P1}", $"{r.PeakBytes / (1024.0 * 1024):F1} MiB", $"{r.EvalMedianMs:F1}");
            AnsiConsole.Write(table);
            return 0;
        });
        return bench;
    }

    private static Command Aggregation()
    {
        var json = CommonOptions.Json("Print one JSON object instead of a table.");
        var reps = CommonOptions.Repetitions("Timed repetitions per keep rate.", 7);
        var forward = new Option<string?>("--forward") { Description = "Forward kernel: simple | registers [default: the device's plan]." };
        var backward = new Option<string?>("--backward") { Description = "Backward kernels: separate | fused-chunks | fused-groups [default: the device's plan]." };
        var chunk = new Option<int?>("--chunk") { Description = "Elements per forward and source-gradient work item [default: the device's plan]." };
        var cmd = new Command("aggregation", "Forward+backward time of the adjacency-masked aggregation at keep rates 100/75/50/25% (batch 32, 6 nodes, 32 channels, 16×16).")
            .With([json, reps, forward, backward, chunk]);
        cmd.SetAction(parse =>
        {
            int repetitions = parse.GetValue(reps);
            if (repetitions < 1) throw new ArgumentException($"--repetitions must be at least 1; got {repetitions}.");
            var forwardKernel = parse.GetValue(forward) is { } f ? ParseForward(f) : (AggregationForward?)null;
            var backwardKernels = parse.GetValue(backward) is { } b ? ParseBackward(b) : (AggregationBackward?)null;
            using var device = CliApp.OpenDevice(parse);
            var rows = AggregationBenchmark.Run(device, repetitions: repetitions, forward: forwardKernel, backward: backwardKernels, chunk: parse.GetValue(chunk));
            string kernels = Kernels(device, forwardKernel, backwardKernels, parse.GetValue(chunk));
            if (parse.GetValue(json))
            {
                var report = new AggregationBenchmarkReport(device.ToString(), 32, 6, 32, 16, 16, repetitions, kernels,
                    rows.Select(r => new AggregationBenchmarkReportRow(r.KeepRate, r.MedianMs, r.SpreadMs, r.RatioToFirst, r.BytesPerSample)).ToArray());
                Console.WriteLine(JsonSerializer.Serialize(report, CliJsonContext.Default.AggregationBenchmarkReport));
                return 0;
            }
            Console.WriteLine($"device: {device}; batch 32, 6 nodes, 32 channels, 16×16; forward + backward; {repetitions} repetitions; kernels {kernels}");
            var table = new Table().AddColumns("keep rate", "median ms", "spread ms", "ratio to 100%", "bytes moved / sample");
            foreach (var r in rows)
                table.AddRow($"{r.KeepRate:P0}", $"{r.MedianMs:F2}", $"{r.SpreadMs:F2}", $"{r.RatioToFirst:F3}", $"{r.BytesPerSample / 1e6:F3} MB");
            AnsiConsole.Write(table);
            return 0;
        });
        return cmd;
    }

    private static AggregationForward ParseForward(string name) => name.Trim().ToLowerInvariant() switch
    {
        "simple" => AggregationForward.Simple,
        "registers" => AggregationForward.Registers,
        _ => throw new ArgumentException($"--forward must be simple or registers; got '{name}'."),
    };

    private static AggregationBackward ParseBackward(string name) => name.Trim().ToLowerInvariant() switch
    {
        "separate" => AggregationBackward.Separate,
        "fused-chunks" => AggregationBackward.FusedChunks,
        "fused-groups" => AggregationBackward.FusedGroups,
        _ => throw new ArgumentException($"--backward must be separate, fused-chunks or fused-groups; got '{name}'."),
    };

    /// <summary>The kernels the benchmark runs, as its report names them: the device's plan (for the output node's launch) with the options applied.</summary>
    private static string Kernels(Device device, AggregationForward? forward, AggregationBackward? backward, int? chunk)
    {
        var plan = AggregationPlan.For(device, 32, 6, 32 * 16 * 16);
        return $"forward {forward ?? plan.Forward}, backward {backward ?? plan.Backward}, chunk {chunk ?? plan.Chunk}";
    }
}
