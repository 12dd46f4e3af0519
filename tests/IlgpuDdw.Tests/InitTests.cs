using IlgpuDdw.Kernels;
using IlgpuDdw.Nn;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Tests;

/// <summary>Initialisation: PyTorch's fans and gains, sample statistics, bounds, seeding, bad arguments.</summary>
[Collection("cpu")]
public sealed class InitTests(DeviceFixture fx)
{
    private static (double Mean, double Std) Stats(float[] v)
    {
        double mean = v.Average(x => (double)x);
        double var = v.Sum(x => (x - mean) * (x - mean)) / (v.Length - 1);
        return (mean, Math.Sqrt(var));
    }

    [Fact]
    public void Fans_And_Gains_FollowPyTorch()
    {
        Assert.Equal((288, 576), Init.Fans([64, 32, 3, 3]));   // conv: fan_in = in·k·k, fan_out = out·k·k
        Assert.Equal((20, 10), Init.Fans([10, 20]));            // linear [out, in]
        Assert.Equal((9, 72), Init.Fans([8, 1, 3, 3]));        // depthwise conv
        Assert.Equal((7 * 5, 3 * 5), Init.Fans([3, 7, 5]));
        Assert.Contains("[5]", Assert.Throws<ArgumentException>(() => Init.Fans([5])).Message);

        Assert.Equal(MathF.Sqrt(2f), Init.Gain(Nonlinearity.Relu));
        Assert.Equal(1f, Init.Gain(Nonlinearity.Linear));
        Assert.Equal(1f, Init.Gain(Nonlinearity.Sigmoid));
        Assert.Equal(5f / 3f, Init.Gain(Nonlinearity.Tanh));
        Assert.Equal(MathF.Sqrt(2f / (1f + 0.01f * 0.01f)), Init.Gain(Nonlinearity.LeakyRelu));
        Assert.Equal(MathF.Sqrt(2f), Init.Gain(Nonlinearity.LeakyRelu, 0f));
    }

    [Theory]
    [InlineData(FanMode.FanIn, 288)]
    [InlineData(FanMode.FanOut, 576)]
    public void KaimingNormal_HasTheRightStd(FanMode mode, int fan)
    {
        using var t = Tensor.Empty(fx.Device, 64, 32, 3, 3);
        Init.KaimingNormal(t, seed: 7, mode: mode);
        var (mean, std) = Stats(t.ToArray());
        double expected = Math.Sqrt(2.0 / fan);
        Assert.InRange(std, expected * 0.97, expected * 1.03); // 18,432 samples: the std's own error is ~0.5%
        Assert.InRange(mean, -0.03 * expected, 0.03 * expected);
    }

    [Fact]
    public void KaimingUniform_StaysInBounds_WithTheRightStd()
    {
        using var t = Tensor.Empty(fx.Device, 128, 50);
        Init.KaimingUniform(t, seed: 3);
        var v = t.ToArray();
        double bound = Math.Sqrt(2.0) * Math.Sqrt(3.0 / 50);
        Assert.All(v, x => Assert.InRange(x, -bound, bound));
        Assert.True(v.Max() > 0.99 * bound && v.Min() < -0.99 * bound, "samples should reach close to both bounds");
        var (mean, std) = Stats(v);
        Assert.InRange(std, bound / Math.Sqrt(3) * 0.97, bound / Math.Sqrt(3) * 1.03);
        Assert.InRange(mean, -0.02 * bound, 0.02 * bound);

        // PyTorch's default Linear weight init: leaky ReLU with slope √5 gives bound 1/√fan_in.
        Init.KaimingUniform(t, seed: 4, nonlinearity: Nonlinearity.LeakyRelu, negativeSlope: MathF.Sqrt(5f));
        double linearBound = 1 / Math.Sqrt(50);
        v = t.ToArray();
        Assert.All(v, x => Assert.InRange(x, -linearBound * (1 + 1e-6), linearBound * (1 + 1e-6)));
        Assert.True(v.Max() > 0.99 * linearBound);
    }

    [Fact]
    public void Uniform_And_Normal_HaveTheirMoments()
    {
        using var t = Tensor.Empty(fx.Device, 20001); // odd length: the last Box–Muller pair is half used
        Init.Uniform(t, -0.5f, 1.5f, seed: 11);
        var v = t.ToArray();
        Assert.All(v, x => Assert.True(x >= -0.5f && x < 1.5f, $"{x} outside [-0.5, 1.5)"));
        var (mean, std) = Stats(v);
        Assert.InRange(mean, 0.5 - 0.02, 0.5 + 0.02);
        Assert.InRange(std, 2 / Math.Sqrt(12) * 0.97, 2 / Math.Sqrt(12) * 1.03);

        Init.Normal(t, 3f, 0.25f, seed: 12);
        (mean, std) = Stats(t.ToArray());
        Assert.InRange(mean, 3 - 0.01, 3 + 0.01);
        Assert.InRange(std, 0.25 * 0.97, 0.25 * 1.03);
    }

    [Fact]
    public void Seed_DeterminesTheValues()
    {
        var d = fx.Device;
        using var a = Tensor.Empty(d, 6, 5);
        using var b = Tensor.Empty(d, 6, 5);
        Init.KaimingNormal(a, 42);
        Init.KaimingNormal(b, 42);
        Assert.Equal(a.ToArray(), b.ToArray());
        Init.KaimingUniform(a, 42);
        Init.KaimingUniform(b, 42);
        Assert.Equal(a.ToArray(), b.ToArray());
        Init.KaimingUniform(b, 43);
        Assert.NotEqual(a.ToArray(), b.ToArray());
        // The generator is SplitMix64: seed 0's first output 0xE220A8397B1DCDAF gives this first uniform on every platform.
        using var one = Tensor.Empty(d, 1);
        Init.Uniform(one, 0f, 1f, 0);
        Assert.Equal((float)((0xE220A8397B1DCDAFUL >> 11) / 9007199254740992.0), one.ToArray()[0]);
    }

    [Fact]
    public void UniformFromAGenerator_ContinuesItsStream()
    {
        var d = fx.Device;
        using var a = Tensor.Empty(d, 3, 2);
        using var b = Tensor.Empty(d, 4);
        var generator = new Random(12);
        Init.Uniform(a, 0.5, generator);
        Init.Uniform(b, 2.0, generator);
        var expected = new Random(12);
        Assert.Equal(Enumerable.Range(0, 6).Select(_ => (float)((expected.NextDouble() * 2 - 1) * 0.5)), a.ToArray());
        Assert.Equal(Enumerable.Range(0, 4).Select(_ => (float)((expected.NextDouble() * 2 - 1) * 2.0)), b.ToArray());
        Assert.Contains("bound > 0; got 0", Assert.Throws<ArgumentException>(() => Init.Uniform(a, 0, generator)).Message);
    }

    [Fact]
    public void Router_DrawsBothLayersFromOneGenerator_ThenSetsTheOutputBias()
    {
        // The routers' initial values since they were introduced: W1, b1 ~ U(±1/√C), then W2 ~ U(±1/√h), drawn in
        // this order as (2u − 1)·bound from System.Random seeded by the router's seed; b2 = 3.
        var d = fx.Device;
        using var router = new Router(d, 8, 3, 4, new SeedSequence(5));
        var rng = new Random(5 * 1_000_003);
        float[] Draw(int n, double bound) => Enumerable.Range(0, n).Select(_ => (float)((rng.NextDouble() * 2 - 1) * bound)).ToArray();
        Assert.Equal((8, 4, 3), (router.Channels, router.Hidden, router.OutDegree));
        Assert.Equal(Draw(4 * 8, 1 / Math.Sqrt(8)), router.Fc1.Weight.ToArray());
        Assert.Equal(Draw(4, 1 / Math.Sqrt(8)), router.Fc1.Bias!.ToArray());
        Assert.Equal(Draw(3 * 4, 1 / Math.Sqrt(4)), router.Fc2.Weight.ToArray());
        Assert.Equal([3f, 3f, 3f], router.Fc2.Bias!.ToArray());
        Assert.Equal((LinearActivation.Relu, LinearActivation.Sigmoid), (router.Fc1.Activation, router.Fc2.Activation));
        Assert.Equal(["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"], router.NamedParameters().Select(p => p.Name));
    }

    [Fact]
    public void Constants()
    {
        using var t = Tensor.Empty(fx.Device, 3, 7);
        Init.Zeros(t);
        Assert.All(t.ToArray(), x => Assert.Equal(0f, x));
        Init.Ones(t);
        Assert.All(t.ToArray(), x => Assert.Equal(1f, x));
        Init.Constant(t, -2.5f);
        Assert.All(t.ToArray(), x => Assert.Equal(-2.5f, x));
    }

    [Fact]
    public void BadArguments_Throw_WithTheValues()
    {
        var d = fx.Device;
        using var vector = Tensor.Zeros(d, 9);
        Assert.Contains("[9]", Assert.Throws<ArgumentException>(() => Init.KaimingNormal(vector, 1)).Message);
        Assert.Contains("[9]", Assert.Throws<ArgumentException>(() => Init.KaimingUniform(vector, 1)).Message);
        Assert.Contains("low 2, high 1", Assert.Throws<ArgumentException>(() => Init.Uniform(vector, 2f, 1f, 1)).Message);
        Assert.Contains("Infinity", Assert.Throws<ArgumentException>(() => Init.Uniform(vector, 0f, float.PositiveInfinity, 1)).Message);
        Assert.Contains("std -1", Assert.Throws<ArgumentException>(() => Init.Normal(vector, 0f, -1f, 1)).Message);
        Assert.Equal(new float[9], vector.ToArray()); // nothing was written
    }
}
