using ILGPU;
using static IlgpuDdw.Kernels.ReductionKernels;

namespace IlgpuDdw.Kernels;

/// <summary>
/// BatchNorm2d over an NCHW tensor x of shape [B, C, H, W] with S = H·W spatial positions and N = B·S values per
/// channel: <c>y = γ[c]·x̂ + β[c]</c>, <c>x̂ = (x − μ[c])·σ⁻¹[c]</c>, <c>σ⁻¹[c] = 1/√(var[c] + eps)</c>.
/// Training mode uses the batch statistics (biased variance) and updates the running statistics in place
/// (PyTorch convention: <c>running = (1 − m)·running + m·batch</c>, with the unbiased variance for the running
/// variance); eval mode uses the running statistics. Both modes save μ and σ⁻¹ (two [C] vectors) for the backward.
/// The per-channel reductions (statistics, and the backward sums Σdy and Σdy·x̂) come in three rungs, side by side:
/// (1) one thread per channel with one float running sum over its N values (<see cref="ForwardStatistics"/>,
/// <see cref="BackwardChannelSums"/>; a few 1e-6 relative error at N = 25k, kept for A/B runs);
/// (2) channel × chunk work items, each summing its chunk in double (<see cref="ForwardStatisticsChunks"/>,
/// <see cref="BackwardChannelSumsChunks"/>; the CPU accelerator's choice);
/// (3) one group of threads per channel × chunk, reducing through warp shuffles and shared memory
/// (<see cref="ForwardStatisticsGroups"/>, <see cref="BackwardChannelSumsGroups"/>; the GPU's choice).
/// Rungs 2 and 3 write [C·chunks, 2] partials that a small finalize combines per channel, in chunk order, in double
/// (<see cref="ForwardStatisticsFinalize"/>, <see cref="BackwardChannelSumsFinalize"/>). Every reduction runs in a
/// fixed order without atomics, so results are bit-identical run to run. Elementwise passes are grid-stride loops
/// over B·C·S elements. Fused with a ReLU (and a residual add): <see cref="ForwardNormalizeRelu"/>, the masked
/// channel sums of rungs 2 and 3 and <see cref="BackwardInputRelu"/>.
/// </summary>
public static class BatchNormKernels
{
    // ---- rung 1: one thread per channel, one float running sum ---------------------------------------------

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

    // ---- rung 2: channel × chunk partials, one work item per chunk (CPU default) ----------------------------

    /// <summary>
    /// Training-mode partial statistics, grid-stride over the items = channels·chunks work items, item
    /// <c>i = c·chunks + k</c> owning values <c>[k·chunkLength, min(count, (k+1)·chunkLength))</c> of channel c in
    /// (b, s) order (count = batch·spatial). Sums in double of <c>v = x − p[c]</c>, shifted by the pivot
    /// <c>p[c] = x[b = 0, c, s = 0]</c> so that a large mean does not cancel, give the chunk's mean of v and its
    /// <c>M2 = Σ(v − mean)²</c>: <c>partials[2i] = mean</c>, <c>partials[2i + 1] = M2</c> (overwrite; read by
    /// <see cref="ForwardStatisticsFinalize"/>).
    /// </summary>
    [Kernel]
    public static void ForwardStatisticsChunks(Index1D index, int items, int stride, int channels, int spatial, int count,
        int chunkLength, ArrayView<float> x, ArrayView<float> partials)
    {
        int chunks = items / channels;
        for (int i = index; i < items; i += stride)
        {
            int c = i / chunks, start = (i - c * chunks) * chunkLength;
            int n = Math.Min(count, start + chunkLength) - start;
            double pivot = x[c * spatial];
            double sum = 0, squares = 0;
            var walk = ChannelWalk.Unit(channels, spatial, c, start);
            for (int j = 0; j < n; j++, walk.Next())
            {
                double v = x[walk.Offset] - pivot;
                sum += v;
                squares += v * v;
            }
            double mean = sum / n;
            partials[2 * i] = (float)mean;
            partials[2 * i + 1] = (float)Math.Max(0.0, squares - sum * mean);
        }
    }

    /// <summary>
    /// Backward partial channel sums, grid-stride over the items = channels·chunks work items laid out as in
    /// <see cref="ForwardStatisticsChunks"/>: in double, <c>partials[2i] = Σ dy</c> and <c>partials[2i + 1] = Σ dy·x̂</c>
    /// over item i's chunk (x̂ from x and the saved mean/invstd, in float as in <see cref="BackwardInput"/>), with
    /// dy = dOutput, or with <paramref name="reluMask"/> ≠ 0 the gradient through the fused ReLU of
    /// <see cref="ForwardNormalizeRelu"/>: dOutput where <paramref name="output"/> &gt; 0, else 0 (without the mask
    /// output is ignored; pass dOutput). Overwrites; read by <see cref="BackwardChannelSumsFinalize"/>.
    /// </summary>
    [Kernel]
    public static void BackwardChannelSumsChunks(Index1D index, int items, int stride, int channels, int spatial, int count,
        int chunkLength, int reluMask, ArrayView<float> x, ArrayView<float> dOutput, ArrayView<float> output,
        ArrayView<float> mean, ArrayView<float> invstd, ArrayView<float> partials)
    {
        int chunks = items / channels;
        for (int i = index; i < items; i += stride)
        {
            int c = i / chunks, start = (i - c * chunks) * chunkLength;
            int n = Math.Min(count, start + chunkLength) - start;
            float mu = mean[c], inv = invstd[c];
            double dyTotal = 0, dyXhatTotal = 0;
            var walk = ChannelWalk.Unit(channels, spatial, c, start);
            for (int j = 0; j < n; j++, walk.Next())
            {
                float dy = Upstream(dOutput, output, reluMask, walk.Offset);
                dyTotal += dy;
                dyXhatTotal += dy * ((x[walk.Offset] - mu) * inv);
            }
            partials[2 * i] = (float)dyTotal;
            partials[2 * i + 1] = (float)dyXhatTotal;
        }
    }

    // ---- rung 3: one group per channel × chunk, warp shuffles and shared memory (Cuda default) --------------

    /// <summary>Most warps per group the grouped kernels accept (their shared memory holds one entry per warp).</summary>
    public const int MaxWarpsPerGroup = 32;

    /// <summary>
    /// Training-mode partial statistics with one group per (channel, chunk): launched with <c>channels·chunks</c>
    /// groups of T threads (a multiple of the warp size, at most <see cref="MaxWarpsPerGroup"/> warps and at most
    /// one warp of warps); group <c>g = c·chunks + k</c> owns the values of chunk k of channel c as in
    /// <see cref="ForwardStatisticsChunks"/>, thread t taking every T-th of them from t on (coalesced), four loads in
    /// flight per step. <paramref name="planeStep"/> = T / spatial and <paramref name="positionStep"/> = T % spatial
    /// (from the host, so that no division runs per value). Each thread keeps Welford's (count, mean, M2) in float
    /// over <c>v = x − p[c]</c>, merging blocks of four values with Chan's formula; the threads' states are merged in
    /// a fixed tree: a butterfly of warp shuffles, one shared-memory entry per warp, the same butterfly in the first
    /// warp. Thread 0 writes <c>partials[2g] = mean</c>, <c>partials[2g + 1] = M2</c> (overwrite). No atomics:
    /// bit-identical run to run.
    /// </summary>
    [Kernel(ExplicitlyGrouped = true)]
    public static void ForwardStatisticsGroups(int channels, int spatial, int count, int chunkLength, int planeStep, int positionStep,
        ArrayView<float> x, ArrayView<float> partials)
    {
        var warpCounts = SharedMemory.Allocate<int>(MaxWarpsPerGroup);
        var warpMeans = SharedMemory.Allocate<float>(MaxWarpsPerGroup);
        var warpM2s = SharedMemory.Allocate<float>(MaxWarpsPerGroup);
        int chunks = Grid.DimX / channels, g = Grid.IdxX;
        int c = g / chunks, start = (g - c * chunks) * chunkLength;
        int end = Math.Min(count, start + chunkLength), step = Group.DimX;
        float pivot = x[c * spatial];
        var w = default(Welford);
        int j = start + Group.IdxX;
        var walk = new ChannelWalk(channels, spatial, c, j, planeStep, positionStep);
        for (; j + 3 * step < end; j += 4 * step)
        {
            float v0 = x[walk.Offset] - pivot;
            walk.Next();
            float v1 = x[walk.Offset] - pivot;
            walk.Next();
            float v2 = x[walk.Offset] - pivot;
            walk.Next();
            float v3 = x[walk.Offset] - pivot;
            walk.Next();
            w.AddFour(v0, v1, v2, v3);
        }
        for (; j < end; j += step, walk.Next())
            w.Add(x[walk.Offset] - pivot);

        w = GroupMerge(w, warpCounts, warpMeans, warpM2s);
        if (Group.IdxX == 0)
        {
            partials[2 * g] = w.Mean;
            partials[2 * g + 1] = w.M2;
        }
    }

    /// <summary>
    /// Backward partial channel sums with one group per (channel, chunk), launched and laid out as
    /// <see cref="ForwardStatisticsGroups"/> (same <paramref name="planeStep"/> and <paramref name="positionStep"/>):
    /// each thread sums dy and dy·x̂ in float over its strided values, four at a time (dy through the fused ReLU when
    /// <paramref name="reluMask"/> ≠ 0, as in <see cref="BackwardChannelSumsChunks"/>); the group adds the threads' sums in
    /// a fixed tree (warp-shuffle butterfly, one shared entry per warp, butterfly in the first warp) and thread 0
    /// writes <c>partials[2g] = Σ dy</c>, <c>partials[2g + 1] = Σ dy·x̂</c> (overwrite). No atomics.
    /// </summary>
    [Kernel(ExplicitlyGrouped = true)]
    public static void BackwardChannelSumsGroups(int channels, int spatial, int count, int chunkLength, int planeStep, int positionStep,
        int reluMask, ArrayView<float> x, ArrayView<float> dOutput, ArrayView<float> output, ArrayView<float> mean,
        ArrayView<float> invstd, ArrayView<float> partials)
    {
        GroupChannelSums(0, channels, spatial, count, chunkLength, planeStep, positionStep, reluMask, x, x, dOutput, output, mean, invstd, partials);
    }

    // ---- finalize (rungs 2 and 3): combine a channel's chunks in order, in double ---------------------------

    /// <summary>
    /// Training-mode statistics from the partials of <see cref="ForwardStatisticsChunks"/> or
    /// <see cref="ForwardStatisticsGroups"/>, one thread per channel c &lt; channels (grid-stride): the channel's
    /// chunks (count <c>min(chunkLength, count − k·chunkLength)</c> each) are merged in order k = 0, 1, ... with
    /// Chan's formula in double, giving the mean μ (pivot added back) and the biased variance v = M2/N over the
    /// N = count values. Writes <c>mean[c] = μ</c>, <c>invstd[c] = 1/√(v + eps)</c> (overwrite) and updates the
    /// running statistics in place as <see cref="ForwardStatistics"/> does. Requires count ≥ 2.
    /// </summary>
    [Kernel]
    public static void ForwardStatisticsFinalize(Index1D index, int channels, int stride, int spatial, int count, int chunkLength,
        float eps, float momentum, ArrayView<float> x, ArrayView<float> partials,
        ArrayView<float> mean, ArrayView<float> invstd, ArrayView<float> runningMean, ArrayView<float> runningVar)
    {
        int chunks = (count + chunkLength - 1) / chunkLength;
        for (int c = index; c < channels; c += stride)
        {
            double n = 0, m = 0, m2 = 0;
            for (int k = 0; k < chunks; k++)
            {
                int p = 2 * (c * chunks + k);
                double nk = Math.Min(chunkLength, count - k * chunkLength);
                double total = n + nk, delta = partials[p] - m, weight = nk / total;
                m += delta * weight;
                m2 += partials[p + 1] + delta * delta * n * weight;
                n = total;
            }
            float mu = (float)(x[c * spatial] + m);
            mean[c] = mu;
            invstd[c] = (float)(1.0 / Math.Sqrt(m2 / count + eps));
            runningMean[c] = (1f - momentum) * runningMean[c] + momentum * mu;
            runningVar[c] = (1f - momentum) * runningVar[c] + momentum * (float)(m2 / (count - 1));
        }
    }

    /// <summary>
    /// Backward channel sums from the partials of <see cref="BackwardChannelSumsChunks"/> or
    /// <see cref="BackwardChannelSumsGroups"/>, one thread per channel c &lt; channels (grid-stride), adding the
    /// channel's chunks in order in double: <c>sumDy[c] = Σ dy</c>, <c>sumDyXhat[c] = Σ dy·x̂</c> (overwrite, read
    /// by <see cref="BackwardInput"/>), and <c>dBeta[c] += Σ dy</c> when <paramref name="accumulateBeta"/> ≠ 0,
    /// <c>dGamma[c] += Σ dy·x̂</c> when <paramref name="accumulateGamma"/> ≠ 0 (otherwise those views are not touched).
    /// </summary>
    [Kernel]
    public static void BackwardChannelSumsFinalize(Index1D index, int channels, int stride, int count, int chunkLength,
        ArrayView<float> partials, ArrayView<float> sumDy, ArrayView<float> sumDyXhat,
        int accumulateGamma, int accumulateBeta, ArrayView<float> dGamma, ArrayView<float> dBeta)
    {
        int chunks = (count + chunkLength - 1) / chunkLength;
        for (int c = index; c < channels; c += stride)
            FinalizeChannelSums(c, chunks, partials, sumDy, c, sumDyXhat, c, accumulateGamma, accumulateBeta, dGamma, dBeta);
    }

    // ---- every rung: eval-mode statistics and the elementwise passes --------------------------------------

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
    /// Normalisation fused with a residual add and a ReLU, grid-stride over the n = B·C·S elements:
    /// <c>y[i] = max(0, γ[c]·(x[i] − mean[c])·invstd[c] + β[c] + r[i])</c> with <c>r = residual</c> when
    /// <paramref name="addResidual"/> ≠ 0 and r = 0 otherwise (residual is then not read). Overwrites y, which the
    /// fused backward reads as the ReLU mask.
    /// </summary>
    [Kernel]
    public static void ForwardNormalizeRelu(Index1D index, int n, int stride, int channels, int spatial, int addResidual,
        ArrayView<float> x, ArrayView<float> mean, ArrayView<float> invstd, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> residual, ArrayView<float> y)
    {
        for (int i = index; i < n; i += stride)
        {
            int c = i / spatial % channels;
            float z = gamma[c] * ((x[i] - mean[c]) * invstd[c]) + beta[c];
            if (addResidual != 0) z += residual[i];
            y[i] = z > 0f ? z : 0f;
        }
    }

    /// <summary>
    /// Backward with respect to the input, grid-stride over the n = B·C·S elements:
    /// <c>dInput[i] (+)= γ[c]·invstd[c]·(dy[i] − w·(Σdy[c] + x̂[i]·Σdy·x̂[c]))</c> with the sums of
    /// <see cref="BackwardChannelSums"/> packed as <c>sums[c] = Σdy</c>, <c>sums[C + c] = Σdy·x̂</c>. <c>w = 1/N</c> in
    /// training mode (the batch statistics depend on x) and <c>w = 0</c> in eval mode (an affine map). Accumulates when
    /// <paramref name="accumulate"/> ≠ 0, else overwrites every element (<see cref="ElementwiseKernels.Prior"/>).
    /// </summary>
    [Kernel]
    public static void BackwardInput(Index1D index, int n, int stride, int channels, int spatial, float statisticsWeight, int accumulate,
        ArrayView<float> x, ArrayView<float> dOutput, ArrayView<float> mean, ArrayView<float> invstd, ArrayView<float> gamma,
        ArrayView<float> sums, ArrayView<float> dInput)
    {
        var sumDy = sums.SubView(0, channels);
        var sumDyXhat = sums.SubView(channels, channels);
        for (int i = index; i < n; i += stride)
            dInput[i] = ElementwiseKernels.Prior(accumulate, dInput, i)
                + InputGradient(i, channels, spatial, statisticsWeight, x[i], dOutput[i], mean, invstd, gamma, sumDy, sumDyXhat);
    }

    /// <summary>
    /// <see cref="BackwardInput"/> through the fused ReLU of <see cref="ForwardNormalizeRelu"/>: dy = dOutput where
    /// output &gt; 0, else 0, with the sums (packed as for <see cref="BackwardInput"/>) of the masked
    /// <see cref="BackwardChannelSumsChunks"/> or <see cref="BackwardChannelSumsGroups"/>. Accumulates into dInput when
    /// <paramref name="accumulate"/> ≠ 0, else overwrites every element.
    /// </summary>
    [Kernel]
    public static void BackwardInputRelu(Index1D index, int n, int stride, int channels, int spatial, float statisticsWeight, int accumulate,
        ArrayView<float> x, ArrayView<float> dOutput, ArrayView<float> output, ArrayView<float> mean, ArrayView<float> invstd,
        ArrayView<float> gamma, ArrayView<float> sums, ArrayView<float> dInput)
    {
        var sumDy = sums.SubView(0, channels);
        var sumDyXhat = sums.SubView(channels, channels);
        for (int i = index; i < n; i += stride)
            dInput[i] = ElementwiseKernels.Prior(accumulate, dInput, i)
                + InputGradient(i, channels, spatial, statisticsWeight, x[i], Upstream(dOutput, output, 1, i),
                    mean, invstd, gamma, sumDy, sumDyXhat);
    }

    // ---- live-sample (masked) path: statistics, normalisation and backward over the samples with live[b] ≠ 0 --------
    // Rungs 2 and 3 side by side with the unmasked ones. An off sample (live[b] = 0) takes no part in any statistic or
    // sum, and its output and input gradient are 0. With every sample live each kernel runs the unmasked kernel's
    // arithmetic in the same order, so the numbers are bit-identical to the unmasked path's.

    /// <summary>
    /// <see cref="ForwardStatisticsChunks"/> over the live samples: item i's chunk of channel c in (b, s) order, values of
    /// samples with <c>live[b] = 0</c> skipped, the pivot <c>p[c] = x[b₀, c, s = 0]</c> taken at the first live sample b₀
    /// (b₀ = 0 when none is live). Writes <c>partials[3i] = n</c> (live values in the chunk), <c>partials[3i + 1] = mean</c>,
    /// <c>partials[3i + 2] = M2</c> (all 0 for a chunk without live values). Overwrites; read by
    /// <see cref="ForwardStatisticsFinalizeMasked"/>.
    /// </summary>
    [Kernel]
    public static void ForwardStatisticsChunksMasked(Index1D index, int items, int stride, int channels, int spatial, int count,
        int chunkLength, ArrayView<float> live, ArrayView<float> x, ArrayView<float> partials)
    {
        int chunks = items / channels, batch = count / spatial;
        int first = FirstLive(live, batch);
        for (int i = index; i < items; i += stride)
        {
            int c = i / chunks, start = (i - c * chunks) * chunkLength;
            int end = Math.Min(count, start + chunkLength);
            double pivot = x[(first * channels + c) * spatial];
            double sum = 0, squares = 0;
            int n = 0;
            for (int j = start; j < end;)
            {
                int b = j / spatial, s = j - b * spatial;
                int planeEnd = Math.Min(end, (b + 1) * spatial);
                if (live[b] != 0f)
                {
                    int offset = (b * channels + c) * spatial - b * spatial;
                    for (int k = j; k < planeEnd; k++)
                    {
                        double v = x[offset + k] - pivot;
                        sum += v;
                        squares += v * v;
                    }
                    n += planeEnd - j;
                }
                j = planeEnd;
            }
            double mean = n > 0 ? sum / n : 0.0;
            partials[3 * i] = n;
            partials[3 * i + 1] = (float)mean;
            partials[3 * i + 2] = (float)Math.Max(0.0, squares - sum * mean);
        }
    }

    /// <summary>
    /// <see cref="ForwardStatisticsGroups"/> over the live samples: launched and laid out the same way, a thread's values
    /// of off samples skipped (a block of four values is merged at once when all four are live, else value by value), the
    /// pivot taken at the first live sample. Thread 0 writes <c>partials[3g] = n</c>, <c>partials[3g + 1] = mean</c>,
    /// <c>partials[3g + 2] = M2</c> (overwrite). No atomics.
    /// </summary>
    [Kernel(ExplicitlyGrouped = true)]
    public static void ForwardStatisticsGroupsMasked(int channels, int spatial, int count, int chunkLength, int planeStep, int positionStep,
        ArrayView<float> live, ArrayView<float> x, ArrayView<float> partials)
    {
        var warpCounts = SharedMemory.Allocate<int>(MaxWarpsPerGroup);
        var warpMeans = SharedMemory.Allocate<float>(MaxWarpsPerGroup);
        var warpM2s = SharedMemory.Allocate<float>(MaxWarpsPerGroup);
        int chunks = Grid.DimX / channels, g = Grid.IdxX;
        int c = g / chunks, start = (g - c * chunks) * chunkLength;
        int end = Math.Min(count, start + chunkLength), step = Group.DimX;
        float pivot = x[(FirstLive(live, count / spatial) * channels + c) * spatial];
        var w = default(Welford);
        int j = start + Group.IdxX;
        var walk = new ChannelWalk(channels, spatial, c, j, planeStep, positionStep);
        for (; j + 3 * step < end; j += 4 * step)
        {
            bool l0 = live[walk.Sample] != 0f;
            float v0 = x[walk.Offset] - pivot;
            walk.Next();
            bool l1 = live[walk.Sample] != 0f;
            float v1 = x[walk.Offset] - pivot;
            walk.Next();
            bool l2 = live[walk.Sample] != 0f;
            float v2 = x[walk.Offset] - pivot;
            walk.Next();
            bool l3 = live[walk.Sample] != 0f;
            float v3 = x[walk.Offset] - pivot;
            walk.Next();
            if (l0 & l1 & l2 & l3)
            {
                w.AddFour(v0, v1, v2, v3);
            }
            else
            {
                if (l0) w.Add(v0);
                if (l1) w.Add(v1);
                if (l2) w.Add(v2);
                if (l3) w.Add(v3);
            }
        }
        for (; j < end; j += step, walk.Next())
            if (live[walk.Sample] != 0f)
                w.Add(x[walk.Offset] - pivot);

        w = GroupMerge(w, warpCounts, warpMeans, warpM2s);
        if (Group.IdxX == 0)
        {
            partials[3 * g] = w.Count;
            partials[3 * g + 1] = w.Mean;
            partials[3 * g + 2] = w.M2;
        }
    }

    /// <summary>
    /// <see cref="ForwardStatisticsFinalize"/> from the partials of <see cref="ForwardStatisticsChunksMasked"/> or
    /// <see cref="ForwardStatisticsGroupsMasked"/>, one thread per channel: the chunks with live values are merged in
    /// order (Chan's formula, double) into the live count N, the mean μ (the first live sample's pivot added back) and
    /// the biased variance v = M2/N; <c>mean[c] = μ</c>, <c>invstd[c] = 1/√(v + eps)</c>, and with N ≥ 2 the running
    /// statistics are updated as in <see cref="ForwardStatisticsFinalize"/> (unbiased variance M2/(N − 1)). With N = 1
    /// the running statistics are left unchanged; with N = 0 (no live sample) too, and mean/invstd are the running
    /// statistics' (<see cref="InferenceStatistics"/>), so no NaN appears anywhere.
    /// </summary>
    [Kernel]
    public static void ForwardStatisticsFinalizeMasked(Index1D index, int channels, int stride, int spatial, int count, int chunkLength,
        float eps, float momentum, ArrayView<float> live, ArrayView<float> x, ArrayView<float> partials,
        ArrayView<float> mean, ArrayView<float> invstd, ArrayView<float> runningMean, ArrayView<float> runningVar)
    {
        int chunks = (count + chunkLength - 1) / chunkLength;
        int first = FirstLive(live, count / spatial);
        for (int c = index; c < channels; c += stride)
        {
            double n = 0, m = 0, m2 = 0;
            for (int k = 0; k < chunks; k++)
            {
                int p = 3 * (c * chunks + k);
                double nk = partials[p];
                if (nk == 0) continue;
                double total = n + nk, delta = partials[p + 1] - m, weight = nk / total;
                m += delta * weight;
                m2 += partials[p + 2] + delta * delta * n * weight;
                n = total;
            }
            if (n == 0)
            {
                mean[c] = runningMean[c];
                invstd[c] = 1f / MathF.Sqrt(runningVar[c] + eps);
                continue;
            }
            float mu = (float)(x[(first * channels + c) * spatial] + m);
            mean[c] = mu;
            invstd[c] = (float)(1.0 / Math.Sqrt(m2 / n + eps));
            if (n < 2) continue;
            runningMean[c] = (1f - momentum) * runningMean[c] + momentum * mu;
            runningVar[c] = (1f - momentum) * runningVar[c] + momentum * (float)(m2 / (n - 1));
        }
    }

    /// <summary>
    /// <see cref="BackwardChannelSumsChunks"/> over the live samples (dy of off samples skipped), laid out the same way:
    /// <c>partials[2i] = Σ dy</c>, <c>partials[2i + 1] = Σ dy·x̂</c> over item i's live values (dy through the fused ReLU
    /// when <paramref name="reluMask"/> ≠ 0). Overwrites; read by <see cref="BackwardChannelSumsFinalizeMasked"/>.
    /// </summary>
    [Kernel]
    public static void BackwardChannelSumsChunksMasked(Index1D index, int items, int stride, int channels, int spatial, int count,
        int chunkLength, int reluMask, ArrayView<float> live, ArrayView<float> x, ArrayView<float> dOutput, ArrayView<float> output,
        ArrayView<float> mean, ArrayView<float> invstd, ArrayView<float> partials)
    {
        int chunks = items / channels;
        for (int i = index; i < items; i += stride)
        {
            int c = i / chunks, start = (i - c * chunks) * chunkLength;
            int end = Math.Min(count, start + chunkLength);
            float mu = mean[c], inv = invstd[c];
            double dyTotal = 0, dyXhatTotal = 0;
            for (int j = start; j < end;)
            {
                int b = j / spatial;
                int planeEnd = Math.Min(end, (b + 1) * spatial);
                if (live[b] != 0f)
                {
                    int offset = (b * channels + c) * spatial - b * spatial;
                    for (int k = j; k < planeEnd; k++)
                    {
                        float dy = Upstream(dOutput, output, reluMask, offset + k);
                        dyTotal += dy;
                        dyXhatTotal += dy * ((x[offset + k] - mu) * inv);
                    }
                }
                j = planeEnd;
            }
            partials[2 * i] = (float)dyTotal;
            partials[2 * i + 1] = (float)dyXhatTotal;
        }
    }

    /// <summary>
    /// <see cref="BackwardChannelSumsGroups"/> over the live samples: launched and laid out the same way, dy taken as 0
    /// for values of off samples. Thread 0 writes <c>partials[2g] = Σ dy</c>, <c>partials[2g + 1] = Σ dy·x̂</c> (overwrite).
    /// No atomics.
    /// </summary>
    [Kernel(ExplicitlyGrouped = true)]
    public static void BackwardChannelSumsGroupsMasked(int channels, int spatial, int count, int chunkLength, int planeStep, int positionStep,
        int reluMask, ArrayView<float> live, ArrayView<float> x, ArrayView<float> dOutput, ArrayView<float> output, ArrayView<float> mean,
        ArrayView<float> invstd, ArrayView<float> partials)
    {
        GroupChannelSums(1, channels, spatial, count, chunkLength, planeStep, positionStep, reluMask, live, x, dOutput, output, mean, invstd, partials);
    }

    /// <summary>
    /// The body of <see cref="BackwardChannelSumsGroups"/> (<paramref name="masked"/> = 0: <paramref name="live"/> unread)
    /// and <see cref="BackwardChannelSumsGroupsMasked"/> (dy of samples with <c>live[b] = 0</c> skipped).
    /// </summary>
    private static void GroupChannelSums(int masked, int channels, int spatial, int count, int chunkLength, int planeStep, int positionStep,
        int reluMask, ArrayView<float> live, ArrayView<float> x, ArrayView<float> dOutput, ArrayView<float> output, ArrayView<float> mean,
        ArrayView<float> invstd, ArrayView<float> partials)
    {
        var warpDy = SharedMemory.Allocate<float>(MaxWarpsPerGroup);
        var warpDyXhat = SharedMemory.Allocate<float>(MaxWarpsPerGroup);
        int chunks = Grid.DimX / channels, g = Grid.IdxX;
        int c = g / chunks, start = (g - c * chunks) * chunkLength;
        int end = Math.Min(count, start + chunkLength), step = Group.DimX;
        float mu = mean[c], inv = invstd[c];
        float dyTotal = 0f, dyXhatTotal = 0f;
        int j = start + Group.IdxX;
        var walk = new ChannelWalk(channels, spatial, c, j, planeStep, positionStep);
        for (; j + 3 * step < end; j += 4 * step)
        {
            int o0 = walk.Offset, b0 = walk.Sample;
            walk.Next();
            int o1 = walk.Offset, b1 = walk.Sample;
            walk.Next();
            int o2 = walk.Offset, b2 = walk.Sample;
            walk.Next();
            int o3 = walk.Offset, b3 = walk.Sample;
            walk.Next();
            float dy0 = LiveUpstream(masked, live, b0, dOutput, output, reluMask, o0), dy1 = LiveUpstream(masked, live, b1, dOutput, output, reluMask, o1);
            float dy2 = LiveUpstream(masked, live, b2, dOutput, output, reluMask, o2), dy3 = LiveUpstream(masked, live, b3, dOutput, output, reluMask, o3);
            dyTotal += (dy0 + dy1) + (dy2 + dy3);
            dyXhatTotal += (dy0 * ((x[o0] - mu) * inv) + dy1 * ((x[o1] - mu) * inv))
                + (dy2 * ((x[o2] - mu) * inv) + dy3 * ((x[o3] - mu) * inv));
        }
        for (; j < end; j += step, walk.Next())
        {
            float dy = LiveUpstream(masked, live, walk.Sample, dOutput, output, reluMask, walk.Offset);
            dyTotal += dy;
            dyXhatTotal += dy * ((x[walk.Offset] - mu) * inv);
        }

        dyTotal = WarpSum(dyTotal);
        dyXhatTotal = WarpSum(dyXhatTotal);
        if (Warp.IsFirstLane)
        {
            warpDy[Warp.WarpIdx] = dyTotal;
            warpDyXhat[Warp.WarpIdx] = dyXhatTotal;
        }
        Group.Barrier();
        if (Warp.WarpIdx == 0)
        {
            int lane = Warp.LaneIdx;
            bool used = lane < Group.DimX / Warp.WarpSize;
            dyTotal = WarpSum(used ? warpDy[lane] : 0f);
            dyXhatTotal = WarpSum(used ? warpDyXhat[lane] : 0f);
            if (lane == 0)
            {
                partials[2 * g] = dyTotal;
                partials[2 * g + 1] = dyXhatTotal;
            }
        }
    }

    /// <summary>
    /// <see cref="BackwardChannelSumsFinalize"/> for the masked partials, one thread per channel, writing the packed
    /// <c>sums [2·C + 1]</c> that <see cref="BackwardInputMasked"/> reads: <c>sums[c] = Σ dy</c>, <c>sums[C + c] = Σ dy·x̂</c>,
    /// and (thread 0) the statistics weight <c>sums[2C] = 1/N</c>, N = (live samples)·spatial, when
    /// <paramref name="training"/> ≠ 0 and N &gt; 0, else 0 (eval mode, or no live sample). Overwrites sums; accumulates
    /// <c>dBeta[c] += Σ dy</c> / <c>dGamma[c] += Σ dy·x̂</c> when asked, as <see cref="BackwardChannelSumsFinalize"/> does.
    /// </summary>
    [Kernel]
    public static void BackwardChannelSumsFinalizeMasked(Index1D index, int channels, int stride, int spatial, int count, int chunkLength,
        int training, ArrayView<float> live, ArrayView<float> partials, ArrayView<float> sums,
        int accumulateGamma, int accumulateBeta, ArrayView<float> dGamma, ArrayView<float> dBeta)
    {
        int chunks = (count + chunkLength - 1) / chunkLength;
        if (index == 0)
        {
            int samples = 0;
            for (int b = 0; b < count / spatial; b++)
                if (live[b] != 0f) samples++;
            int n = samples * spatial;
            sums[2 * channels] = training != 0 && n > 0 ? 1f / n : 0f;
        }
        for (int c = index; c < channels; c += stride)
            FinalizeChannelSums(c, chunks, partials, sums, c, sums, channels + c, accumulateGamma, accumulateBeta, dGamma, dBeta);
    }

    /// <summary>
    /// Normalisation of the live samples, grid-stride over the n = B·C·S elements (sample <c>b = i / (C·S)</c>):
    /// <c>z = γ[c]·(x[i] − mean[c])·invstd[c] + β[c]</c> (+ residual[i] when <paramref name="addResidual"/> ≠ 0),
    /// <c>y[i] = max(0, z)</c> when <paramref name="relu"/> ≠ 0 else z; <c>y[i] = 0</c> for an off sample. Overwrites y.
    /// Used by both modes.
    /// </summary>
    [Kernel]
    public static void ForwardNormalizeMasked(Index1D index, int n, int stride, int channels, int spatial, int relu, int addResidual,
        ArrayView<float> live, ArrayView<float> x, ArrayView<float> mean, ArrayView<float> invstd, ArrayView<float> gamma,
        ArrayView<float> beta, ArrayView<float> residual, ArrayView<float> y)
    {
        for (int i = index; i < n; i += stride)
        {
            int plane = i / spatial, c = plane % channels;
            if (live[plane / channels] == 0f)
            {
                y[i] = 0f;
                continue;
            }
            float z = gamma[c] * ((x[i] - mean[c]) * invstd[c]) + beta[c];
            if (addResidual != 0) z += residual[i];
            y[i] = relu != 0 && !(z > 0f) ? 0f : z;
        }
    }

    /// <summary>
    /// Backward with respect to the input over the live samples, grid-stride over the n = B·C·S elements:
    /// <c>dInput[i] += γ[c]·invstd[c]·(dy[i] − w·(Σdy[c] + x̂[i]·Σdy·x̂[c]))</c> with the packed sums and weight
    /// <c>w = sums[2C]</c> of <see cref="BackwardChannelSumsFinalizeMasked"/>. <paramref name="flags"/> (the launcher
    /// has no room for two ints): <see cref="ReluFlag"/> set, dy through the fused ReLU (without it output is ignored;
    /// pass dOutput); <see cref="AccumulateFlag"/> set, accumulates and off samples get nothing, else overwrites every
    /// element (off samples get 0, see <see cref="ElementwiseKernels.Prior"/>).
    /// </summary>
    [Kernel]
    public static void BackwardInputMasked(Index1D index, int n, int stride, int channels, int spatial, int flags,
        ArrayView<float> live, ArrayView<float> x, ArrayView<float> dOutput, ArrayView<float> output, ArrayView<float> mean,
        ArrayView<float> invstd, ArrayView<float> gamma, ArrayView<float> sums, ArrayView<float> dInput)
    {
        float w = sums[2 * channels];
        var sumDy = sums.SubView(0, channels);
        var sumDyXhat = sums.SubView(channels, channels);
        int reluMask = flags & ReluFlag, accumulate = flags & AccumulateFlag;
        for (int i = index; i < n; i += stride)
        {
            if (live[i / spatial / channels] == 0f)
            {
                if (accumulate == 0) dInput[i] = 0f;
                continue;
            }
            dInput[i] = ElementwiseKernels.Prior(accumulate, dInput, i)
                + InputGradient(i, channels, spatial, w, x[i], Upstream(dOutput, output, reluMask, i), mean, invstd, gamma, sumDy, sumDyXhat);
        }
    }

    /// <summary><see cref="BackwardInputMasked"/>'s flag: dy through the fused ReLU.</summary>
    public const int ReluFlag = 1;

    /// <summary><see cref="BackwardInputMasked"/>'s flag: accumulate into dInput (clear: overwrite every element).</summary>
    public const int AccumulateFlag = 2;

    // ---- synchronised batch norm: one rank's pieces of the global batch's chunks, in double ----------------
    // A rank holds the values [offset, offset + count) of each channel of the global batch (in (b, s) order). The pieces
    // are the intersections of that range with the chunks [k·chunkLength, (k + 1)·chunkLength) of the global plan, from
    // chunk offset / chunkLength on: piece i = c·pieces + j of channel c lies in chunk offset / chunkLength + j. Each sums
    // its values in order, in double, with the arithmetic of the chunk kernels, and keeps the sums in double, so adding a
    // chunk's pieces in rank order gives one process's chunk partials.

    /// <summary>
    /// Forward pieces, grid-stride over the items = channels·pieces work items: over the piece's values of live samples
    /// (every sample when <see cref="BatchNormPieces.Masked"/> = 0; <paramref name="live"/> then unread),
    /// <c>v = x − pivot[c]</c> (the global batch's pivot), <c>sums[3i] = n</c>, <c>sums[3i + 1] = Σv</c>,
    /// <c>sums[3i + 2] = Σv²</c> (overwrite).
    /// </summary>
    [Kernel]
    public static void ForwardStatisticsPieces(Index1D index, int items, int stride, BatchNormPieces layout,
        ArrayView<float> live, ArrayView<float> pivot, ArrayView<float> x, ArrayView<double> sums)
    {
        int channels = layout.Channels, spatial = layout.Spatial, masked = layout.Masked;
        for (int i = index; i < items; i += stride)
        {
            var (c, start, end) = layout.Piece(i, items);
            double p = pivot[c], sum = 0, squares = 0;
            int n = 0;
            for (int j = start; j < end; j++)
            {
                int b = j / spatial;
                if (masked != 0 && live[b] == 0f) continue;
                double v = x[(b * channels + c) * spatial + j - b * spatial] - p;
                sum += v;
                squares += v * v;
                n++;
            }
            sums[3 * i] = n;
            sums[3 * i + 1] = sum;
            sums[3 * i + 2] = squares;
        }
    }

    /// <summary>
    /// Backward pieces, laid out as in <see cref="ForwardStatisticsPieces"/>: over the piece's values of live samples,
    /// <c>sums[2i] = Σ dy</c>, <c>sums[2i + 1] = Σ dy·x̂</c> in double (x̂ in float as in <see cref="BackwardChannelSumsChunks"/>;
    /// dy through the fused ReLU when <paramref name="reluMask"/> ≠ 0). Overwrites.
    /// </summary>
    [Kernel]
    public static void BackwardChannelSumsPieces(Index1D index, int items, int stride, BatchNormPieces layout, int reluMask,
        ArrayView<float> live, ArrayView<float> x, ArrayView<float> dOutput, ArrayView<float> output, ArrayView<float> mean,
        ArrayView<float> invstd, ArrayView<double> sums)
    {
        int channels = layout.Channels, spatial = layout.Spatial, masked = layout.Masked;
        for (int i = index; i < items; i += stride)
        {
            var (c, start, end) = layout.Piece(i, items);
            float mu = mean[c], inv = invstd[c];
            double dyTotal = 0, dyXhatTotal = 0;
            for (int j = start; j < end; j++)
            {
                int b = j / spatial;
                if (masked != 0 && live[b] == 0f) continue;
                int o = (b * channels + c) * spatial + j - b * spatial;
                float dy = Upstream(dOutput, output, reluMask, o);
                dyTotal += dy;
                dyXhatTotal += dy * ((x[o] - mu) * inv);
            }
            sums[2 * i] = dyTotal;
            sums[2 * i + 1] = dyXhatTotal;
        }
    }

    // ---- helpers ----------------------------------------------------------------------------------------

    /// <summary>dOutput[i], or with reluMask ≠ 0 the gradient through a ReLU whose output is output: 0 where output[i] ≤ 0.</summary>
    private static float Upstream(ArrayView<float> dOutput, ArrayView<float> output, int reluMask, int i) =>
        reluMask != 0 && !(output[i] > 0f) ? 0f : dOutput[i];

    /// <summary>
    /// Channel c's backward sums from its chunk partials (Σ dy, Σ dy·x̂ pairs), added in order in double: stored at
    /// <c>dyTarget[dyAt]</c> and <c>dyXhatTarget[dyXhatAt]</c>, and added into dBeta[c] / dGamma[c] when asked.
    /// </summary>
    private static void FinalizeChannelSums(int c, int chunks, ArrayView<float> partials, ArrayView<float> dyTarget, int dyAt,
        ArrayView<float> dyXhatTarget, int dyXhatAt, int accumulateGamma, int accumulateBeta, ArrayView<float> dGamma, ArrayView<float> dBeta)
    {
        double dyTotal = 0, dyXhatTotal = 0;
        for (int k = 0; k < chunks; k++)
        {
            int p = 2 * (c * chunks + k);
            dyTotal += partials[p];
            dyXhatTotal += partials[p + 1];
        }
        float dy = (float)dyTotal, dyXhat = (float)dyXhatTotal;
        dyTarget[dyAt] = dy;
        dyXhatTarget[dyXhatAt] = dyXhat;
        if (accumulateBeta != 0) dBeta[c] += dy;
        if (accumulateGamma != 0) dGamma[c] += dyXhat;
    }

    /// <summary>
    /// Merges the Welford states of a group's threads in a fixed tree: a butterfly of warp shuffles, one shared entry per
    /// warp (<paramref name="counts"/>, <paramref name="means"/>, <paramref name="m2s"/>), the same butterfly in the first
    /// warp. The group's state is valid in thread 0.
    /// </summary>
    private static Welford GroupMerge(Welford w, ArrayView<int> counts, ArrayView<float> means, ArrayView<float> m2s)
    {
        w = Welford.WarpMerge(w);
        if (Warp.IsFirstLane)
        {
            counts[Warp.WarpIdx] = w.Count;
            means[Warp.WarpIdx] = w.Mean;
            m2s[Warp.WarpIdx] = w.M2;
        }
        Group.Barrier();
        if (Warp.WarpIdx == 0)
        {
            int lane = Warp.LaneIdx;
            w = lane < Group.DimX / Warp.WarpSize ? new Welford(counts[lane], means[lane], m2s[lane]) : default;
            w = Welford.WarpMerge(w);
        }
        return w;
    }

    /// <summary><see cref="Upstream"/> for a value of sample b, or 0 when the sample is off (live[b] = 0) and <paramref name="masked"/> ≠ 0.</summary>
    private static float LiveUpstream(int masked, ArrayView<float> live, int b, ArrayView<float> dOutput, ArrayView<float> output, int reluMask, int i) =>
        masked == 0 ? Upstream(dOutput, output, reluMask, i) : LiveUpstream(live, b, dOutput, output, reluMask, i);

    /// <summary><see cref="Upstream"/> for a value of sample b, or 0 when the sample is off (live[b] = 0).</summary>
    private static float LiveUpstream(ArrayView<float> live, int b, ArrayView<float> dOutput, ArrayView<float> output, int reluMask, int i) =>
        live[b] == 0f ? 0f : Upstream(dOutput, output, reluMask, i);

    /// <summary>The first sample b &lt; batch with live[b] ≠ 0, or 0 when none is live.</summary>
    private static int FirstLive(ArrayView<float> live, int batch)
    {
        for (int b = 0; b < batch; b++)
            if (live[b] != 0f) return b;
        return 0;
    }

    /// <summary><c>γ[c]·invstd[c]·(dy − w·(Σdy[c] + x̂·Σdy·x̂[c]))</c> for element i of channel c = (i / spatial) % channels.</summary>
    private static float InputGradient(int i, int channels, int spatial, float statisticsWeight, float x, float dy,
        ArrayView<float> mean, ArrayView<float> invstd, ArrayView<float> gamma, ArrayView<float> sumDy, ArrayView<float> sumDyXhat)
    {
        int c = i / spatial % channels;
        float inv = invstd[c];
        float xhat = (x - mean[c]) * inv;
        return gamma[c] * inv * (dy - statisticsWeight * (sumDy[c] + xhat * sumDyXhat[c]));
    }

    /// <summary>
    /// Walks the values j = first, first + step, ... of channel c in (b, s) order (j = b·spatial + s), the step given
    /// as planeStep = step / spatial and positionStep = step % spatial so that no division runs per step (ILGPU
    /// places loop-invariant values inside the loop); <see cref="Offset"/> is the element's index in the NCHW tensor.
    /// </summary>
    private struct ChannelWalk(int channels, int spatial, int channel, int first, int planeStep, int positionStep)
    {
        private int _b = first / spatial, _s = first % spatial;

        /// <summary>A walk with step 1.</summary>
        public static ChannelWalk Unit(int channels, int spatial, int channel, int first) =>
            spatial == 1
                ? new ChannelWalk(channels, spatial, channel, first, 1, 0)
                : new ChannelWalk(channels, spatial, channel, first, 0, 1);

        public readonly int Offset => (_b * channels + channel) * spatial + _s;

        /// <summary>The sample b of the current value.</summary>
        public readonly int Sample => _b;

        public void Next()
        {
            int s = _s + positionStep;
            int wrap = s >= spatial ? 1 : 0; // a select, not a branch, between the loads in flight
            _s = s - wrap * spatial;
            _b += planeStep + wrap;
        }
    }

    /// <summary>Count, mean and M2 = Σ(v − mean)² of a run of values: Welford's update, Chan's merge.</summary>
    private struct Welford(int count, float mean, float m2)
    {
        public int Count = count;
        public float Mean = mean;
        public float M2 = m2;

        public void Add(float v)
        {
            Count++;
            float delta = v - Mean;
            Mean += delta / Count;
            M2 += delta * (v - Mean);
        }

        /// <summary>Adds four values at once: their mean and M2, merged in (one division).</summary>
        public void AddFour(float v0, float v1, float v2, float v3)
        {
            float mean = ((v0 + v1) + (v2 + v3)) * 0.25f;
            float d0 = v0 - mean, d1 = v1 - mean, d2 = v2 - mean, d3 = v3 - mean;
            this = Merge(this, new Welford(4, mean, (d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3)));
        }

        /// <summary>The statistics of a's values followed by b's (either may be empty).</summary>
        public static Welford Merge(Welford a, Welford b)
        {
            int n = a.Count + b.Count;
            float weight = n > 0 ? (float)b.Count / n : 0f;
            float delta = b.Mean - a.Mean;
            return new Welford(n, a.Mean + delta * weight, a.M2 + b.M2 + delta * delta * a.Count * weight);
        }

        /// <summary>Merges the warp's lanes by a butterfly of shuffles, lower lanes first (every lane gets the same value).</summary>
        public static Welford WarpMerge(Welford w)
        {
            for (int offset = 1; offset < Warp.WarpSize; offset <<= 1)
            {
                var other = new Welford(Warp.ShuffleXor(w.Count, offset), Warp.ShuffleXor(w.Mean, offset), Warp.ShuffleXor(w.M2, offset));
                w = (Warp.LaneIdx & offset) == 0 ? Merge(w, other) : Merge(other, w);
            }
            return w;
        }
    }
}

/// <summary>
/// One rank's part of a synchronised batch norm's global batch, for <see cref="BatchNormKernels.ForwardStatisticsPieces"/>
/// and <see cref="BatchNormKernels.BackwardChannelSumsPieces"/>: the rank holds <see cref="Count"/> values of each of the
/// <see cref="Channels"/> channels (B·S, S = <see cref="Spatial"/>), the global values [<see cref="Offset"/>,
/// <see cref="Offset"/> + <see cref="Count"/>), and the global batch is reduced in chunks of <see cref="ChunkLength"/> values.
/// </summary>
public readonly struct BatchNormPieces
{
    /// <summary>Channels C.</summary>
    public readonly int Channels;
    /// <summary>Spatial positions S = H·W.</summary>
    public readonly int Spatial;
    /// <summary>This rank's values per channel, B·S.</summary>
    public readonly int Count;
    /// <summary>The global index of this rank's first value of a channel.</summary>
    public readonly int Offset;
    /// <summary>Values per chunk of the global batch.</summary>
    public readonly int ChunkLength;
    /// <summary>1: only samples with live[b] ≠ 0 count; 0: every sample (live unread).</summary>
    public readonly int Masked;

    /// <summary>
    /// Piece <paramref name="i"/> of <paramref name="items"/> = Channels·pieces: its channel and its range [start, end) of
    /// this rank's values of that channel (the part of global chunk Offset / ChunkLength + i mod pieces held here).
    /// </summary>
    public (int Channel, int Start, int End) Piece(int i, int items)
    {
        int pieces = items / Channels, c = i / pieces, k = Offset / ChunkLength + i - c * pieces;
        return (c, Math.Max(0, k * ChunkLength - Offset), Math.Min(Count, (k + 1) * ChunkLength - Offset));
    }

    /// <summary>A layout; every field as named.</summary>
    public BatchNormPieces(int channels, int spatial, int count, int offset, int chunkLength, int masked)
    {
        Channels = channels;
        Spatial = spatial;
        Count = count;
        Offset = offset;
        ChunkLength = chunkLength;
        Masked = masked;
    }
}
