using IlgpuDdw.Cli.Reports;

namespace IlgpuDdw.Tests;

/// <summary>The figures' content choices: smoothing window, files written.</summary>
public sealed class PlotTests
{
    [Fact]
    public void LossSmoothing_HasARealWindowAtTheDefaultBudget()
    {
        Assert.Equal(8, Plots.SmoothingWindow(80));   // default budget: 2,560 images / batch 32
        Assert.Equal(1, Plots.SmoothingWindow(8));    // smoke: too few steps to smooth
        Assert.Equal(5, Plots.SmoothingWindow(20));
        Assert.Equal(200, Plots.SmoothingWindow(100_000));
        Assert.Equal([1.0, 1.5, 2.5, 3.5], Plots.Smooth([1f, 2f, 3f, 4f], 2));
    }

    [Fact]
    public void Figures_AreWritten_ForOneEpochAndForSeveral_AndForCutEdges()
    {
        using var dir = new TempDirectory();
        var losses = Enumerable.Range(0, 80).Select(i => 2.3f - i * 0.01f).ToArray();
        Plots.Curves(dir.File("one.png"), [("chain", losses, [0.66]), ("dynamic", losses, [0.71])]);
        Plots.Curves(dir.File("three.png"), [("chain", losses, [0.5, 0.6, 0.66])]);
        var a = new float[4, 4];
        a[0, 1] = 0.9f; a[1, 2] = 0.8f; a[2, 3] = 0.7f; // 0→2, 0→out and 1→out cut
        Plots.SampleAdjacency(dir.File("wiring.png"), "image 0", [("layer1", 3, a)]);
        foreach (var f in new[] { "one-loss.png", "one-accuracy.png", "three-loss.png", "three-accuracy.png", "wiring.png" })
            Assert.True(new FileInfo(dir.File(f)).Length > 5_000, f);
    }

    [Fact]
    public void WiringGraph_DrawsCutEdgesDashed_AndNoImpossibleOnes()
    {
        var mean = new double[16];
        var keep = new double[16];
        mean[0 * 4 + 1] = keep[0 * 4 + 1] = 0.9;
        mean[1 * 4 + 2] = keep[1 * 4 + 2] = 0.8;
        mean[2 * 4 + 3] = keep[2 * 4 + 3] = 1;
        string dot = WiringDot.Build("t", [new IlgpuDdw.Training.Experiments.StageAdjacency("layer1", 3, null, mean, keep)]);
        Assert.Contains("s0_0 -> s0_2 [style=dashed", dot);
        Assert.DoesNotContain("s0_1 -> s0_0", dot);
        Assert.Equal(3, dot.Split("label=\"cut\"").Length - 1); // 0→2, 0→out, 1→out
    }
}
