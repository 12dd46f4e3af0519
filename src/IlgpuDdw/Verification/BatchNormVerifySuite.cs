using IlgpuDdw.Autograd;
using IlgpuDdw.Runtime;
using R = IlgpuDdw.Kernels.Reference.BatchNormReference;

namespace IlgpuDdw.Verification;

/// <summary>
/// Verification of BatchNorm2d in training and eval mode: output, running-statistics update, and the gradients of
/// the input, gamma and beta, at batch 1, odd sizes, H·W = 1 and a larger layer.
/// </summary>
public sealed class BatchNormVerifySuite : IVerifySuite
{
    private const float Momentum = 0.1f, Eps = 1e-5f;

    /// <inheritdoc/>
    public string Name => "BatchNorm2d";

    /// <inheritdoc/>
    public IEnumerable<VerifyResult> Run(Device device)
    {
        int[][] shapes = [[1, 3, 5, 7], [3, 5, 7, 5], [2, 4, 1, 1], [8, 16, 14, 14]];
        foreach (var shape in shapes)
            foreach (bool training in new[] { true, false })
                foreach (var r in RunCase(device, shape, training))
                    yield return r;
    }

    private static IEnumerable<VerifyResult> RunCase(Device device, int[] shape, bool training)
    {
        int b = shape[0], c = shape[1], s = shape[2] * shape[3], n = b * c * s;
        string desc = $"{Tensor.Format(shape)} {(training ? "train" : "eval")}";
        var x = Verifier.Uniform(n, 1, -2f, 3f); var g = Verifier.Uniform(n, 2);
        var gamma = Verifier.Uniform(c, 3, 0.5f, 1.5f); var beta = Verifier.Uniform(c, 4);
        var runningMean = Verifier.Uniform(c, 5); var runningVar = Verifier.Uniform(c, 6, 0.5f, 2f);
        using var tx = Tensor.FromArray(device, x, shape); tx.RequiresGrad = true;
        using var tGamma = Tensor.FromArray(device, gamma, c); tGamma.RequiresGrad = true;
        using var tBeta = Tensor.FromArray(device, beta, c); tBeta.RequiresGrad = true;
        using var tMean = Tensor.FromArray(device, runningMean, c);
        using var tVar = Tensor.FromArray(device, runningVar, c);
        using var tape = new Tape(device);
        var y = tape.BatchNorm2d(tx, tGamma, tBeta, tMean, tVar, training, Momentum, Eps);
        tape.Backward(y, g);

        var ey = new float[n]; var mean = new float[c]; var invstd = new float[c];
        R.Forward<float>(x, b, c, s, gamma, beta, runningMean, runningVar, training, Momentum, Eps, ey, mean, invstd);
        var dx = new float[n]; var dGamma = new float[c]; var dBeta = new float[c];
        R.Backward<float>(x, g, b, c, s, mean, invstd, gamma, training, dx, dGamma, dBeta);
        yield return VerifyResult.Compare("BatchNorm2d.Forward", desc, ey, y.ToArray(), Verifier.ForwardAtol, Verifier.ForwardRtol);
        yield return VerifyResult.Compare("BatchNorm2d.RunningMean", desc, runningMean, tMean.ToArray(), Verifier.ForwardAtol, Verifier.ForwardRtol);
        yield return VerifyResult.Compare("BatchNorm2d.RunningVar", desc, runningVar, tVar.ToArray(), Verifier.ForwardAtol, Verifier.ForwardRtol);
        yield return VerifyResult.Compare("BatchNorm2d.BackwardInput", desc, dx, tx.GradToArray(), Verifier.BackwardAtol, Verifier.BackwardRtol);
        yield return VerifyResult.Compare("BatchNorm2d.BackwardGamma", desc, dGamma, tGamma.GradToArray(), Verifier.BackwardAtol, Verifier.BackwardRtol);
        yield return VerifyResult.Compare("BatchNorm2d.BackwardBeta", desc, dBeta, tBeta.GradToArray(), Verifier.BackwardAtol, Verifier.BackwardRtol);
    }
}
