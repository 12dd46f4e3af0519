using IlgpuDdw.Autograd;
using R = IlgpuDdw.Kernels.Reference.BatchNormReference;

namespace IlgpuDdw.Tests;

/// <summary>
/// BatchNorm2d: reference, finite differences, running statistics over steps, saved tensors, bad inputs (kernels
/// versus reference: <see cref="BatchNormCases"/>).
/// </summary>
[Collection("cpu")]
public sealed class BatchNormTests(DeviceFixture fx)
{
    private const float Momentum = 0.1f, Eps = 1e-5f;

    // ---- layer 1: reference against hand-computed cases -------------------------------------------------

    [Fact]
    public void Reference_Forward_HandComputed()
    {
        // x [1, 2, 1, 2]: channel 0 = {1, 3} (mean 2, biased var 1, unbiased 2), channel 1 = {10, 14} (12, 4, 8); eps 0
        double[] x = [1, 3, 10, 14], gamma = [2, 3], beta = [0.5, -1];
        double[] runningMean = [0, 0], runningVar = [1, 1];
        var y = new double[4]; var mean = new double[2]; var invstd = new double[2];
        R.Forward<double>(x, 1, 2, 2, gamma, beta, runningMean, runningVar, true, 0.1, 0, y, mean, invstd);
        Assert.Equal([-1.5, 2.5, -4, 2], y);
        Assert.Equal([2, 12], mean);
        Assert.Equal([1, 0.5], invstd);
        Check.Close([0.2, 1.2], runningMean, 1e-12, 0, "running mean");
        Check.Close([1.1, 1.7], runningVar, 1e-12, 0, "running var");

        // eval mode with those running statistics: the same map, statistics unchanged
        runningMean = [2, 12]; runningVar = [1, 4];
        R.Forward<double>(x, 1, 2, 2, gamma, beta, runningMean, runningVar, false, 0.1, 0, y, mean, invstd);
        Assert.Equal([-1.5, 2.5, -4, 2], y);
        Assert.Equal([2, 12], runningMean);
        Assert.Equal([1, 4], runningVar);
    }

    [Fact]
    public void Reference_Backward_HandComputed()
    {
        // eval: dx = γ·invstd·dy, dβ = Σdy, dγ = Σdy·x̂ (x̂ = ±1 here)
        double[] x = [1, 3, 10, 14], dy = [1, 2, 3, 4], gamma = [2, 3];
        var dx = new double[4]; var dGamma = new double[2]; var dBeta = new double[2];
        R.Backward<double>(x, dy, 1, 2, 2, [2, 12], [1, 0.5], gamma, false, dx, dGamma, dBeta);
        Assert.Equal([2, 4, 4.5, 6], dx);
        Assert.Equal([1, 1], dGamma);
        Assert.Equal([3, 7], dBeta);

        // training, x = {1, 2, 3}: x̂ = √1.5·{−1, 0, 1}; dy = e_0, γ = 1 → dx = √1.5·{1/6, −1/3, 1/6}
        double inv = Math.Sqrt(1.5);
        dx = new double[3]; dGamma = new double[1]; dBeta = new double[1];
        R.Backward<double>([1, 2, 3], [1, 0, 0], 1, 1, 3, [2], [inv], [1], true, dx, dGamma, dBeta);
        Check.Close([inv / 6, -inv / 3, inv / 6], dx, 1e-12, 0, "training dx");
        Check.Close([-inv], dGamma, 1e-12, 0, "training dGamma");
        Assert.Equal([1], dBeta);
    }

    // ---- layer 2: reference backward against central finite differences in double ----------------------

    [Theory]
    [InlineData(3, 5, 7, 5, true)]
    [InlineData(3, 5, 7, 5, false)]
    [InlineData(1, 2, 3, 4, true)]
    [InlineData(2, 3, 1, 1, true)]
    public void Reference_FiniteDifference(int b, int c, int h, int w, bool training)
    {
        int s = h * w, n = b * c * s;
        var x = Seeded.Uniform<double>(n, 1, -2, 2); var g = Seeded.Uniform<double>(n, 2);
        var gamma = Seeded.Uniform<double>(c, 3, 0.5, 1.5); var beta = Seeded.Uniform<double>(c, 4);
        var runningMean0 = Seeded.Uniform<double>(c, 5); var runningVar0 = Seeded.Uniform<double>(c, 6, 0.5, 2);
        var y = new double[n]; var mean = new double[c]; var invstd = new double[c];
        double Loss()
        {
            // fresh copies: the running statistics must not drift between evaluations
            R.Forward<double>(x, b, c, s, gamma, beta, (double[])runningMean0.Clone(), (double[])runningVar0.Clone(),
                training, Momentum, Eps, y, mean, invstd);
            return Check.Dot(g, y);
        }
        Loss();
        var dx = new double[n]; var dGamma = new double[c]; var dBeta = new double[c];
        R.Backward<double>(x, g, b, c, s, mean, invstd, gamma, training, dx, dGamma, dBeta);
        string mode = training ? "training" : "eval";
        Check.FiniteDifference(Loss, x, dx, $"batchnorm {mode} dX");
        Check.FiniteDifference(Loss, gamma, dGamma, $"batchnorm {mode} dGamma");
        Check.FiniteDifference(Loss, beta, dBeta, $"batchnorm {mode} dBeta");
    }

    // ---- layer 3 (kernels against the reference: VerificationTests): statistics over steps, saved tensors

    [Fact]
    public void RunningStatistics_TwoSteps_MatchReference_DefaultsFromPyTorch()
    {
        var d = fx.Device;
        int[] shape = [3, 5, 7, 5];
        int c = 5, s = 35, n = 3 * c * s;
        // PyTorch's initial running statistics: mean 0, var 1
        var runningMean = new float[c]; var runningVar = Enumerable.Repeat(1f, c).ToArray();
        var gamma = Enumerable.Repeat(1f, c).ToArray(); var beta = new float[c];
        using var tMean = Tensor.FromArray(d, runningMean, c);
        using var tVar = Tensor.FromArray(d, runningVar, c);
        using var tGamma = Tensor.FromArray(d, gamma, c);
        using var tBeta = Tensor.FromArray(d, beta, c);
        using var tape = new Tape(d);
        var y = new float[n]; var mean = new float[c]; var invstd = new float[c];
        for (int step = 0; step < 2; step++)
        {
            var x = Check.ToFloat(Seeded.Uniform<double>(n, 20 + step, -1, 4));
            using var tx = Tensor.FromArray(d, x, shape);
            tape.BatchNorm2d(tx, tGamma, tBeta, tMean, tVar, training: true);
            tape.Clear();
            R.Forward<float>(x, 3, c, s, gamma, beta, runningMean, runningVar, true, Momentum, Eps, y, mean, invstd);
        }
        Check.Close(runningMean, tMean.ToArray(), Tolerance.Forward, "running mean after 2 steps");
        Check.Close(runningVar, tVar.ToArray(), Tolerance.Forward, "running var after 2 steps");
        Assert.DoesNotContain(runningVar, v => v == 1f); // the statistics really moved
    }

    [Fact]
    public void OnlyParametersRequireGrad_InputGetsNone_AndSavedTensorsAreTapeOwned()
    {
        var d = fx.Device;
        int[] shape = [2, 3, 2, 5];
        int c = 3, n = 60;
        var x = Check.ToFloat(Seeded.Uniform<double>(n, 30)); var g = Check.ToFloat(Seeded.Uniform<double>(n, 31));
        var gamma = Check.ToFloat(Seeded.Uniform<double>(c, 32, 0.5, 1.5)); var beta = Check.ToFloat(Seeded.Uniform<double>(c, 33));
        using var tx = Tensor.FromArray(d, x, shape);
        using var tGamma = Tensor.FromArray(d, gamma, c); tGamma.RequiresGrad = true;
        using var tBeta = Tensor.FromArray(d, beta, c);
        using var tMean = Tensor.Zeros(d, c);
        using var tVar = Tensor.Zeros(d, c);
        tVar.Fill(1f);
        using var tape = new Tape(d);
        int before = d.LiveBuffers;
        var y = tape.BatchNorm2d(tx, tGamma, tBeta, tMean, tVar, training: true);
        Assert.Equal(3, tape.OwnedCount); // y, saved mean, saved invstd
        tape.Backward(y, g);
        Assert.Null(tx.GradOrNull);
        Assert.Null(tBeta.GradOrNull);
        var ey = new float[n]; var mean = new float[c]; var invstd = new float[c];
        R.Forward<float>(x, 2, c, 10, gamma, beta, new float[c], Enumerable.Repeat(1f, c).ToArray(), true, Momentum, Eps, ey, mean, invstd);
        var edGamma = new float[c];
        R.Backward<float>(x, g, 2, c, 10, mean, invstd, gamma, true, new float[n], edGamma, new float[c]);
        Check.Close(edGamma, tGamma.GradToArray(), Tolerance.Backward, "dGamma");
        tGamma.DropGrad();
        tape.Clear();
        Assert.Equal(before, d.LiveBuffers);
    }

    [Fact]
    public void NoGrad_Training_UpdatesRunningStatistics_AndSavesNothing()
    {
        var d = fx.Device;
        using var tx = Tensor.FromArray(d, [1, 3, 10, 14], 1, 2, 1, 2); tx.RequiresGrad = true;
        using var tGamma = Tensor.FromArray(d, [1, 1], 2); tGamma.RequiresGrad = true;
        using var tBeta = Tensor.Zeros(d, 2);
        using var tMean = Tensor.Zeros(d, 2);
        using var tVar = Tensor.FromArray(d, [1, 1], 2);
        using var tape = new Tape(d);
        int before = d.LiveBuffers;
        using (tape.NoGrad())
            tape.BatchNorm2d(tx, tGamma, tBeta, tMean, tVar, training: true);
        Assert.Equal(0, tape.Count);
        Assert.Equal(1, tape.OwnedCount); // only y
        Assert.Equal(before + 1, d.LiveBuffers);
        Check.Close([0.2f, 1.2f], tMean.ToArray(), 1e-6, 0, "running mean");
        Check.Close([1.1f, 1.7f], tVar.ToArray(), 1e-6, 1e-6, "running var");
    }

    // ---- bad inputs: ArgumentException naming the values, nothing launched --------------------------

    public static TheoryData<string, string> BadInputs() => new()
    {
        { "rank", "[2, 3, 4]" },
        { "gamma", "C = 3" },
        { "beta", "[4]" },
        { "runningMean", "runningMean" },
        { "runningVar", "[1, 4]" },
        { "momentum", "1.5" },
        { "momentumNaN", "NaN" },
        { "eps", "eps must be positive; got 0" },
        { "single", "B·H·W = 1" },
    };

    [Theory, MemberData(nameof(BadInputs))]
    public void BadInput_Throws_NamingValues(string which, string expected)
    {
        var d = fx.Device;
        int[] shape = which switch { "rank" => [2, 3, 4], "single" => [1, 3, 1, 1], _ => [2, 3, 2, 2] };
        using var x = Tensor.Zeros(d, shape); x.RequiresGrad = true;
        using var gamma = Tensor.Zeros(d, which == "gamma" ? 2 : 3); gamma.RequiresGrad = true;
        using var beta = Tensor.Zeros(d, which == "beta" ? 4 : 3);
        using var mean = Tensor.Zeros(d, which == "runningMean" ? 5 : 3);
        using var variance = which == "runningVar" ? Tensor.Zeros(d, 1, 4) : Tensor.Zeros(d, 3);
        float momentum = which switch { "momentum" => 1.5f, "momentumNaN" => float.NaN, _ => 0.1f };
        float eps = which == "eps" ? 0f : 1e-5f;
        mean.Fill(0.25f);
        var meanBefore = mean.ToArray();
        using var tape = new Tape(d);
        int before = d.LiveBuffers;
        var e = Assert.Throws<ArgumentException>(() => tape.BatchNorm2d(x, gamma, beta, mean, variance, training: true, momentum, eps));
        Assert.Contains(expected, e.Message);
        Assert.Contains("BatchNorm2d", e.Message);
        Assert.Equal(before, d.LiveBuffers);
        Assert.Equal(0, tape.OwnedCount);
        Assert.Equal(0, tape.Count);
        Assert.Equal(meanBefore, mean.ToArray());
    }

    [Fact]
    public void Eval_WithSingleValuePerChannel_IsAllowed()
    {
        var d = fx.Device;
        using var x = Tensor.FromArray(d, [3, 5], 1, 2, 1, 1);
        using var gamma = Tensor.FromArray(d, [2, 1], 2);
        using var beta = Tensor.FromArray(d, [1, 0], 2);
        using var mean = Tensor.FromArray(d, [1, 1], 2);
        using var variance = Tensor.FromArray(d, [4, 16], 2);
        using var tape = new Tape(d);
        var y = tape.BatchNorm2d(x, gamma, beta, mean, variance, training: false, eps: 1e-30f);
        Check.Close([3f, 1f], y.ToArray(), 1e-6, 1e-6, "eval y");
    }

}
