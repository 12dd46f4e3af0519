namespace IlgpuDdw.Autograd;

/// <summary>
/// How BatchNorm2d reduces each channel's B·H·W values, for the batch statistics and the backward sums Σdy and
/// Σdy·x̂ (the rungs of <see cref="BatchNormKernels"/>). All three are deterministic.
/// </summary>
public enum BatchNormReduction
{
    /// <summary>One thread per channel, one float running sum (the first rung; a few 1e-6 relative error at 25k values; no fused form).</summary>
    PerChannel,

    /// <summary>Channel × chunk work items summing in double, then a finalize in double (the CPU accelerator's default).</summary>
    Chunks,

    /// <summary>One group per channel × chunk (warp shuffles, shared memory), then a finalize in double (the GPU's default).</summary>
    Groups,
}

/// <summary>
/// One BatchNorm2d reduction launch shape: the <see cref="Reduction"/>, the values per chunk of a channel
/// (<see cref="BatchNormReduction.Chunks"/> and <see cref="BatchNormReduction.Groups"/>) and the threads per group
/// (<see cref="BatchNormReduction.Groups"/> only: a multiple of the warp size, at most one warp of warps).
/// <see cref="For(Device, int, int)"/> picks the device's default.
/// </summary>
/// <param name="Reduction">Which rung reduces the channels.</param>
/// <param name="ChunkLength">Values per chunk (the last chunk of a channel may be shorter).</param>
/// <param name="GroupSize">Threads per group of the grouped kernels.</param>
public readonly record struct BatchNormPlan(BatchNormReduction Reduction, int ChunkLength, int GroupSize)
{
    /// <summary>Threads per group of the default GPU plan.</summary>
    public const int GpuGroupSize = 256;

    /// <summary>Fewest values per thread the default GPU plan gives a group (more chunks would only add partials).</summary>
    public const int GpuMinValuesPerThread = 8;

    /// <summary>Chunks per channel for <paramref name="count"/> = B·H·W values (1 for <see cref="BatchNormReduction.PerChannel"/>).</summary>
    public int Chunks(int count) => Reduction == BatchNormReduction.PerChannel ? 1 : (count + ChunkLength - 1) / ChunkLength;

    /// <summary>The default plan of <paramref name="device"/> for a layer of C = <paramref name="channels"/> and N = <paramref name="count"/> values per channel.</summary>
    public static BatchNormPlan For(Device device, int channels, int count) => For(device.Kind, device.MaxThreads, channels, count);

    /// <summary>
    /// The default plan for a device of <paramref name="kind"/> running at most <paramref name="maxThreads"/> threads
    /// at once (<see cref="Device.MaxThreads"/>; an H200: 132 SMs × 2048). CPU accelerator: <see cref="BatchNormReduction.Chunks"/>
    /// with about two work items per simulated thread (few large chunks). Cuda: <see cref="BatchNormReduction.Groups"/>
    /// of <see cref="GpuGroupSize"/> threads and enough chunks for one full wave of resident groups
    /// (maxThreads / <see cref="GpuGroupSize"/> groups), but no fewer than <see cref="GpuMinValuesPerThread"/> values per thread.
    /// </summary>
    public static BatchNormPlan For(DeviceKind kind, int maxThreads, int channels, int count)
    {
        channels = Math.Max(1, channels);
        count = Math.Max(1, count);
        int chunks = kind == DeviceKind.Cpu
            ? Math.Clamp(CeilDiv(2 * maxThreads, channels), 1, count)
            : Math.Clamp(CeilDiv(Math.Max(1, maxThreads / GpuGroupSize), channels), 1, Math.Max(1, count / (GpuGroupSize * GpuMinValuesPerThread)));
        int chunkLength = CeilDiv(count, chunks);
        return kind == DeviceKind.Cpu
            ? new(BatchNormReduction.Chunks, chunkLength, 1)
            : new(BatchNormReduction.Groups, chunkLength, GpuGroupSize);
    }

    /// <summary>Throws when this plan cannot run on <paramref name="device"/>.</summary>
    /// <exception cref="ArgumentException">An unknown reduction, <see cref="BatchNormReduction.PerChannel"/> for a fused
    /// op (<paramref name="fused"/>) or a live-sample mask (<paramref name="masked"/>), a chunk length below 1, or a group
    /// size that is not a positive multiple of the warp size, exceeds the device's group limit or has more warps than a
    /// warp has lanes (or than <see cref="BatchNormKernels.MaxWarpsPerGroup"/>).</exception>
    internal void Validate(Device device, string op, bool fused = false, bool masked = false)
    {
        if (!Enum.IsDefined(Reduction))
            throw new ArgumentException($"{op}: unknown reduction {(int)Reduction}.", "plan");
        if (Reduction == BatchNormReduction.PerChannel)
        {
            if (fused)
                throw new ArgumentException($"{op}: the {Reduction} reduction has no fused form; use Chunks or Groups.", "plan");
            if (masked)
                throw new ArgumentException($"{op}: the {Reduction} reduction has no live-sample form; use Chunks or Groups.", "plan");
            return;
        }
        if (ChunkLength < 1)
            throw new ArgumentException($"{op}: chunk length must be at least 1; got {ChunkLength}.", "plan");
        if (Reduction != BatchNormReduction.Groups) return;
        device.ValidateReductionGroup(op, GroupSize);
    }

    private static int CeilDiv(int a, int b) => (a + b - 1) / b;
}

public static partial class Ops
{
    /// <summary>
    /// BatchNorm2d over an NCHW input [B, C, H, W] with affine parameters <paramref name="gamma"/> and
    /// <paramref name="beta"/> ([C] each): <c>y = γ[c]·(x − μ[c])/√(σ²[c] + eps) + β[c]</c>.
    /// In training mode μ and σ² are the batch statistics per channel (biased variance over B·H·W values) and the
    /// running statistics are updated in place, PyTorch's way:
    /// <c>running = (1 − momentum)·running + momentum·batch</c>, the variance term using the unbiased batch
    /// variance (this happens under <see cref="Tape.NoGrad"/> too). In eval mode the running statistics are used
    /// and left unchanged. The mean and 1/√(σ² + eps) the backward needs are saved in tape-owned tensors.
    /// Gradients flow to the input, gamma and beta (through the batch statistics in training mode). The channel
    /// reductions run as <paramref name="plan"/> says (default: <see cref="BatchNormPlan.For(Device, int, int)"/>).
    /// <para>
    /// With <paramref name="live"/> (a [B] mask, non-zero = live; the off nodes of dynamic wiring) only the live samples
    /// count: the batch statistics, the running-statistics update and the backward sums run over them (N = live·H·W),
    /// and an off sample's output and input gradient are 0. The running statistics are updated only when N ≥ 2; with
    /// N = 0 the saved statistics are the running ones. With every sample live the numbers are bit-identical to the
    /// op without a mask. The masked path runs the Chunks and Groups reductions.
    /// </para>
    /// </summary>
    /// <exception cref="ArgumentException">The input is not rank 4; a parameter or running statistic does not
    /// have C elements; momentum is outside [0, 1]; eps ≤ 0; or training mode with B·H·W = 1 (the variance is
    /// undefined); a mask that does not have B elements; or a <paramref name="plan"/> the device cannot run.</exception>
    public static Tensor BatchNorm2d(this Tape tape, Tensor input, Tensor gamma, Tensor beta, Tensor runningMean,
        Tensor runningVar, bool training, float momentum = 0.1f, float eps = 1e-5f, BatchNormPlan? plan = null, Tensor? live = null) =>
        BatchNorm2d("BatchNorm2d", tape, input, gamma, beta, runningMean, runningVar, training, momentum, eps, plan, relu: false, null, live);

    /// <summary>
    /// <see cref="BatchNorm2d(Tape, Tensor, Tensor, Tensor, Tensor, Tensor, bool, float, float, BatchNormPlan?, Tensor?)"/>
    /// fused with an optional residual add and a ReLU: <c>y = max(0, BatchNorm2d(x) + residual)</c> (the end of a
    /// ResNet block; without <paramref name="residual"/> the conv–BN–ReLU of its first half) in one elementwise pass,
    /// and a backward that masks the upstream gradient where y = 0 inside the channel sums and the input gradient
    /// (the residual's gradient is the masked upstream gradient). Saves y, the mean and 1/√(σ² + eps). The plan must
    /// be <see cref="BatchNormReduction.Chunks"/> or <see cref="BatchNormReduction.Groups"/> (every default is).
    /// With <paramref name="live"/> only the live samples count, as in BatchNorm2d (off samples: y = 0).
    /// </summary>
    /// <exception cref="ArgumentException">As BatchNorm2d, a residual whose shape differs from the input's, or a
    /// <see cref="BatchNormReduction.PerChannel"/> plan.</exception>
    public static Tensor BatchNorm2dRelu(this Tape tape, Tensor input, Tensor gamma, Tensor beta, Tensor runningMean,
        Tensor runningVar, bool training, Tensor? residual = null, float momentum = 0.1f, float eps = 1e-5f, BatchNormPlan? plan = null,
        Tensor? live = null) =>
        BatchNorm2d("BatchNorm2dRelu", tape, input, gamma, beta, runningMean, runningVar, training, momentum, eps, plan, relu: true, residual, live);

    private static Tensor BatchNorm2d(string op, Tape tape, Tensor input, Tensor gamma, Tensor beta, Tensor runningMean,
        Tensor runningVar, bool training, float momentum, float eps, BatchNormPlan? plan, bool relu, Tensor? residual, Tensor? live)
    {
        RequireSameDevice(op, tape, input, gamma, beta, runningMean, runningVar);

        if (residual is not null)
        {
            RequireSameDevice(op, tape, residual);
            RequireSameShape(op, input, residual);
        }
        RequireNchw(op, input);
        int batch = input.Dim(0), channels = input.Dim(1), spatial = input.Dim(2) * input.Dim(3);
        if (live is not null)
        {
            RequireSameDevice(op, tape, live);
            if (live.Length != batch)
                throw new ArgumentException(
                    $"{op}: the live-sample mask must have B = {batch} elements (input {input.ShapeString}); got shape {live.ShapeString}.", nameof(live));
        }
        RequireChannelVector(op, nameof(gamma), gamma, channels, input);
        RequireChannelVector(op, nameof(beta), beta, channels, input);
        RequireChannelVector(op, nameof(runningMean), runningMean, channels, input);
        RequireChannelVector(op, nameof(runningVar), runningVar, channels, input);
        if (!(momentum >= 0f && momentum <= 1f))
            throw new ArgumentException($"{op}: momentum must be in [0, 1]; got {momentum}.", nameof(momentum));
        if (!(eps > 0f))
            throw new ArgumentException($"{op}: eps must be positive; got {eps}.", nameof(eps));
        if (training && batch * spatial < 2)
            throw new ArgumentException(
                $"{op}: training mode needs more than one value per channel to compute a variance; input {input.ShapeString} has B·H·W = {batch * spatial}.",
                nameof(input));

        var d = tape.Device;
        var launch = plan ?? BatchNormPlan.For(d, channels, batch * spatial);
        launch.Validate(d, op, relu, live is not null);

        bool needsGrad = residual is null ? tape.NeedsGrad(input, gamma, beta) : tape.NeedsGrad(input, gamma, beta, residual);
        var y = tape.NewTensor([.. input.Shape]);
        var mean = Tensor.Empty(d, channels);
        var invstd = Tensor.Empty(d, channels);
        int n = y.Length;
        int channelExtent = d.Extent(channels), ext = d.Extent(n);
        var group = training && tape.BatchNormGroup is { Size: > 1 } g ? g : null; // synchronised batch norm
        SyncBatchNormLayout? sync = null;
        if (group is not null)
            sync = SyncBatchNormStatistics(group, plan, input, eps, momentum, mean, invstd, runningMean, runningVar, live);
        else if (training)
            BatchNormStatistics(launch, input, eps, momentum, mean, invstd, runningMean, runningVar, live);
        else
            d.Kernels.BatchNormInferenceStatistics(d.Stream, channelExtent, channels, channelExtent, eps,
                runningMean.View, runningVar.View, mean.View, invstd.View);
        if (live is not null)
            d.Kernels.BatchNormForwardNormalizeMasked(d.Stream, ext, n, ext, channels, spatial, relu ? 1 : 0, residual is null ? 0 : 1,
                live.View, input.View, mean.View, invstd.View, gamma.View, beta.View, (residual ?? input).View, y.View);
        else if (relu)
            d.Kernels.BatchNormForwardNormalizeRelu(d.Stream, ext, n, ext, channels, spatial, residual is null ? 0 : 1,
                input.View, mean.View, invstd.View, gamma.View, beta.View, (residual ?? input).View, y.View);
        else
            d.Kernels.BatchNormForwardNormalize(d.Stream, ext, n, ext, channels, spatial,
                input.View, mean.View, invstd.View, gamma.View, beta.View, y.View);
        if (!needsGrad)
        {
            // stream-ordered: a later reuse of these pooled buffers runs after the launches above
            mean.Dispose();
            invstd.Dispose();
            return y;
        }
        tape.Own(mean);
        tape.Own(invstd);

        if (live is not null)
        {
            tape.Record(op, y, () => BatchNormBackwardMasked(launch, training, input, y, relu, residual, gamma, beta, mean, invstd, live, sync));
            return y;
        }
        float statisticsWeight = training ? 1f / (sync?.StatisticsCount ?? batch * spatial) : 0f;
        tape.Record(op, y, () =>
        {
            using var sums = Tensor.Empty(d, 2 * channels); // Σdy, then Σdy·x̂
            using var sumDy = sums.Slice(0, channels);
            using var sumDyXhat = sums.Slice(channels, channels);
            if (sync is not null) // the global batch's sums, as one process computes them
            {
                var (dy, dyXhat) = SyncBatchNormChannelSums(sync, input, y.Grad, relu ? y : null, mean, invstd, null,
                    gamma.RequiresGrad ? gamma.Grad : null, beta.RequiresGrad ? beta.Grad : null);
                sumDy.CopyFrom(dy);
                sumDyXhat.CopyFrom(dyXhat);
            }
            else
            {
                BatchNormChannelSums(launch, input, y.Grad, relu ? y : null, mean, invstd, sumDy, sumDyXhat,
                    gamma.RequiresGrad ? gamma.Grad : null, beta.RequiresGrad ? beta.Grad : null);
            }
            if (input.RequiresGrad)
            {
                var dInput = input.GradForWrite(out int accumulate);
                if (relu)
                    d.Kernels.BatchNormBackwardInputRelu(d.Stream, ext, n, ext, channels, spatial, statisticsWeight, accumulate, input.View,
                        y.Grad.View, y.View, mean.View, invstd.View, gamma.View, sums.View, dInput);
                else
                    d.Kernels.BatchNormBackwardInput(d.Stream, ext, n, ext, channels, spatial, statisticsWeight, accumulate,
                        input.View, y.Grad.View, mean.View, invstd.View, gamma.View, sums.View, dInput);
            }
            if (residual is not null && residual.RequiresGrad)
            {
                var dResidual = residual.GradForWrite(out int accumulate);
                d.Kernels.ReluBackward(d.Stream, ext, n, ext, accumulate, y.View, y.Grad.View, dResidual);
            }
        });
        return y;
    }

    /// <summary>
    /// The recorded backward of the live-sample path: the masked channel sums (packed with the statistics weight),
    /// the input gradient over the live samples, and the residual's gradient through the fused ReLU.
    /// </summary>
    private static void BatchNormBackwardMasked(BatchNormPlan plan, bool training, Tensor input, Tensor y, bool relu, Tensor? residual,
        Tensor gamma, Tensor beta, Tensor mean, Tensor invstd, Tensor live, SyncBatchNormLayout? sync)
    {
        var d = input.Device;
        int channels = input.Dim(1), spatial = input.Dim(2) * input.Dim(3), n = y.Length, ext = d.Extent(n);
        using var sums = Tensor.Empty(d, 2 * channels + 1);
        if (sync is not null) // the global batch's live sums and weight, as one process computes them
        {
            var (dy, dyXhat) = SyncBatchNormChannelSums(sync, input, y.Grad, relu ? y : null, mean, invstd, live,
                gamma.RequiresGrad ? gamma.Grad : null, beta.RequiresGrad ? beta.Grad : null);
            var host = new float[2 * channels + 1];
            dy.CopyTo(host, 0);
            dyXhat.CopyTo(host, channels);
            host[2 * channels] = training && sync.StatisticsCount > 0 ? 1f / sync.StatisticsCount : 0f;
            sums.CopyFrom(host);
        }
        else
        {
            BatchNormChannelSumsMasked(plan, training, input, y.Grad, relu ? y : null, mean, invstd, live, sums,
                gamma.RequiresGrad ? gamma.Grad : null, beta.RequiresGrad ? beta.Grad : null);
        }
        if (input.RequiresGrad)
        {
            var dInput = input.GradForWrite(out int accumulate);
            int flags = (relu ? BatchNormKernels.ReluFlag : 0) | (accumulate != 0 ? BatchNormKernels.AccumulateFlag : 0);
            d.Kernels.BatchNormBackwardInputMasked(d.Stream, ext, n, ext, channels, spatial, flags, live.View, input.View,
                y.Grad.View, (relu ? y : y.Grad).View, mean.View, invstd.View, gamma.View, sums.View, dInput);
        }
        if (residual is not null && residual.RequiresGrad)
        {
            var dResidual = residual.GradForWrite(out int accumulate);
            d.Kernels.ReluBackward(d.Stream, ext, n, ext, accumulate, y.View, y.Grad.View, dResidual);
        }
    }

    /// <summary>
    /// Training-mode statistics of the NCHW <paramref name="input"/> as <paramref name="plan"/> says: overwrites
    /// <paramref name="mean"/> and <paramref name="invstd"/> and updates the running statistics in place; with
    /// <paramref name="live"/> over the live samples only. Two steps: per-chunk partials, then a finalize per channel
    /// (a reduction of the partials between them stays possible). Partials come from the device pool.
    /// </summary>
    internal static void BatchNormStatistics(BatchNormPlan plan, Tensor input, float eps, float momentum,
        Tensor mean, Tensor invstd, Tensor runningMean, Tensor runningVar, Tensor? live = null)
    {
        var d = input.Device;
        int batch = input.Dim(0), channels = input.Dim(1), spatial = input.Dim(2) * input.Dim(3), count = batch * spatial;
        int ext = d.Extent(channels);
        if (live is not null)
        {
            BatchNormStatisticsMasked(plan, input, eps, momentum, mean, invstd, runningMean, runningVar, live);
            return;
        }
        if (plan.Reduction == BatchNormReduction.PerChannel)
        {
            d.Kernels.BatchNormForwardStatistics(d.Stream, ext, channels, ext, batch, spatial, eps, momentum,
                input.View, mean.View, invstd.View, runningMean.View, runningVar.View);
            return;
        }
        int items = channels * plan.Chunks(count);
        using var partials = Tensor.Empty(d, 2 * items);
        if (plan.Reduction == BatchNormReduction.Chunks)
        {
            int itemExtent = d.Extent(items);
            d.Kernels.BatchNormForwardStatisticsChunks(d.Stream, itemExtent, items, itemExtent, channels, spatial, count,
                plan.ChunkLength, input.View, partials.View);
        }
        else
        {
            d.Kernels.BatchNormForwardStatisticsGroups(d.Stream, new KernelConfig(items, plan.GroupSize), channels, spatial, count,
                plan.ChunkLength, plan.GroupSize / spatial, plan.GroupSize % spatial, input.View, partials.View);
        }
        d.Kernels.BatchNormForwardStatisticsFinalize(d.Stream, ext, channels, ext, spatial, count, plan.ChunkLength, eps, momentum,
            input.View, partials.View, mean.View, invstd.View, runningMean.View, runningVar.View);
    }

    /// <summary>
    /// The backward channel sums as <paramref name="plan"/> says: overwrites <paramref name="sumDy"/> (Σdy) and
    /// <paramref name="sumDyXhat"/> (Σdy·x̂) and accumulates them into <paramref name="dBeta"/> and
    /// <paramref name="dGamma"/> when those are given. With <paramref name="reluOutput"/> (the output of a fused
    /// ReLU), dy is <paramref name="dOutput"/> masked where that output is 0.
    /// </summary>
    internal static void BatchNormChannelSums(BatchNormPlan plan, Tensor input, Tensor dOutput, Tensor? reluOutput, Tensor mean,
        Tensor invstd, Tensor sumDy, Tensor sumDyXhat, Tensor? dGamma, Tensor? dBeta)
    {
        int mask = reluOutput is null ? 0 : 1;
        var output = (reluOutput ?? dOutput).View; // ignored without the mask
        var d = input.Device;
        int batch = input.Dim(0), channels = input.Dim(1), spatial = input.Dim(2) * input.Dim(3), count = batch * spatial;
        int ext = d.Extent(channels);
        if (plan.Reduction == BatchNormReduction.PerChannel)
        {
            if (reluOutput is not null)
                throw new InvalidOperationException("the per-channel rung has no fused ReLU; BatchNormPlan.Validate rejects it");
            d.Kernels.BatchNormBackwardChannelSums(d.Stream, ext, channels, ext, batch, spatial,
                input.View, dOutput.View, mean.View, invstd.View, sumDy.View, sumDyXhat.View);
            if (dGamma is not null) Accumulate(sumDyXhat, dGamma);
            if (dBeta is not null) Accumulate(sumDy, dBeta);
            return;
        }
        int items = channels * plan.Chunks(count);
        using var partials = Tensor.Empty(d, 2 * items);
        if (plan.Reduction == BatchNormReduction.Chunks)
        {
            int itemExtent = d.Extent(items);
            d.Kernels.BatchNormBackwardChannelSumsChunks(d.Stream, itemExtent, items, itemExtent, channels, spatial, count,
                plan.ChunkLength, mask, input.View, dOutput.View, output, mean.View, invstd.View, partials.View);
        }
        else
        {
            d.Kernels.BatchNormBackwardChannelSumsGroups(d.Stream, new KernelConfig(items, plan.GroupSize), channels, spatial, count,
                plan.ChunkLength, plan.GroupSize / spatial, plan.GroupSize % spatial, mask, input.View, dOutput.View, output,
                mean.View, invstd.View, partials.View);
        }
        // a gradient that is not wanted gets a view the kernel never touches
        d.Kernels.BatchNormBackwardChannelSumsFinalize(d.Stream, ext, channels, ext, count, plan.ChunkLength, partials.View,
            sumDy.View, sumDyXhat.View, dGamma is null ? 0 : 1, dBeta is null ? 0 : 1,
            (dGamma ?? sumDyXhat).View, (dBeta ?? sumDy).View);
    }

    /// <summary>
    /// <see cref="BatchNormStatistics"/> over the live samples: partials of three (live count, mean, M2) per chunk, then
    /// the masked finalize.
    /// </summary>
    private static void BatchNormStatisticsMasked(BatchNormPlan plan, Tensor input, float eps, float momentum,
        Tensor mean, Tensor invstd, Tensor runningMean, Tensor runningVar, Tensor live)
    {
        var d = input.Device;
        int batch = input.Dim(0), channels = input.Dim(1), spatial = input.Dim(2) * input.Dim(3), count = batch * spatial;
        int ext = d.Extent(channels), items = channels * plan.Chunks(count);
        using var partials = Tensor.Empty(d, 3 * items);
        if (plan.Reduction == BatchNormReduction.Chunks)
        {
            int itemExtent = d.Extent(items);
            d.Kernels.BatchNormForwardStatisticsChunksMasked(d.Stream, itemExtent, items, itemExtent, channels, spatial, count,
                plan.ChunkLength, live.View, input.View, partials.View);
        }
        else
        {
            d.Kernels.BatchNormForwardStatisticsGroupsMasked(d.Stream, new KernelConfig(items, plan.GroupSize), channels, spatial, count,
                plan.ChunkLength, plan.GroupSize / spatial, plan.GroupSize % spatial, live.View, input.View, partials.View);
        }
        d.Kernels.BatchNormForwardStatisticsFinalizeMasked(d.Stream, ext, channels, ext, spatial, count, plan.ChunkLength, eps, momentum,
            live.View, input.View, partials.View, mean.View, invstd.View, runningMean.View, runningVar.View);
    }

    /// <summary>
    /// The backward channel sums over the live samples, packed into <paramref name="sums"/> [2·C + 1] (Σdy, Σdy·x̂, and
    /// the statistics weight 1/N in training mode, else 0) and accumulated into dGamma/dBeta when given.
    /// </summary>
    internal static void BatchNormChannelSumsMasked(BatchNormPlan plan, bool training, Tensor input, Tensor dOutput, Tensor? reluOutput,
        Tensor mean, Tensor invstd, Tensor live, Tensor sums, Tensor? dGamma, Tensor? dBeta)
    {
        int mask = reluOutput is null ? 0 : 1;
        var output = (reluOutput ?? dOutput).View; // ignored without the mask
        var d = input.Device;
        int batch = input.Dim(0), channels = input.Dim(1), spatial = input.Dim(2) * input.Dim(3), count = batch * spatial;
        int ext = d.Extent(channels), items = channels * plan.Chunks(count);
        using var partials = Tensor.Empty(d, 2 * items);
        if (plan.Reduction == BatchNormReduction.Chunks)
        {
            int itemExtent = d.Extent(items);
            d.Kernels.BatchNormBackwardChannelSumsChunksMasked(d.Stream, itemExtent, items, itemExtent, channels, spatial, count,
                plan.ChunkLength, mask, live.View, input.View, dOutput.View, output, mean.View, invstd.View, partials.View);
        }
        else
        {
            d.Kernels.BatchNormBackwardChannelSumsGroupsMasked(d.Stream, new KernelConfig(items, plan.GroupSize), channels, spatial, count,
                plan.ChunkLength, plan.GroupSize / spatial, plan.GroupSize % spatial, mask, live.View, input.View, dOutput.View, output,
                mean.View, invstd.View, partials.View);
        }
        d.Kernels.BatchNormBackwardChannelSumsFinalizeMasked(d.Stream, ext, channels, ext, spatial, count, plan.ChunkLength,
            training ? 1 : 0, live.View, partials.View, sums.View, dGamma is null ? 0 : 1, dBeta is null ? 0 : 1,
            (dGamma ?? sums).View, (dBeta ?? sums).View);
    }

    internal static void RequireNchw(string op, Tensor input)
    {
        if (input.Rank != 4)
            throw new ArgumentException($"{op}: input must be NCHW [B, C, H, W]; got shape {input.ShapeString}.", nameof(input));
    }

    private static void RequireChannelVector(string op, string name, Tensor t, int channels, Tensor input)
    {
        if (t.Length != channels)
            throw new ArgumentException(
                $"{op}: {name} must have C = {channels} elements (input {input.ShapeString}); got shape {t.ShapeString}.", name);
    }
}
