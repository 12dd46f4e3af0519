using System.Numerics;
using A = IlgpuDdw.Kernels.Reference.ActivationReference;

namespace IlgpuDdw.Verification;

/// <summary>
/// ReLU, ReLU6 and sigmoid, forward and backward, on inputs in ±[0.4, 8) with none within 0.05 of ReLU6's kink
/// at 6 (both sides of every kink, sigmoid's saturation): lengths 1, 37, 4099, whose backward overwrites a new gradient
/// (poisoned with NaN; also launched directly with both values of the accumulate flag over garbage), and shapes of rank
/// 1 to 4 whose backward accumulates onto an existing gradient.
/// </summary>
internal static class ActivationCases
{
    private const string Family = "Activation";

    private static readonly int[][] Shapes = [[1], [7], [3, 5], [2, 3, 5, 7], [1, 13, 1, 3], [1031]];

    public static IEnumerable<VerifyCase> All()
    {
        foreach (int n in new[] { 1, 37, 4099 })
            foreach (var op in new[] { "Relu", "Relu6", "Sigmoid" })
                yield return Case(op, [n], accumulate: false);
        foreach (var shape in Shapes)
            foreach (var op in new[] { "Relu", "Relu6", "Sigmoid" })
                yield return Case(op, shape, accumulate: true);
    }

    private static VerifyCase Case(string op, int[] shape, bool accumulate)
    {
        string desc = Tensor.Format(shape) + (accumulate ? " accumulate" : "");
        return new(Family, $"{op} {desc}", [$"{op}.Forward", $"{op}.Backward"], d => Run(d, op, shape, accumulate, desc));
    }

    /// <summary>Seeded values in ±[0.4, 8), none within 0.05 of 6 (ReLU6's upper kink).</summary>
    internal static T[] Inputs<T>(int n, int seed) where T : IFloatingPointIeee754<T>
    {
        var x = Seeded.AwayFromZero<T>(n, seed);
        T eight = T.CreateChecked(8), six = T.CreateChecked(6), margin = T.CreateChecked(0.05), inside = T.CreateChecked(5.9);
        for (int i = 0; i < n; i++)
        {
            x[i] *= eight;
            if (T.Abs(x[i] - six) < margin) x[i] = inside;
        }
        return x;
    }

    private static IEnumerable<VerifyResult> Run(Device device, string op, int[] shape, bool accumulate, string desc)
    {
        int n = shape.Aggregate(1, (p, s) => p * s);
        var x = Inputs<float>(n, 11);
        var g = Seeded.Uniform<float>(n, 12);
        using var tx = Tensor.FromArray(device, x, shape); tx.RequiresGrad = true;
        if (accumulate) tx.Grad.CopyFrom(Seeded.Uniform<float>(n, 13)); // the backward adds onto this
        var dx = accumulate ? tx.GradToArray() : new float[n];
        using var tape = new Tape(device);
        var y = op switch { "Relu" => tape.Relu(tx), "Relu6" => tape.Relu6(tx), _ => tape.Sigmoid(tx) };
        var ey = new float[n];
        switch (op)
        {
            case "Relu": A.ReluForward<float>(x, ey); A.ReluBackward<float>(x, g, dx); break;
            case "Relu6": A.Relu6Forward<float>(x, ey); A.Relu6Backward<float>(x, g, dx); break;
            default: A.SigmoidForward<float>(x, ey); A.SigmoidBackward<float>(ey, g, dx); break;
        }
        yield return VerifyResult.Compare($"{op}.Forward", desc, ey, y.ToArray(), Tolerance.Forward).RequireShape(y.Shape, shape);
        Overwrite.Poisoned(() => tape.Backward(y, g));
        yield return VerifyResult.Compare($"{op}.Backward", desc, dx, tx.GradToArray(), Tolerance.Backward);
        if (accumulate) yield break;

        // the kernel launched directly: overwriting garbage gives the accumulation onto zeros
        var k = device.Kernels;
        var backward = op switch { "Relu" => k.ReluBackward, "Relu6" => k.Relu6Backward, _ => k.SigmoidBackward };
        var saved = op == "Sigmoid" ? ey : x;
        var expected = Overwrite.Reference(n, buffer =>
        {
            switch (op)
            {
                case "Relu": A.ReluBackward<float>(x, g, buffer, accumulate: false); break;
                case "Relu6": A.Relu6Backward<float>(x, g, buffer, accumulate: false); break;
                default: A.SigmoidBackward<float>(ey, g, buffer, accumulate: false); break;
            }
        });
        using var tSaved = Tensor.FromArray(device, saved, n);
        using var tg = Tensor.FromArray(device, g, n);
        using var tdx = Tensor.Empty(device, n);
        int ext = device.Extent(n);
        foreach (var row in Overwrite.Rows($"{op}.Backward", desc, expected, tdx,
                     accumulateFlag => backward(device.Stream, ext, n, ext, accumulateFlag, tSaved.View, tg.View, tdx.View), Tolerance.Backward))
            yield return row;
    }
}
