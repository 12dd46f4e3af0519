using R = IlgpuDdw.Kernels.Reference.PoolingReference;

namespace IlgpuDdw.Verification;

/// <summary>
/// GlobalAvgPool2d, MaxPool2d and AvgPool2d (both divisor modes), forward and backward, at odd non-square shapes,
/// batch 1 and &gt; 1, H·W = 1, with the ResNet stem window (3×3 s2 p1), non-overlapping 2×2 s2, same-size 3×3
/// s1 p1, gaps between windows (2×2 s3), 1×1, 5×5 s2 p2 and a window that can hold a single input (2×2 s1 p1).
/// </summary>
internal static class PoolingCases
{
    private const string Family = "Pooling";

    private static readonly int[][] Shapes = [[1, 3, 7, 5], [3, 2, 5, 7], [2, 8, 33, 31], [2, 1, 4, 4]];

    private static readonly (int K, int S, int P)[] Windows = [(3, 2, 1), (2, 2, 0), (3, 1, 1), (2, 3, 0), (1, 1, 0), (5, 2, 2), (2, 1, 1)];

    public static IEnumerable<VerifyCase> All()
    {
        foreach (var shape in Shapes)
        {
            yield return Global(shape);
            foreach (var (k, s, p) in Windows)
            {
                var geo = new Pool2dGeometry(shape[0] * shape[1], shape[2], shape[3], k, s, p);
                string desc = $"{Tensor.Format(shape)} k{k} s{s} p{p}";
                yield return new(Family, $"MaxPool2d {desc}", ["MaxPool2d.Forward", "MaxPool2d.Backward"], d => MaxPool(d, shape, geo, desc));
                foreach (bool includePad in new[] { true, false })
                {
                    string avg = $"{desc}{(includePad ? "" : " excl-pad")}";
                    yield return new(Family, $"AvgPool2d {avg}", ["AvgPool2d.Forward", "AvgPool2d.Backward"], d => AvgPool(d, shape, geo, includePad, avg));
                }
            }
        }
        foreach (var shape in new[] { new[] { 3, 5, 5, 7 }, [2, 4, 1, 1], [1, 1, 1, 9] })
            yield return Global(shape);
    }

    private static VerifyCase Global(int[] shape) =>
        new(Family, $"GlobalAvgPool2d {Tensor.Format(shape)}", ["GlobalAvgPool2d.Forward", "GlobalAvgPool2d.Backward"], d => GlobalAvgPool(d, shape));

    private static IEnumerable<VerifyResult> GlobalAvgPool(Device device, int[] shape)
    {
        int planes = shape[0] * shape[1], spatial = shape[2] * shape[3];
        var x = Seeded.Uniform<float>(planes * spatial, 1); var g = Seeded.Uniform<float>(planes, 2);
        using var tx = Tensor.FromArray(device, x, shape); tx.RequiresGrad = true;
        using var tape = new Tape(device);
        var y = tape.GlobalAvgPool2d(tx);
        Overwrite.Poisoned(() => tape.Backward(y, g));
        var ey = new float[planes];
        R.GlobalAvgPoolForward<float>(x, spatial, ey);
        var dx = Overwrite.Reference(x.Length, buffer => R.GlobalAvgPoolBackward<float>(g, spatial, buffer, accumulate: false));
        string desc = Tensor.Format(shape);
        yield return VerifyResult.Compare("GlobalAvgPool2d.Forward", desc, ey, y.ToArray(), Tolerance.Forward).RequireShape(y.Shape, [shape[0], shape[1]]);
        var first = tx.GradToArray();
        yield return VerifyResult.Compare("GlobalAvgPool2d.Backward", desc, dx, first, Tolerance.Backward);
        foreach (var row in Overwrite.SecondPass(desc, () => tape.Backward(y, g), ("GlobalAvgPool2d.Backward", tx, first)))
            yield return row;
    }

    private static IEnumerable<VerifyResult> MaxPool(Device device, int[] shape, Pool2dGeometry geo, string desc)
    {
        var x = Seeded.Uniform<float>(geo.InputLength, 3); var g = Seeded.Uniform<float>(geo.OutputLength, 4);
        using var tx = Tensor.FromArray(device, x, shape); tx.RequiresGrad = true;
        using var tape = new Tape(device);
        var y = tape.MaxPool2d(tx, geo.Kernel, geo.Stride, geo.Padding);
        Overwrite.Poisoned(() => tape.Backward(y, g));
        var ey = new float[geo.OutputLength]; var argmax = new int[geo.OutputLength];
        R.MaxPoolForward<float>(x, geo, ey, argmax);
        var dx = Overwrite.Reference(x.Length, buffer => R.MaxPoolBackward<float>(argmax, g, geo, buffer, accumulate: false));
        yield return VerifyResult.Compare("MaxPool2d.Forward", desc, ey, y.ToArray(), Tolerance.Forward).RequireShape(y.Shape, OutShape(shape, geo));
        var first = tx.GradToArray();
        yield return VerifyResult.Compare("MaxPool2d.Backward", desc, dx, first, Tolerance.Backward);
        foreach (var row in Overwrite.SecondPass(desc, () => tape.Backward(y, g), ("MaxPool2d.Backward", tx, first)))
            yield return row;
    }

    private static IEnumerable<VerifyResult> AvgPool(Device device, int[] shape, Pool2dGeometry geo, bool includePad, string desc)
    {
        var x = Seeded.Uniform<float>(geo.InputLength, 5); var g = Seeded.Uniform<float>(geo.OutputLength, 6);
        using var tx = Tensor.FromArray(device, x, shape); tx.RequiresGrad = true;
        using var tape = new Tape(device);
        var y = tape.AvgPool2d(tx, geo.Kernel, geo.Stride, geo.Padding, includePad);
        Overwrite.Poisoned(() => tape.Backward(y, g));
        var ey = new float[geo.OutputLength];
        R.AvgPoolForward<float>(x, geo, includePad, ey);
        var dx = Overwrite.Reference(x.Length, buffer => R.AvgPoolBackward<float>(g, geo, includePad, buffer, accumulate: false));
        yield return VerifyResult.Compare("AvgPool2d.Forward", desc, ey, y.ToArray(), Tolerance.Forward).RequireShape(y.Shape, OutShape(shape, geo));
        var first = tx.GradToArray();
        yield return VerifyResult.Compare("AvgPool2d.Backward", desc, dx, first, Tolerance.Backward);
        foreach (var row in Overwrite.SecondPass(desc, () => tape.Backward(y, g), ("AvgPool2d.Backward", tx, first)))
            yield return row;
    }

    private static int[] OutShape(int[] shape, Pool2dGeometry geo) => [shape[0], shape[1], geo.OutHeight, geo.OutWidth];
}
