using ILGPU;

namespace IlgpuDdw.Kernels;

/// <summary>
/// BatchNorm2d over an NCHW tensor x of shape [B, C, H, W] with S = H·W spatial positions and N = B·S values per
/// channel: <c>y = γ[c]·x̂ + β[c]</c>, <c>x̂ = (x − μ[c])·σ⁻¹[c]</c>, <c>σ⁻¹[c] = 1/√(var[c] + eps)</c>.
/// Training mode uses the batch statistics (biased variance) and updates the running statistics in place
/// (PyTorch convention: <c>running = (1 − m)·running + m·batch</c>, with the unbiased variance for the running
/// variance); eval mode uses the running statistics. Both modes save μ and σ⁻¹ (two [C] vectors) for the backward.
/// Per-channel reductions are deterministic: one thread owns one channel and loops over its N values in
/// (b, s) order; channels are grid-strided. Elementwise passes are grid-stride loops over B·C·S elements.
/// </summary>
public static class BatchNormKernels
{
    /// <summary>
    /// Training-mode statistics, one thread per channel c &lt; channels (grid-stride): the two-pass mean
    /// <c>μ = Σx/N</c> and biased variance <c>v = Σ(x − μ)²/N</c> over the channel's N = batch·spatial values,
    /// then <c>mean[c] = μ</c>, <c>invstd[c] = 1/√(v + eps)</c> (overwrite; saved for the backward) and, in place,
    /// <c>runningMean[c] = (1 − momentum)·runningMean[c] + momentum·μ</c>,
    /// <c>runningVar[c] = (1 − momentum)·runningVar[c] + momentum·v·N/(N − 1)</c>. Requires N ≥ 2.
    /// </summary>
    [Kernel]
    public static void ForwardStatistics(Index1D index, int channels, int stride, int batch, int spatial, float eps, float momentum,
        ArrayView<float> x, ArrayView<float> mean, ArrayView<float> invstd, ArrayView<float> runningMean, ArrayView<float> runningVar)
    {
        int count = batch * spatial;
        for (int c = index; c < channels; c += stride)
        {
            float sum = 0f;
            for (int b = 0; b < batch; b++)
            {
                int start = (b * channels + c) * spatial;
                for (int s = 0; s < spatial; s++)
                    sum += x[start + s];
            }
            float mu = sum / count;
            float squares = 0f;
            for (int b = 0; b < batch; b++)
            {
                int start = (b * channels + c) * spatial;
                for (int s = 0; s < spatial; s++)
                {
                    float dev = x[start + s] - mu;
                    squares += dev * dev;
                }
            }
            float variance = squares / count;
            mean[c] = mu;
            invstd[c] = 1f / MathF.Sqrt(variance + eps);
            runningMean[c] = (1f - momentum) * runningMean[c] + momentum * mu;
            runningVar[c] = (1f - momentum) * runningVar[c] + momentum * (squares / (count - 1));
        }
    }

    /// <summary>
    /// Eval-mode statistics, grid-stride over c &lt; channels: <c>mean[c] = runningMean[c]</c>,
    /// <c>invstd[c] = 1/√(runningVar[c] + eps)</c>. Overwrites mean and invstd (saved for the backward, so a later
    /// change to the running statistics does not alter this forward's gradient).
    /// </summary>
    [Kernel(Launcher = "BatchNormInferenceStatistics")]
    public static void InferenceStatistics(Index1D index, int channels, int stride, float eps,
        ArrayView<float> runningMean, ArrayView<float> runningVar, ArrayView<float> mean, ArrayView<float> invstd)
    {
        for (int c = index; c < channels; c += stride)
        {
            mean[c] = runningMean[c];
            invstd[c] = 1f / MathF.Sqrt(runningVar[c] + eps);
        }
    }

    /// <summary>
    /// Normalisation, grid-stride over the n = B·C·S elements, channel <c>c = (i / spatial) % channels</c>:
    /// <c>y[i] = γ[c]·(x[i] − mean[c])·invstd[c] + β[c]</c>. Overwrites y. Used by both modes.
    /// </summary>
    [Kernel]
    public static void ForwardNormalize(Index1D index, int n, int stride, int channels, int spatial,
        ArrayView<float> x, ArrayView<float> mean, ArrayView<float> invstd, ArrayView<float> gamma, ArrayView<float> beta, ArrayView<float> y)
    {
        for (int i = index; i < n; i += stride)
        {
            int c = i / spatial % channels;
            y[i] = gamma[c] * ((x[i] - mean[c]) * invstd[c]) + beta[c];
        }
    }

    /// <summary>
    /// Backward channel sums, one thread per channel c &lt; channels (grid-stride), looping over the channel's
    /// N values in (b, s) order: <c>sumDy[c] = Σ dy</c> (= dβ[c]) and <c>sumDyXhat[c] = Σ dy·x̂</c> (= dγ[c]),
    /// with x̂ recomputed from x and the saved mean/invstd. Overwrites both [C] vectors; the op accumulates them
    /// into dBeta/dGamma and <see cref="BackwardInput"/> reads them.
    /// </summary>
    [Kernel]
    public static void BackwardChannelSums(Index1D index, int channels, int stride, int batch, int spatial,
        ArrayView<float> x, ArrayView<float> dOutput, ArrayView<float> mean, ArrayView<float> invstd,
        ArrayView<float> sumDy, ArrayView<float> sumDyXhat)
    {
        for (int c = index; c < channels; c += stride)
        {
            float mu = mean[c];
            float inv = invstd[c];
            float dyTotal = 0f, dyXhatTotal = 0f;
            for (int b = 0; b < batch; b++)
            {
                int start = (b * channels + c) * spatial;
                for (int s = 0; s < spatial; s++)
                {
                    float dy = dOutput[start + s];
                    dyTotal += dy;
                    dyXhatTotal += dy * ((x[start + s] - mu) * inv);
                }
            }
            sumDy[c] = dyTotal;
            sumDyXhat[c] = dyXhatTotal;
        }
    }

    /// <summary>
    /// Backward with respect to the input, grid-stride over the n = B·C·S elements:
    /// <c>dInput[i] += γ[c]·invstd[c]·(dy[i] − w·(Σdy[c] + x̂[i]·Σdy·x̂[c]))</c> with the sums of
    /// <see cref="BackwardChannelSums"/>. <c>w = 1/N</c> in training mode (the batch statistics depend on x) and
    /// <c>w = 0</c> in eval mode (an affine map). Accumulates.
    /// </summary>
    [Kernel]
    public static void BackwardInput(Index1D index, int n, int stride, int channels, int spatial, float statisticsWeight,
        ArrayView<float> x, ArrayView<float> dOutput, ArrayView<float> mean, ArrayView<float> invstd, ArrayView<float> gamma,
        ArrayView<float> sumDy, ArrayView<float> sumDyXhat, ArrayView<float> dInput)
    {
        for (int i = index; i < n; i += stride)
        {
            int c = i / spatial % channels;
            float inv = invstd[c];
            float xhat = (x[i] - mean[c]) * inv;
            dInput[i] += gamma[c] * inv * (dOutput[i] - statisticsWeight * (sumDy[c] + xhat * sumDyXhat[c]));
        }
    }
}
