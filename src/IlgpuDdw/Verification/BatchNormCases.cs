using IlgpuDdw.Autograd;
using IlgpuDdw.Runtime;
using R = IlgpuDdw.Kernels.Reference.BatchNormReference;

namespace IlgpuDdw.Verification;

/// <summary>
/// BatchNorm2d in training and eval mode with the default momentum and eps (PyTorch's 0.1 and 1e-5): output,
/// running-statistics update, and the gradients of the input, gamma and beta, at batch 1, odd sizes, H·W = 1,
/// C = 1 and a larger layer.
/// </summary>
internal static class BatchNormCases
{
    private const float Momentum = 0.1f, Eps = 1e-5f; // the reference's, and the op's defaults

    private static readonly string[] Passes =
    [
        "BatchNorm2d.Forward", "BatchNorm2d.RunningMean", "BatchNorm2d.RunningVar",
        "BatchNorm2d.BackwardInput", "BatchNorm2d.BackwardGamma", "BatchNorm2d.BackwardBeta",
    ];

    public static IEnumerable<VerifyCase> All()
    {
        int[][] shapes = [[1, 3, 5, 7], [3, 5, 7, 5], [2, 4, 1, 1], [8, 16, 14, 14], [4, 1, 3, 2]];
        foreach (var shape in shapes)
            foreach (bool training in new[] { true, false })
            {
                string desc = $"{Tensor.Format(shape)} {(training ? "train" : "eval")}";
                yield return new("BatchNorm2d", desc, Passes, d => Run(d, shape, training, desc));
            }
    }

    private static IEnumerable<VerifyResult> Run(Device device, int[] shape, bool training, string desc)
    {
        int b = shape[0], c = shape[1], s = shape[2] * shape[3], n = b * c * s;
        var x = Seeded.Uniform<float>(n, 1, -2, 3); var g = Seeded.Uniform<float>(n, 2);
        var gamma = Seeded.Uniform<float>(c, 3, 0.5, 1.5); var beta = Seeded.Uniform<float>(c, 4);
        var runningMean = Seeded.Uniform<float>(c, 5); var runningVar = Seeded.Uniform<float>(c, 6, 0.5, 2);
        using var tx = Tensor.FromArray(device, x, shape); tx.RequiresGrad = true;
        using var tGamma = Tensor.FromArray(device, gamma, c); tGamma.RequiresGrad = true;
        using var tBeta = Tensor.FromArray(device, beta, c); tBeta.RequiresGrad = true;
        using var tMean = Tensor.FromArray(device, runningMean, c);
        using var tVar = Tensor.FromArray(device, runningVar, c);
        using var tape = new Tape(device);
        var y = tape.BatchNorm2d(tx, tGamma, tBeta, tMean, tVar, training);
        tape.Backward(y, g);

        var ey = new float[n]; var mean = new float[c]; var invstd = new float[c];
        R.Forward<float>(x, b, c, s, gamma, beta, runningMean, runningVar, training, Momentum, Eps, ey, mean, invstd);
        var dx = new float[n]; var dGamma = new float[c]; var dBeta = new float[c];
        R.Backward<float>(x, g, b, c, s, mean, invstd, gamma, training, dx, dGamma, dBeta);
        yield return VerifyResult.Compare("BatchNorm2d.Forward", desc, ey, y.ToArray(), Tolerance.Forward);
        yield return VerifyResult.Compare("BatchNorm2d.RunningMean", desc, runningMean, tMean.ToArray(), Tolerance.Forward);
        yield return VerifyResult.Compare("BatchNorm2d.RunningVar", desc, runningVar, tVar.ToArray(), Tolerance.Forward);
        yield return VerifyResult.Compare("BatchNorm2d.BackwardInput", desc, dx, tx.GradToArray(), Tolerance.Backward);
        yield return VerifyResult.Compare("BatchNorm2d.BackwardGamma", desc, dGamma, tGamma.GradToArray(), Tolerance.Backward);
        yield return VerifyResult.Compare("BatchNorm2d.BackwardBeta", desc, dBeta, tBeta.GradToArray(), Tolerance.Backward);
    }
}
