using IlgpuDdw.Autograd;

namespace IlgpuDdw.Tests;

[Collection("cpu")]
public sealed class AutogradTests(DeviceFixture fx)
{
    [Fact]
    public void GradForWrite_OverwritesOnlyANewUnboundGradient_AndGradStillZeroes()
    {
        var d = fx.Device;
        using var t = Tensor.FromArray(d, [1f, 2f, 3f], 3);
        var view = t.GradForWrite(out int accumulate);
        Assert.Equal(0, accumulate); // new and not bound: the caller's kernel writes every element
        Assert.Equal(3, view.Length);
        t.GradForWrite(out accumulate);
        Assert.Equal(1, accumulate); // it exists now: a second contribution adds
        t.DropGrad();
        Assert.Equal([0f, 0f, 0f], t.Grad.ToArray()); // a reader gets a zeroed gradient
        t.GradForWrite(out accumulate);
        Assert.Equal(1, accumulate);

        using var flat = Tensor.FromArray(d, [5f, 5f, 5f, 5f], 4);
        using var bound = Tensor.FromArray(d, [1f, 2f], 2);
        bound.BindGrad(flat, 1);
        bound.GradForWrite(out accumulate);
        Assert.Equal(1, accumulate); // a slot of a flat buffer is zeroed, never overwritten
        Assert.Equal([5f, 0f, 0f, 5f], flat.ToArray());
    }

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
    public void Scope_InNoGrad_FreesWhatItMade_ExceptWhatItKeeps()
    {
        var d = fx.Device;
        using var x = Tensor.FromArray(d, [1f, 2f], 2);
        using var tape = new Tape(d);
        using (tape.NoGrad())
        {
            int before = d.LiveBuffers;
            Tensor a, b, kept;
            using (var s = tape.Scope())
            {
                a = tape.Relu(x);
                b = tape.Relu(a);
                kept = s.Keep(tape.Relu(b));
                Assert.Same(x, s.Keep(x)); // not made here: returned as it is
                Assert.Equal(before + 3, d.LiveBuffers);
            }
            Assert.Equal(before + 1, d.LiveBuffers);
            Assert.True(a.IsDisposed);
            Assert.True(b.IsDisposed);
            Assert.False(x.IsDisposed);
            Assert.Equal([1f, 2f], kept.ToArray());
            Assert.Equal(1, tape.OwnedCount);
            tape.Clear();
            Assert.True(kept.IsDisposed);
            Assert.Equal(before, d.LiveBuffers);
        }
    }

    [Fact]
    public void Scope_FreeExcept_FreesThePreviousStepOfAChain()
    {
        var d = fx.Device;
        using var x = Tensor.FromArray(d, [1f, -2f], 2);
        using var tape = new Tape(d);
        using (tape.NoGrad())
        {
            int before = d.LiveBuffers;
            using var s = tape.Scope();
            var y = x;
            var steps = new List<Tensor>();
            for (int i = 0; i < 4; i++)
            {
                y = s.FreeExcept(tape.Relu(y));
                steps.Add(y);
                Assert.Equal(before + 1, d.LiveBuffers); // only the current step is alive
            }
            Assert.All(steps[..^1], t => Assert.True(t.IsDisposed));
            Assert.Same(y, s.FreeExcept(y));
            Assert.Equal([1f, 0f], y.ToArray());
        }
    }

    [Fact]
    public void NestedScopes_HandKeptTensorsToTheEnclosingScope()
    {
        var d = fx.Device;
        using var x = Tensor.FromArray(d, [3f], 1);
        using var tape = new Tape(d);
        using (tape.NoGrad())
        {
            int before = d.LiveBuffers;
            Tensor inner, outer, retained;
            using (var s = tape.Scope())
            {
                using (var t = tape.Scope())
                {
                    inner = t.Keep(tape.Relu(x));
                    retained = tape.Retain(tape.Relu(x));
                    tape.Relu(x);
                }
                Assert.Equal(before + 2, d.LiveBuffers); // the unkept one is freed
                Assert.False(inner.IsDisposed);
                outer = s.Keep(tape.Relu(inner));
                var first = tape.Scope();
                var second = tape.Scope();
                Assert.Contains("reverse order", Assert.Throws<InvalidOperationException>(first.Dispose).Message); // not the innermost
                second.Dispose();
                first.Dispose();
            }
            Assert.True(inner.IsDisposed); // made by the inner scope, kept there, then owned and freed by the outer one
            Assert.False(outer.IsDisposed);
            Assert.False(retained.IsDisposed); // out of every scope: lives until Clear
            Assert.Equal(before + 2, d.LiveBuffers);
        }
    }

    [Fact]
    public void Scope_WhileRecording_FreesNothingABackwardCanRead()
    {
        var d = fx.Device;
        using var x = Tensor.FromArray(d, [1.5f, -2f], 2); x.RequiresGrad = true;
        using var constant = Tensor.FromArray(d, [1f, 2f], 2);
        using var tape = new Tape(d);
        int before = d.LiveBuffers;
        Tensor y, unused;
        using (var s = tape.Scope())
        {
            var sq = tape.Multiply(x, x);
            y = s.Keep(tape.Multiply(sq, x));
            unused = tape.Relu(x);
            s.FreeExcept(y);
        }
        Assert.Equal(before + 3, d.LiveBuffers); // sq is read by y's backward
        Assert.False(unused.IsDisposed);
        tape.Backward(tape.Sum(y));
        Assert.Equal([3 * 1.5f * 1.5f, 3 * 4f], x.GradToArray());

        // Recording, but nothing needs a gradient: nothing was recorded, so the scope frees.
        tape.Clear();
        before = d.LiveBuffers;
        using (var s = tape.Scope())
        {
            s.Keep(tape.Relu(tape.Relu(constant)));
            Assert.Equal(0, tape.Count);
        }
        Assert.Equal(before + 1, d.LiveBuffers);
    }

    [Fact]
    public void Recompute_GivesTheSameGradients_WithALowerPeak()
    {
        var d = fx.Device;
        float[] xs = Check.ToFloat(Seeded.Uniform<double>(4096, 3, 0.9, 1.1));
        (float[] Grad, long Peak, List<string> Ops) Run(bool recompute)
        {
            using var x = Tensor.FromArray(d, xs, xs.Length); x.RequiresGrad = true;
            using var tape = new Tape(d) { FreeGradsEagerly = true, FreeActivationsEagerly = true };
            d.ResetPeak();
            var y = x;
            for (int i = 0; i < 6; i++)
            {
                var square = tape.Multiply(y, y);
                var next = tape.Multiply(square, x);   // reads square (and its gradient flows back through it)
                if (recompute)
                {
                    var source = y;
                    tape.Recompute(square, t => t.CopyFrom(Square(source.ToArray())));
                }
                y = next;
            }
            var ops = tape.OpNames.ToList();
            tape.Backward(tape.Mean(y));
            long peak = d.PeakBytes;
            var grad = x.GradToArray();
            tape.Clear();
            return (grad, peak, ops);
        }
        var plain = Run(false);
        var dropped = Run(true);
        Assert.Equal(plain.Grad, dropped.Grad);
        Assert.True(dropped.Peak < plain.Peak, $"peak with recompute {dropped.Peak} B, without {plain.Peak} B");
        Assert.Equal(6, dropped.Ops.Count(o => o == "Recompute"));
        Assert.Equal(plain.Ops, dropped.Ops.Where(o => o != "Recompute"));

        // Reading a dropped tensor before the backward rebuilds it names the cause; not recording, Recompute does nothing.
        using var z = Tensor.FromArray(d, [2f], 1); z.RequiresGrad = true;
        using var tape2 = new Tape(d);
        var sq = tape2.Multiply(z, z);
        var cube = tape2.Multiply(sq, z);
        tape2.Recompute(sq, t => t.CopyFrom([4f]));
        Assert.Contains("dropped for recomputation", Assert.Throws<InvalidOperationException>(() => sq.ToArray()).Message);
        tape2.Backward(tape2.Sum(cube));
        Assert.Equal([4f], sq.ToArray());
        Assert.Equal([12f], z.GradToArray());
        using (tape2.NoGrad())
        {
            var r = tape2.Relu(z);
            tape2.Recompute(r, _ => throw new InvalidOperationException("not called"));
            Assert.Equal([2f], r.ToArray());
        }
    }

    private static float[] Square(float[] v) => Array.ConvertAll(v, a => a * a);

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
    public void Recompute_RunsJustBeforeTheBackwardsRecordedBeforeIt()
    {
        var d = fx.Device;
        using var x = Tensor.FromArray(d, [1f], 1); x.RequiresGrad = true;
        using var tape = new Tape(d);
        var order = new List<string>();
        var first = tape.Multiply(x, x);
        var a = tape.Multiply(first, x);
        tape.Recompute(first, t => { order.Add("first"); t.CopyFrom([1f]); });
        var second = tape.Multiply(x, x);
        var b = tape.Multiply(second, x);
        tape.Recompute(second, t => { order.Add("second"); t.CopyFrom([1f]); });
        tape.Backward(tape.Sum(tape.Add(a, b)));
        Assert.Equal(["second", "first"], order);
        Assert.Equal(["Multiply", "Multiply", "Recompute", "Multiply", "Multiply", "Recompute", "Add", "Sum"], tape.OpNames);
        Assert.Equal([6f], x.GradToArray());
    }
}
