using System.Numerics;

namespace IlgpuDdw.Kernels.Reference;

/// <summary>CPU reference of <see cref="OptimizerKernels"/>, generic over float and double.</summary>
public static class OptimizerReference
{
    /// <summary>
    /// One SGD step in place, written after PyTorch's <c>torch.optim.SGD</c> (dampening 0): coupled L2 decay
    /// adds <c>weightDecay · p</c> to the gradient; decoupled decay scales p by <c>1 − lr · weightDecay</c>;
    /// momentum keeps <c>buf = momentum · buf + g</c> (buf starts at zero) and steps along buf, or along
    /// <c>g + momentum · buf</c> with Nesterov. <paramref name="momentumBuffer"/> is unused when momentum is 0.
    /// </summary>
    public static void SgdStep<T>(Span<T> param, ReadOnlySpan<T> grad, Span<T> momentumBuffer, T learningRate, T momentum,
        T weightDecay, bool nesterov, bool decoupled) where T : IFloatingPointIeee754<T>
    {
        for (int i = 0; i < param.Length; i++)
        {
            T d = grad[i];
            if (!decoupled) d += weightDecay * param[i];
            if (momentum != T.Zero)
            {
                momentumBuffer[i] = momentum * momentumBuffer[i] + d;
                d = nesterov ? d + momentum * momentumBuffer[i] : momentumBuffer[i];
            }
            if (decoupled) param[i] -= learningRate * weightDecay * param[i];
            param[i] -= learningRate * d;
        }
    }

    /// <summary>
    /// Whether a training step stops training (<see cref="OptimizerKernels.StepGuard"/>): the sum of its objective
    /// <paramref name="terms"/> (float, in order) is not finite or above <paramref name="maxLoss"/> (&gt; 0), the first
    /// term above <paramref name="lossLimit"/> (&gt; 0), or the gradient norm √<paramref name="sumSquares"/> not finite
    /// or above <paramref name="maxGradNorm"/> (&gt; 0).
    /// </summary>
    public static bool StepStops(ReadOnlySpan<float> terms, float sumSquares, float maxLoss, float lossLimit, float maxGradNorm)
    {
        float total = 0f;
        foreach (float t in terms) total += t;
        float norm = MathF.Sqrt(sumSquares);
        return !float.IsFinite(total) || (maxLoss > 0f && total > maxLoss) || (lossLimit > 0f && terms[0] > lossLimit)
            || !float.IsFinite(norm) || (maxGradNorm > 0f && norm > maxGradNorm);
    }
}
