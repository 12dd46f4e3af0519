using System.Diagnostics;
using System.Text.Json;
using IlgpuDdw.Autograd;
using IlgpuDdw.Cli;
using IlgpuDdw.Data;
using IlgpuDdw.Distributed;
using IlgpuDdw.Training;

namespace IlgpuDdw.Tests;

/// <summary>
/// Data-parallel training: the communicator's single-process and launcher logic in-process, and the 2-rank runs under
/// Open MPI's <c>mpirun</c> (one job for the equivalence scenarios, one for a killed rank). Without <c>mpirun</c> the
/// MPI tests pass vacuously unless <see cref="RequireVariable"/> is set (CI sets it, so there they fail instead).
/// </summary>
public sealed class DistributedTests
{
    /// <summary>Set to 1 (by .ci/run) to make a missing mpirun a failure.</summary>
    public const string RequireVariable = "DDW_REQUIRE_MPI";

    [Fact]
    public void SingleProcess_IsRankZeroOfOne_AndCollectivesLeaveTheData()
    {
        using var c = new Communicator.SingleProcess();
        Assert.Equal((0, 1, true), (c.Rank, c.Size, c.IsRoot));
        float[] x = [1f, 2f, -3f];
        c.AllReduce<float>(x);
        c.Broadcast<float>(x);
        Assert.Equal([1f, 2f, -3f], x);
        Assert.Equal([4, 5], c.AllGather<int>([4, 5]));
        Assert.Throws<ArgumentOutOfRangeException>(() => c.Broadcast<float>(x, root: 1));
        Assert.Throws<ArgumentException>(() => c.AllGather<int>([1], new int[3]));
        Assert.Throws<NotSupportedException>(() => c.AllReduce<short>(new short[2]));
    }

    [Fact]
    public void Launcher_DetectsMpiFromTheLaunchersVariables()
    {
        static Func<string, string?> Env(params (string, string)[] vars) => name => vars.FirstOrDefault(v => v.Item1 == name).Item2;
        Assert.False(Launcher.WantsMpi(Env()));
        Assert.True(Launcher.WantsMpi(Env(("OMPI_COMM_WORLD_RANK", "1"))));
        Assert.True(Launcher.WantsMpi(Env(("PMI_RANK", "0"))));
        Assert.True(Launcher.WantsMpi(Env(("PMIX_RANK", "3"))));
        Assert.False(Launcher.WantsMpi(Env(("OMPI_COMM_WORLD_RANK", "1"), (Communicator.EngineVariable, "none"))));
        Assert.True(Launcher.WantsMpi(Env((Communicator.EngineVariable, "mpi"))));
        var e = Assert.Throws<ArgumentException>(() => Launcher.WantsMpi(Env((Communicator.EngineVariable, "tcp"))));
        Assert.Contains("tcp", e.Message);
        Assert.Equal((1, 4), Launcher.Announced(Env(("OMPI_COMM_WORLD_RANK", "1"), ("OMPI_COMM_WORLD_SIZE", "4"))));
        Assert.Equal((2, 3), Launcher.Announced(Env(("SLURM_PROCID", "2"), ("SLURM_NTASKS", "3"))));
        Assert.Null(Launcher.Announced(Env(("SLURM_PROCID", "3"), ("SLURM_NTASKS", "3"))));
    }

    [Fact]
    public void MpiLibrary_Missing_NamesWhatWasTried()
    {
        var e = Assert.Throws<DistributedException>(() => MpiLibrary.Load(n => n == MpiLibrary.LibraryVariable ? "/nonexistent/libmpi.so" : null));
        Assert.Contains("/nonexistent/libmpi.so", e.Message);
        Assert.Contains(MpiLibrary.LibraryVariable, e.Message);
    }

    [Fact]
    public void Shards_OfEveryBatch_VisitOneLoadersEpochOnce_WithItsAugmentation()
    {
        var data = TrainerTests.Synthetic(53, 4);
        var options = new BatchLoaderOptions { BatchSize = 10, Seed = 7, Augmentation = new Augmentation(), Prefetch = 0 };
        using var whole = new BatchLoader(data, options);
        var shards = Enumerable.Range(0, 3).Select(r => new BatchLoader(data, options with { ShardCount = 3, ShardIndex = r })).ToArray();
        try
        {
            for (int epoch = 0; epoch < 2; epoch++)
            {
                var expected = whole.Epoch(epoch).ToArray();
                var parts = shards.Select(s => s.Epoch(epoch).ToArray()).ToArray();
                for (int b = 0; b < expected.Length; b++)
                {
                    // rank blocks in rank order are the batch: same samples, same order, same augmented pixels
                    Assert.Equal(expected[b].Indices, parts.SelectMany(p => p[b].Indices));
                    Assert.Equal(expected[b].Images, parts.SelectMany(p => p[b].Images));
                    Assert.InRange(parts.Max(p => p[b].Count) - parts.Min(p => p[b].Count), 0, 1);
                }
                var visited = parts.SelectMany(p => p.SelectMany(x => x.Indices)).Order().ToArray();
                Assert.Equal(Enumerable.Range(0, data.Count), visited);
            }
        }
        finally
        {
            foreach (var s in shards) s.Dispose();
        }
        Assert.Throws<ArgumentException>(() => new BatchLoader(data, options with { ShardCount = 2, ShardIndex = 2 }));
    }

    [Fact]
    public void Split_GivesContiguousBlocksDifferingByAtMostOne()
    {
        Assert.Equal([(0, 4), (4, 3), (7, 3)], Enumerable.Range(0, 3).Select(r => DataParallel.Split(10, r, 3)));
        Assert.Equal((0, 5), DataParallel.Split(5, 0, 1));
    }

    [Fact]
    public void MpiRun_RewritesTheCommandLineOfOtherRanks()
    {
        Assert.Equal(["train", "--epochs", "2"], MpiRun.WithoutRanks(["train", "--ranks", "2", "--epochs", "2"]));
        Assert.Equal(["train"], MpiRun.WithoutRanks(["train", "--ranks=4"]));
        Assert.Equal(["compare", "--budget", "smoke", "--out", "/tmp/r1", "--overwrite"],
            MpiRun.WithOutput(["compare", "-o", "runs/x", "--budget", "smoke", "--overwrite"], "/tmp/r1"));
        Assert.Equal(["info"], MpiRun.WithOutput(["info"], "/tmp/r1"));
        Assert.Equal(["--device", "cpu", "train", "--out", "/tmp/r1", "--overwrite"], MpiRun.WithOutput(["--device", "cpu", "train", "--out=x"], "/tmp/r1"));
    }

    // ---- 2 ranks under mpirun ------------------------------------------------------------------------

    /// <summary>
    /// One job: chain, dense and dynamic wiring (with the keep-rate, batch-shaping and sparsity terms), 2 ranks × batch
    /// 16 against one process × batch 32 for 20 SGD steps. Synchronised batch norm: max |Δw| = 0 (gradient groups) and the same test
    /// accuracy; the ranks bit-identical; per-rank batch norm measurably different; the shards cover the epoch once.
    /// The same for resnet_mini at 8×8 (chain, 3 steps: its 8×8 and 4×4 batch norms reduce chunks that the ranks
    /// split, so the statistics must be one process's, not merged per rank, or a ReLU near 0 flips after one step),
    /// and a checkpoint of one process resumed on the 2 ranks (same global batch) against one process resuming it.
    /// Then rank 1 raises in a further run: the job must end with its error, not hang.
    /// </summary>
    [Fact]
    public void TwoRanks_MatchOneProcessAtTheGlobalBatch_AndARaisingRankEndsTheJob()
    {
        if (Mpirun() is not { } mpirun) return;
        var (code, output, elapsed) = RunMpi(mpirun, 2, ["distributed", "check", "--json", "--steps", "20", "--batch-size", "32",
            "--also", "resnet_mini@8:3", "--resume-check", "resnet_mini@8:1", "--fail-rank", "1", "--fail-step", "1"]);
        var json = output.Split('\n').FirstOrDefault(l => l.StartsWith('[')) ?? throw new Xunit.Sdk.XunitException($"no JSON rows in the output:\n{output}");
        var rows = JsonDocument.Parse(json).RootElement.EnumerateArray().ToArray();
        Assert.Equal(["resnet_tiny chain", "resnet_tiny dense", "resnet_tiny dynamic", "resnet_mini chain", "resnet_mini resumed chain"],
            rows.Select(r => $"{r.GetProperty("model").GetString()} {r.GetProperty("wiring").GetString()}"));
        foreach (var r in rows)
        {
            string w = $"{r.GetProperty("model").GetString()} {r.GetProperty("wiring").GetString()}";
            bool resumed = w.Contains("resumed");
            double sync = r.GetProperty("sync_max_diff").GetDouble();
            // gradient groups of 16 (the CPU default) on 1 × 32 and 2 × 16: the same summation order, so bit for bit
            Assert.True(sync == 0, $"{w}: max |Δw| with synchronised batch norm {sync:E2}: not bit-identical to one process");
            if (resumed)
            {
                Assert.Equal(JsonValueKind.Null, r.GetProperty("per_rank_max_diff").ValueKind);
            }
            else
            {
                double perRank = r.GetProperty("per_rank_max_diff").GetDouble();
                Assert.True(perRank >= 1e-3, $"{w}: per-rank batch norm should differ measurably from one process; max |Δw| {perRank:E2}");
            }
            Assert.True(r.GetProperty("ranks_identical").GetBoolean(), $"{w}: the ranks' weights differ");
            Assert.Equal(r.GetProperty("reference_accuracy").GetDouble(), r.GetProperty("sync_accuracy").GetDouble());
            Assert.True(r.GetProperty("shards_cover_epoch").GetBoolean(), $"{w}: the shards do not cover the epoch once");
        }
        Assert.NotEqual(0, code);
        Assert.Contains("rank 1 of 2: injected failure", output);
        Assert.True(elapsed < TimeSpan.FromSeconds(120), $"the job took {elapsed.TotalSeconds:F0} s, the failure included");
    }

    [Fact]
    public void TwoRanks_AKilledRank_EndsTheJobWithAnError()
    {
        if (Mpirun() is not { } mpirun) return;
        var (code, output, elapsed) = RunMpi(mpirun, 2, ["distributed", "check", "--json", "--wirings", "chain", "--steps", "3", "--fail-rank", "1", "--fail-step", "1", "--fail-mode", "kill"]);
        Assert.Contains("fails (kill)", output);
        Assert.NotEqual(0, code);
        Assert.Contains("signal 9", output);
        Assert.True(elapsed < TimeSpan.FromSeconds(60), $"the job took {elapsed.TotalSeconds:F0} s to end after the kill");
    }

    /// <summary>mpirun's path, or null (the test then passes without running) unless <see cref="RequireVariable"/> is set.</summary>
    private static string? Mpirun()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, "mpirun");
            if (File.Exists(candidate)) return candidate;
        }
        if (Environment.GetEnvironmentVariable(RequireVariable) == "1")
            throw new Xunit.Sdk.XunitException($"mpirun was not found on PATH and {RequireVariable}=1: install openmpi-bin.");
        return null;
    }

    private static (int Code, string Output, TimeSpan Elapsed) RunMpi(string mpirun, int ranks, string[] args)
    {
        var ddw = Path.Combine(AppContext.BaseDirectory, "ddw.dll");
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h ? h : "dotnet";
        var start = new ProcessStartInfo(mpirun) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in (string[])["-n", ranks.ToString(), "--oversubscribe", dotnet, ddw, "--device", "cpu", .. args]) start.ArgumentList.Add(a);
        start.Environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1";
        start.Environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1";
        start.Environment["TERM"] = "dumb";
        start.Environment.Remove(Communicator.EngineVariable);
        var clock = Stopwatch.StartNew();
        using var p = Process.Start(start)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(150)))
        {
            p.Kill(entireProcessTree: true);
            throw new Xunit.Sdk.XunitException($"mpirun {string.Join(' ', args)} did not end within 150 s (a hang):\n{stdout.Result}\n{stderr.Result}");
        }
        return (p.ExitCode, stdout.Result + "\n" + stderr.Result, clock.Elapsed);
    }
}

/// <summary>The flat gradient buffer's pieces: tensor slices and gradients bound to them.</summary>
[Collection("cpu")]
public sealed class FlatGradientTests(DeviceFixture fx)
{
    [Fact]
    public void Slice_SharesStorage_AndBindGrad_MakesTheGradientAViewOfTheFlatBuffer()
    {
        var d = fx.Device;
        using var flat = Tensor.Zeros(d, 10);
        using var a = Tensor.FromArray(d, [1f, 2f, 3f, 4f], 2, 2);
        using var b = Tensor.FromArray(d, [5f, 6f], 2);
        a.BindGrad(flat, 0);
        b.BindGrad(flat, 4);
        Assert.Null(a.GradOrNull); // bound, not yet allocated
        a.Grad.Fill(1f);
        b.Grad.Fill(2f);
        Assert.Equal([1f, 1f, 1f, 1f, 2f, 2f, 0f, 0f, 0f, 0f], flat.ToArray());
        flat.Fill(0f); // one launch zeros both gradients
        Assert.Equal(new float[4], a.GradToArray());
        using (var s = flat.Slice(4, 1, 2)) Assert.Equal([1, 2], s.Shape);
        Assert.Throws<ArgumentOutOfRangeException>(() => b.BindGrad(flat, 9));
        Assert.Throws<ArgumentOutOfRangeException>(() => flat.Slice(8, 3));
        a.BindGrad(null);
        a.Grad.Fill(7f); // a tensor of its own again
        Assert.Equal(0f, flat.ToArray()[0]);
    }
}

/// <summary>The NCCL engine up to its native calls (no GPU here).</summary>
[Collection("cpu")]
public sealed class NcclTests(DeviceFixture fx)
{
    [Fact]
    public void Library_IsLookedUpInTheVariable_ThenTheLoaderPath_ThenPythonPackages()
    {
        var env = new Dictionary<string, string?> { ["VIRTUAL_ENV"] = "/venv", ["HOME"] = "/home/u" };
        var dirs = new Dictionary<string, string[]>
        {
            ["/venv/lib"] = ["/venv/lib/python3.11", "/venv/lib/tcl8"],
            ["/usr/local/lib"] = ["/usr/local/lib/python3.12"],
        };
        var c = NcclLibrary.Candidates(n => env.GetValueOrDefault(n), d => dirs.GetValueOrDefault(d) ?? []);
        Assert.Equal("libnccl.so.2", c[0]);
        Assert.Equal("/venv/lib/python3.11/site-packages/nvidia/nccl/lib/libnccl.so.2", c[1]);
        Assert.Contains("/usr/local/lib/python3.12/dist-packages/nvidia/nccl/lib/libnccl.so.2", c);
        Assert.DoesNotContain(c, p => p.Contains("tcl8"));
        env[NcclLibrary.LibraryVariable] = "/opt/nccl/libnccl.so.2";
        Assert.Equal(["/opt/nccl/libnccl.so.2"], NcclLibrary.Candidates(n => env.GetValueOrDefault(n), _ => []));
    }

    [Fact]
    public void Missing_Library_Or_NonGpuDevice_FailsBeforeAnyNativeCall()
    {
        var e = Assert.Throws<DistributedException>(() => NcclLibrary.Load(n => n == NcclLibrary.LibraryVariable ? "/nonexistent/libnccl.so.2" : null));
        Assert.Contains("/nonexistent/libnccl.so.2", e.Message);
        var cpu = Assert.Throws<ArgumentException>(() => NcclCommunicator.Create(new Communicator.SingleProcess(), fx.Device));
        Assert.Contains("Cuda", cpu.Message);
    }

    [Fact]
    public void Ranks_ComeFromTheBootstrap_OrFromNcclCommId()
    {
        static Func<string, string?> Env(params (string, string)[] vars) => name => vars.FirstOrDefault(v => v.Item1 == name).Item2;
        Assert.Equal((1, 2), NcclCommunicator.Ranks(null, Env(("NCCL_COMM_ID", "h:1"), ("RANK", "1"), ("WORLD_SIZE", "2"))));
        Assert.Contains("NCCL_COMM_ID", Assert.Throws<ArgumentException>(() => NcclCommunicator.Ranks(new Communicator.SingleProcess(), Env())).Message);
        Assert.Contains("RANK", Assert.Throws<ArgumentException>(() => NcclCommunicator.Ranks(null, Env(("NCCL_COMM_ID", "h:1"), ("RANK", "2"), ("WORLD_SIZE", "2")))).Message);
        Assert.Contains("WORLD_SIZE", Assert.Throws<ArgumentException>(() => NcclCommunicator.Ranks(null, Env(("NCCL_COMM_ID", "h:1"), ("RANK", "0")))).Message);
    }

    [Fact]
    public unsafe void UniqueId_Is128BytesByValue_AndTypesMapToNccl()
    {
        Assert.Equal(128, sizeof(NcclUniqueId));
        var id = new NcclUniqueId();
        id.AsSpan()[127] = 9;
        Assert.Equal(9, id.Internal[127]);
        Assert.Equal(NcclLibrary.Float32, NcclLibrary.DataType(typeof(float)));
        Assert.Equal(7, NcclLibrary.Float32);
        Assert.Equal(4, NcclLibrary.Avg);
        Assert.Equal(NcclLibrary.Max, NcclLibrary.Op(ReduceOp.Max));
        Assert.Throws<NotSupportedException>(() => NcclLibrary.DataType(typeof(short)));
        Assert.Contains("remote error", NcclLibrary.Describe(6));
    }

    [Fact]
    public void LocalRank_PicksTheRanksGpu()
    {
        Assert.Equal(["--device", "cuda:1", "train"], MpiRun.WithLocalGpu(["--device", "cuda", "train"], n => n == "OMPI_COMM_WORLD_LOCAL_RANK" ? "1" : null));
        Assert.Equal(["--device", "cuda:0"], MpiRun.WithLocalGpu(["--device", "cuda:0"], n => n == "SLURM_LOCALID" ? "3" : null));
        Assert.Equal(["-d", "cuda"], MpiRun.WithLocalGpu(["-d", "cuda"], _ => null));
    }
}

/// <summary>
/// Synchronised batch norm's arithmetic in one process: with a single rank the layout's pieces are one process's
/// chunks, so the statistics and backward sums must be the single-process kernels' bit for bit (the 2-rank job checks
/// the pieces that ranks split).
/// </summary>
[Collection("cpu")]
public sealed class SyncBatchNormTests(DeviceFixture fx)
{
    public static TheoryData<int[], int, bool, bool> Cases() => new()
    {
        { [3, 5, 7, 5], 0, false, false },
        { [3, 5, 7, 5], 13, true, false },
        { [4, 6, 3, 3], 7, false, true },
        { [4, 6, 3, 3], 0, true, true },
        { [8, 16, 4, 4], 0, true, false },
    };

    [Theory, MemberData(nameof(Cases))]
    public void OneRank_ReproducesTheSingleProcessKernels(int[] shape, int chunkLength, bool masked, bool relu)
    {
        var d = fx.Device;
        int b = shape[0], c = shape[1], s = shape[2] * shape[3], n = b * c * s;
        BatchNormPlan? plan = chunkLength > 0 ? new BatchNormPlan(BatchNormReduction.Chunks, chunkLength, 1) : null;
        var launch = plan ?? BatchNormPlan.For(d, c, b * s);
        using var x = Tensor.FromArray(d, Verification.Seeded.Uniform<float>(n, 1, -2, 3), shape);
        using var dy = Tensor.FromArray(d, Verification.Seeded.Uniform<float>(n, 2), shape);
        using var y = Tensor.FromArray(d, Verification.Seeded.Uniform<float>(n, 3), shape);
        using var live = masked ? Tensor.FromArray(d, Enumerable.Range(0, b).Select(i => i == 0 || i % 3 == 2 ? 0f : 1f).ToArray(), b) : null;
        var running = Verification.Seeded.Uniform<float>(2 * c, 4, 0.5, 2);
        float[][] One(bool sync)
        {
            using var mean = Tensor.Empty(d, c);
            using var invstd = Tensor.Empty(d, c);
            using var runningMean = Tensor.FromArray(d, running.AsSpan(0, c), c);
            using var runningVar = Tensor.FromArray(d, running.AsSpan(c, c), c);
            using var dGamma = Tensor.Zeros(d, c);
            using var dBeta = Tensor.Zeros(d, c);
            float[] sumDy, sumDyXhat;
            if (sync)
            {
                var layout = Ops.SyncBatchNormStatistics(new Communicator.SingleProcess(), plan, x, 1e-5f, 0.1f, mean, invstd, runningMean, runningVar, live);
                Assert.Equal(masked ? live!.ToArray().Count(v => v != 0f) * s : b * s, layout.StatisticsCount);
                (sumDy, sumDyXhat) = Ops.SyncBatchNormChannelSums(layout, x, dy, relu ? y : null, mean, invstd, live, dGamma, dBeta);
            }
            else
            {
                Ops.BatchNormStatistics(launch, x, 1e-5f, 0.1f, mean, invstd, runningMean, runningVar, live);
                if (live is null)
                {
                    using var tDy = Tensor.Empty(d, c);
                    using var tDyXhat = Tensor.Empty(d, c);
                    Ops.BatchNormChannelSums(launch, x, dy, relu ? y : null, mean, invstd, tDy, tDyXhat, dGamma, dBeta);
                    (sumDy, sumDyXhat) = (tDy.ToArray(), tDyXhat.ToArray());
                }
                else
                {
                    using var sums = Tensor.Empty(d, 2 * c + 1);
                    Ops.BatchNormChannelSumsMasked(launch, true, x, dy, relu ? y : null, mean, invstd, live, sums, dGamma, dBeta);
                    var packed = sums.ToArray();
                    (sumDy, sumDyXhat) = (packed[..c], packed[c..(2 * c)]);
                }
            }
            return [mean.ToArray(), invstd.ToArray(), runningMean.ToArray(), runningVar.ToArray(), sumDy, sumDyXhat, dGamma.ToArray(), dBeta.ToArray()];
        }
        var expected = One(sync: false);
        var actual = One(sync: true);
        string[] names = ["mean", "invstd", "running mean", "running var", "Σdy", "Σdy·x̂", "dγ", "dβ"];
        for (int i = 0; i < names.Length; i++)
            Assert.True(expected[i].SequenceEqual(actual[i]), $"{names[i]}: [{string.Join(", ", expected[i])}] vs [{string.Join(", ", actual[i])}]");
    }
}
