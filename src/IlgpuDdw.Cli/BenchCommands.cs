using System.CommandLine;
using System.Text.Json;
using IlgpuDdw.Wiring;
using Spectre.Console;

namespace IlgpuDdw.Cli;

/// <summary><c>ddw bench ...</c>: quick timings without BenchmarkDotNet.</summary>
internal static class BenchCommands
{
    public static Command Build()
    {
        var bench = new Command("bench", "Quick benchmarks (median of repetitions, warm-up outside the timing).");
        bench.Subcommands.Add(Aggregation());
        var model = new Option<string>("--model", "-m") { Description = "Model name (see ddw info --model).", DefaultValueFactory = _ => "resnet_mini" };
        var batches = new Option<int[]>("--batch", "-b") { Description = "Batch sizes (repeatable).", DefaultValueFactory = _ => [32], AllowMultipleArgumentsPerToken = true };
        var size = new Option<int?>("--input-size") { Description = "Input resolution (default: the model's)." };
        var reps = new Option<int>("--repetitions") { Description = "Timed steps per row.", DefaultValueFactory = _ => 5 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of a table." };
        bench.Options.Add(model);
        bench.Options.Add(batches);
        bench.Options.Add(size);
        bench.Options.Add(reps);
        bench.Options.Add(json);
        bench.SetAction(parse =>
        {
            var spec = parse.GetValue(size) is int s ? Models.ModelZoo.Get(parse.GetValue(model)!, s) : Models.ModelZoo.Get(parse.GetValue(model)!);
            int repetitions = parse.GetValue(reps);
            var bs = parse.GetValue(batches) ?? [32];
            foreach (var b in bs) if (b < 1) throw new ArgumentException($"--batch must be at least 1; got {b}.");
            using var device = CliApp.OpenDevice(parse);
            var rows = new List<Training.StepBenchmarkRow>();
            foreach (var b in bs)
            {
                var dense = (Training.StepBenchmarkRow?)null;
                foreach (var kind in new[] { WiringKind.Dense, WiringKind.Chain, WiringKind.Dynamic })
                {
                    var row = Training.StepBenchmark.Run(device, spec, new WiringConfig { Kind = kind }, b, repetitions);
                    if (kind == WiringKind.Dense) dense = row;
                    rows.Add(row);
                    device.TrimPool();
                }
                _ = dense;
            }
            double DenseMs(int b) => rows.First(r => r.Batch == b && r.Wiring == WiringKind.Dense).MedianMs;
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    device = device.ToString(), model = spec.Name, inputSize = spec.InputSize, repetitions,
                    rows = rows.Select(r => new
                    {
                        wiring = r.Wiring.ToString().ToLowerInvariant(), batch = r.Batch, medianStepMs = r.MedianMs, spreadMs = r.SpreadMs,
                        imagesPerSecond = r.ImagesPerSecond, ratioToDense = r.MedianMs / DenseMs(r.Batch), keepRate = r.KeepRate,
                        peakBytes = r.PeakBytes, evalMedianMs = r.EvalMedianMs,
                    }),
                }));
                return 0;
            }
            Console.WriteLine($"device: {device}; model {spec.Name} at {spec.InputSize}×{spec.InputSize}; training step = forward + loss + backward + SGD; {repetitions} timed steps");
            var table = new Table().AddColumns("wiring", "batch", "median step ms", "spread ms", "images/s", "ratio to dense", "keep rate", "peak memory", "eval ms");
            foreach (var r in rows)
                table.AddRow(r.Wiring.ToString().ToLowerInvariant(), r.Batch.ToString(), $"{r.MedianMs:F1}", $"{r.SpreadMs:F1}", $"{r.ImagesPerSecond:F1}",
                    $"{r.MedianMs / DenseMs(r.Batch):F3}", $"{r.KeepRate:P1}", $"{r.PeakBytes / (1024.0 * 1024):F1} MiB", $"{r.EvalMedianMs:F1}");
            AnsiConsole.Write(table);
            return 0;
        });
        return bench;
    }

    private static Command Aggregation()
    {
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of a table." };
        var reps = new Option<int>("--repetitions") { Description = "Timed repetitions per keep rate.", DefaultValueFactory = _ => 7 };
        var cmd = new Command("aggregation", "Forward+backward time of the adjacency-masked aggregation at keep rates 100/75/50/25% (batch 32, 6 nodes, 32 channels, 16×16).");
        cmd.Options.Add(json);
        cmd.Options.Add(reps);
        cmd.SetAction(parse =>
        {
            int repetitions = parse.GetValue(reps);
            if (repetitions < 1) throw new ArgumentException($"--repetitions must be at least 1; got {repetitions}.");
            using var device = CliApp.OpenDevice(parse);
            var rows = AggregationBenchmark.Run(device, repetitions: repetitions);
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    device = device.ToString(),
                    batch = 32, nodes = 6, channels = 32, height = 16, width = 16, repetitions,
                    rows = rows.Select(r => new { keepRate = r.KeepRate, medianMs = r.MedianMs, spreadMs = r.SpreadMs, ratioToFull = r.RatioToFirst, bytesPerSample = r.BytesPerSample }),
                }));
                return 0;
            }
            Console.WriteLine($"device: {device}; batch 32, 6 nodes, 32 channels, 16×16; forward + backward; {repetitions} repetitions");
            var table = new Table().AddColumns("keep rate", "median ms", "spread ms", "ratio to 100%", "bytes moved / sample");
            foreach (var r in rows)
                table.AddRow($"{r.KeepRate:P0}", $"{r.MedianMs:F2}", $"{r.SpreadMs:F2}", $"{r.RatioToFirst:F3}", $"{r.BytesPerSample / 1e6:F3} MB");
            AnsiConsole.Write(table);
            return 0;
        });
        return cmd;
    }
}
