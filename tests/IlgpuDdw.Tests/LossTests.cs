using IlgpuDdw.Autograd;
using C = IlgpuDdw.Kernels.Reference.LossReference;

namespace IlgpuDdw.Tests;

/// <summary>
/// Softmax cross-entropy (with label smoothing) and argmax: reference, finite differences, saved gradient, bad
/// inputs (kernels versus reference: <see cref="LossCases"/>).
/// </summary>
[Collection("cpu")]
public sealed class LossTests(DeviceFixture fx)
{
    // ---- layer 1 ----------------------------------------------------------------------------------------

    [Fact]
    public void Reference_HandComputed()
    {
        // one sample, K = 2, logits [0, ln 3]: softmax [1/4, 3/4], lse = ln 4
        double[] l = [0, Math.Log(3)];
        Assert.Equal(Math.Log(4), C.CrossEntropy<double>(l, [0], 0.0), 12);
        Assert.Equal(Math.Log(4) - Math.Log(3), C.CrossEntropy<double>(l, [1], 0.0), 12);
        // ε = 0.2, label 0: target [0.9, 0.1]; loss = ln 4 − 0.1 ln 3; gradient softmax − target = [−0.65, 0.65]
        Assert.Equal(Math.Log(4) - 0.1 * Math.Log(3), C.CrossEntropy<double>(l, [0], 0.2), 12);
        var dl = new double[2];
        C.CrossEntropyBackward<double>(l, [0], 0.2, 2.0, dl);
        Check.Close([-1.3, 1.3], dl, 1e-12, 0, "dLogits");
        // mean over a batch of two: [0, 0] label 1 gives ln 2
        Assert.Equal((Math.Log(4) + Math.Log(2)) / 2, C.CrossEntropy<double>([0, Math.Log(3), 0, 0], [0, 1], 0.0), 12);
        Assert.Equal([1, 0, 2], C.ArgmaxRows<double>([0, 5, 5, 2, 1, 0, 1, 1, 3], 3)); // first index wins ties
    }

    // ---- layer 2 ----------------------------------------------------------------------------------------

    [Theory]
    [InlineData(3, 5, 0.0)]
    [InlineData(4, 7, 0.1)]
    [InlineData(1, 1, 0.0)]
    [InlineData(2, 3, 0.9)]
    public void Reference_FiniteDifference(int batch, int classes, double smoothing)
    {
        var logits = Seeded.Uniform<double>(batch * classes, 1, -3, 3);
        var labels = LossCases.Labels(batch, classes, 2);
        const double upstream = 0.7;
        var dl = new double[logits.Length];
        C.CrossEntropyBackward(logits, labels, smoothing, upstream, dl);
        Check.FiniteDifference(() => upstream * C.CrossEntropy<double>(logits, labels, smoothing), logits, dl, "cross-entropy dLogits");
    }

    // ---- layer 3 (kernels against the reference, large logits too: VerificationTests) -------------------

    [Fact]
    public void NoGrad_KeepsNoSavedGradient()
    {
        var d = fx.Device;
        using var tl = Tensor.FromArray(d, Check.ToFloat(Seeded.Uniform<double>(12, 20)), 4, 3); tl.RequiresGrad = true;
        using var tlabels = IntTensor.FromArray(d, [0, 1, 2, 0]);
        using var tape = new Tape(d);
        int live = d.LiveBuffers;
        using (tape.NoGrad())
        {
            var loss = tape.CrossEntropy(tl, tlabels);
            Assert.False(loss.RequiresGrad);
        }
        Assert.Equal(1, tape.OwnedCount);
        Assert.Equal(live + 1, d.LiveBuffers);
        tape.CrossEntropy(tl, tlabels);
        Assert.Equal(3, tape.OwnedCount); // loss + saved gradient
        tape.Clear();
        Assert.Equal(live, d.LiveBuffers);
    }

    [Fact]
    public void Argmax_And_CountCorrect()
    {
        var d = fx.Device;
        using var tl = Tensor.FromArray(d, [0f, 5, 5, 2, 1, 0, 1, 1, 3, -1, -2, -3], 4, 3);
        Assert.Equal([1, 0, 2, 0], Ops.Argmax(tl));
        using var labels = IntTensor.FromArray(d, [1, 0, 1, 0]);
        Assert.Equal(3, Ops.CountCorrect(tl, labels));
        Assert.Equal([1, 0, 1, 0], labels.ToArray());
    }

    // ---- bad inputs -------------------------------------------------------------------------------------

    [Fact]
    public void BadInputs_NameTheValues_AndLaunchNothing()
    {
        var d = fx.Device;
        using var logits = Tensor.Zeros(d, 3, 4);
        using var flat = Tensor.Zeros(d, 12);
        using var bad = IntTensor.FromArray(d, [0, 4, 1]);
        using var negative = IntTensor.FromArray(d, [0, 1, -2]);
        using var short2 = IntTensor.FromArray(d, [0, 1]);
        using var good = IntTensor.FromArray(d, [0, 1, 3]);
        using var tape = new Tape(d);

        var e = Assert.Throws<ArgumentException>(() => tape.CrossEntropy(logits, bad));
        Assert.Contains("label 4 at index 1", e.Message);
        Assert.Contains("[0, 4)", e.Message);
        e = Assert.Throws<ArgumentException>(() => tape.CrossEntropy(logits, negative));
        Assert.Contains("label -2 at index 2", e.Message);
        e = Assert.Throws<ArgumentException>(() => tape.CrossEntropy(logits, short2));
        Assert.Contains("[3, 4]", e.Message);
        Assert.Contains("2 elements", e.Message);
        e = Assert.Throws<ArgumentException>(() => tape.CrossEntropy(flat, good));
        Assert.Contains("[12]", e.Message);
        foreach (float eps in new[] { 1f, -0.1f, float.NaN })
        {
            e = Assert.Throws<ArgumentException>(() => tape.CrossEntropy(logits, good, eps));
            Assert.Contains(eps.ToString(), e.Message);
        }
        e = Assert.Throws<ArgumentException>(() => Ops.CountCorrect(logits, bad));
        Assert.Contains("label 4 at index 1", e.Message);
        e = Assert.Throws<ArgumentException>(() => Ops.Argmax(flat));
        Assert.Contains("[12]", e.Message);
        e = Assert.Throws<ArgumentException>(() => IntTensor.FromArray(d, []));
        Assert.Contains("at least one element", e.Message);
        Assert.Equal(0, tape.OwnedCount);

        var gone = IntTensor.FromArray(d, [0, 0, 0]);
        gone.Dispose();
        gone.Dispose();
        Assert.Throws<ObjectDisposedException>(() => tape.CrossEntropy(logits, gone));
        Assert.Throws<ObjectDisposedException>(() => gone.View);
    }
}
