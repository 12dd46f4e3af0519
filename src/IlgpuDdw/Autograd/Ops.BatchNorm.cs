namespace IlgpuDdw.Autograd;

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
    /// Gradients flow to the input, gamma and beta (through the batch statistics in training mode).
    /// </summary>
    /// <exception cref="ArgumentException">The input is not rank 4; a parameter or running statistic does not
    /// have C elements; momentum is outside [0, 1]; eps ≤ 0; or training mode with B·H·W = 1 (the variance is
    /// undefined).</exception>
    public static Tensor BatchNorm2d(this Tape tape, Tensor input, Tensor gamma, Tensor beta, Tensor runningMean,
        Tensor runningVar, bool training, float momentum = 0.1f, float eps = 1e-5f)
    {
        const string op = "BatchNorm2d";
        RequireSameDevice(op, tape, input, gamma, beta, runningMean, runningVar);
        RequireNchw(op, input);
        int batch = input.Dim(0), channels = input.Dim(1), spatial = input.Dim(2) * input.Dim(3);
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
        bool needsGrad = tape.NeedsGrad(input, gamma, beta);
        var y = tape.NewTensor([.. input.Shape]);
        var mean = Tensor.Empty(d, channels);
        var invstd = Tensor.Empty(d, channels);
        int n = y.Length;
        int channelExtent = d.Extent(channels), ext = d.Extent(n);
        if (training)
            d.Kernels.BatchNormForwardStatistics(d.Stream, channelExtent, channels, channelExtent, batch, spatial, eps, momentum,
                input.View, mean.View, invstd.View, runningMean.View, runningVar.View);
        else
            d.Kernels.BatchNormInferenceStatistics(d.Stream, channelExtent, channels, channelExtent, eps,
                runningMean.View, runningVar.View, mean.View, invstd.View);
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

        float statisticsWeight = training ? 1f / (batch * spatial) : 0f;
        tape.Record(op, y, () =>
        {
            using var sumDy = Tensor.Empty(d, channels);
            using var sumDyXhat = Tensor.Empty(d, channels);
            d.Kernels.BatchNormBackwardChannelSums(d.Stream, channelExtent, channels, channelExtent, batch, spatial,
                input.View, y.Grad.View, mean.View, invstd.View, sumDy.View, sumDyXhat.View);
            if (gamma.RequiresGrad) Accumulate(sumDyXhat, gamma.Grad);
            if (beta.RequiresGrad) Accumulate(sumDy, beta.Grad);
            if (input.RequiresGrad)
                d.Kernels.BatchNormBackwardInput(d.Stream, ext, n, ext, channels, spatial, statisticsWeight,
                    input.View, y.Grad.View, mean.View, invstd.View, gamma.View, sumDy.View, sumDyXhat.View, input.Grad.View);
        });
        return y;
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
