using System.Numerics;

namespace IlgpuDdw.Kernels.Reference;

/// <summary>
/// CPU reference of BatchNorm2d (see <see cref="BatchNormKernels"/>) over NCHW data [batch, channels, spatial]
/// (spatial = H·W), generic over float and double. Sums run per channel in (b, s) order like the kernels.
/// Backward references accumulate (+=).
/// </summary>
public static class BatchNormReference
{
    /// <summary>
    /// Training-mode batch statistics per channel: <c>mean[c]</c>, <c>invstd[c] = 1/√(v + eps)</c> with the
    /// biased variance v, and the unbiased variance <c>unbiasedVar[c] = v·N/(N − 1)</c> (N = batch·spatial ≥ 2).
    /// </summary>
    public static void Statistics<T>(ReadOnlySpan<T> x, int batch, int channels, int spatial, T eps,
        Span<T> mean, Span<T> invstd, Span<T> unbiasedVar) where T : IFloatingPointIeee754<T>
    {
        T count = T.CreateChecked(batch * spatial);
        for (int c = 0; c < channels; c++)
        {
            T sum = T.Zero;
            for (int b = 0; b < batch; b++)
                for (int s = 0; s < spatial; s++)
                    sum += x[(b * channels + c) * spatial + s];
            T mu = sum / count;
            T squares = T.Zero;
            for (int b = 0; b < batch; b++)
                for (int s = 0; s < spatial; s++)
                {
                    T dev = x[(b * channels + c) * spatial + s] - mu;
                    squares += dev * dev;
                }
            mean[c] = mu;
            invstd[c] = T.One / T.Sqrt(squares / count + eps);
            unbiasedVar[c] = squares / (count - T.One);
        }
    }

    /// <summary>Eval-mode statistics: <c>mean = runningMean</c>, <c>invstd[c] = 1/√(runningVar[c] + eps)</c>.</summary>
    public static void InferenceStatistics<T>(ReadOnlySpan<T> runningMean, ReadOnlySpan<T> runningVar, T eps,
        Span<T> mean, Span<T> invstd) where T : IFloatingPointIeee754<T>
    {
        for (int c = 0; c < runningMean.Length; c++)
        {
            mean[c] = runningMean[c];
            invstd[c] = T.One / T.Sqrt(runningVar[c] + eps);
        }
    }

    /// <summary>In place: <c>running = (1 − momentum)·running + momentum·batch</c> for the mean and (unbiased) variance.</summary>
    public static void UpdateRunning<T>(ReadOnlySpan<T> mean, ReadOnlySpan<T> unbiasedVar, T momentum,
        Span<T> runningMean, Span<T> runningVar) where T : IFloatingPointIeee754<T>
    {
        for (int c = 0; c < mean.Length; c++)
        {
            runningMean[c] = (T.One - momentum) * runningMean[c] + momentum * mean[c];
            runningVar[c] = (T.One - momentum) * runningVar[c] + momentum * unbiasedVar[c];
        }
    }

    /// <summary><c>y = γ[c]·(x − mean[c])·invstd[c] + β[c]</c>.</summary>
    public static void Normalize<T>(ReadOnlySpan<T> x, int batch, int channels, int spatial, ReadOnlySpan<T> mean,
        ReadOnlySpan<T> invstd, ReadOnlySpan<T> gamma, ReadOnlySpan<T> beta, Span<T> y) where T : IFloatingPointIeee754<T>
    {
        for (int i = 0; i < batch * channels * spatial; i++)
        {
            int c = i / spatial % channels;
            y[i] = gamma[c] * ((x[i] - mean[c]) * invstd[c]) + beta[c];
        }
    }

    /// <summary>
    /// The whole forward. Training: batch statistics, running statistics updated in place. Eval: running
    /// statistics, unchanged. Writes y and the saved mean/invstd the backward needs.
    /// </summary>
    public static void Forward<T>(ReadOnlySpan<T> x, int batch, int channels, int spatial, ReadOnlySpan<T> gamma,
        ReadOnlySpan<T> beta, Span<T> runningMean, Span<T> runningVar, bool training, T momentum, T eps,
        Span<T> y, Span<T> mean, Span<T> invstd) where T : IFloatingPointIeee754<T>
    {
        if (training)
        {
            var unbiased = new T[channels];
            Statistics(x, batch, channels, spatial, eps, mean, invstd, unbiased);
            UpdateRunning<T>(mean, unbiased, momentum, runningMean, runningVar);
        }
        else
        {
            InferenceStatistics<T>(runningMean, runningVar, eps, mean, invstd);
        }
        Normalize(x, batch, channels, spatial, mean, invstd, gamma, beta, y);
    }

    /// <summary>
    /// Backward from the saved mean/invstd: <c>dβ[c] += Σdy</c>, <c>dγ[c] += Σdy·x̂</c>, and
    /// <c>dx += γ·invstd·(dy − (Σdy + x̂·Σdy·x̂)/N)</c> in training mode or <c>dx += γ·invstd·dy</c> in eval mode.
    /// </summary>
    public static void Backward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> dOutput, int batch, int channels, int spatial,
        ReadOnlySpan<T> mean, ReadOnlySpan<T> invstd, ReadOnlySpan<T> gamma, bool training,
        Span<T> dInput, Span<T> dGamma, Span<T> dBeta) where T : IFloatingPointIeee754<T>
    {
        T weight = training ? T.One / T.CreateChecked(batch * spatial) : T.Zero;
        for (int c = 0; c < channels; c++)
        {
            T sumDy = T.Zero, sumDyXhat = T.Zero;
            for (int b = 0; b < batch; b++)
                for (int s = 0; s < spatial; s++)
                {
                    int i = (b * channels + c) * spatial + s;
                    sumDy += dOutput[i];
                    sumDyXhat += dOutput[i] * ((x[i] - mean[c]) * invstd[c]);
                }
            dBeta[c] += sumDy;
            dGamma[c] += sumDyXhat;
            for (int b = 0; b < batch; b++)
                for (int s = 0; s < spatial; s++)
                {
                    int i = (b * channels + c) * spatial + s;
                    T xhat = (x[i] - mean[c]) * invstd[c];
                    dInput[i] += gamma[c] * invstd[c] * (dOutput[i] - weight * (sumDy + xhat * sumDyXhat));
                }
        }
    }

    /// <summary>
    /// <see cref="Forward"/> fused with a residual add and a ReLU: <c>y = max(0, BatchNorm2d(x) + residual)</c>
    /// (an empty <paramref name="residual"/> adds nothing). Writes y and the saved mean/invstd.
    /// </summary>
    public static void ForwardRelu<T>(ReadOnlySpan<T> x, int batch, int channels, int spatial, ReadOnlySpan<T> gamma,
        ReadOnlySpan<T> beta, Span<T> runningMean, Span<T> runningVar, bool training, T momentum, T eps,
        ReadOnlySpan<T> residual, Span<T> y, Span<T> mean, Span<T> invstd) where T : IFloatingPointIeee754<T>
    {
        Forward(x, batch, channels, spatial, gamma, beta, runningMean, runningVar, training, momentum, eps, y, mean, invstd);
        for (int i = 0; i < batch * channels * spatial; i++)
        {
            T z = residual.IsEmpty ? y[i] : y[i] + residual[i];
            y[i] = z > T.Zero ? z : T.Zero;
        }
    }

    /// <summary>
    /// Backward of <see cref="ForwardRelu"/> from its output y: <c>dz = y &gt; 0 ? dy : 0</c> (0 at the kink, like
    /// ReLU), <c>dResidual += dz</c> (when not empty), then <see cref="Backward"/> with dz. Accumulates.
    /// </summary>
    public static void BackwardRelu<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> dOutput, ReadOnlySpan<T> output, int batch, int channels,
        int spatial, ReadOnlySpan<T> mean, ReadOnlySpan<T> invstd, ReadOnlySpan<T> gamma, bool training,
        Span<T> dInput, Span<T> dGamma, Span<T> dBeta, Span<T> dResidual) where T : IFloatingPointIeee754<T>
    {
        var dz = new T[batch * channels * spatial];
        for (int i = 0; i < dz.Length; i++)
        {
            dz[i] = output[i] > T.Zero ? dOutput[i] : T.Zero;
            if (!dResidual.IsEmpty) dResidual[i] += dz[i];
        }
        Backward<T>(x, dz, batch, channels, spatial, mean, invstd, gamma, training, dInput, dGamma, dBeta);
    }
}
