using System.Diagnostics;
using System.Reflection;
using IlgpuDdw.Distributed;
using IlgpuDdw.Nn;

namespace IlgpuDdw.Cli;

/// <summary>The data-parallel options of <c>ddw train</c> and <c>ddw compare</c>.</summary>
internal sealed class DistributedOptionBlock
{
    public readonly Option<int> Ranks = new("--ranks")
    {
        Description = "Run data-parallel over N processes on this machine: starts mpirun -n N with the same command (--batch-size is the global batch). Under mpirun or srun the ranks come from the launcher.",
        DefaultValueFactory = _ => 1,
    };

    public readonly Option<bool> SyncBn = new("--sync-bn") { Description = "Data-parallel: batch-norm statistics over the global batch (the same result as one process); without it each rank uses its own batch's." };

    public readonly Option<bool> NoOverlap = new("--no-overlap") { Description = "Data-parallel: all-reduce the gradients after the backward pass instead of during it." };

    public readonly Option<int> BucketKb = new("--bucket-kb") { Description = "Data-parallel: KiB per gradient bucket (default 256).", DefaultValueFactory = _ => 256 };

    public readonly Option<bool> Nccl = new("--nccl") { Description = "Data-parallel on Cuda GPUs: gradients and parameters through NCCL (libnccl.so.2; one GPU per rank, --device cuda picks the rank's local GPU)." };

    public readonly Option<int?> GradGroup = new("--grad-group")
    {
        Description = "Samples per gradient group: convolution, linear and router gradients are summed per group and the groups added pairwise, " +
            "so with --sync-bn ranks whose per-rank batch is the same power-of-two number of groups (e.g. one each) train bit for bit as one process; 0: the whole batch at once " +
            $"[default: {IlgpuDdw.Training.DataParallelOptions.CpuGradientGroupSize} on the CPU accelerator, 0 on Cuda].",
    };

    public IEnumerable<Option> Options => [Ranks, SyncBn, NoOverlap, BucketKb, Nccl, GradGroup];

    /// <summary>Sets <see cref="DataParallelOptions.Default"/> from the parsed options (before a trainer is made).</summary>
    public void Apply(ParseResult parse)
    {
        int kb = parse.GetValue(BucketKb);
        if (kb < 1) throw new ArgumentException($"--bucket-kb must be at least 1; got {kb}.");
        if (parse.GetValue(Ranks) < 1) throw new ArgumentException($"--ranks must be at least 1; got {parse.GetValue(Ranks)}.");
        if (parse.GetValue(GradGroup) is < 0 and var group) throw new ArgumentException($"--grad-group must be 0 (the whole batch) or a positive number of samples; got {group}.");
        DataParallelOptions.Default = new DataParallelOptions
        {
            SyncBatchNorm = parse.GetValue(SyncBn),
            Overlap = !parse.GetValue(NoOverlap),
            BucketBytes = kb << 10,
            Nccl = parse.GetValue(Nccl),
            GradientGroupSize = parse.GetValue(GradGroup),
        };
    }
}

/// <summary>
/// Process start-up under MPI: <c>--ranks N</c> starts <c>mpirun</c> with the same command; under a launcher, ranks
/// other than 0 print nothing to standard output (errors still reach standard error, prefixed with the rank) and
/// write their files to a scratch directory that is removed at the end; at exit MPI is finalized, or, after an
/// error with several ranks, the job is aborted so that no rank waits for the failed one.
/// </summary>
internal static class MpiRun
{
    /// <summary>Environment variable naming the launcher <c>--ranks</c> starts (default <c>mpirun</c>).</summary>
    public const string LauncherVariable = "DDW_MPIRUN";

    /// <summary>"rank r of n: " under several ranks, else empty (for error lines).</summary>
    public static string RankPrefix => Communicator.WorldCreated && Communicator.World.Size > 1 ? $"rank {Communicator.World.Rank} of {Communicator.World.Size}: " : "";

    /// <summary>The program: runs <paramref name="args"/> as one rank, or starts <c>mpirun</c> for <c>--ranks N</c>.</summary>
    public static int Start(string[] args)
    {
        int ranks = RanksOption(args);
        if (ranks > 1 && !Launcher.WantsMpi()) return Launch(ranks, WithoutRanks(args));
        string? scratch = null;
        if (Launcher.WantsMpi())
        {
            Communicator world;
            try { world = Communicator.World; }
            catch (Exception e) when (e is DistributedException or ArgumentException)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return 1;
            }
            if (world.Size > 1) args = WithLocalGpu(args);
            if (world.Size > 1 && !world.IsRoot)
            {
                Console.SetOut(TextWriter.Null);
                scratch = Path.Combine(Path.GetTempPath(), $"ddw-rank{world.Rank}-{Environment.ProcessId}");
                args = WithOutput(args, scratch);
            }
        }
        int code = CliApp.Run(args);
        if (scratch is not null) try { Directory.Delete(scratch, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        if (Communicator.WorldCreated)
        {
            var world = Communicator.World;
            if (code != 0 && world.Size > 1) world.Abort(code);
            world.Dispose();
        }
        return code;
    }

    private static int RanksOption(string[] args)
    {
        for (int i = 0; i < args.Length; i++)
        {
            string? value = args[i] == "--ranks" && i + 1 < args.Length ? args[i + 1] : args[i].StartsWith("--ranks=", StringComparison.Ordinal) ? args[i][8..] : null;
            if (value is not null) return int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) ? n : 1;
        }
        return 1;
    }

    internal static string[] WithoutRanks(string[] args)
    {
        var rest = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--ranks") { i++; continue; }
            if (args[i].StartsWith("--ranks=", StringComparison.Ordinal)) continue;
            rest.Add(args[i]);
        }
        return [.. rest];
    }

    /// <summary><paramref name="args"/> with <c>--out</c> replaced by <paramref name="directory"/> and <c>--overwrite</c> (commands that have them).</summary>
    internal static string[] WithOutput(string[] args, string directory)
    {
        if (Command(args) is not ("train" or "compare")) return args;
        var rest = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] is "--out" or "-o") { i++; continue; }
            if (args[i].StartsWith("--out=", StringComparison.Ordinal) || args[i] == "--overwrite") continue;
            rest.Add(args[i]);
        }
        rest.AddRange(["--out", directory, "--overwrite"]);
        return [.. rest];
    }

    /// <summary>
    /// <c>--device cuda</c> (or <c>-d cuda</c>) becomes <c>cuda:L</c>, L the rank's index on its machine
    /// (OMPI_COMM_WORLD_LOCAL_RANK, MPI_LOCALRANKID, SLURM_LOCALID), so that each rank of a node takes its own GPU.
    /// </summary>
    internal static string[] WithLocalGpu(string[] args, Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        var local = new[] { "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID" }.Select(environment).FirstOrDefault(v => int.TryParse(v, out _));
        if (local is null) return args;
        var result = (string[])args.Clone();
        for (int i = 0; i + 1 < result.Length; i++)
            if (result[i] is "--device" or "-d" && result[i + 1] == "cuda") result[i + 1] = $"cuda:{local}";
        return result;
    }

    /// <summary>The first word of <paramref name="args"/> that is neither an option nor the value of a global option.</summary>
    internal static string? Command(string[] args)
    {
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] is "--device" or "-d") { i++; continue; }
            if (!args[i].StartsWith('-')) return args[i];
        }
        return null;
    }

    /// <summary>The command line that starts this program again: the apphost, or <c>dotnet ddw.dll</c>.</summary>
    internal static (string File, string[] Prefix) Self()
    {
        var process = Environment.ProcessPath ?? throw new InvalidOperationException("The path of this program is unknown; start mpirun yourself.");
        // under `dotnet ddw.dll` the first argument is the entry assembly's path (Assembly.Location is empty in a single-file bundle)
        var entry = Environment.GetCommandLineArgs() is [var first, ..] ? first : null;
        bool host = Path.GetFileNameWithoutExtension(process).Equals("dotnet", StringComparison.OrdinalIgnoreCase);
        return host && !string.IsNullOrEmpty(entry) ? (process, [entry]) : (process, []);
    }

    private static int Launch(int ranks, string[] args)
    {
        string mpirun = Environment.GetEnvironmentVariable(LauncherVariable) is { Length: > 0 } l ? l : "mpirun";
        var (file, prefix) = Self();
        var start = new ProcessStartInfo(mpirun) { UseShellExecute = false };
        foreach (var a in (string[])["-n", ranks.ToString(CultureInfo.InvariantCulture), file, .. prefix, .. args]) start.ArgumentList.Add(a);
        // Open MPI: allow root and more ranks than cores (MPICH ignores these); plain output under the launcher.
        start.Environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1";
        start.Environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1";
        start.Environment["OMPI_MCA_rmaps_base_oversubscribe"] = "1";
        start.Environment["TERM"] = "dumb";
        Console.Error.WriteLine($"starting {ranks} ranks: {mpirun} -n {ranks} {string.Join(' ', [file, .. prefix, .. args])}");
        Process process;
        try { process = Process.Start(start)!; }
        catch (System.ComponentModel.Win32Exception e)
        {
            Console.Error.WriteLine($"error: could not start {mpirun} for --ranks {ranks} ({e.Message}); install Open MPI (Debian: apt-get install openmpi-bin) or MPICH, or set {LauncherVariable}.");
            return 1;
        }
        process.WaitForExit();
        return process.ExitCode;
    }
}

/// <summary><c>ddw distributed check</c> and <c>ddw distributed bench</c>.</summary>
internal static class DistributedCommands
{
    public static Command Build()
    {
        var cmd = new Command("distributed", "Data-parallel training over MPI ranks: an equivalence check and a benchmark (run them under mpirun -n N, or with --ranks N).");
        cmd.Subcommands.Add(Check());
        cmd.Subcommands.Add(DistributedBench.Build());
        cmd.Subcommands.Add(NcclCheck());
        return cmd;
    }

    private static Command NcclCheck()
    {
        var maxMb = new Option<int>("--max-mb") { Description = "Largest all-reduce in MiB (default 64).", DefaultValueFactory = _ => 64 };
        var cmd = new Command("nccl-check",
            "NCCL between GPUs, one rank per GPU (under mpirun, or with NCCL_COMM_ID=host:port, RANK and WORLD_SIZE): checks all-reduce and broadcast " +
            "of device buffers against their expected values and times the all-reduce against size. Exit code 0 only if every value is right.").With([maxMb]);
        cmd.SetAction(parse =>
        {
            int mb = parse.GetValue(maxMb);
            if (mb < 1) throw new ArgumentException($"--max-mb must be at least 1; got {mb}.");
            var world = Communicator.World;
            using var device = CliApp.OpenDevice(parse);
            using var nccl = NcclCommunicator.Create(world, device);
            Console.WriteLine($"nccl check: rank {nccl.Rank} of {nccl.Size}, {nccl.Engine}, device {device}");
            int bad = 0;
            var table = new Table().AddColumns("bytes", "median ms", "bus GB/s", "values");
            for (long bytes = 4 << 10; bytes <= (long)mb << 20; bytes *= 4)
            {
                int n = (int)(bytes / 4);
                var host = new float[n];
                for (int i = 0; i < n; i++) host[i] = (nccl.Rank + 1) * (1 + i % 7);
                using var t = Tensor.FromArray(device, host, n);
                var times = new double[5];
                for (int r = 0; r < times.Length; r++)
                {
                    t.CopyFrom(host);
                    long t0 = Stopwatch.GetTimestamp();
                    nccl.AllReduce(device, t.View);
                    times[r] = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                }
                var result = t.ToArray();
                float ranks = nccl.Size * (nccl.Size + 1) / 2f;
                int wrong = result.Where((v, i) => v != ranks * (1 + i % 7)).Count();
                t.Fill(nccl.Rank == 0 ? 3f : -1f);
                nccl.Broadcast(device, t.View);
                wrong += t.ToArray().Count(v => v != 3f);
                bad += wrong;
                Array.Sort(times);
                double median = times[times.Length / 2];
                table.AddRow(bytes >= 1 << 20 ? $"{bytes >> 20} MiB" : $"{bytes >> 10} KiB", (1e3 * median).ToString("F3", CultureInfo.InvariantCulture),
                    (2.0 * (nccl.Size - 1) / nccl.Size * bytes / median / 1e9).ToString("F1", CultureInfo.InvariantCulture), wrong == 0 ? "right" : $"{wrong} wrong");
            }
            AnsiConsole.Write(table);
            Console.WriteLine(bad == 0 ? "nccl check: pass" : $"nccl check: FAIL ({bad} wrong values)");
            return bad == 0 ? 0 : 1;
        });
        return cmd;
    }

    /// <summary>A small ResNet for 8×8 inputs: stem 1→4, two dynamic-capable stages of 3 basic blocks (4 and 8 channels), 4 classes.</summary>
    internal static ModelSpec TinySpec() => new("resnet_tiny", 1, 8, 4,
        [ConvSpec.Conv3x3(1, 4), new BatchNormSpec(4), new ActivationSpec(ActivationKind.Relu)],
        [StageSpec.Repeat("layer1", 3, 4, 4, 1, BlockSpec.Basic), StageSpec.Repeat("layer2", 3, 4, 8, 2, BlockSpec.Basic)],
        [new GlobalAvgPoolSpec(), new LinearSpec(8, 4)]);

    /// <summary><see cref="Synthetic"/> images of <paramref name="spec"/>'s input shape.</summary>
    internal static ImageDataset SyntheticLike(ModelSpec spec, int count, int seed) => Synthetic(count, seed, spec.InputSize, spec.InputChannels);

    /// <summary>
    /// Four classes of patterns with noise (a learnable task), deterministic in the seed; the data set declares
    /// <paramref name="classCount"/> classes (at least 4).
    /// </summary>
    internal static ImageDataset Synthetic(int count, int seed, int size = 8, int channels = 1, int classCount = 4)
    {
        var r = new Random(seed);
        var images = new float[count * channels * size * size];
        var labels = new int[count];
        for (int n = 0; n < count; n++)
        {
            int c = r.Next(4);
            labels[n] = c;
            for (int i = 0; i < size * size; i++)
            {
                int y = i / size, x = i % size;
                bool center = Math.Abs(2 * x - size + 1) < size / 2 && Math.Abs(2 * y - size + 1) < size / 2;
                bool on = c switch { 0 => y < size / 2, 1 => y >= size / 2, 2 => center, _ => !center };
                for (int ch = 0; ch < channels; ch++)
                    images[(n * channels + ch) * size * size + i] = (on ? 1f : -1f) + 0.3f * (float)(r.NextDouble() - 0.5);
            }
        }
        return new ImageDataset(images, labels, channels, size, size, classCount);
    }

    /// <summary>One wiring's result of the check.</summary>
    internal sealed record CheckRow(string Model, string Wiring, int Ranks, int Steps, double SyncMaxDiff, double? PerRankMaxDiff, bool RanksIdentical,
        double ReferenceAccuracy, double SyncAccuracy, bool ShardsCoverEpoch);

    private static Command Check()
    {
        var steps = new Option<int>("--steps") { Description = "SGD steps per run (default 20).", DefaultValueFactory = _ => 20 };
        var batch = new Option<int>("--batch-size") { Description = "Global batch (default 32).", DefaultValueFactory = _ => 32 };
        var wirings = new Option<string>("--wirings") { Description = "Comma-separated wirings (default chain,dense,dynamic).", DefaultValueFactory = _ => "chain,dense,dynamic" };
        var noOverlap = new Option<bool>("--no-overlap") { Description = "All-reduce after the backward pass." };
        var nccl = new Option<bool>("--nccl") { Description = "Gradients and parameters through NCCL (Cuda GPUs, one per rank)." };
        var modelName = new Option<string?>("--model") { Description = "A model of the zoo on synthetic images [default: a 2-stage ResNet for 8×8 inputs]." };
        var bucketKb = new Option<int>("--bucket-kb") { Description = "KiB per gradient bucket (default 256).", DefaultValueFactory = _ => 256 };
        var inputSize = new Option<int?>("--input-size") { Description = "Input side for --model [default: the model's]." };
        var also = new Option<string?>("--also") { Description = "Also check MODEL@SIZE:STEPS of the zoo in chain wiring, e.g. resnet_mini@8:3 [default: none]." };
        var resumeCheck = new Option<string?>("--resume-check") { Description = "Also train MODEL@SIZE:STEPS (steps per epoch) for one epoch in one process, resume its checkpoint for a second epoch on these ranks (synchronised batch norm) and compare with one process resuming it [default: none]." };
        var json = CommonOptions.Json();
        var failRank = new Option<int>("--fail-rank") { Description = "Testing: this rank fails at --fail-step.", DefaultValueFactory = _ => -1, Hidden = true };
        var failStep = new Option<int>("--fail-step") { Description = "Testing: the step at which --fail-rank fails.", DefaultValueFactory = _ => 2, Hidden = true };
        var failMode = new Option<string>("--fail-mode") { Description = "Testing: throw | kill.", DefaultValueFactory = _ => "throw", Hidden = true };
        var cmd = new Command("check",
            "Train a tiny model data-parallel over the ranks (per-rank batch = global / ranks) with synchronised and with per-rank batch norm, and " +
            "compare with one process at the global batch: max |Δw|, whether the ranks agree bit for bit, test accuracies and epoch coverage.")
            .With([steps, batch, wirings, noOverlap, nccl, modelName, inputSize, bucketKb, also, resumeCheck, json, failRank, failStep, failMode]);
        cmd.SetAction(parse =>
        {
            int n = parse.GetValue(steps), b = parse.GetValue(batch);
            if (n < 1) throw new ArgumentException($"--steps must be at least 1; got {n}.");
            var kinds = parse.GetValue(wirings)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(CommonOptions.ParseWiring).ToArray();
            string mode = parse.GetValue(failMode)!;
            if (mode is not ("throw" or "kill")) throw new ArgumentException($"--fail-mode must be throw or kill; got '{mode}'.");
            var world = Communicator.World;
            if (b < world.Size) throw new ArgumentException($"--batch-size {b} is smaller than the {world.Size} ranks.");
            using var device = CliApp.OpenDevice(parse);
            Console.WriteLine($"distributed check on {world.Engine}: {world.Size} rank(s), device {device}, {n} steps, global batch {b}");
            var spec = parse.GetValue(modelName) is { } m ? ModelZoo.Get(m) : TinySpec();
            if (parse.GetValue(inputSize) is int size) spec = spec.WithInput(size);
            var parallel = new DataParallelOptions { Communicator = world, Overlap = !parse.GetValue(noOverlap), Nccl = parse.GetValue(nccl), BucketBytes = parse.GetValue(bucketKb) << 10 };
            var extra = parse.GetValue(also) is { } a ? ParseZooCheck("--also", a) : default((ModelSpec Spec, int Steps)?);
            var resume = parse.GetValue(resumeCheck) is { } rc ? ParseZooCheck("--resume-check", rc) : default((ModelSpec Spec, int Steps)?);
            var rows = kinds.Select(kind => CheckWiring(spec, device, world, kind, n, b, parallel)).ToList();
            if (extra is { } x) rows.Add(CheckWiring(x.Spec, device, world, WiringKind.Chain, x.Steps, b, parallel));
            if (resume is { } rs) rows.Add(CheckResume(rs.Spec, device, world, rs.Steps, b, parallel));
            if (parse.GetValue(json)) Console.WriteLine(JsonSerializer.Serialize(rows, CheckJson.Default.ListCheckRow));
            else Render(rows);
            Console.Out.Flush();
            if (parse.GetValue(failRank) is >= 0 and int rank) // testing: one more run in which a rank fails
            {
                Console.WriteLine($"fault injection: rank {rank} fails ({mode}) at step {parse.GetValue(failStep)}");
                Console.Out.Flush();
                Train(TinySpec(), device, world, kinds[0], n, b, new DataParallelOptions { Communicator = world, SyncBatchNorm = true }, (rank, parse.GetValue(failStep), mode));
            }
            return 0;
        });
        return cmd;
    }

    private static void Render(List<CheckRow> rows)
    {
            var table = new Table().AddColumns("model", "wiring", "ranks", "steps", "max |Δw| sync BN", "max |Δw| per-rank BN", "ranks identical", "test acc 1 process", "test acc sync BN", "epoch covered once");
            foreach (var r in rows)
                table.AddRow(r.Model, r.Wiring, $"{r.Ranks}", $"{r.Steps}", $"{r.SyncMaxDiff:E2}", r.PerRankMaxDiff is { } p ? $"{p:E2}" : "-", r.RanksIdentical ? "yes" : "[red]NO[/]",
                    $"{100 * r.ReferenceAccuracy:F2}%", $"{100 * r.SyncAccuracy:F2}%", r.ShardsCoverEpoch ? "yes" : "[red]NO[/]");
            AnsiConsole.Write(table);
    }

    private static (float[] Weights, double Accuracy) Train(ModelSpec spec, Runtime.Device device, Communicator world, WiringKind kind, int steps, int batch,
        DataParallelOptions parallel, (int Rank, int Step, string Mode)? fault = null)
    {
        var train = SyntheticLike(spec, steps * batch, 11);
        var test = SyntheticLike(spec, 40, 12);
        var options = new TrainerOptions
        {
            Epochs = 1, BatchSize = batch, EvalBatchSize = 16, LearningRate = 0.05f, Seed = 3, Augment = true, WarmupFraction = 0.1f,
            LabelSmoothing = 0.05f, MaxLossRatio = 0,
        };
        if (kind == WiringKind.Dynamic) options = options with { SparsityWeight = 0.01f, KeepTarget = 0.7f, BatchShapingWeight = 0.5f };
        // dynamic: the continuous gate, whose edge weights do not jump at τ, so float rounding between one process and
        // several ranks cannot flip a threshold decision and grow into a different run
        var wiring = kind == WiringKind.Dynamic ? new WiringConfig { Kind = kind, Gate = GateKind.Continuous } : new WiringConfig { Kind = kind };
        using var model = new DdwNet(device, spec, wiring, seed: 5);
        var terms = ObjectiveTerms.FromOptions(options, model).ToList();
        if (fault is { } f) terms[0] = new FaultTerm(terms[0], world, f.Rank, f.Step, f.Mode);
        using var trainer = new Trainer(model, train, test, options, terms, parallel);
        trainer.Run();
        return (model.Parameters().SelectMany(p => p.ToArray()).ToArray(), trainer.LastEval!.Accuracy);
    }

    private static CheckRow CheckWiring(ModelSpec spec, Runtime.Device device, Communicator world, WiringKind kind, int steps, int batch, DataParallelOptions parallel)
    {
        // one process at the global batch: rank 0 alone needs it
        var reference = world.IsRoot ? Train(spec, device, world, kind, steps, batch, DataParallelOptions.SingleProcess) : (Weights: Array.Empty<float>(), Accuracy: double.NaN);
        var sync = Train(spec, device, world, kind, steps, batch, parallel with { SyncBatchNorm = true });
        var perRank = Train(spec, device, world, kind, steps, batch, parallel with { SyncBatchNorm = false });
        var train = SyntheticLike(spec, steps * batch, 11);
        var options = new TrainerOptions { BatchSize = batch, Seed = 3 };

        var all = world.AllGather<float>(sync.Weights);
        bool identical = true;
        for (int r = 1; r < world.Size && identical; r++)
            identical = all.AsSpan(r * sync.Weights.Length, sync.Weights.Length).SequenceEqual(all.AsSpan(0, sync.Weights.Length));
        var fromRoot = new[] { MaxDiff(sync.Weights, reference.Weights), MaxDiff(perRank.Weights, reference.Weights), reference.Accuracy };
        world.Broadcast<double>(fromRoot);
        return new CheckRow(spec.Name, kind.ToString().ToLowerInvariant(), world.Size, steps, fromRoot[0], fromRoot[1],
            identical, fromRoot[2], sync.Accuracy, CoversEpoch(train, options, world));
    }

    /// <summary><c>MODEL@SIZE:STEPS</c> of <c>--also</c> and <c>--resume-check</c>.</summary>
    private static (ModelSpec Spec, int Steps) ParseZooCheck(string option, string value)
    {
        var parts = value.Split('@', ':');
        if (parts.Length != 3 || !int.TryParse(parts[1], out int size) || !int.TryParse(parts[2], out int steps) || size < 1 || steps < 1)
            throw new ArgumentException($"{option} must be MODEL@SIZE:STEPS with positive SIZE and STEPS, e.g. resnet_mini@8:3; got '{value}'.");
        return (ModelZoo.Get(parts[0]).WithInput(size), steps);
    }

    /// <summary>
    /// Resume across a changed rank count at the same global batch: rank 0 trains the first of two epochs of
    /// <paramref name="steps"/> steps in one process and checkpoints it; the second epoch then runs from that checkpoint
    /// in one process (the reference, rank 0) and on every rank with synchronised batch norm. The row's sync columns
    /// compare the two; per-rank batch norm is not run (null).
    /// </summary>
    private static CheckRow CheckResume(ModelSpec spec, Runtime.Device device, Communicator world, int steps, int batch, DataParallelOptions parallel)
    {
        var train = SyntheticLike(spec, steps * batch, 11);
        var test = SyntheticLike(spec, 40, 12);
        var options = new TrainerOptions { Epochs = 2, BatchSize = batch, EvalBatchSize = 16, LearningRate = 0.05f, Seed = 3, Augment = true, WarmupFraction = 0.1f, MaxLossRatio = 0 };
        int tag = world.IsRoot ? Random.Shared.Next() : 0;
        var tags = new[] { tag };
        world.Broadcast<int>(tags);
        var dir = Path.Combine(Path.GetTempPath(), $"ddw-resume-check-{tags[0]}");
        var path = Path.Combine(dir, "epoch1.ddw");
        var previous = DataParallelOptions.Default;
        try
        {
            if (world.IsRoot)
            {
                Directory.CreateDirectory(dir);
                using var model = new DdwNet(device, spec, new WiringConfig { Kind = WiringKind.Chain }, seed: 5);
                using var first = new Trainer(model, train, test, options, parallel: DataParallelOptions.SingleProcess) { CheckpointPath = path };
                first.RunEpoch();
            }
            world.Barrier();
            (float[] Weights, double Accuracy) Second(DataParallelOptions ranks)
            {
                DataParallelOptions.Default = ranks;
                using var trainer = Checkpoint.Resume(device, path, train, test);
                trainer.Run();
                return (trainer.Model.Parameters().SelectMany(p => p.ToArray()).ToArray(), trainer.LastEval!.Accuracy);
            }
            var reference = world.IsRoot ? Second(DataParallelOptions.SingleProcess) : (Weights: Array.Empty<float>(), Accuracy: double.NaN);
            var resumed = Second(parallel with { SyncBatchNorm = true });
            var all = world.AllGather<float>(resumed.Weights);
            bool identical = true;
            for (int r = 1; r < world.Size && identical; r++)
                identical = all.AsSpan(r * resumed.Weights.Length, resumed.Weights.Length).SequenceEqual(all.AsSpan(0, resumed.Weights.Length));
            var fromRoot = new[] { MaxDiff(resumed.Weights, reference.Weights), reference.Accuracy };
            world.Broadcast<double>(fromRoot);
            return new CheckRow($"{spec.Name} resumed", "chain", world.Size, 2 * steps, fromRoot[0], null, identical, fromRoot[1], resumed.Accuracy,
                CoversEpoch(train, options, world));
        }
        finally
        {
            DataParallelOptions.Default = previous;
            world.Barrier();
            if (world.IsRoot && Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    private static double MaxDiff(float[] a, float[] b)
    {
        double max = 0;
        for (int i = 0; i < Math.Min(a.Length, b.Length); i++) max = Math.Max(max, Math.Abs((double)a[i] - b[i]));
        return max;
    }

    /// <summary>Whether the ranks' shards of every batch of epoch 0 together visit each sample of one loader's epoch exactly once.</summary>
    private static bool CoversEpoch(ImageDataset train, TrainerOptions options, Communicator world)
    {
        var loaderOptions = new BatchLoaderOptions { BatchSize = options.BatchSize, Seed = options.Seed, DropLast = train.Count > options.BatchSize, Prefetch = 0 };
        using var whole = new BatchLoader(train, loaderOptions);
        using var shard = new BatchLoader(train, loaderOptions with { ShardCount = world.Size, ShardIndex = world.Rank });
        var mine = shard.Epoch(0).SelectMany(x => x.Indices).ToArray();
        var counts = world.AllGather<int>([mine.Length]);
        var padded = new int[counts.Max()];
        Array.Fill(padded, -1);
        mine.CopyTo(padded, 0);
        var visited = world.AllGather<int>(padded).Where(i => i >= 0).ToArray();
        var expected = whole.Epoch(0).SelectMany(x => x.Indices).ToArray();
        return visited.Length == expected.Length && visited.Distinct().Count() == visited.Length && visited.Order().SequenceEqual(expected.Order());
    }

    /// <summary>Testing: wraps the first objective term and makes one rank throw or die at one step.</summary>
    private sealed class FaultTerm(IObjectiveTerm inner, Communicator world, int rank, int step, string mode) : IObjectiveTerm
    {
        public string Name => inner.Name;

        public Tensor Compute(Tape tape, ObjectiveContext context)
        {
            if (world.Rank == rank && context.Step == step)
            {
                if (mode == "kill") Process.GetCurrentProcess().Kill();
                throw new InvalidOperationException($"injected failure at step {step}");
            }
            return inner.Compute(tape, context);
        }
    }
}

[System.Text.Json.Serialization.JsonSourceGenerationOptions(PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.SnakeCaseLower)]
[System.Text.Json.Serialization.JsonSerializable(typeof(List<DistributedCommands.CheckRow>))]
internal sealed partial class CheckJson : System.Text.Json.Serialization.JsonSerializerContext;
