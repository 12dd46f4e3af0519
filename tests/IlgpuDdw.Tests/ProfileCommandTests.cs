using System.Text.Json;

namespace IlgpuDdw.Tests;

/// <summary><c>ddw profile</c>: the dry-run table and JSON, and a measured CPU run.</summary>
[Collection("cpu-cli")]
public sealed class ProfileCommandTests
{
    [Fact]
    public void DryRunJson_HasTheStepTotals_AndEveryKernelsFields()
    {
        var (code, output, err) = CliTests.Run("profile", "--model", "resnet_mini", "--batch", "16", "--wiring", "dense", "--dry-run", "--gpu", "h100", "--json");
        Assert.True(code == 0, err);
        using var doc = JsonDocument.Parse(output);
        var root = doc.RootElement;
        Assert.True(root.GetProperty("dryRun").GetBoolean());
        Assert.Equal("trace/model, not a GPU timing", root.GetProperty("label").GetString());
        Assert.Equal("h100", root.GetProperty("gpu").GetProperty("name").GetString());
        Assert.Equal("nominal", root.GetProperty("gpu").GetProperty("bandwidthSource").GetString());
        var step = root.GetProperty("step");
        int launches = step.GetProperty("launches").GetInt32();
        Assert.True(launches > 100);
        Assert.Equal(0, step.GetProperty("syncs").GetInt32());
        Assert.Equal(0, step.GetProperty("allocations").GetInt32());
        Assert.True(step.GetProperty("floorUs").GetDouble() > 0);
        var kernels = root.GetProperty("kernels").EnumerateArray().ToArray();
        Assert.Equal(launches, kernels.Sum(k => k.GetProperty("launches").GetInt32()));
        foreach (var k in kernels)
        {
            Assert.False(string.IsNullOrEmpty(k.GetProperty("kernel").GetString()));
            Assert.True(k.GetProperty("groups").GetInt64() >= 1);
            Assert.InRange(k.GetProperty("threadsPerGroup").GetInt32(), 1, 256); // fewer only when a launch is smaller than one group
            Assert.True(k.GetProperty("flops").GetDouble() >= 0);
            Assert.True(k.GetProperty("bytes").GetDouble() > 0);
            Assert.True(k.GetProperty("floorUs").GetDouble() > 0);
            Assert.Equal(JsonValueKind.Null, k.GetProperty("measuredUs").ValueKind);
        }
        Assert.Contains(kernels, k => k.GetProperty("kernel").GetString() == "DenseEdgesForward");
        Assert.Equal(JsonValueKind.Array, root.GetProperty("underfilled").ValueKind);
    }

    [Fact]
    public void DryRunWithTf32_RecordsTheTf32Kernels_AgainstTheTf32Peak()
    {
        var (code, output, err) = CliTests.Run("profile", "--model", "resnet_mini", "--batch", "16", "--wiring", "chain", "--dry-run", "--tf32", "--json");
        Assert.True(code == 0, err);
        using var doc = JsonDocument.Parse(output);
        var root = doc.RootElement;
        Assert.True(root.GetProperty("tf32").GetBoolean());
        Assert.Equal(494, root.GetProperty("gpu").GetProperty("tf32PeakTflops").GetDouble());
        Assert.Contains("spec sheet", root.GetProperty("gpu").GetProperty("tf32PeakSource").GetString());
        var names = root.GetProperty("kernels").EnumerateArray().Select(k => k.GetProperty("kernel").GetString()).ToArray();
        Assert.Contains("Conv2dForwardTiledTf32", names);
        Assert.Contains("Conv2dBackwardInputTiledTf32", names);
        Assert.DoesNotContain("Conv2dForwardTiled", names);
        (code, output, err) = CliTests.Run("profile", "--model", "resnet_mini", "--batch", "16", "--wiring", "chain", "--dry-run", "--json");
        Assert.True(code == 0, err);
        using var fp32 = JsonDocument.Parse(output);
        Assert.False(fp32.RootElement.GetProperty("tf32").GetBoolean());
        Assert.DoesNotContain(fp32.RootElement.GetProperty("kernels").EnumerateArray(), k => k.GetProperty("kernel").GetString()!.EndsWith("Tf32", StringComparison.Ordinal));
    }

    [Fact]
    public void Tf32OnTheCpu_RunsTheEmulatedKernels()
    {
        var (code, output, err) = CliTests.Run("profile", "--device", "cpu", "--model", "resnet_mini", "--input-size", "8", "--batch", "2", "--wiring", "chain",
            "--warmup", "0", "--tf32", "--json");
        Assert.True(code == 0, err);
        using var doc = JsonDocument.Parse(output);
        var root = doc.RootElement;
        Assert.False(root.GetProperty("dryRun").GetBoolean());
        Assert.True(root.GetProperty("tf32").GetBoolean());
        var kernels = root.GetProperty("kernels").EnumerateArray().ToDictionary(k => k.GetProperty("kernel").GetString()!);
        // resnet_mini's 16-channel convolutions: the CPU's TF32 plan (16 × 32 blocks in groups of 2 threads, warps of 2)
        Assert.True(kernels["Conv2dForwardTiledTf32"].GetProperty("launches").GetInt32() > 0);
        Assert.Equal(2, kernels["Conv2dForwardTiledTf32"].GetProperty("threadsPerGroup").GetInt32());
        Assert.True(kernels["Conv2dBackwardInputTiledTf32"].GetProperty("launches").GetInt32() > 0);
    }

    [Fact]
    public void DryRunTable_IsLabelledAsATraceNotATiming()
    {
        var (code, output, err) = CliTests.Run("profile", "--model", "resnet_mini", "--batch", "8", "--dry-run");
        Assert.True(code == 0, err);
        Assert.StartsWith("trace/model, not a GPU timing", output);
        Assert.Contains("NVIDIA H200", output);
        Assert.Contains("Conv2dBackwardWeight", output);
        Assert.Contains("host synchronisations", output);
    }

    [Fact]
    public void MeasuredCpuRun_TimesEveryKernel()
    {
        var (code, output, err) = CliTests.Run("profile", "--model", "resnet_mini", "--input-size", "8", "--batch", "2", "--wiring", "chain",
            "--device", "cpu", "--measure", "--warmup", "1", "--json");
        Assert.True(code == 0, err);
        using var doc = JsonDocument.Parse(output);
        var root = doc.RootElement;
        Assert.False(root.GetProperty("dryRun").GetBoolean());
        Assert.Equal("synchronized", root.GetProperty("timing").GetString());
        Assert.True(root.GetProperty("step").GetProperty("measuredUs").GetDouble() > 0);
        Assert.True(root.GetProperty("step").GetProperty("wallUs").GetDouble() > 0);
        foreach (var k in root.GetProperty("kernels").EnumerateArray())
            Assert.True(k.GetProperty("measuredUs").GetDouble() > 0, k.GetProperty("kernel").GetString());
    }

    [Fact]
    public void BadArguments_AreOneLineErrors()
    {
        var (code, _, err) = CliTests.Run("profile", "--gpu", "a100", "--dry-run");
        Assert.Equal(2, code);
        Assert.Contains("a100", err);
        (code, _, err) = CliTests.Run("profile", "--batch", "0", "--dry-run");
        Assert.Equal(2, code);
        Assert.Contains("--batch", err);
        (code, _, err) = CliTests.Run("profile", "--measure", "--dry-run");
        Assert.Equal(2, code);
        Assert.Contains("--measure", err);
    }
}
