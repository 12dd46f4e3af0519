using System.CommandLine;
using System.Runtime.Versioning;
using System.Text.Json;
using IlgpuDdw.Cli.Options;
using IlgpuDdw.Training;

namespace IlgpuDdw.Tests;

/// <summary>
/// The ddw command with bad input and faults: resume rules, one-line I/O errors with exit code 1, runs that never
/// clobber each other. Faults a test cannot cause for real (a full disk; a read-only folder when running as root)
/// are injected into the run's file operations.
/// </summary>
[Collection("cpu-cli")]
public sealed class CliRunSafetyTests
{
    /// <summary>A tiny train run: 16 training images in one batch, 8 test images, chain wiring.</summary>
    private static string[] Train(string outDir, params string[] more) =>
        ["train", "--budget", "smoke", "--train-images", "16", "--test-images", "8", "--batch", "16", "--wiring", "chain", "--device", "cpu", "--out", outDir, .. more];

    private static (int Code, string Out, string Err) Run(params string[] args) => CliTests.Run(args);

    private static string OneLine(string err) => Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    private static int[] Epochs(string metrics) =>
        File.ReadAllLines(metrics).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("epoch").GetInt32()).ToArray();

    /// <summary>A finished one-epoch run (built once), copied into each test's own folder.</summary>
    private static readonly Lazy<TempDirectory> FinishedRun = new(() =>
    {
        var dir = new TempDirectory();
        var (code, _, err) = Run(Train(dir.File("run")));
        Assert.True(code == 0, err);
        return dir;
    });

    private static string CopyOfFinishedRun(TempDirectory into)
    {
        string target = into.File("run");
        Directory.CreateDirectory(target);
        foreach (var f in Directory.GetFiles(FinishedRun.Value.File("run")))
            File.Copy(f, Path.Combine(target, Path.GetFileName(f)));
        return target;
    }

    [Fact]
    public void DiskFullDuringASave_IsOneLine_ThenResumeRestoresTheRun_AndGivesEveryEpochOnce()
    {
        using var dir = new TempDirectory();
        string run = dir.File("run");
        string checkpoint = Path.Combine(run, "checkpoint.safetensors");
        (int Code, string Out, string Err) crashed;
        using (FileFaults.Inject(FileFault.DiskFull, "checkpoint.safetensors", skip: 1)) // the second save fails
            crashed = Run(Train(run, "--epochs", "2", "--lr", "0.05"));
        Assert.Equal(1, crashed.Code);
        var line = OneLine(crashed.Err);
        Assert.Contains($"cannot write checkpoint {checkpoint}: no space left on device", line);
        Assert.Empty(Directory.GetFiles(run, "*.tmp"));
        Assert.Equal(1, Checkpoint.ReadInfo(checkpoint).Epoch); // the last good checkpoint is intact
        Assert.Equal([1, 2], Epochs(Path.Combine(run, "metrics.jsonl"))); // epoch 2 was logged before its save failed
        var lost = JsonDocument.Parse(File.ReadAllLines(Path.Combine(run, "metrics.jsonl"))[1]).RootElement;

        // No flags: model, wiring, options, data folder and image counts all come from the checkpoint.
        var (code, output, err) = Run("train", "--resume", checkpoint, "--device", "cpu");
        Assert.True(code == 0, err);
        Assert.Contains("at epoch 2 of 2", output);
        Assert.Contains("16 images × 2 epochs", output);
        Assert.Equal([1, 2], Epochs(Path.Combine(run, "metrics.jsonl")));
        var again = JsonDocument.Parse(File.ReadAllLines(Path.Combine(run, "metrics.jsonl"))[1]).RootElement;
        foreach (var key in new[] { "step", "trainLoss", "trainAccuracy", "testLoss", "testAccuracy", "learningRate" }) // (not peakBytes: the straight run starts epoch 2 with its gradients allocated)
            Assert.Equal(lost.GetProperty(key).GetRawText(), again.GetProperty(key).GetRawText());
        var info = Checkpoint.ReadInfo(checkpoint);
        Assert.Equal((2, 16, 8, "smoke"), (info.Epoch, info.Data!.TrainImages, info.Data.TestImages, info.Data.Budget));
    }

    [Fact]
    public void ResumeWithConflictingFlags_IsRefused_NamingEachFlagAndBothValues()
    {
        using var dir = new TempDirectory();
        string checkpoint = Path.Combine(CopyOfFinishedRun(dir), "checkpoint.safetensors");
        var (code, output, err) = Run("train", "--resume", checkpoint, "--device", "cpu", "--lr", "0.1", "--model", "mobilenet_mini",
            "--train-images", "100", "--wiring", "dynamic", "--tau", "0.3", "--seed", "5");
        Assert.Equal(2, code);
        Assert.Equal("", output);
        var line = OneLine(err);
        foreach (var part in new[] { "--lr 0.1 (the run has 0.02)", "--model mobilenet_mini (the run has resnet_mini)", "--train-images 100 (the run has 16)",
            "--wiring dynamic (the run has chain)", "--tau 0.3 (the run has 0.5)", "--seed 5 (the run has 0)" })
            Assert.Contains(part, line);

        (code, _, err) = Run("train", "--resume", checkpoint, "--device", "cpu", "--epochs", "3");
        Assert.Equal(2, code);
        Assert.Contains("--epochs 3 (the run has 1; add --extend", OneLine(err));

        // Equal values and the options that are safe to change are accepted.
        (code, output, err) = Run("train", "--resume", checkpoint, "--device", "cpu", "--train-images", "16", "--model", "resnet_mini", "--budget", "smoke",
            "--eval-batch", "4", "--max-loss", "1e5", "--max-grad-norm", "1e6", "--max-loss-ratio", "50");
        Assert.True(code == 0, err);
    }

    [Fact]
    public void ResumeOfAFinishedRun_SaysSo_AndExits0()
    {
        using var dir = new TempDirectory();
        string checkpoint = Path.Combine(CopyOfFinishedRun(dir), "checkpoint.safetensors");
        var (code, output, err) = Run("train", "--resume", checkpoint, "--device", "cpu");
        Assert.True(code == 0, err);
        Assert.Equal("run already complete (epoch 1 of 1); nothing to do", output.Trim());
    }

    [Fact]
    public void ResumeWithExtend_TrainsTheExtraEpochs_OnTheRecomputedSchedule()
    {
        using var dir = new TempDirectory();
        string run = CopyOfFinishedRun(dir);
        string checkpoint = Path.Combine(run, "checkpoint.safetensors");
        (int code, _, string err) = Run("train", "--resume", checkpoint, "--device", "cpu", "--extend");
        Assert.Equal(2, code);
        Assert.Contains("--extend needs --epochs", OneLine(err));
        (code, var output, err) = Run("train", "--resume", checkpoint, "--device", "cpu", "--epochs", "2", "--extend");
        Assert.True(code == 0, err);
        Assert.Contains("at epoch 2 of 2", output);
        Assert.Equal([1, 2], Epochs(Path.Combine(run, "metrics.jsonl")));
        var info = Checkpoint.ReadInfo(checkpoint);
        Assert.Equal((2, 2), (info.Epoch, info.Options!.Epochs));
        // Two steps in all now: the second (last) step of the new cosine schedule ends at the bottom of the curve.
        var last = JsonDocument.Parse(File.ReadAllLines(Path.Combine(run, "metrics.jsonl"))[1]).RootElement;
        Assert.Equal(new CosineSchedule(0.02f, 2, 0).At(1), last.GetProperty("learningRate").GetSingle());
    }

    [Fact]
    [UnsupportedOSPlatform("windows")]
    public void ReadOnlyOut_IsOneLine_Exit1()
    {
        using var dir = new TempDirectory();
        string ro = dir.File("ro");
        Directory.CreateDirectory(ro);
        File.SetUnixFileMode(ro, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        try
        {
            bool blocked;
            try
            {
                File.WriteAllText(Path.Combine(ro, "probe"), "");
                File.Delete(Path.Combine(ro, "probe"));
                blocked = false; // running as root: permissions do not stop writes
            }
            catch (UnauthorizedAccessException)
            {
                blocked = true;
            }
            (int Code, string Out, string Err) r;
            using (blocked ? null : FileFaults.Inject(FileFault.ReadOnly))
                r = Run(Train(ro));
            Assert.Equal(1, r.Code);
            Assert.Equal($"error: cannot write to output folder {ro}: permission denied", OneLine(r.Err));
        }
        finally
        {
            File.SetUnixFileMode(ro, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    [Fact]
    public void OutNamingAFile_IsOneLine_Exit1()
    {
        using var dir = new TempDirectory();
        string file = dir.File("notes.txt");
        File.WriteAllText(file, "mine");
        foreach (var args in new[] { Train(file), ["compare", "--budget", "smoke", "--device", "cpu", "--out", file] })
        {
            var (code, _, err) = Run(args);
            Assert.Equal(1, code);
            Assert.Equal($"error: output folder {file} is a file, not a folder; pass a folder to --out.", OneLine(err));
        }
        Assert.Equal("mine", File.ReadAllText(file));
    }

    [Fact]
    public void FolderAsCheckpoint_IsOneLine_Exit1()
    {
        using var dir = new TempDirectory();
        foreach (var args in new[] { new[] { "eval", "--checkpoint", dir.Path, "--device", "cpu" }, ["wiring", "--checkpoint", dir.Path, "--device", "cpu"],
            ["train", "--resume", dir.Path, "--device", "cpu"] })
        {
            var (code, _, err) = Run(args);
            Assert.Equal(1, code);
            Assert.Equal($"error: cannot read checkpoint {dir.Path}: it is a folder, not a checkpoint file", OneLine(err));
        }
    }

    [Fact]
    public void MissingCheckpoint_IsOneLine_Exit1()
    {
        using var dir = new TempDirectory();
        string missing = dir.File("nope.safetensors");
        foreach (var args in new[] { new[] { "eval", "--checkpoint", missing, "--device", "cpu" }, ["train", "--resume", missing, "--device", "cpu"] })
        {
            var (code, _, err) = Run(args);
            Assert.Equal(1, code);
            Assert.Equal($"error: checkpoint {missing} does not exist.", OneLine(err));
        }
    }

    [Fact]
    [UnsupportedOSPlatform("windows")]
    public void UnreadableDataFolder_IsOneLine_Exit1()
    {
        using var dir = new TempDirectory();
        string data = dir.File("data");
        Directory.CreateDirectory(data);
        foreach (var f in Directory.GetFiles(Data.FashionMnist.DefaultDirectory))
            File.CreateSymbolicLink(Path.Combine(data, Path.GetFileName(f)), f);
        File.SetUnixFileMode(data, UnixFileMode.None);
        try
        {
            bool blocked;
            try
            {
                _ = Directory.GetFiles(data);
                blocked = false; // running as root
            }
            catch (UnauthorizedAccessException)
            {
                blocked = true;
            }
            (int Code, string Out, string Err) r;
            using (blocked ? null : FileFaults.Inject(FileFault.Unreadable))
                r = Run(Train(dir.File("out"), "--data", data));
            Assert.Equal(1, r.Code);
            Assert.Equal($"error: cannot read Fashion-MNIST data in {data}: permission denied", OneLine(r.Err));
        }
        finally
        {
            File.SetUnixFileMode(data, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    [Fact]
    public void UnexpectedException_IsOneLine_PointingToVerbose_WhichPrintsTheTrace()
    {
        RootCommand Root()
        {
            var root = Cli.CliApp.Build();
            var boom = new Command("boom");
            boom.SetAction(new Func<ParseResult, int>(_ => throw new NotSupportedException("the broken\nthing")));
            root.Subcommands.Add(boom);
            return root;
        }
        var (code, _, err) = CliTests.Run(["boom"], Root());
        Assert.Equal(1, code);
        Assert.Equal("error: unexpected NotSupportedException: the broken thing (run with --verbose for the stack trace)", OneLine(err));
        (code, _, err) = CliTests.Run(["boom", "--verbose"], Root());
        Assert.Equal(1, code);
        Assert.StartsWith("error: unexpected NotSupportedException: the broken thing", err);
        Assert.Contains("   at ", err);
    }

    [Fact]
    public void NonEmptyOut_IsRefused_UnlessOverwrite_WhichStartsAFreshMetricsFile()
    {
        using var dir = new TempDirectory();
        string full = dir.File("full");
        Directory.CreateDirectory(full);
        File.WriteAllText(Path.Combine(full, "results.json"), "earlier results");
        foreach (var args in new[] { Train(full), ["compare", "--budget", "smoke", "--device", "cpu", "--out", full] })
        {
            var (code, _, err) = Run(args);
            Assert.Equal(1, code);
            var line = OneLine(err);
            Assert.Contains($"output folder {full} is not empty (it holds results.json)", line);
            Assert.Contains("--overwrite", line);
        }
        Assert.Equal("earlier results", File.ReadAllText(Path.Combine(full, "results.json")));

        string run = CopyOfFinishedRun(dir); // holds a checkpoint and one metrics record
        var (c, _, e) = Run(Train(run, "--overwrite"));
        Assert.True(c == 0, e);
        Assert.Equal([1], Epochs(Path.Combine(run, "metrics.jsonl")));
    }

    [Fact]
    public void ImageCountsAboveTheSplit_AreReported_NotCapped()
    {
        using var dir = new TempDirectory();
        var (code, _, err) = Run("train", "--budget", "smoke", "--train-images", "100000", "--device", "cpu", "--out", dir.File("o"));
        Assert.Equal(2, code);
        Assert.Equal("error: --train-images 100000: requested 100,000 images but the dataset holds 60,000.", OneLine(err));
        (code, _, err) = Run("eval", "--checkpoint", Path.Combine(CopyOfFinishedRun(dir), "checkpoint.safetensors"), "--device", "cpu", "--test-images", "10001");
        Assert.Equal(2, code);
        Assert.Equal("error: --test-images 10001: requested 10,001 images but the dataset holds 10,000.", OneLine(err));
        var (train, test) = DataOptionBlock.Load(Data.FashionMnist.DefaultDirectory, 60_000, 10_000); // the whole split is fine
        Assert.Equal((60_000, 10_000), (train.Count, test.Count));
    }
}
