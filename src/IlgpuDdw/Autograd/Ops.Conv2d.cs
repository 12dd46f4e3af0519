using ILGPU;
using IlgpuDdw.Kernels;
using Device = IlgpuDdw.Runtime.Device;

namespace IlgpuDdw.Autograd;

public static partial class Ops
{
    /// <summary>
    /// 2-D convolution, NCHW: input <c>[B, C_in, H, W]</c>, weight <c>[C_out, C_in/groups, K, K]</c>, optional
    /// bias <c>[C_out]</c>; returns <c>[B, C_out, Ho, Wo]</c> with <c>Ho = (H + 2·padding − K)/stride + 1</c>
    /// (likewise Wo). Zero padding on every side; <paramref name="groups"/> splits the channels into groups
    /// (groups = C_in = C_out is a depthwise convolution). Gradients flow to input, weight and bias.
    /// </summary>
    /// <exception cref="ArgumentException">A shape or value is invalid; the message names it.</exception>
    public static Tensor Conv2d(this Tape tape, Tensor input, Tensor weight, Tensor? bias, int stride = 1, int padding = 0, int groups = 1)
    {
        Tensor[] operands = bias is null ? [input, weight] : [input, weight, bias];
        RequireSameDevice("Conv2d", tape, operands);
        var g = Conv2dGeometryOf(input, weight, bias, stride, padding, groups);
        var d = tape.Device;
        var y = tape.NewTensor(g.Batch, g.OutChannels, g.OutHeight, g.OutWidth);
        Conv2dForward(d, g, input.View, weight.View, bias?.View, y.View);
        if (tape.NeedsGrad(operands))
            tape.Record("Conv2d", y, () =>
            {
                if (input.RequiresGrad) Conv2dBackwardInput(d, g, y.Grad.View, weight.View, input.Grad.View);
                if (weight.RequiresGrad) Conv2dBackwardWeight(d, g, y.Grad.View, input.View, weight.Grad.View);
                if (bias is { RequiresGrad: true }) Conv2dBackwardBias(d, g, y.Grad.View, bias.Grad.View);
            });
        return y;
    }

    /// <summary>Validates a convolution's operands on the host and returns its geometry.</summary>
    internal static Conv2dGeometry Conv2dGeometryOf(Tensor input, Tensor weight, Tensor? bias, int stride, int padding, int groups)
    {
        if (input.Rank != 4)
            throw new ArgumentException($"Conv2d: input must have rank 4 [B, C_in, H, W]; got {input.Describe()} (rank {input.Rank}).", nameof(input));
        if (stride < 1)
            throw new ArgumentException($"Conv2d: stride must be at least 1; got {stride}.", nameof(stride));
        if (padding < 0)
            throw new ArgumentException($"Conv2d: padding must be non-negative; got {padding}.", nameof(padding));
        if (groups < 1)
            throw new ArgumentException($"Conv2d: groups must be at least 1; got {groups}.", nameof(groups));
        int b = input.Dim(0), cin = input.Dim(1), h = input.Dim(2), w = input.Dim(3);
        if (weight.Rank != 4)
            throw new ArgumentException($"Conv2d: weight must have rank 4 [C_out, C_in/groups, K, K]; got {weight.Describe()} (rank {weight.Rank}).", nameof(weight));
        int cout = weight.Dim(0), k = weight.Dim(2);
        if (cin % groups != 0)
            throw new ArgumentException($"Conv2d: input channels C_in = {cin} are not divisible by groups = {groups}.", nameof(groups));
        if (cout % groups != 0)
            throw new ArgumentException($"Conv2d: output channels C_out = {cout} (weight dim 0) are not divisible by groups = {groups}.", nameof(groups));
        if (weight.Dim(3) != k)
            throw new ArgumentException($"Conv2d: the kernel must be square; weight {weight.Describe()} has K_h = {k}, K_w = {weight.Dim(3)}.", nameof(weight));
        if (weight.Dim(1) != cin / groups)
            throw new ArgumentException(
                $"Conv2d: weight shape: expected {Tensor.Format([cout, cin / groups, k, k])} (C_in/groups = {cin}/{groups} = {cin / groups}), got {weight.ShapeString}.", nameof(weight));
        if (k > h + 2 * padding || k > w + 2 * padding)
            throw new ArgumentException(
                $"Conv2d: kernel size {k} is larger than the padded input {h + 2 * padding} × {w + 2 * padding} (H = {h}, W = {w}, padding = {padding}).", nameof(weight));
        if (bias is not null && (bias.Rank != 1 || bias.Length != cout))
            throw new ArgumentException($"Conv2d: bias must have shape [C_out] = [{cout}]; got {bias.Describe()}.", nameof(bias));
        return new Conv2dGeometry(b, cin, h, w, cout, k, stride, padding, groups);
    }

    /// <summary>
    /// Launches the forward (overwrites <paramref name="output"/>) with the geometry's channel block (4 output
    /// channels per work item, 1 for depthwise).
    /// </summary>
    internal static void Conv2dForward(Device d, Conv2dGeometry g, ArrayView<float> input, ArrayView<float> weight, ArrayView<float>? bias, ArrayView<float> output)
    {
        int block = g.OutChannelBlock, n = g.ForwardItems(block), ext = d.Extent(n);
        // without a bias the kernel reads no bias element: any view will do
        d.Kernels.Conv2dForward(d.Stream, ext, n, ext, g, block, input, weight, bias ?? weight, bias is null ? 0 : 1, output);
    }

    /// <summary>Accumulates the input gradient.</summary>
    internal static void Conv2dBackwardInput(Device d, Conv2dGeometry g, ArrayView<float> dOutput, ArrayView<float> weight, ArrayView<float> dInput)
    {
        int block = g.InChannelBlock, n = g.BackwardInputItems(block), ext = d.Extent(n);
        d.Kernels.Conv2dBackwardInput(d.Stream, ext, n, ext, g, block, dOutput, weight, dInput);
    }

    /// <summary>Accumulates the weight gradient.</summary>
    internal static void Conv2dBackwardWeight(Device d, Conv2dGeometry g, ArrayView<float> dOutput, ArrayView<float> input, ArrayView<float> dWeight)
    {
        int outBlock = g.OutChannelBlock, inBlock = g.InChannelBlock;
        int n = g.BackwardWeightItems(outBlock, inBlock), ext = d.Extent(n);
        d.Kernels.Conv2dBackwardWeight(d.Stream, ext, n, ext, g, outBlock, inBlock, dOutput, input, dWeight);
    }

    /// <summary>Accumulates the bias gradient (one work item per output channel).</summary>
    internal static void Conv2dBackwardBias(Device d, Conv2dGeometry g, ArrayView<float> dOutput, ArrayView<float> dBias)
    {
        int ext = d.Extent(g.OutChannels);
        d.Kernels.Conv2dBackwardBias(d.Stream, ext, g.OutChannels, ext, g, dOutput, dBias);
    }
}
