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
        Span<T> mean, Span<T> invstd, Span<T> unbiasedVar) where T : IFloatingPointIeee754<T> =>
        LiveStatistics(x, batch, channels, spatial, default, eps, mean, invstd, unbiasedVar);

    /// <summary>Whether sample b is live: every sample when <paramref name="live"/> is empty, else <c>live[b] ≠ 0</c>.</summary>
    public static bool IsLive<T>(ReadOnlySpan<T> live, int b) where T : IFloatingPointIeee754<T> => live.IsEmpty || live[b] != T.Zero;

    /// <summary>
    /// <see cref="Statistics"/> over the live samples only (<paramref name="live"/> [batch], non-zero = live; empty: all):
    /// N = (live samples)·spatial values per channel. Returns N. With N = 0 nothing is written; with N = 1 the variance
    /// is 0 and <c>unbiasedVar</c> is not written (the running statistics are then not updated).
    /// </summary>
    public static int LiveStatistics<T>(ReadOnlySpan<T> x, int batch, int channels, int spatial, ReadOnlySpan<T> live, T eps,
        Span<T> mean, Span<T> invstd, Span<T> unbiasedVar) where T : IFloatingPointIeee754<T>
    {
        int samples = 0;
        for (int b = 0; b < batch; b++)
            if (IsLive(live, b)) samples++;
        int n = samples * spatial;
        if (n == 0) return 0;
        T count = T.CreateChecked(n);
        for (int c = 0; c < channels; c++)
        {
            T sum = T.Zero;
            for (int b = 0; b < batch; b++)
                if (IsLive(live, b))
                    for (int s = 0; s < spatial; s++)
                        sum += x[(b * channels + c) * spatial + s];
            T mu = sum / count;
            T squares = T.Zero;
            for (int b = 0; b < batch; b++)
                if (IsLive(live, b))
                    for (int s = 0; s < spatial; s++)
                    {
                        T dev = x[(b * channels + c) * spatial + s] - mu;
                        squares += dev * dev;
                    }
            mean[c] = mu;
            invstd[c] = T.One / T.Sqrt(squares / count + eps);
            if (n >= 2) unbiasedVar[c] = squares / (count - T.One);
        }
        return n;
    }

    /// <summary>
    /// The pieces of a synchronised batch norm (<see cref="BatchNormKernels.ForwardStatisticsPieces"/> and
    /// <see cref="BatchNormKernels.BackwardChannelSumsPieces"/>) of a rank holding the global values
    /// [offset, offset + batch·spatial) of each channel, the global batch cut into chunks of <paramref name="chunkLength"/>:
    /// piece j of channel c (chunk offset / chunkLength + j) gets, over its values of live samples (every sample when
    /// <paramref name="live"/> is empty), <c>forward[3i..3i + 2] = (n, Σv, Σv²)</c> with v = x − pivot[c] and
    /// <c>backward[2i..2i + 1] = (Σdy, Σdy·x̂)</c>, i = c·pieces + j, in double, dy = 0 where
    /// <paramref name="reluOutput"/> ≤ 0 when it is not empty. Overwrites both.
    /// </summary>
    public static void PieceSums(ReadOnlySpan<float> x, ReadOnlySpan<float> dOutput, ReadOnlySpan<float> reluOutput, int batch, int channels,
        int spatial, int offset, int chunkLength, ReadOnlySpan<float> live, ReadOnlySpan<float> pivot, ReadOnlySpan<float> mean,
        ReadOnlySpan<float> invstd, Span<double> forward, Span<double> backward)
    {
        int count = batch * spatial, firstChunk = offset / chunkLength, pieces = (offset + count - 1) / chunkLength - firstChunk + 1;
        forward.Clear();
        backward.Clear();
        for (int c = 0; c < channels; c++)
            for (int j = 0; j < count; j++)
            {
                int b = j / spatial, o = (b * channels + c) * spatial + j % spatial;
                if (!IsLive(live, b)) continue;
                int i = c * pieces + (offset + j) / chunkLength - firstChunk;
                double v = x[o] - (double)pivot[c];
                forward[3 * i] += 1;
                forward[3 * i + 1] += v;
                forward[3 * i + 2] += v * v;
                float dy = !reluOutput.IsEmpty && !(reluOutput[o] > 0f) ? 0f : dOutput[o];
                backward[2 * i] += dy;
                backward[2 * i + 1] += dy * ((x[o] - mean[c]) * invstd[c]);
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
        ReadOnlySpan<T> invstd, ReadOnlySpan<T> gamma, ReadOnlySpan<T> beta, Span<T> y) where T : IFloatingPointIeee754<T> =>
        Normalize(x, batch, channels, spatial, default, mean, invstd, gamma, beta, y);

    /// <summary><see cref="Normalize{T}(ReadOnlySpan{T}, int, int, int, ReadOnlySpan{T}, ReadOnlySpan{T}, ReadOnlySpan{T}, ReadOnlySpan{T}, Span{T})"/> of the live samples; <c>y = 0</c> for an off sample.</summary>
    public static void Normalize<T>(ReadOnlySpan<T> x, int batch, int channels, int spatial, ReadOnlySpan<T> live, ReadOnlySpan<T> mean,
        ReadOnlySpan<T> invstd, ReadOnlySpan<T> gamma, ReadOnlySpan<T> beta, Span<T> y) where T : IFloatingPointIeee754<T>
    {
        for (int i = 0; i < batch * channels * spatial; i++)
        {
            int c = i / spatial % channels;
            y[i] = IsLive(live, i / spatial / channels) ? gamma[c] * ((x[i] - mean[c]) * invstd[c]) + beta[c] : T.Zero;
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
    /// <c>dx += γ·invstd·(dy − (Σdy + x̂·Σdy·x̂)/N)</c> in training mode or <c>dx += γ·invstd·dy</c> in eval mode. With
    /// <paramref name="accumulate"/> false dx is overwritten (as accumulating onto zeros; not read); dγ and dβ accumulate.
    /// </summary>
    public static void Backward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> dOutput, int batch, int channels, int spatial,
        ReadOnlySpan<T> mean, ReadOnlySpan<T> invstd, ReadOnlySpan<T> gamma, bool training,
        Span<T> dInput, Span<T> dGamma, Span<T> dBeta, bool accumulate = true) where T : IFloatingPointIeee754<T> =>
        LiveBackward(x, dOutput, batch, channels, spatial, default, mean, invstd, gamma, training, dInput, dGamma, dBeta, accumulate);

    /// <summary>
    /// <see cref="Backward"/> over the live samples (<paramref name="live"/> empty: all): the sums run over the live
    /// samples, N = (live samples)·spatial, and an off sample's dx gets nothing (w = 0 when N = 0). Accumulates (dx
    /// overwritten, as onto zeros, with <paramref name="accumulate"/> false).
    /// </summary>
    public static void LiveBackward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> dOutput, int batch, int channels, int spatial,
        ReadOnlySpan<T> live, ReadOnlySpan<T> mean, ReadOnlySpan<T> invstd, ReadOnlySpan<T> gamma, bool training,
        Span<T> dInput, Span<T> dGamma, Span<T> dBeta, bool accumulate = true) where T : IFloatingPointIeee754<T>
    {
        if (!accumulate) dInput.Clear();
        int samples = 0;
        for (int b = 0; b < batch; b++)
            if (IsLive(live, b)) samples++;
        T weight = training && samples > 0 ? T.One / T.CreateChecked(samples * spatial) : T.Zero;
        for (int c = 0; c < channels; c++)
        {
            T sumDy = T.Zero, sumDyXhat = T.Zero;
            for (int b = 0; b < batch; b++)
                if (IsLive(live, b))
                    for (int s = 0; s < spatial; s++)
                    {
                        int i = (b * channels + c) * spatial + s;
                        sumDy += dOutput[i];
                        sumDyXhat += dOutput[i] * ((x[i] - mean[c]) * invstd[c]);
                    }
            dBeta[c] += sumDy;
            dGamma[c] += sumDyXhat;
            for (int b = 0; b < batch; b++)
                if (IsLive(live, b))
                    for (int s = 0; s < spatial; s++)
                    {
                        int i = (b * channels + c) * spatial + s;
                        T xhat = (x[i] - mean[c]) * invstd[c];
                        dInput[i] += gamma[c] * invstd[c] * (dOutput[i] - weight * (sumDy + xhat * sumDyXhat));
                    }
        }
    }

    /// <summary>
    /// The live-sample forward (<paramref name="live"/> [batch], non-zero = live), optionally fused with a residual add
    /// (<paramref name="residual"/> not empty) and a ReLU: training mode uses the live samples' statistics and updates
    /// the running statistics from them when N = (live samples)·spatial ≥ 2; with N = 0 the saved mean/invstd are the
    /// running statistics' (<see cref="InferenceStatistics"/>). Eval mode uses the running statistics. Off samples:
    /// y = 0. Writes y and the saved mean/invstd.
    /// </summary>
    public static void LiveForward<T>(ReadOnlySpan<T> x, int batch, int channels, int spatial, ReadOnlySpan<T> live,
        ReadOnlySpan<T> gamma, ReadOnlySpan<T> beta, Span<T> runningMean, Span<T> runningVar, bool training, T momentum, T eps,
        bool relu, ReadOnlySpan<T> residual, Span<T> y, Span<T> mean, Span<T> invstd) where T : IFloatingPointIeee754<T>
    {
        int n = 0;
        if (training)
        {
            var unbiased = new T[channels];
            n = LiveStatistics(x, batch, channels, spatial, live, eps, mean, invstd, unbiased);
            if (n >= 2) UpdateRunning<T>(mean, unbiased, momentum, runningMean, runningVar);
        }
        if (n == 0) InferenceStatistics<T>(runningMean, runningVar, eps, mean, invstd);
        Normalize(x, batch, channels, spatial, live, mean, invstd, gamma, beta, y);
        for (int i = 0; i < batch * channels * spatial; i++)
        {
            if (!IsLive(live, i / spatial / channels)) continue;
            T z = residual.IsEmpty ? y[i] : y[i] + residual[i];
            y[i] = relu && !(z > T.Zero) ? T.Zero : z;
        }
    }

    /// <summary>
    /// Backward of <see cref="LiveForward"/> from its output y: <c>dz = dy</c>, through the ReLU (<paramref name="relu"/>)
    /// <c>dz = y &gt; 0 ? dy : 0</c>; off samples get dz = 0; <c>dResidual += dz</c> (when not empty); then the
    /// live-sample backward with dz. Accumulates (dx and dResidual overwritten, as onto zeros, with
    /// <paramref name="accumulate"/> false).
    /// </summary>
    public static void LiveBackwardFused<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> dOutput, ReadOnlySpan<T> output, int batch, int channels,
        int spatial, ReadOnlySpan<T> live, ReadOnlySpan<T> mean, ReadOnlySpan<T> invstd, ReadOnlySpan<T> gamma, bool training, bool relu,
        Span<T> dInput, Span<T> dGamma, Span<T> dBeta, Span<T> dResidual, bool accumulate = true) where T : IFloatingPointIeee754<T>
    {
        if (!accumulate) dResidual.Clear();
        var dz = new T[batch * channels * spatial];
        for (int i = 0; i < dz.Length; i++)
        {
            bool on = IsLive(live, i / spatial / channels) && (!relu || output[i] > T.Zero);
            dz[i] = on ? dOutput[i] : T.Zero;
            if (!dResidual.IsEmpty) dResidual[i] += dz[i];
        }
        LiveBackward<T>(x, dz, batch, channels, spatial, live, mean, invstd, gamma, training, dInput, dGamma, dBeta, accumulate);
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
    /// ReLU), <c>dResidual += dz</c> (when not empty), then <see cref="Backward"/> with dz. Accumulates (dx and dResidual
    /// overwritten, as onto zeros, with <paramref name="accumulate"/> false).
    /// </summary>
    public static void BackwardRelu<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> dOutput, ReadOnlySpan<T> output, int batch, int channels,
        int spatial, ReadOnlySpan<T> mean, ReadOnlySpan<T> invstd, ReadOnlySpan<T> gamma, bool training,
        Span<T> dInput, Span<T> dGamma, Span<T> dBeta, Span<T> dResidual, bool accumulate = true) where T : IFloatingPointIeee754<T>
    {
        if (!accumulate) dResidual.Clear();
        var dz = new T[batch * channels * spatial];
        for (int i = 0; i < dz.Length; i++)
        {
            dz[i] = output[i] > T.Zero ? dOutput[i] : T.Zero;
            if (!dResidual.IsEmpty) dResidual[i] += dz[i];
        }
        Backward<T>(x, dz, batch, channels, spatial, mean, invstd, gamma, training, dInput, dGamma, dBeta, accumulate);
    }
}
