using IlgpuDdw.Autograd;
using IlgpuDdw.Runtime;
using R = IlgpuDdw.Kernels.Reference.BatchNormReference;

namespace IlgpuDdw.Tests;

/// <summary>
/// BatchNorm2d: reference, finite differences, running statistics over steps, saved tensors, bad inputs, the
/// reductions' precision at a realistic size against the double reference, determinism, launch plans and pooled
/// partials (kernels versus reference: <see cref="BatchNormCases"/>; several warps per group: <see cref="BatchNormGroupsTests"/>).
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

    // ---- the reductions at a realistic size: batch 32, 28×28 (25,088 values per channel), mean 2.5 --------

    private const int RealBatch = 32, RealChannels = 6, RealSpatial = 28 * 28;

    /// <summary>Every reduction at the realistic size: the CPU default, a GPU-shaped grouped plan, and the first rung.</summary>
    public static TheoryData<string> Reductions() => ["default", "groups", "per-channel"];

    private static BatchNormPlan RealPlan(Device d, string which)
    {
        int count = RealBatch * RealSpatial;
        var gpu = BatchNormPlan.For(DeviceKind.Cuda, 132 * 2048, RealChannels, count); // an H200's chunking
        return which switch
        {
            "default" => BatchNormPlan.For(d, RealChannels, count),
            "groups" => gpu with { GroupSize = BatchNormCases.TwoWarps(d) },
            _ => new BatchNormPlan(BatchNormReduction.PerChannel, 1, 1),
        };
    }

    private static double WorstRelative(double[] expected, float[] actual) =>
        expected.Zip(actual, (e, a) => Math.Abs(a - e) / Math.Abs(e)).Max();

    [Theory, MemberData(nameof(Reductions))]
    public void RealisticSize_Statistics_MatchDoubleReference_To1e6_ExceptTheSingleFloatSum(string which)
    {
        var d = fx.Device;
        int c = RealChannels, n = RealBatch * c * RealSpatial;
        var x = Seeded.Uniform<float>(n, 40, 2, 3); // mean 2.5, std 0.29: a single float sum cancels and drifts
        var plan = RealPlan(d, which);
        using var tx = Tensor.FromArray(d, x, RealBatch, c, 28, 28);
        using var mean = Tensor.Empty(d, c);
        using var invstd = Tensor.Empty(d, c);
        using var runningMean = Tensor.Zeros(d, c);
        using var runningVar = Tensor.Zeros(d, c); // momentum 1: the running statistics become the batch's
        Ops.BatchNormStatistics(plan, tx, Eps, 1f, mean, invstd, runningMean, runningVar);

        var em = new double[c]; var ei = new double[c]; var ev = new double[c];
        R.Statistics<double>(Check.ToDouble(x), RealBatch, c, RealSpatial, Eps, em, ei, ev);
        double worst = new[]
        {
            WorstRelative(em, mean.ToArray()), WorstRelative(em, runningMean.ToArray()),
            WorstRelative(ei, invstd.ToArray()), WorstRelative(ev, runningVar.ToArray()),
        }.Max();
        if (plan.Reduction == BatchNormReduction.PerChannel)
            Assert.True(worst > 1e-6, $"the single float sum is within 1e-6 ({worst:E2}): the test no longer shows the fix");
        else
            Assert.True(worst <= 1e-6, $"{plan}: worst relative error {worst:E2} > 1e-6");
    }

    [Theory, MemberData(nameof(Reductions))]
    public void RealisticSize_BackwardSums_MatchDoubleReference_To1e6_ExceptTheSingleFloatSum(string which)
    {
        var d = fx.Device;
        int c = RealChannels, n = RealBatch * c * RealSpatial;
        var x = Seeded.Uniform<float>(n, 41, 2, 3);
        // dy = u + 2(x − 2.5), u ~ U(0, 2): both sums grow like N (Σdy ≈ N, Σdy·x̂ ≈ 0.58·N), so a relative error
        // measures the summation, not the cancellation of an independent dy (whose Σdy·x̂ is only about √N)
        var u = Seeded.Uniform<float>(n, 42, 0, 2);
        var dy = x.Zip(u, (xi, ui) => ui + 2 * (xi - 2.5f)).ToArray();
        var savedMean = new float[c]; var savedInvstd = new float[c];
        R.Statistics<float>(x, RealBatch, c, RealSpatial, Eps, savedMean, savedInvstd, new float[c]);
        var plan = RealPlan(d, which);
        using var tx = Tensor.FromArray(d, x, RealBatch, c, 28, 28);
        using var tdy = Tensor.FromArray(d, dy, RealBatch, c, 28, 28);
        using var mean = Tensor.FromArray(d, savedMean, c);
        using var invstd = Tensor.FromArray(d, savedInvstd, c);
        using var sumDy = Tensor.Empty(d, c);
        using var sumDyXhat = Tensor.Empty(d, c);
        Ops.BatchNormChannelSums(plan, tx, tdy, null, mean, invstd, sumDy, sumDyXhat, null, null);

        // the double reference from the same saved statistics: Σdy = dβ, Σdy·x̂ = dγ
        var eGamma = new double[c]; var eBeta = new double[c];
        R.Backward<double>(Check.ToDouble(x), Check.ToDouble(dy), RealBatch, c, RealSpatial, Check.ToDouble(savedMean),
            Check.ToDouble(savedInvstd), new double[c], true, new double[n], eGamma, eBeta);
        double worst = Math.Max(WorstRelative(eBeta, sumDy.ToArray()), WorstRelative(eGamma, sumDyXhat.ToArray()));
        if (plan.Reduction == BatchNormReduction.PerChannel)
            Assert.True(worst > 1e-6, $"the single float sum is within 1e-6 ({worst:E2}): the test no longer shows the fix");
        else
            Assert.True(worst <= 1e-6, $"{plan}: worst relative error {worst:E2} > 1e-6");
    }

    // ---- determinism, plans, pooled partials ------------------------------------------------------------

    [Theory]
    [InlineData(BatchNormReduction.Chunks)]
    [InlineData(BatchNormReduction.Groups)]
    public void Reductions_AreBitIdentical_RunToRun(BatchNormReduction reduction)
    {
        var d = fx.Device;
        int[] shape = [4, 3, 9, 7];
        int c = 3, n = 4 * c * 63;
        var x = Seeded.Uniform<float>(n, 50, 1, 4); var g = Seeded.Uniform<float>(n, 51);
        var plan = new BatchNormPlan(reduction, 29, BatchNormCases.TwoWarps(d));
        float[][] Step()
        {
            using var tx = Tensor.FromArray(d, x, shape); tx.RequiresGrad = true;
            using var gamma = Tensor.FromArray(d, Seeded.Uniform<float>(c, 52, 0.5, 1.5), c); gamma.RequiresGrad = true;
            using var beta = Tensor.Zeros(d, c); beta.RequiresGrad = true;
            using var runningMean = Tensor.Zeros(d, c);
            using var runningVar = Tensor.Zeros(d, c);
            using var tape = new Tape(d);
            var y = tape.BatchNorm2d(tx, gamma, beta, runningMean, runningVar, training: true, plan: plan);
            tape.Backward(y, g);
            return [y.ToArray(), runningMean.ToArray(), runningVar.ToArray(), tx.GradToArray(), gamma.GradToArray(), beta.GradToArray()];
        }
        var first = Step();
        var second = Step();
        for (int i = 0; i < first.Length; i++)
            Assert.Equal(first[i], second[i]);
    }

    [Fact]
    public void DefaultPlans_CpuChunks_AndGpuGroupsThatFillAnH200()
    {
        var d = fx.Device;
        var cpu = BatchNormPlan.For(d, 16, 256 * 784);
        Assert.Equal(BatchNormReduction.Chunks, cpu.Reduction);
        Assert.True(16 * cpu.Chunks(256 * 784) >= d.MaxThreads, $"{cpu}: fewer items than threads");

        // every BN layer of resnet_mini at batch 256 and resnet18 at 224×224, batch 64: (channels, B·H·W)
        (int C, int N)[] layers =
        [
            (16, 256 * 28 * 28), (32, 256 * 14 * 14), (64, 256 * 7 * 7),
            (64, 64 * 112 * 112), (64, 64 * 56 * 56), (128, 64 * 28 * 28), (256, 64 * 14 * 14), (512, 64 * 7 * 7),
        ];
        foreach (var (c, count) in layers)
        {
            var gpu = BatchNormPlan.For(DeviceKind.Cuda, 132 * 2048, c, count);
            int groups = c * gpu.Chunks(count);
            Assert.Equal(BatchNormReduction.Groups, gpu.Reduction);
            Assert.Equal(256, gpu.GroupSize);
            Assert.True(groups >= 2 * 132, $"C = {c}, N = {count}: {groups} groups");
            Assert.True(groups <= 2 * 132 * 2048 / 256, $"C = {c}, N = {count}: {groups} groups, more than two waves");
            Assert.True(count - (gpu.Chunks(count) - 1) * gpu.ChunkLength > 0, $"C = {c}, N = {count}: an empty chunk");
        }
        // tiny layers: one chunk, never an empty one
        Assert.Equal(1, BatchNormPlan.For(DeviceKind.Cuda, 132 * 2048, 8, 3).Chunks(3));
        Assert.Equal(1, BatchNormPlan.For(DeviceKind.Cpu, 4, 64, 1).Chunks(1));
    }

    [Theory]
    [InlineData(BatchNormReduction.Chunks)]
    [InlineData(BatchNormReduction.Groups)]
    public void TrainingSteps_AllocateNothingAfterTheFirst(BatchNormReduction reduction)
    {
        var d = fx.Device;
        int[] shape = [3, 4, 6, 5];
        int c = 4, n = 3 * c * 30;
        var plan = new BatchNormPlan(reduction, 7, BatchNormCases.TwoWarps(d));
        using var tx = Tensor.FromArray(d, Seeded.Uniform<float>(n, 60), shape); tx.RequiresGrad = true;
        using var gamma = Tensor.FromArray(d, Seeded.Uniform<float>(c, 61, 0.5, 1.5), c); gamma.RequiresGrad = true;
        using var beta = Tensor.Zeros(d, c); beta.RequiresGrad = true;
        using var runningMean = Tensor.Zeros(d, c);
        using var runningVar = Tensor.Zeros(d, c);
        var dy = Seeded.Uniform<float>(n, 62);
        using var tape = new Tape(d);
        long Step()
        {
            var y = tape.BatchNorm2d(tx, gamma, beta, runningMean, runningVar, training: true, plan: plan);
            tape.Backward(y, dy);
            tape.Clear();
            return d.LiveBytes + d.PooledBytes; // everything the device has allocated
        }
        long afterFirst = Step();
        Assert.Equal(afterFirst, Step());
        Assert.Equal(afterFirst, Step());
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
        { "chunk", "chunk length must be at least 1; got 0" },
        { "group", "group size must be a multiple of the warp size 2, at most 2; got 3" },
        { "groupLimit", "got 4" },
        { "reduction", "unknown reduction 7" },
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
        BatchNormPlan? plan = which switch
        {
            "chunk" => new(BatchNormReduction.Chunks, 0, 1),
            "group" => new(BatchNormReduction.Groups, 4, 3),
            "groupLimit" => new(BatchNormReduction.Groups, 4, 4),
            "reduction" => new((BatchNormReduction)7, 4, 2),
            _ => null,
        };
        mean.Fill(0.25f);
        var meanBefore = mean.ToArray();
        using var tape = new Tape(d);
        int before = d.LiveBuffers;
        var e = Assert.Throws<ArgumentException>(() => tape.BatchNorm2d(x, gamma, beta, mean, variance, training: true, momentum, eps, plan));
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

    // ---- fused BatchNorm2d + residual + ReLU ------------------------------------------------------------

    [Fact]
    public void Reference_FusedRelu_HandComputed()
    {
        // x [1, 1, 1, 2] = {1, 3}: x̂ = {−1, 1}; γ = 1, β = 0, eps 0. No residual: y = {0, 1}; residual {2, −0.5}: y = {1, 0.5}
        double[] x = [1, 3], gamma = [1], beta = [0];
        var y = new double[2]; var mean = new double[1]; var invstd = new double[1];
        R.ForwardRelu<double>(x, 1, 1, 2, gamma, beta, new double[1], [1.0], true, 0.1, 0, [], y, mean, invstd);
        Assert.Equal([0, 1], y);
        R.ForwardRelu<double>(x, 1, 1, 2, gamma, beta, new double[1], [1.0], true, 0.1, 0, [2, -0.5], y, mean, invstd);
        Assert.Equal([1, 0.5], y);

        // eval with mean 2, invstd 1 (x̂ = {−1, 1}), output {0, 1}, dy = {5, 7}: dz = {0, 7}, dx = γ·dz, dβ = 7, dγ = 7, dr = dz
        var dx = new double[2]; var dGamma = new double[1]; var dBeta = new double[1]; var dResidual = new double[2];
        R.BackwardRelu<double>(x, [5, 7], [0, 1], 1, 1, 2, [2], [1], [3], false, dx, dGamma, dBeta, dResidual);
        Assert.Equal([0, 21], dx);
        Assert.Equal([7], dGamma);
        Assert.Equal([7], dBeta);
        Assert.Equal([0, 7], dResidual);
    }

    [Theory]
    [InlineData(3, 4, 5, 3, true)]
    [InlineData(3, 4, 5, 3, false)]
    [InlineData(2, 3, 1, 1, true)]
    public void Reference_FusedRelu_FiniteDifference(int b, int c, int h, int w, bool training)
    {
        int s = h * w, n = b * c * s;
        var x = Seeded.Uniform<double>(n, 70, -2, 2); var g = Seeded.Uniform<double>(n, 71);
        var gamma = Seeded.Uniform<double>(c, 72, 0.5, 1.5); var beta = Seeded.Uniform<double>(c, 73);
        var runningMean0 = Seeded.Uniform<double>(c, 74); var runningVar0 = Seeded.Uniform<double>(c, 75, 0.5, 2);
        var y = new double[n]; var mean = new double[c]; var invstd = new double[c];
        // a residual that keeps BN(x) + residual at least 0.05 from the kink
        R.Forward<double>(x, b, c, s, gamma, beta, (double[])runningMean0.Clone(), (double[])runningVar0.Clone(), training,
            Momentum, Eps, y, mean, invstd);
        var residual = Seeded.Uniform<double>(n, 76);
        for (int i = 0; i < n; i++)
            if (Math.Abs(y[i] + residual[i]) < 0.05) residual[i] += y[i] + residual[i] < 0 ? -0.1 : 0.1;
        double Loss()
        {
            R.ForwardRelu<double>(x, b, c, s, gamma, beta, (double[])runningMean0.Clone(), (double[])runningVar0.Clone(),
                training, Momentum, Eps, residual, y, mean, invstd);
            return Check.Dot(g, y);
        }
        Loss();
        Assert.Contains(y, v => v == 0); // the mask is really exercised
        var dx = new double[n]; var dGamma = new double[c]; var dBeta = new double[c]; var dResidual = new double[n];
        R.BackwardRelu<double>(x, g, y, b, c, s, mean, invstd, gamma, training, dx, dGamma, dBeta, dResidual);
        string mode = training ? "training" : "eval";
        Check.FiniteDifference(Loss, x, dx, $"fused {mode} dX");
        Check.FiniteDifference(Loss, gamma, dGamma, $"fused {mode} dGamma");
        Check.FiniteDifference(Loss, beta, dBeta, $"fused {mode} dBeta");
        Check.FiniteDifference(Loss, residual, dResidual, $"fused {mode} dResidual");
    }

    [Theory]
    [InlineData(BatchNormReduction.Chunks)]
    [InlineData(BatchNormReduction.Groups)]
    public void Fused_IsBitIdenticalToBatchNormAddRelu_WithOneTapeEntry(BatchNormReduction reduction)
    {
        var d = fx.Device;
        int[] shape = [3, 4, 5, 6];
        int c = 4, n = 3 * c * 30;
        var plan = new BatchNormPlan(reduction, 17, BatchNormCases.TwoWarps(d));
        var x = Seeded.Uniform<float>(n, 80, -1, 2); var r = Seeded.Uniform<float>(n, 81); var g = Seeded.Uniform<float>(n, 82);
        var gamma = Seeded.Uniform<float>(c, 83, 0.5, 1.5); var beta = Seeded.Uniform<float>(c, 84);
        (float[][] Results, int Entries) Run(bool fused)
        {
            using var tx = Tensor.FromArray(d, x, shape); tx.RequiresGrad = true;
            using var tr = Tensor.FromArray(d, r, shape); tr.RequiresGrad = true;
            using var tGamma = Tensor.FromArray(d, gamma, c); tGamma.RequiresGrad = true;
            using var tBeta = Tensor.FromArray(d, beta, c); tBeta.RequiresGrad = true;
            using var runningMean = Tensor.Zeros(d, c);
            using var runningVar = Tensor.Zeros(d, c);
            using var tape = new Tape(d);
            var y = fused
                ? tape.BatchNorm2dRelu(tx, tGamma, tBeta, runningMean, runningVar, training: true, tr, plan: plan)
                : tape.Relu(tape.Add(tape.BatchNorm2d(tx, tGamma, tBeta, runningMean, runningVar, training: true, plan: plan), tr));
            int entries = tape.Count;
            tape.Backward(y, g);
            return ([y.ToArray(), runningMean.ToArray(), runningVar.ToArray(), tx.GradToArray(), tr.GradToArray(),
                tGamma.GradToArray(), tBeta.GradToArray()], entries);
        }
        var (fusedResults, fusedEntries) = Run(fused: true);
        var (plainResults, plainEntries) = Run(fused: false);
        Assert.Contains(fusedResults[0], v => v == 0f);
        for (int i = 0; i < fusedResults.Length; i++)
            Assert.Equal(plainResults[i], fusedResults[i]);
        Assert.Equal(1, fusedEntries);
        Assert.Equal(3, plainEntries);
    }

    [Fact]
    public void Fused_SavesTapeOwnedTensors_AndRejectsBadResidualsAndThePerChannelRung()
    {
        var d = fx.Device;
        using var x = Tensor.FromArray(d, Seeded.Uniform<float>(24, 90), 2, 3, 2, 2); x.RequiresGrad = true;
        using var gamma = Tensor.FromArray(d, [1, 1, 1], 3);
        using var beta = Tensor.Zeros(d, 3);
        using var mean = Tensor.Zeros(d, 3);
        using var variance = Tensor.FromArray(d, [1, 1, 1], 3);
        using var wrong = Tensor.Zeros(d, 2, 3, 2, 1);
        using var tape = new Tape(d);
        int before = d.LiveBuffers;
        var e = Assert.Throws<ArgumentException>(() => tape.BatchNorm2dRelu(x, gamma, beta, mean, variance, true, wrong));
        Assert.Contains("BatchNorm2dRelu: shapes [2, 3, 2, 2] and [2, 3, 2, 1] differ", e.Message);
        e = Assert.Throws<ArgumentException>(() => tape.BatchNorm2dRelu(x, gamma, beta, mean, variance, true,
            plan: new BatchNormPlan(BatchNormReduction.PerChannel, 1, 1)));
        Assert.Contains("BatchNorm2dRelu: the PerChannel reduction has no fused form", e.Message);
        Assert.Equal(before, d.LiveBuffers);
        Assert.Equal(0, tape.OwnedCount);

        var y = tape.BatchNorm2dRelu(x, gamma, beta, mean, variance, true);
        Assert.Equal(3, tape.OwnedCount); // y (the ReLU mask too), saved mean, saved invstd
        tape.Backward(y, Seeded.Uniform<float>(24, 91));
        tape.Clear();
        Assert.Equal(before, d.LiveBuffers - 1); // x's gradient
    }
}

/// <summary>
/// The grouped reductions on a CPU accelerator whose groups hold up to 4 warps of 4 threads: every grouped BatchNorm2d
/// verification case (groups of 2 warps of 4), and full groups of 4 warps at odd shapes.
/// </summary>
[Collection("cpu-groups")]
public sealed class BatchNormGroupsTests(GroupedDeviceFixture fx)
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var c in VerificationCases.All.Where(c => c.Family == "BatchNorm2d" && c.Name.Contains("groups", StringComparison.Ordinal)))
            data.Add(c.Name);
        return data;
    }

    [Theory, MemberData(nameof(Cases))]
    public void VerificationCase_MatchesReference_WithWarpsOf4(string name)
    {
        Assert.Equal(8, BatchNormCases.TwoWarps(fx.Device));
        var c = VerificationCases.All.Single(x => x.Family == "BatchNorm2d" && x.Name == name);
        var failed = c.Run(fx.Device).Where(r => !r.Pass).ToArray();
        Assert.True(failed.Length == 0, string.Join("\n", failed.Select(r => r.ToString())));
    }

    [Theory]
    [InlineData(1, 3, 5, 7, 9)]
    [InlineData(3, 5, 7, 5, 71)]
    [InlineData(2, 4, 1, 1, 1)]
    [InlineData(4, 1, 3, 2, 5)]
    public void FullGroupsOfFourWarps_MatchReference(int b, int c, int h, int w, int chunkLength)
    {
        var plan = new BatchNormPlan(BatchNormReduction.Groups, chunkLength, 16);
        foreach (bool training in new[] { true, false })
        {
            var rows = BatchNormCases.Run(fx.Device, [b, c, h, w], training, $"groups of 16, chunks of {chunkLength}", plan).ToArray();
            Assert.Equal(7, rows.Length); // 6 comparisons and the second pass's accumulation
            var failed = rows.Where(r => !r.Pass).ToArray();
            Assert.True(failed.Length == 0, string.Join("\n", failed.Select(r => r.ToString())));
        }
    }

    [Fact]
    public void GroupSizes_BeyondTheDevice_AreRejected()
    {
        var d = fx.Device;
        using var x = Tensor.Zeros(d, 2, 3, 2, 2);
        using var gamma = Tensor.Zeros(d, 3);
        using var beta = Tensor.Zeros(d, 3);
        using var mean = Tensor.Zeros(d, 3);
        using var variance = Tensor.Zeros(d, 3);
        using var tape = new Tape(d);
        foreach (int size in new[] { 2, 6, 32 })
        {
            var e = Assert.Throws<ArgumentException>(() =>
                tape.BatchNorm2d(x, gamma, beta, mean, variance, true, plan: new BatchNormPlan(BatchNormReduction.Groups, 4, size)));
            Assert.Contains($"multiple of the warp size 4, at most 16; got {size}", e.Message);
        }
    }
}
