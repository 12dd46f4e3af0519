using IlgpuDdw.Autograd;
using IlgpuDdw.Runtime;
using R = IlgpuDdw.Kernels.Reference.BatchNormReference;

namespace IlgpuDdw.Tests;

/// <summary>
/// Live-sample batch norm (the off nodes of dynamic wiring): the reference against hand-computed cases and finite
/// differences, every sample off (defined, no NaN), bit-identity with the unmasked op when every sample is live,
/// and bad masks (kernels against the reference at odd shapes: the live cases of <see cref="BatchNormCases"/>).
/// </summary>
[Collection("cpu")]
public sealed class LiveBatchNormTests(DeviceFixture fx)
{
    private const float Momentum = 0.1f, Eps = 1e-5f;

    [Fact]
    public void Reference_HandComputed_OffSampleIgnored()
    {
        // x [2, 1, 1, 2]: sample 0 = {1, 3} live, sample 1 = {100, −50} off; eps 0, γ = 2, β = 0.5
        double[] x = [1, 3, 100, -50], live = [1, 0];
        double[] runningMean = [0], runningVar = [1];
        var y = new double[4]; var mean = new double[1]; var invstd = new double[1];
        R.LiveForward<double>(x, 2, 1, 2, live, [2], [0.5], runningMean, runningVar, true, 0.1, 0, false, [], y, mean, invstd);
        Assert.Equal([-1.5, 2.5, 0, 0], y);
        Assert.Equal([2], mean);
        Assert.Equal([1], invstd);
        Check.Close([0.2], runningMean, 1e-12, 0, "running mean from the live sample");
        Check.Close([1.1], runningVar, 1e-12, 0, "running var (unbiased 2) from the live sample");

        // backward: dy on the off sample is ignored and its dx is 0; the live sample as a batch of its own
        var dx = new double[4]; var dGamma = new double[1]; var dBeta = new double[1];
        R.LiveBackwardFused<double>(x, [1, 0, 7, 9], y, 2, 1, 2, live, mean, invstd, [2], true, false, dx, dGamma, dBeta, []);
        Assert.Equal([1], dBeta);
        Assert.Equal([-1], dGamma);
        Check.Close([2 * (1 - 0.5 * (1 + -1 * -1)), 2 * (0 - 0.5 * (1 + 1 * -1)), 0, 0], dx, 1e-12, 0, "dx");
    }

    [Theory]
    [InlineData(3, 2, 3, 2, true, false, false)]
    [InlineData(3, 2, 3, 2, false, false, false)]
    [InlineData(4, 3, 2, 2, true, true, true)]
    [InlineData(4, 3, 2, 2, false, true, false)]
    public void Reference_FiniteDifference(int b, int c, int h, int w, bool training, bool relu, bool residual)
    {
        int s = h * w, n = b * c * s;
        double[] live = b == 3 ? [1, 0, 1] : [0, 1, 1, 0];
        var x = Seeded.Uniform<double>(n, 31, -2, 2); var g = Seeded.Uniform<double>(n, 32);
        var gamma = Seeded.Uniform<double>(c, 33, 0.5, 1.5); var beta = Seeded.Uniform<double>(c, 34);
        var r = residual ? Seeded.Uniform<double>(n, 35) : [];
        var runningMean0 = Seeded.Uniform<double>(c, 36); var runningVar0 = Seeded.Uniform<double>(c, 37, 0.5, 2);
        var y = new double[n]; var mean = new double[c]; var invstd = new double[c];
        double Loss()
        {
            R.LiveForward<double>(x, b, c, s, live, gamma, beta, (double[])runningMean0.Clone(), (double[])runningVar0.Clone(),
                training, Momentum, Eps, relu, r, y, mean, invstd);
            return Check.Dot(g, y);
        }
        Loss();
        foreach (double v in y) Assert.True(!relu || Math.Abs(v) == 0 || Math.Abs(v) > 1e-4, "input too close to the ReLU kink");
        var dx = new double[n]; var dGamma = new double[c]; var dBeta = new double[c];
        var dr = residual ? new double[n] : [];
        R.LiveBackwardFused<double>(x, g, y, b, c, s, live, mean, invstd, gamma, training, relu, dx, dGamma, dBeta, dr);
        string what = $"live {(training ? "training" : "eval")}{(relu ? " relu" : "")}";
        Check.FiniteDifference(Loss, x, dx, $"{what} dX");
        Check.FiniteDifference(Loss, gamma, dGamma, $"{what} dGamma");
        Check.FiniteDifference(Loss, beta, dBeta, $"{what} dBeta");
        if (residual) Check.FiniteDifference(Loss, r, dr, $"{what} dResidual");
        for (int i = 0; i < n; i++)
            if (live[i / s / c] == 0) Assert.Equal(0, dx[i]); // an off sample gets no gradient
    }

    [Fact]
    public void MaskSamples_Reference_FiniteDifference()
    {
        double[] live = [1, 0, 1];
        var x = Seeded.Uniform<double>(12, 81); var g = Seeded.Uniform<double>(12, 82);
        var y = new double[12];
        double Loss()
        {
            Kernels.Reference.ElementwiseReference.MaskSamplesForward<double>(x, live, 4, y);
            return Check.Dot(g, y);
        }
        var dx = new double[12];
        Kernels.Reference.ElementwiseReference.MaskSamplesBackward<double>(g, live, 4, dx);
        Check.FiniteDifference(Loss, x, dx, "MaskSamples dX");
        Assert.All(dx.AsSpan(4, 4).ToArray(), v => Assert.Equal(0, v));
    }

    public static TheoryData<string> Plans() => ["default", "chunks", "groups"];

    private BatchNormPlan? Plan(string which) => which switch
    {
        "chunks" => new BatchNormPlan(BatchNormReduction.Chunks, 37, 1),
        "groups" => new BatchNormPlan(BatchNormReduction.Groups, 37, BatchNormCases.TwoWarps(fx.Device)),
        _ => null,
    };

    [Theory, MemberData(nameof(Plans))]
    public void EverySampleOff_IsDefined_NoNaN_RunningStatisticsKept(string which)
    {
        var d = fx.Device;
        int[] shape = [3, 4, 5, 3];
        int n = 3 * 4 * 15;
        var xs = Seeded.Uniform<float>(n, 41, -2, 3);
        using var x = Tensor.FromArray(d, xs, shape); x.RequiresGrad = true;
        using var gamma = Tensor.FromArray(d, [1f, 2f, 0.5f, 1.5f], 4); gamma.RequiresGrad = true;
        using var beta = Tensor.FromArray(d, [0.1f, 0.2f, 0.3f, 0.4f], 4); beta.RequiresGrad = true;
        float[] rm = [0.5f, -1f, 2f, 0f], rv = [1f, 2f, 0.5f, 3f];
        using var runningMean = Tensor.FromArray(d, rm, 4);
        using var runningVar = Tensor.FromArray(d, rv, 4);
        using var live = Tensor.Zeros(d, 3);
        using var tape = new Tape(d);
        var y = tape.BatchNorm2dRelu(x, gamma, beta, runningMean, runningVar, training: true, plan: Plan(which), live: live);
        tape.Backward(y, Seeded.Uniform<float>(n, 42));
        Assert.All(y.ToArray(), v => Assert.Equal(0f, v));
        Assert.All(x.GradToArray(), v => Assert.Equal(0f, v));
        Assert.All(gamma.GradToArray(), v => Assert.Equal(0f, v));
        Assert.All(beta.GradToArray(), v => Assert.Equal(0f, v));
        Assert.Equal(rm, runningMean.ToArray());
        Assert.Equal(rv, runningVar.ToArray());
    }

    [Theory, MemberData(nameof(Plans))]
    public void AllLive_IsBitIdenticalToTheUnmaskedOp(string which)
    {
        var d = fx.Device;
        foreach (int[] shape in new[] { new[] { 5, 3, 7, 5 }, new[] { 2, 6, 1, 3 } })
            foreach (bool training in new[] { true, false })
                foreach (bool relu in new[] { false, true })
                {
                    var plain = Run(shape, training, relu, Plan(which), masked: false);
                    var masked = Run(shape, training, relu, Plan(which), masked: true);
                    for (int k = 0; k < plain.Length; k++)
                        Assert.True(plain[k].AsSpan().SequenceEqual(masked[k]), $"{Tensor.Format(shape)} training {training} relu {relu}: output {k} differs");
                }

        float[][] Run(int[] shape, bool training, bool relu, BatchNormPlan? plan, bool masked)
        {
            int b = shape[0], c = shape[1], n = b * c * shape[2] * shape[3];
            using var x = Tensor.FromArray(d, Seeded.Uniform<float>(n, 51, -2, 3), shape); x.RequiresGrad = true;
            using var gamma = Tensor.FromArray(d, Seeded.Uniform<float>(c, 52, 0.5, 1.5), c); gamma.RequiresGrad = true;
            using var beta = Tensor.FromArray(d, Seeded.Uniform<float>(c, 53), c); beta.RequiresGrad = true;
            using var residual = Tensor.FromArray(d, Seeded.Uniform<float>(n, 54), shape); residual.RequiresGrad = true;
            using var runningMean = Tensor.FromArray(d, Seeded.Uniform<float>(c, 55), c);
            using var runningVar = Tensor.FromArray(d, Seeded.Uniform<float>(c, 56, 0.5, 2), c);
            using var live = masked ? Tensor.FromArray(d, Enumerable.Repeat(1f, b).ToArray(), b) : null;
            using var tape = new Tape(d);
            var y = relu
                ? tape.BatchNorm2dRelu(x, gamma, beta, runningMean, runningVar, training, residual, plan: plan, live: live)
                : tape.BatchNorm2d(x, gamma, beta, runningMean, runningVar, training, plan: plan, live: live);
            tape.Backward(y, Seeded.Uniform<float>(n, 57));
            return [y.ToArray(), runningMean.ToArray(), runningVar.ToArray(), x.GradToArray(), gamma.GradToArray(), beta.GradToArray(),
                relu ? residual.GradToArray() : []];
        }
    }

    [Fact]
    public void BadMask_AndThePerChannelRung_AreRejected()
    {
        var d = fx.Device;
        using var x = Tensor.Zeros(d, 2, 3, 2, 2);
        using var gamma = Tensor.Zeros(d, 3);
        using var beta = Tensor.Zeros(d, 3);
        using var mean = Tensor.Zeros(d, 3);
        using var variance = Tensor.Zeros(d, 3);
        using var wrong = Tensor.Zeros(d, 3);
        using var live = Tensor.Zeros(d, 2);
        using var tape = new Tape(d);
        var e = Assert.Throws<ArgumentException>(() => tape.BatchNorm2d(x, gamma, beta, mean, variance, true, live: wrong));
        Assert.Contains("live-sample mask must have B = 2 elements", e.Message);
        Assert.Contains("got shape [3]", e.Message);
        e = Assert.Throws<ArgumentException>(() =>
            tape.BatchNorm2d(x, gamma, beta, mean, variance, true, plan: new BatchNormPlan(BatchNormReduction.PerChannel, 1, 1), live: live));
        Assert.Contains("PerChannel reduction has no live-sample form", e.Message);
        Assert.Equal(0, tape.Count);
    }
}
