using IlgpuDdw.Distributed;

namespace IlgpuDdw.Autograd;

public static partial class Ops
{
    /// <summary>
    /// Synchronised batch-norm statistics over every rank of <paramref name="group"/> (the global batch): each rank
    /// reduces its own values with the plan's partial kernel, merges its chunks on the host in double (count, mean,
    /// M2, Chan's formula as <see cref="Kernels.BatchNormKernels.ForwardStatisticsFinalize"/> does), the ranks
    /// exchange those three numbers per channel (all-gather) and every rank merges them in rank order, so every rank
    /// gets the same mean and 1/√(σ² + eps) bit for bit. Overwrites <paramref name="mean"/> and
    /// <paramref name="invstd"/>, updates the running statistics as the kernels do (unbiased variance of the global
    /// batch) and returns the global count N = Σ B·H·W (the backward's statistics weight is 1/N). With
    /// <paramref name="live"/> (the live-sample mask of an off-node batch norm) only the live samples count, through the
    /// masked partial kernels, as <see cref="Kernels.BatchNormKernels.ForwardStatisticsFinalizeMasked"/> does: N = 0
    /// leaves the running statistics and normalises with them, N = 1 leaves them unchanged.
    /// </summary>
    internal static long SyncBatchNormStatistics(Communicator group, BatchNormPlan plan, Tensor input, float eps, float momentum,
        Tensor mean, Tensor invstd, Tensor runningMean, Tensor runningVar, Tensor? live = null)
    {
        var d = input.Device;
        int batch = input.Dim(0), channels = input.Dim(1), spatial = input.Dim(2) * input.Dim(3), count = batch * spatial;
        if (plan.Reduction == BatchNormReduction.PerChannel) plan = new BatchNormPlan(BatchNormReduction.Chunks, count, 1); // one chunk per channel
        // unmasked partials: (mean, M2) per chunk of known size; masked: (count, mean, M2), shifted by the first live sample
        int width = live is null ? 2 : 3, chunks = plan.Chunks(count), items = channels * chunks;
        var partialsHost = new float[width * items];
        using (var partials = Tensor.Empty(d, width * items))
        {
            var grouped = new ILGPU.KernelConfig(items, plan.GroupSize);
            int itemExtent = d.Extent(items), planeStep = plan.GroupSize / spatial, positionStep = plan.GroupSize % spatial;
            bool chunked = plan.Reduction == BatchNormReduction.Chunks;
            if (live is null && chunked)
                d.Kernels.BatchNormForwardStatisticsChunks(d.Stream, itemExtent, items, itemExtent, channels, spatial, count,
                    plan.ChunkLength, input.View, partials.View);
            else if (live is null)
                d.Kernels.BatchNormForwardStatisticsGroups(d.Stream, grouped, channels, spatial, count,
                    plan.ChunkLength, planeStep, positionStep, input.View, partials.View);
            else if (chunked)
                d.Kernels.BatchNormForwardStatisticsChunksMasked(d.Stream, itemExtent, items, itemExtent, channels, spatial, count,
                    plan.ChunkLength, live.View, input.View, partials.View);
            else
                d.Kernels.BatchNormForwardStatisticsGroupsMasked(d.Stream, grouped, channels, spatial, count,
                    plan.ChunkLength, planeStep, positionStep, live.View, input.View, partials.View);
            d.Download(partials.View, partialsHost.AsSpan());
        }
        int first = live is null ? 0 : Math.Max(0, Array.FindIndex(live.ToArray(), v => v != 0f)); // the kernels' pivot sample
        // the partial kernels' shift of channel c is x[first, c, 0]: one download of that sample, not one per channel
        var sample = new float[channels * spatial];
        d.Download(input.View.SubView((long)first * channels * spatial, (long)channels * spatial), sample.AsSpan());
        var local = new double[3 * channels];
        for (int c = 0; c < channels; c++)
        {
            double n = 0, m = 0, m2 = 0;
            for (int k = 0; k < chunks; k++)
            {
                int p = width * (c * chunks + k);
                double nk = live is null ? Math.Min(plan.ChunkLength, count - k * plan.ChunkLength) : partialsHost[p++];
                if (nk == 0) continue;
                double total = n + nk, delta = partialsHost[p] - m, weight = nk / total;
                m += delta * weight;
                m2 += partialsHost[p + 1] + delta * delta * n * weight;
                n = total;
            }
            local[3 * c] = n;
            local[3 * c + 1] = sample[c * spatial] + m;
            local[3 * c + 2] = m2;
        }
        return MergeRankStatistics(group, local, eps, momentum, mean, invstd, runningMean, runningVar);
    }

    /// <summary>
    /// Merges every rank's (count, mean, M2) per channel in rank order (the same on every rank), writes mean and
    /// 1/√(σ² + eps), updates the running statistics and returns the global count.
    /// </summary>
    private static long MergeRankStatistics(Communicator group, double[] local, float eps, float momentum,
        Tensor mean, Tensor invstd, Tensor runningMean, Tensor runningVar)
    {
        int channels = local.Length / 3;
        var all = group.AllGather<double>(local);
        var meanHost = new float[channels];
        var invstdHost = new float[channels];
        var runningMeanHost = runningMean.ToArray();
        var runningVarHost = runningVar.ToArray();
        double globalCount = 0;
        for (int c = 0; c < channels; c++)
        {
            double n = 0, m = 0, m2 = 0;
            for (int r = 0; r < group.Size; r++)
            {
                int q = 3 * (r * channels + c);
                double nr = all[q];
                if (nr == 0) continue;
                double total = n + nr, delta = all[q + 1] - m, weight = nr / total;
                m += delta * weight;
                m2 += all[q + 2] + delta * delta * n * weight;
                n = total;
            }
            globalCount = n;
            if (n == 0) // no live value anywhere: the running statistics, unchanged
            {
                meanHost[c] = runningMeanHost[c];
                invstdHost[c] = (float)(1.0 / Math.Sqrt(runningVarHost[c] + eps));
                continue;
            }
            float mu = (float)m;
            meanHost[c] = mu;
            invstdHost[c] = (float)(1.0 / Math.Sqrt(m2 / n + eps));
            if (n < 2) continue; // one value: no unbiased variance, running statistics unchanged
            runningMeanHost[c] = (1f - momentum) * runningMeanHost[c] + momentum * mu;
            runningVarHost[c] = (1f - momentum) * runningVarHost[c] + momentum * (float)(m2 / (n - 1));
        }
        mean.CopyFrom(meanHost);
        invstd.CopyFrom(invstdHost);
        runningMean.CopyFrom(runningMeanHost);
        runningVar.CopyFrom(runningVarHost);
        return (long)globalCount;
    }
}
