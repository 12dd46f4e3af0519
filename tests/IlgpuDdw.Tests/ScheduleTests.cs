using IlgpuDdw.Training;

namespace IlgpuDdw.Tests;

public sealed class ScheduleTests
{
    [Fact]
    public void Cosine_WarmsUp_ThenDecaysToMin()
    {
        var s = new CosineSchedule(0.1f, totalSteps: 110, warmupSteps: 10, minLr: 0.001f);
        Assert.Equal(0.01f, s.At(0), 6);
        Assert.Equal(0.1f, s.At(9), 6);
        Assert.Equal(0.1f, s.At(10), 6);
        Assert.Equal(0.001f + 0.099f * 0.5f, s.At(60), 5);
        Assert.True(s.At(109) < 0.0011f);
        for (int i = 11; i < 110; i++) Assert.True(s.At(i) <= s.At(i - 1));
    }

    [Fact]
    public void Cosine_BadArguments_NameTheValue()
    {
        Assert.Contains("-1", Assert.Throws<ArgumentException>(() => new CosineSchedule(-1f, 10)).Message);
        Assert.Contains("0", Assert.Throws<ArgumentException>(() => new CosineSchedule(0.1f, 0)).Message);
        Assert.Contains("11", Assert.Throws<ArgumentException>(() => new CosineSchedule(0.1f, 10, 11)).Message);
    }
}
