using System.Text.Json;
using IlgpuDdw.Cli;

namespace IlgpuDdw.Tests;

/// <summary>The ddw command run in-process (console output captured).</summary>
[Collection("cpu-cli")]
public sealed class CliTests
{
    private static readonly object ConsoleLock = new();

    internal static (int Code, string Out, string Err) Run(params string[] args) => Run(args, null);

    /// <summary>Runs <paramref name="args"/> with <paramref name="root"/> (default: the ddw root command), capturing the console.</summary>
    internal static (int Code, string Out, string Err) Run(string[] args, System.CommandLine.RootCommand? root)
    {
        lock (ConsoleLock)
        {
            var oldOut = Console.Out;
            var oldErr = Console.Error;
            using var o = new StringWriter();
            using var e = new StringWriter();
            Console.SetOut(o);
            Console.SetError(e);
            try
            {
                int code = root is null ? CliApp.Run(args) : CliApp.Run(args, root);
                return (code, o.ToString(), e.ToString());
            }
            finally
            {
                Console.SetOut(oldOut);
                Console.SetError(oldErr);
            }
        }
    }

    [Fact]
    public void InfoModel_Json_HasIntegerParamsAndMacs()
    {
        var (code, output, _) = Run("info", "--model", "resnet50", "--json");
        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(output);
        Assert.Equal(25_557_032, doc.RootElement.GetProperty("params").GetInt64());
        Assert.Equal(4_089_184_256, doc.RootElement.GetProperty("macs").GetInt64());
        (code, output, _) = Run("info", "--model", "resnet_mini", "--wiring", "dynamic", "--json");
        Assert.Equal(0, code);
        using var dyn = JsonDocument.Parse(output);
        Assert.True(dyn.RootElement.GetProperty("routerParams").GetInt64() > 0);
        Assert.Equal(3, dyn.RootElement.GetProperty("stages").GetArrayLength());
    }

    [Fact]
    public void BenchAggregation_RunsTheChosenKernels_AndNamesThem()
    {
        var (code, output, _) = Run("bench", "aggregation", "--device", "cpu", "--repetitions", "1", "--forward", "registers", "--backward", "fused-chunks", "--json");
        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(output);
        Assert.Equal("forward Registers, backward FusedChunks, chunk 2048", doc.RootElement.GetProperty("kernels").GetString());
        Assert.Equal(4, doc.RootElement.GetProperty("rows").GetArrayLength());
        string err;
        (code, _, err) = Run("bench", "aggregation", "--device", "cpu", "--backward", "fused");
        Assert.Equal(2, code);
        Assert.Contains("--backward must be separate, fused-chunks or fused-groups", err);
    }

    [Fact]
    public void UnknownModel_AndCudaWithoutGpu_AreClearErrors()
    {
        var (code, _, err) = Run("info", "--model", "vgg16");
        Assert.Equal(2, code);
        Assert.Contains("resnet18", err);
        if (!IlgpuDdw.Runtime.Device.ListDevices().Any(d => d.Spec.StartsWith("cuda", StringComparison.Ordinal)))
        {
            (code, _, err) = Run("info", "--device", "cuda");
            Assert.Equal(2, code);
            Assert.Contains("cpu (", err);
        }
        (code, _, err) = Run("compare", "--wiring-typo");
        Assert.NotEqual(0, code);
    }

    [Fact]
    public void Verify_PassesOnTheCpuAccelerator()
    {
        var (code, output, _) = Run("verify", "--device", "cpu", "--op", "Elementwise");
        Assert.Equal(0, code);
        Assert.Contains("0 failed", output);
    }

    [Fact]
    public void VerifyOp_SelectsOpAndPassNames_IgnoringCase()
    {
        var (code, output, err) = Run("verify", "--device", "cpu", "--op", "conv2d.backwardWEIGHT");
        Assert.True(code == 0, err);
        Assert.Contains("Conv2d.BackwardWeight", output);
        Assert.Contains("Conv2d.BackwardWeight blocks 4×1", output);
        Assert.DoesNotContain("Conv2d.Forward", output);
        Assert.DoesNotContain("Conv2d.BackwardInput", output);
        (code, output, err) = Run("verify", "--device", "cpu", "--op", "Relu");
        Assert.True(code == 0, err);
        foreach (var op in new[] { "Relu.Forward", "Relu.Backward", "Relu6.Forward", "Relu6.Backward", "Multiply+Relu.Backward dA" })
            Assert.Contains(op, output);
        foreach (var op in new[] { "Add.Forward", "Sigmoid.Forward", "Linear.Forward", "Multiply.Backward dB" })
            Assert.DoesNotContain(op, output);
    }

    [Fact]
    public void VerifyOp_MatchingNothing_ListsTheOpNamesOnOneLine_AndExits1()
    {
        var (code, output, err) = Run("verify", "--device", "cpu", "--op", "Softmax2d");
        Assert.Equal(1, code);
        Assert.Equal("", output); // nothing ran
        var line = Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        foreach (var name in new[] { "Softmax2d", "Relu", "Relu6", "Conv2d", "BatchNorm2d", "Aggregate", "Sgd" })
            Assert.Contains(name, line);
    }

    [Fact]
    public void MissingData_NamesTheInstallCommand()
    {
        using var dir = new TempDirectory();
        var (code, _, err) = Run("compare", "--budget", "smoke", "--device", "cpu", "--data", dir.Path, "--out", dir.File("out"));
        Assert.NotEqual(0, code);
        Assert.Contains("apt-get install -y dataset-fashion-mnist", err);
        Assert.Contains("--data", err);
    }

    [Fact]
    public void CompareSmoke_TrainsAllThreeWirings_AndWritesResults()
    {
        using var dir = new TempDirectory();
        string outDir = dir.File("cmp");
        var (code, output, err) = Run("compare", "--budget", "smoke", "--train-images", "64", "--test-images", "32", "--device", "cpu", "--out", outDir, "--json");
        Assert.True(code == 0, err);
        using var doc = JsonDocument.Parse(output);
        var runs = doc.RootElement.GetProperty("runs").EnumerateArray().ToArray();
        Assert.Equal(["chain", "dense", "dynamic"], runs.Select(r => r.GetProperty("wiring").GetString()));
        foreach (var r in runs)
        {
            Assert.InRange(r.GetProperty("testAccuracy").GetDouble(), 0, 1);
            Assert.True(r.GetProperty("params").GetInt64() > 0);
            Assert.True(r.GetProperty("macs").GetInt64() > 0);
        }
        Assert.True(runs[2].GetProperty("params").GetInt64() > runs[0].GetProperty("params").GetInt64());
        foreach (var f in new[] { "results.json", "curves-loss.png", "curves-accuracy.png", "wiring-dynamic.dot", "adjacency-dynamic-layer1.png", "metrics.jsonl", "dynamic-seed0.safetensors" })
            Assert.True(File.Exists(Path.Combine(outDir, f)), f);
        Assert.Contains("digraph", File.ReadAllText(Path.Combine(outDir, "wiring-dynamic.dot")));

        // eval and wiring read the checkpoint compare wrote
        (code, output, err) = Run("eval", "--checkpoint", Path.Combine(outDir, "dynamic-seed0.safetensors"), "--device", "cpu", "--test-images", "64", "--json");
        Assert.True(code == 0, err);
        using var eval = JsonDocument.Parse(output);
        Assert.Equal("dynamic", eval.RootElement.GetProperty("wiring").GetString());
        Assert.True(eval.RootElement.GetProperty("skipSpeedup").GetDouble() > 0);
        Assert.Equal(64, eval.RootElement.GetProperty("diversity").GetProperty("samples").GetInt64());
        Assert.True(runs[2].GetProperty("skipSpeedup").GetDouble() > 0);
        Assert.Equal(3, runs[2].GetProperty("diversity").GetProperty("stages").GetArrayLength());
        (code, output, err) = Run("wiring", "--checkpoint", Path.Combine(outDir, "dynamic-seed0.safetensors"), "--device", "cpu", "--images", "3,5", "--class-images", "16", "--out", outDir);
        Assert.True(code == 0, err);
        foreach (var f in new[] { "wiring-3.png", "wiring-3-graph.png", "wiring-3.dot", "wiring-5-graph.png" })
            Assert.True(File.Exists(Path.Combine(outDir, f)), f);
        Assert.Contains("(on)", File.ReadAllText(Path.Combine(outDir, "wiring-5.dot")));
        Assert.Contains("distinct wirings", output);
        Assert.True(File.Exists(Path.Combine(outDir, "wiring-classes.png")) || output.Contains("the classes do not differ"), output);
        (code, _, err) = Run("wiring", "--checkpoint", Path.Combine(outDir, "dynamic-seed0.safetensors"), "--device", "cpu", "--images", "3,x");
        Assert.Equal((2, "error: --images 'x' is not an image index."), (code, err.Trim()));
    }

    [Fact]
    public void Sweep_RejectsBadTargets_BeforeTraining()
    {
        using var dir = new TempDirectory();
        var (code, _, err) = Run("sweep", "--budget", "smoke", "--device", "cpu", "--targets", "0.5", "1.5", "--out", dir.File("sw"));
        Assert.Equal((2, "error: --targets 1.5 is outside (0, 1]."), (code, err.Trim()));
        (code, _, err) = Run("sweep", "--budget", "smoke", "--device", "cpu", "--targets", "0.5", "0.5", "--out", dir.File("sw"));
        Assert.Equal(2, code);
        Assert.Contains("Targets repeat", err);
        Assert.False(Directory.Exists(dir.File("sw")));
    }

    [Fact]
    public void Train_TakesTheGateAndKeepOptions_AndTheCheckpointCarriesThem()
    {
        using var dir = new TempDirectory();
        string outDir = dir.File("run");
        var (code, _, err) = Run("train", "--budget", "smoke", "--device", "cpu", "--train-images", "64", "--test-images", "32", "--batch", "32",
            "--gate", "stochastic", "--gate-temperature", "0.5", "--top-k-fraction", "0.75", "--keep-target", "0.4", "--keep-target-warmup", "0.5",
            "--keep-target-weight", "2", "--keep-temperature", "0.2", "--batch-shaping", "0.3", "--batch-shaping-alpha", "0.7", "--batch-shaping-beta", "0.5", "--noise-off-fraction", "0.25",
            "--out", outDir);
        Assert.True(code == 0, err);
        string checkpoint = Path.Combine(outDir, "checkpoint.safetensors");
        var info = IlgpuDdw.Training.Checkpoint.ReadInfo(checkpoint);
        Assert.Equal(IlgpuDdw.Wiring.GateKind.Stochastic, info.Wiring.Gate);
        Assert.Equal(0.5f, info.Wiring.GateTemperature);
        Assert.Equal(0.75f, info.Wiring.TopKFraction);
        var metadata = IlgpuDdw.IO.SafeTensors.Load(checkpoint).Metadata;
        var options = JsonSerializer.Deserialize(metadata["options"], IlgpuDdw.Training.CheckpointJsonContext.Default.TrainerOptions)!;
        Assert.Equal((0.4f, 0.5f, 2f, 0.2f, 0.3f, 0.7f, 0.5f, 0.25f),
            (options.KeepTarget!.Value, options.KeepTargetWarmupFraction, options.KeepTargetWeight, options.KeepTemperature, options.BatchShapingWeight,
             options.BatchShapingAlpha, options.BatchShapingBeta, options.NoiseOffFraction));

        (code, _, err) = Run("train", "--budget", "smoke", "--device", "cpu", "--gate", "sideways", "--out", dir.File("bad"));
        Assert.NotEqual(0, code);
        Assert.Contains("Unknown gate 'sideways'", err);
        (code, _, err) = Run("train", "--budget", "smoke", "--device", "cpu", "--keep-target", "1.5", "--out", dir.File("bad"));
        Assert.NotEqual(0, code);
        Assert.Contains("Keep target must be in (0, 1]; got 1.5", err);
    }
}
