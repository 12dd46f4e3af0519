using IlgpuDdw.Training;
using O = IlgpuDdw.Kernels.Reference.OptimizerReference;

namespace IlgpuDdw.Tests;

/// <summary>
/// SGD (momentum, Nesterov, coupled and decoupled weight decay): reference, state, bad inputs (kernel versus
/// reference: <see cref="OptimizerCases"/>).
/// </summary>
[Collection("cpu")]
public sealed class OptimizerTests(DeviceFixture fx)
{
    // ---- layer 1: the reference against hand-computed steps ---------------------------------------------

    [Fact]
    public void Reference_HandComputed()
    {
        double[] Run(double momentum, bool nesterov, double wd, bool decoupled, int steps)
        {
            double[] p = [1.0], buf = [0.0];
            for (int s = 0; s < steps; s++) O.SgdStep<double>(p, [0.5], buf, 0.1, momentum, wd, nesterov, decoupled);
            return [p[0], buf[0]];
        }
        // plain: p = 1 − 0.1·0.5
        Check.Close([0.95], Run(0, false, 0, false, 1)[..1], 1e-15, 0, "plain");
        // coupled L2, μ = 0.9: d = 0.5 + 0.1·1 = 0.6, buf = 0.6, p = 0.94; then d = 0.5 + 0.094, buf = 0.54 + 0.594
        Check.Close([0.94, 0.6], Run(0.9, false, 0.1, false, 1), 1e-15, 0, "momentum step 1");
        Check.Close([0.94 - 0.1 * 1.134, 1.134], Run(0.9, false, 0.1, false, 2), 1e-15, 0, "momentum step 2");
        // Nesterov: buf = 0.6, step along 0.6 + 0.9·0.6 = 1.14
        Check.Close([1 - 0.114, 0.6], Run(0.9, true, 0.1, false, 1), 1e-15, 0, "nesterov");
        // decoupled: p = 1·(1 − 0.1·0.1) − 0.1·0.5 = 0.94, buf = 0.5; then p = 0.94·0.99 − 0.1·0.95
        Check.Close([0.94, 0.5], Run(0.9, false, 0.1, true, 1), 1e-15, 0, "decoupled step 1");
        Check.Close([0.94 * 0.99 - 0.095, 0.95], Run(0.9, false, 0.1, true, 2), 1e-15, 0, "decoupled step 2");
    }

    // ---- layer 3 (the kernel against the reference over steps: VerificationTests) -----------------------

    [Fact]
    public void Step_SkipsParametersWithoutGradient_AndZeroGradZeros()
    {
        var d = fx.Device;
        using var a = Tensor.FromArray(d, [1f, 2f], 2);
        using var b = Tensor.FromArray(d, [3f], 1);
        using var sgd = new Sgd([a, b], 0.5f, momentum: 0.9f, weightDecay: 0.1f);
        a.Grad.CopyFrom([1f, -1f]);
        sgd.Step();
        Assert.Null(b.GradOrNull);
        Assert.Equal([3f], b.ToArray()); // no gradient: no decay either (as PyTorch)
        Check.Close([1f - 0.5f * 1.1f, 2f - 0.5f * (-1f + 0.2f)], a.ToArray(), 1e-6, 0, "a");
        sgd.ZeroGrad();
        Assert.Equal([0f, 0f], a.GradToArray());
    }

    [Fact]
    public void StateDict_RoundTrip_ResumesIdentically()
    {
        var d = fx.Device;
        var init = Check.ToFloat(Seeded.Uniform<double>(11, 60));
        var grads = Enumerable.Range(0, 4).Select(s => Check.ToFloat(Seeded.Uniform<double>(11, 61 + s))).ToArray();
        using var p1 = Tensor.FromArray(d, init, 11);
        using var sgd1 = new Sgd([p1], 0.1f, 0.9f, nesterov: true, weightDecay: 0.01f);
        for (int s = 0; s < 2; s++) { p1.Grad.CopyFrom(grads[s]); sgd1.Step(); }
        var state = sgd1.StateDict();
        Assert.Equal([Sgd.MomentumBufferKey(0)], state.Keys);

        using var p2 = Tensor.FromArray(d, p1.ToArray(), 11);
        using var sgd2 = new Sgd([p2], 0.1f, 0.9f, nesterov: true, weightDecay: 0.01f);
        sgd2.LoadStateDict(state);
        for (int s = 2; s < 4; s++)
        {
            p1.Grad.CopyFrom(grads[s]); sgd1.Step();
            p2.Grad.CopyFrom(grads[s]); sgd2.Step();
        }
        Assert.Equal(p1.ToArray(), p2.ToArray());
        Assert.Equal(sgd1.StateDict()[Sgd.MomentumBufferKey(0)], sgd2.StateDict()[Sgd.MomentumBufferKey(0)]);
    }

    [Fact]
    public void Dispose_FreesMomentumBuffers()
    {
        var d = fx.Device;
        using var p = Tensor.Zeros(d, 5, 3);
        int live = d.LiveBuffers;
        var sgd = new Sgd([p], 0.1f, momentum: 0.9f);
        // p's buffer exchanged for the flat parameter buffer, plus the flat gradient and momentum buffers and the
        // one-float guard of unguarded steps
        Assert.Equal(live + 3, d.LiveBuffers);
        sgd.Dispose();
        sgd.Dispose();
        Assert.Equal(live, d.LiveBuffers); // p keeps the flat parameter buffer alone
        Assert.Throws<ObjectDisposedException>(() => sgd.Step());
        using var plain = new Sgd([p], 0.1f);
        Assert.Equal(live + 2, d.LiveBuffers); // no momentum: the gradient buffer and the guard
        plain.Dispose();
        Assert.Equal(live, d.LiveBuffers);
    }

    // ---- bad inputs -------------------------------------------------------------------------------------

    [Fact]
    public void BadArguments_Throw_WithTheValues()
    {
        var d = fx.Device;
        using var p = Tensor.Zeros(d, 4);
        using var q = Tensor.Zeros(d, 2, 3);
        Assert.Contains("empty", Assert.Throws<ArgumentException>(() => new Sgd([], 0.1f)).Message);
        Assert.Contains("more than once", Assert.Throws<ArgumentException>(() => new Sgd([p, q, p], 0.1f)).Message);
        Assert.Contains("-0.5", Assert.Throws<ArgumentException>(() => new Sgd([p], -0.5f)).Message);
        Assert.Contains("NaN", Assert.Throws<ArgumentException>(() => new Sgd([p], 0.1f, momentum: float.NaN)).Message);
        Assert.Contains("-1", Assert.Throws<ArgumentException>(() => new Sgd([p], 0.1f, weightDecay: -1f)).Message);
        Assert.Contains("Nesterov", Assert.Throws<ArgumentException>(() => new Sgd([p], 0.1f, nesterov: true)).Message);
        using var sgd = new Sgd([p, q], 0.1f, momentum: 0.9f);
        Assert.Throws<ArgumentException>(() => sgd.LearningRate = float.PositiveInfinity);
        Assert.Equal(0.1f, sgd.LearningRate);

        var good = sgd.StateDict();
        var wrongLength = new Dictionary<string, float[]>(good) { [Sgd.MomentumBufferKey(1)] = new float[5] };
        var e = Assert.Throws<ArgumentException>(() => sgd.LoadStateDict(wrongLength));
        Assert.Contains(Sgd.MomentumBufferKey(1), e.Message);
        Assert.Contains("5 elements", e.Message);
        Assert.Contains("[2, 3]", e.Message);
        var missing = new Dictionary<string, float[]> { [Sgd.MomentumBufferKey(0)] = new float[4] };
        Assert.Contains(Sgd.MomentumBufferKey(1), Assert.Throws<ArgumentException>(() => sgd.LoadStateDict(missing)).Message);
        var extra = new Dictionary<string, float[]>(good) { ["momentum_buffer.7"] = new float[1] };
        Assert.Contains("momentum_buffer.7", Assert.Throws<ArgumentException>(() => sgd.LoadStateDict(extra)).Message);
    }
}
