using System.Diagnostics;
using IlgpuDdw.Distributed;

namespace IlgpuDdw.Cli;

/// <summary>
/// <c>ddw distributed bench</c>: all-reduce time and bus bandwidth against message size over the ranks, and training
/// images/s of one process against the ranks at the same global batch, with the gradient all-reduce overlapped with
/// the backward pass and after it.
/// </summary>
internal static class DistributedBench
{
    public static Command Build()
    {
        var model = new Option<string>("--model") { Description = "Model of the training rows (default resnet_mini).", DefaultValueFactory = _ => "resnet_mini" };
        var wiring = CommonOptions.Wiring("dynamic");
        var batch = new Option<int>("--batch-size") { Description = "Global batch of the training rows (default 32).", DefaultValueFactory = _ => 32 };
        var steps = new Option<int>("--steps") { Description = "Timed training steps per row (default 6, after 2 warm-up steps).", DefaultValueFactory = _ => 6 };
        var maxMb = new Option<int>("--max-mb") { Description = "Largest all-reduce in MiB (default 16).", DefaultValueFactory = _ => 16 };
        var repeats = new Option<int>("--repeats") { Description = "Timed all-reduces per size (default 20; median reported).", DefaultValueFactory = _ => 20 };
        var noTraining = new Option<bool>("--no-training") { Description = "Only the all-reduce rows." };
        var cmd = new Command("bench", "All-reduce time and bandwidth against size, and training images/s for 1 process vs the ranks at the same global batch, overlap on and off (run under mpirun -n N or with --ranks N).")
            .With([model, wiring, batch, steps, maxMb, repeats, noTraining]);
        cmd.Options.Add(new Option<int>("--ranks") { Description = "Start mpirun -n N with this command.", DefaultValueFactory = _ => 1 });
        cmd.SetAction(parse =>
        {
            int b = parse.GetValue(batch), n = parse.GetValue(steps), reps = parse.GetValue(repeats), mb = parse.GetValue(maxMb);
            if (n < 1 || reps < 1 || mb < 1) throw new ArgumentException($"--steps, --repeats and --max-mb must be at least 1; got {n}, {reps}, {mb}.");
            var world = Communicator.World;
            using var device = CliApp.OpenDevice(parse);
            Console.WriteLine($"distributed bench: {world.Size} rank(s), {world.Engine}, device {device}, {Environment.ProcessorCount} cores visible per rank");

            var sizes = new Table().AddColumns("bytes", "median ms", "min ms", "max ms", "bus GB/s");
            for (long bytes = 4 << 10; bytes <= (long)mb << 20; bytes *= 4)
            {
                var data = new float[bytes / 4];
                var times = new double[reps];
                for (int warm = 0; warm < 3; warm++) world.AllReduce<float>(data);
                for (int r = 0; r < reps; r++)
                {
                    world.Barrier();
                    long t0 = Stopwatch.GetTimestamp();
                    world.AllReduce<float>(data);
                    times[r] = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                }
                world.AllReduce<double>(times, ReduceOp.Max); // the slowest rank's time
                Array.Sort(times);
                double median = times[reps / 2];
                double bus = world.Size > 1 ? 2.0 * (world.Size - 1) / world.Size * bytes / median / 1e9 : double.NaN;
                sizes.AddRow(Bytes(bytes), Ms(median), Ms(times[0]), Ms(times[^1]), double.IsNaN(bus) ? "-" : bus.ToString("F2", CultureInfo.InvariantCulture));
            }
            AnsiConsole.Write(sizes);
            if (parse.GetValue(noTraining)) return 0;

            var spec = ModelZoo.Get(parse.GetValue(model)!);
            var w = new WiringConfig { Kind = CommonOptions.ParseWiring(parse.GetValue(wiring)!) };
            var train = DistributedCommands.SyntheticLike(spec, (n + 2) * b, 21);
            var test = DistributedCommands.SyntheticLike(spec, 8, 22);
            var options = new TrainerOptions { Epochs = 1, BatchSize = b, EvalBatchSize = 8, Seed = 1, MaxLossRatio = 0 };
            var rows = new Table().AddColumns("ranks", "per-rank batch", "overlap", "train img/s", "all-reduce wait s/step");
            double Measure(DataParallelOptions parallel, out double wait)
            {
                using var net = new DdwNet(device, spec, w, seed: 1);
                using var trainer = new Trainer(net, train, test, options, parallel: parallel);
                var clock = new Stopwatch();
                int done = 0;
                double waitAtStart = 0;
                trainer.Progress = new Counter(() =>
                {
                    if (++done == 2) { waitAtStart = trainer.AllReduceWaitSeconds; clock.Start(); } // after the warm-up steps
                });
                // the progress callbacks run on rank 0 only: time the steps on every rank from the trainer's own clock
                var result = trainer.RunEpoch();
                wait = (trainer.AllReduceWaitSeconds - waitAtStart) / n;
                return world.IsRoot && clock.IsRunning ? (double)n * b / clock.Elapsed.TotalSeconds : result.TrainImagesPerSecond;
            }
            // one process on rank 0 while the others wait
            if (world.IsRoot)
            {
                double single = Measure(DataParallelOptions.SingleProcess, out _);
                rows.AddRow("1", $"{b}", "-", $"{single:F1}", "-");
            }
            world.Barrier();
            if (world.Size > 1)
                foreach (bool overlap in new[] { true, false })
                {
                    double ips = Measure(new DataParallelOptions { Communicator = world, Overlap = overlap, SyncBatchNorm = false }, out double wait);
                    rows.AddRow($"{world.Size}", $"{b / world.Size}", overlap ? "on" : "off", $"{ips:F1}", wait.ToString("F4", CultureInfo.InvariantCulture));
                }
            AnsiConsole.Write(rows);
            return 0;
        });
        return cmd;
    }

    private sealed class Counter(Action onReport) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress value) => onReport();
    }

    private static string Bytes(long b) => b >= 1 << 20 ? $"{b >> 20} MiB" : $"{b >> 10} KiB";

    private static string Ms(double seconds) => (1e3 * seconds).ToString("F3", CultureInfo.InvariantCulture);
}
