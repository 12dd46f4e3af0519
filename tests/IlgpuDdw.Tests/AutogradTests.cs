using IlgpuDdw.Autograd;

namespace IlgpuDdw.Tests;

[Collection("cpu")]
public sealed class AutogradTests(DeviceFixture fx)
{
    [Fact]
    public void FanOut_AccumulatesGradients()
    {
        var d = fx.Device;
        float[] xs = [1.5f, -2f, 0.25f];
        using var x = Tensor.FromArray(d, xs, 3); x.RequiresGrad = true;
        using var tape = new Tape(d);
        // L = sum(x*x + x + relu(x)): x is read by four uses
        var loss = tape.Sum(tape.Add(tape.Add(tape.Multiply(x, x), x), tape.Relu(x)));
        tape.Backward(loss);
        var g = x.GradToArray();
        for (int i = 0; i < 3; i++)
            Assert.Equal(2 * xs[i] + 1 + (xs[i] > 0 ? 1 : 0), g[i], 5);
    }

    [Fact]
    public void UnusedParameter_HasZeroGradient()
    {
        var d = fx.Device;
        using var used = Tensor.FromArray(d, [1f, 2f], 2); used.RequiresGrad = true;
        using var unused = Tensor.FromArray(d, [3f, 4f, 5f], 3); unused.RequiresGrad = true;
        using var tape = new Tape(d);
        tape.Backward(tape.Sum(used));
        Assert.Null(unused.GradOrNull);
        Assert.Equal(new float[3], unused.GradToArray());
        Assert.Equal(new float[3], unused.Grad.ToArray());
        Assert.Equal([1f, 1f], used.GradToArray());
    }

    [Fact]
    public void GradientsAccumulateAcrossBackwards_UntilZeroed()
    {
        var d = fx.Device;
        using var x = Tensor.FromArray(d, [2f], 1); x.RequiresGrad = true;
        using var tape = new Tape(d);
        tape.Backward(tape.Multiply(x, x));
        tape.Clear();
        tape.Backward(tape.Multiply(x, x));
        Assert.Equal([8f], x.GradToArray());
        x.ZeroGrad();
        Assert.Equal([0f], x.GradToArray());
    }

    [Fact]
    public void NoGrad_RecordsNothing()
    {
        var d = fx.Device;
        using var x = Tensor.FromArray(d, [1f, -1f], 2); x.RequiresGrad = true;
        using var tape = new Tape(d);
        Tensor y;
        using (tape.NoGrad())
        {
            Assert.False(tape.IsRecording);
            y = tape.Sum(tape.Relu(x));
        }
        Assert.True(tape.IsRecording);
        Assert.Equal(0, tape.Count);
        Assert.False(y.RequiresGrad);
        Assert.Equal([1f], y.ToArray());
        Assert.Throws<InvalidOperationException>(() => tape.Backward(y));
        Assert.Null(x.GradOrNull);
    }

    [Fact]
    public void Clear_FreesEveryIntermediate()
    {
        var d = fx.Device;
        using var x = Tensor.FromArray(d, [1f, 2f, 3f, 4f, 5f], 5); x.RequiresGrad = true;
        x.Grad.Fill(0);
        int baseline = d.LiveBuffers;
        long baseBytes = d.LiveBytes;
        using var tape = new Tape(d);
        for (int step = 0; step < 3; step++)
        {
            var loss = tape.Mean(tape.Multiply(tape.Relu(tape.Add(x, x)), x));
            tape.Backward(loss);
            Assert.True(d.LiveBuffers > baseline);
            tape.Clear();
            Assert.Equal(baseline, d.LiveBuffers);
            Assert.Equal(baseBytes, d.LiveBytes);
            Assert.Equal(0, tape.OwnedCount);
        }
    }

    [Fact]
    public void Release_InNoGrad_FreesEarly()
    {
        var d = fx.Device;
        using var x = Tensor.FromArray(d, [1f, 2f], 2);
        using var tape = new Tape(d);
        using (tape.NoGrad())
        {
            int before = d.LiveBuffers;
            var y = tape.Relu(x);
            Assert.Equal(before + 1, d.LiveBuffers);
            tape.Release(y);
            Assert.Equal(before, d.LiveBuffers);
            Assert.True(y.IsDisposed);
        }
    }

    [Fact]
    public void DisposedTensor_Throws()
    {
        var d = fx.Device;
        var x = Tensor.FromArray(d, [1f, 2f], 2);
        x.Dispose();
        x.Dispose(); // twice is fine
        using var tape = new Tape(d);
        Assert.Throws<ObjectDisposedException>(() => x.ToArray());
        Assert.Throws<ObjectDisposedException>(() => tape.Relu(x));
        Assert.Throws<ObjectDisposedException>(() => x.Grad);
        Assert.Throws<ObjectDisposedException>(() => x.Reshape(1, 2));
    }

    [Fact]
    public void MismatchedShapes_NameBothShapes()
    {
        var d = fx.Device;
        using var a = Tensor.Zeros(d, 2, 3);
        using var b = Tensor.Zeros(d, 3, 2);
        using var tape = new Tape(d);
        var e = Assert.Throws<ArgumentException>(() => tape.Add(a, b));
        Assert.Contains("[2, 3]", e.Message);
        Assert.Contains("[3, 2]", e.Message);
        e = Assert.Throws<ArgumentException>(() => tape.Multiply(a, b));
        Assert.Contains("[2, 3]", e.Message);
        Assert.Contains("[3, 2]", e.Message);
        Assert.Equal(0, tape.OwnedCount); // nothing was allocated or launched
        e = Assert.Throws<ArgumentException>(() => a.Reshape(4, 2));
        Assert.Contains("[4, 2] (8 elements)", e.Message);
        Assert.Contains("(6 elements)", e.Message);
        e = Assert.Throws<ArgumentException>(() => Tensor.FromArray(d, [1f, 2f], 3));
        Assert.Contains("2 elements but shape [3] needs 3", e.Message);
        e = Assert.Throws<ArgumentException>(() => Tensor.Zeros(d, 2, 0));
        Assert.Contains("[2, 0]", e.Message);
    }

    [Fact]
    public void Backward_NeedsScalarLoss()
    {
        var d = fx.Device;
        using var x = Tensor.FromArray(d, [1f, 2f], 2); x.RequiresGrad = true;
        using var tape = new Tape(d);
        var y = tape.Relu(x);
        var e = Assert.Throws<ArgumentException>(() => tape.Backward(y));
        Assert.Contains("[2]", e.Message);
    }

    [Fact]
    public void CustomOp_ThroughPublicExtensionPoint()
    {
        // The README's example: a user op y = x^3 with its own forward/backward kernels.
        var d = fx.Device;
        using var x = Tensor.FromArray(d, [1f, -2f, 0.5f], 3); x.RequiresGrad = true;
        using var tape = new Tape(d);
        var y = CubeOp.Cube(tape, x);
        tape.Backward(tape.Sum(y));
        Assert.Equal([1f, -8f, 0.125f], y.ToArray());
        Assert.Equal([3f, 12f, 0.75f], x.GradToArray());
    }

    [Fact]
    public void Pool_ReusesBuffers_AndTrims()
    {
        var d = fx.Device;
        d.TrimPool();
        var t = Tensor.Zeros(d, 333);
        t.Dispose();
        Assert.True(d.PooledBytes >= 333 * 4);
        using var u = Tensor.Zeros(d, 333); // reused from the pool, zeroed
        Assert.Equal(new float[333], u.ToArray());
        d.TrimPool();
        Assert.Equal(0, d.PooledBytes);
    }

    [Fact]
    public void FreeGradsEagerly_KeepsLeafGradients_DropsIntermediates()
    {
        var d = fx.Device;
        float[] xs = [1.5f, -2f, 0.25f];
        using var x = Tensor.FromArray(d, xs, 3); x.RequiresGrad = true;
        using var tape = new Tape(d) { FreeGradsEagerly = true };
        var sq = tape.Multiply(x, x);
        var loss = tape.Sum(tape.Add(sq, x));
        tape.Backward(loss);
        Assert.Null(sq.GradOrNull);
        var g = x.GradToArray();
        for (int i = 0; i < 3; i++) Assert.Equal(2 * xs[i] + 1, g[i], 5);
    }

    [Fact]
    public void RecordAction_RunsInReverseOrder()
    {
        var d = fx.Device;
        using var x = Tensor.FromArray(d, [1f], 1); x.RequiresGrad = true;
        using var tape = new Tape(d);
        var order = new List<string>();
        tape.RecordAction("first", () => order.Add("first"));
        var y = tape.Multiply(x, x);
        tape.RecordAction("second", () => order.Add("second"));
        tape.Backward(tape.Sum(y));
        Assert.Equal(["second", "first"], order);
    }
}
