using IlgpuDdw.Models;
using IlgpuDdw.Training;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Tests;

/// <summary>A training step's peak device memory is estimated before anything is allocated, and too large a batch is refused.</summary>
[Collection("cpu-cli")]
public sealed class StepMemoryTests(DeviceFixture fx)
{
    [Theory]
    [InlineData(WiringKind.Chain)]
    [InlineData(WiringKind.Dense)]
    [InlineData(WiringKind.Dynamic)]
    public void Estimate_IsWithin15PercentOfTheTrainersMeasuredPeak(WiringKind kind)
    {
        var spec = ModelZoo.Get("resnet_mini", 16); // 16×16 keeps the test fast; the step's structure is that of 28×28
        var wiring = new WiringConfig { Kind = kind };
        const int batch = 8;
        var estimate = StepMemory.Estimate(spec, wiring, batch);
        fx.Device.TrimPool();
        using var model = new DdwNet(fx.Device, spec, wiring, seed: 2);
        using var trainer = new Trainer(model, TrainerTests.Synthetic(batch, 1, 16), TrainerTests.Synthetic(4, 2, 16),
            new TrainerOptions { Epochs = 1, BatchSize = batch, EvalBatchSize = 4 });
        long measured = trainer.RunEpoch().PeakBytes;
        double ratio = (double)estimate.PeakBytes / measured;
        Assert.True(ratio is > 0.85 and < 1.15, $"{kind}: estimate {estimate.PeakBytes} B, measured {measured} B (ratio {ratio:F3})");
        Assert.True(estimate.BytesPerSample > 0 && estimate.FixedBytes > 0);
        fx.Device.TrimPool();
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void Estimate_OfASmallBatch_NeverDryRunsOneSample_WhereTheLastFeatureMapIs1x1(int batch)
    {
        // resnet18 at 32 × 32 ends on 1 × 1 maps: a dry run of 1 sample has no batch-norm variance there
        var spec = ModelZoo.Get("resnet18", 32);
        var wiring = new WiringConfig { Kind = WiringKind.Dynamic };
        var estimate = StepMemory.Estimate(spec, wiring, batch);
        long two = StepMemory.DryRunPeak(spec, wiring, 2), four = StepMemory.DryRunPeak(spec, wiring, 4);
        Assert.Equal(two + (batch - 2) * ((four - two) / 2), estimate.PeakBytes);
        Assert.True(estimate.BytesPerSample > 0);
    }

    [Fact]
    public void LargestBatch_FollowsTheEstimate()
    {
        var e = new StepMemoryEstimate(32, 1000 + 32 * 100, 1000, 100);
        Assert.Equal(90, e.LargestBatch(10_000));
        Assert.Equal(0, e.LargestBatch(900));
    }

    [Fact]
    public void HugeBatch_IsRefusedInOneLine_BeforeAnythingIsAllocated()
    {
        long before = fx.Device.PeakBytes;
        var (code, _, err) = CliTests.Run("bench", "--device", "cpu", "--batch", "100000000", "--repetitions", "1");
        Assert.Equal(2, code);
        Assert.Contains("--batch 100000000: a training step of resnet_mini (dense wiring, 1×28×28) needs about", err);
        Assert.Contains("free; the largest batch that fits is about", err);
        Assert.Single(err.Trim().Split('\n'));

        (code, _, err) = CliTests.Run("train", "--device", "cpu", "--budget", "smoke", "--batch", "300", "--out", Path.Combine(Path.GetTempPath(), "ilgpuddw-never-" + Guid.NewGuid().ToString("N")));
        Assert.Equal(2, code);
        Assert.Contains("--batch 300 is larger than the 256 training images", err);
    }

    [Fact]
    public void Info_PrintsTheEstimate()
    {
        var (code, output, err) = CliTests.Run("info", "--model", "resnet18", "--input-size", "32", "--channels", "1", "--classes", "10", "--batch", "8", "--device", "cpu");
        Assert.True(code == 0, err);
        Assert.Contains("training step at batch 8: about", output);
        Assert.Contains("11,175,370", output);
    }
}
