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
