using A = IlgpuDdw.Kernels.Reference.ActivationReference;
using R = IlgpuDdw.Kernels.Reference.ElementwiseReference;

namespace IlgpuDdw.Verification;

/// <summary>
/// Add, multiply, sum and mean, forward and backward: on one tape with ReLU at lengths 1, 37, 4099, and each op
/// on its own at shapes of rank 1 to 4; the per-sample mask (<see cref="Ops.MaskSamples"/>) with some, none and all but
/// one sample live.
/// </summary>
internal static class ElementwiseCases
{
    private const string Family = "Elementwise";

    private static readonly int[][] Shapes = [[1], [7], [3, 5], [2, 3, 5, 7], [1, 13, 1, 3], [1031]];

    public static IEnumerable<VerifyCase> All()
    {
        foreach (int n in new[] { 1, 37, 4099 })
            yield return new(Family, $"[{n}]",
                ["Add.Forward", "Multiply.Forward", "Relu.Forward", "Sum.Forward", "Mean.Forward", "Multiply+Relu.Backward", "Multiply.Backward"],
                d => OneTape(d, n));
        foreach (var shape in Shapes)
        {
            string desc = Tensor.Format(shape);
            foreach (var op in new[] { "Add", "Multiply" })
                yield return new(Family, $"{op} {desc}", [$"{op}.Forward", $"{op}.Backward"], d => Binary(d, op, shape, desc));
            yield return new(Family, $"Sum+Mean {desc}", ["Sum.Forward", "Mean.Forward", "Sum+Mean.Backward", "SumOfSquares.Forward"], d => SumMean(d, shape, desc));
        }
        foreach (var (groups, n) in new[] { (1, 1), (2, 7), (3, 37), (5, 13), (8, 5), (9, 31) })
            yield return new(Family, $"GroupSums {groups} groups × {n}", ["GroupSums"], d => GroupSums(d, groups, n));
        foreach (var (shape, live) in new (int[], float[])[] { ([3, 2, 5], [1, 0, 1]), ([1, 7], [0]), ([4, 13, 1, 3], [1, 1, 0, 1]) })
        {
            string desc = $"{Tensor.Format(shape)} live {string.Concat(live.Select(v => v != 0f ? '1' : '0'))}";
            yield return new(Family, $"MaskSamples {desc}", ["MaskSamples.Forward", "MaskSamples.Backward"], d => MaskSamples(d, shape, live, desc));
        }
    }

    /// <summary>The pairwise sum of gradient-group partials onto a non-zero target: within tolerance, and bit for bit (the same order).</summary>
    private static IEnumerable<VerifyResult> GroupSums(Device device, int groups, int n)
    {
        var partials = Seeded.Uniform<float>(groups * n, 81, -1, 2);
        var target = Seeded.Uniform<float>(n, 82);
        var expected = target.ToArray();
        R.GroupSums<float>(partials, groups, expected);
        using var tp = Tensor.FromArray(device, partials, groups * n);
        using var tt = Tensor.FromArray(device, target, n);
        int ext = device.Extent(n);
        device.Kernels.GroupSums(device.Stream, ext, n, ext, groups, tp.View, tt.View);
        var actual = tt.ToArray();
        string desc = $"{groups} groups × {n}";
        yield return VerifyResult.Compare("GroupSums", desc, expected, actual, Tolerance.Forward);
        yield return VerifyResult.Condition("GroupSums", desc, expected.AsSpan().SequenceEqual(actual), "not bit-identical to the reference's pairwise order");
    }

    private static IEnumerable<VerifyResult> MaskSamples(Device device, int[] shape, float[] live, string desc)
    {
        int n = shape.Aggregate(1, (p, v) => p * v), sample = n / shape[0];
        var x = Seeded.Uniform<float>(n, 71); var g = Seeded.Uniform<float>(n, 72);
        using var tx = Tensor.FromArray(device, x, shape); tx.RequiresGrad = true;
        using var tLive = Tensor.FromArray(device, live, live.Length);
        using var tape = new Tape(device);
        var y = tape.MaskSamples(tx, tLive);
        Overwrite.Poisoned(() => tape.Backward(y, g));
        var ey = new float[n];
        R.MaskSamplesForward<float>(x, live, sample, ey);
        var dx = Overwrite.Reference(n, buffer => R.MaskSamplesBackward<float>(g, live, sample, buffer, accumulate: false));
        yield return VerifyResult.Compare("MaskSamples.Forward", desc, ey, y.ToArray(), Tolerance.Forward);
        var first = tx.GradToArray();
        yield return VerifyResult.Compare("MaskSamples.Backward", desc, dx, first, Tolerance.Backward);
        foreach (var row in Overwrite.SecondPass(desc, () => tape.Backward(y, g), ("MaskSamples.Backward", tx, first)))
            yield return row;
    }

    private static IEnumerable<VerifyResult> OneTape(Device device, int n)
    {
        string shape = $"[{n}]";
        var a = Seeded.AwayFromZero<float>(n, 1); var b = Seeded.Uniform<float>(n, 2); var g = Seeded.Uniform<float>(n, 3);
        using var ta = Tensor.FromArray(device, a, n); ta.RequiresGrad = true;
        using var tb = Tensor.FromArray(device, b, n); tb.RequiresGrad = true;
        using var tape = new Tape(device);
        var add = tape.Add(ta, tb);
        var mul = tape.Multiply(ta, tb);
        var relu = tape.Relu(ta);
        var sum = tape.Sum(ta);
        var mean = tape.Mean(tb);
        var ey = new float[n];
        R.AddForward<float>(a, b, ey);
        yield return VerifyResult.Compare("Add.Forward", shape, ey, add.ToArray(), Tolerance.Forward);
        R.MultiplyForward<float>(a, b, ey);
        yield return VerifyResult.Compare("Multiply.Forward", shape, ey, mul.ToArray(), Tolerance.Forward);
        A.ReluForward<float>(a, ey);
        yield return VerifyResult.Compare("Relu.Forward", shape, ey, relu.ToArray(), Tolerance.Forward);
        yield return VerifyResult.Compare("Sum.Forward", shape, [R.Sum<float>(a)], sum.ToArray(), Tolerance.SumForward(n));
        yield return VerifyResult.Compare("Mean.Forward", shape, [R.Mean<float>(b)], mean.ToArray(), Tolerance.Forward);

        // backward: loss = <g, a*b> + <g, relu(a)>
        Overwrite.Poisoned(() => tape.Backward(tape.Add(mul, relu), g));
        var da = new float[n]; var db = new float[n];
        R.MultiplyBackward<float>(a, b, g, da, db);
        A.ReluBackward<float>(a, g, da);
        yield return VerifyResult.Compare("Multiply+Relu.Backward dA", shape, da, ta.GradToArray(), Tolerance.Backward);
        yield return VerifyResult.Compare("Multiply.Backward dB", shape, db, tb.GradToArray(), Tolerance.Backward);
    }

    private static IEnumerable<VerifyResult> Binary(Device device, string op, int[] shape, string desc)
    {
        int n = shape.Aggregate(1, (p, s) => p * s);
        var a = Seeded.Uniform<float>(n, 4); var b = Seeded.Uniform<float>(n, 5); var g = Seeded.Uniform<float>(n, 6);
        using var ta = Tensor.FromArray(device, a, shape); ta.RequiresGrad = true;
        using var tb = Tensor.FromArray(device, b, shape); tb.RequiresGrad = true;
        using var tape = new Tape(device);
        var y = op == "Add" ? tape.Add(ta, tb) : tape.Multiply(ta, tb);
        Overwrite.Poisoned(() => tape.Backward(y, g));
        var ey = new float[n]; var da = new float[n]; var db = new float[n];
        if (op == "Add")
        {
            R.AddForward<float>(a, b, ey);
            Array.Fill(da, float.NaN); // the add's backward overwrites both new gradients
            Array.Fill(db, float.NaN);
            R.AddBackward<float>(g, da, db, accumulate: false);
        }
        else
        {
            R.MultiplyForward<float>(a, b, ey);
            R.MultiplyBackward<float>(a, b, g, da, db);
        }
        yield return VerifyResult.Compare($"{op}.Forward", desc, ey, y.ToArray(), Tolerance.Forward);
        var (firstA, firstB) = (ta.GradToArray(), tb.GradToArray());
        yield return VerifyResult.Compare($"{op}.Backward dA", desc, da, firstA, Tolerance.Backward);
        yield return VerifyResult.Compare($"{op}.Backward dB", desc, db, firstB, Tolerance.Backward);
        foreach (var row in Overwrite.SecondPass(desc, () => tape.Backward(y, g), ($"{op}.Backward dA", ta, firstA), ($"{op}.Backward dB", tb, firstB)))
            yield return row;
    }

    private static IEnumerable<VerifyResult> SumMean(Device device, int[] shape, string desc)
    {
        int n = shape.Aggregate(1, (p, s) => p * s);
        var x = Seeded.Uniform<float>(n, 7);
        using var tx = Tensor.FromArray(device, x, shape); tx.RequiresGrad = true;
        using var tape = new Tape(device);
        var s = tape.Sum(tx);
        var m = tape.Mean(tx);
        Overwrite.Poisoned(() => tape.Backward(tape.Add(s, m)));
        var dx = new float[n];
        R.SumBackward(1f, 1f, dx);
        R.SumBackward(1f, 1f / n, dx);
        yield return VerifyResult.Compare("Sum.Forward", desc, [R.Sum<float>(x)], s.ToArray(), Tolerance.SumForward(n));
        yield return VerifyResult.Compare("Mean.Forward", desc, [R.Mean<float>(x)], m.ToArray(), Tolerance.Forward);
        yield return VerifyResult.Compare("Sum+Mean.Backward", desc, dx, tx.GradToArray(), Tolerance.Backward);
        using var squares = Tensor.Empty(device, 1);
        Ops.SumInto(device, tx.View, n, 1f, squares.View, squares: true);
        yield return VerifyResult.Compare("SumOfSquares.Forward", desc, [R.SumOfSquares<float>(x)], squares.ToArray(), Tolerance.SumForward(n));
    }
}
