namespace IlgpuDdw.Autograd;

public static partial class Ops
{
    /// <summary>
    /// Fully connected layer <c>y = act(input · weightᵀ + bias)</c>: input [B, In], weight [Out, In] (PyTorch
    /// layout), bias [Out] or null, output [B, Out], and an optional activation fused into the same kernels
    /// (<see cref="LinearActivation.Relu"/>, <see cref="LinearActivation.Sigmoid"/>; default none). The input
    /// must have rank 2: flatten a feature map first (e.g. <c>tape.Reshape(x, batch, c * h * w)</c>). Saves input
    /// and weight for the backward, which with an activation also reads the output y (act′ is formed from y).
    /// </summary>
    /// <exception cref="ArgumentException">A rank or size does not match (the message names the shapes), or the activation is not defined.</exception>
    public static Tensor Linear(this Tape tape, Tensor input, Tensor weight, Tensor? bias, LinearActivation activation = LinearActivation.None)
    {
        Tensor[] inputs = bias is null ? [input, weight] : [input, weight, bias];
        RequireSameDevice("Linear", tape, inputs);
        if (input.Rank != 2)
            throw new ArgumentException($"Linear: input must have rank 2 [batch, in_features] (flatten it first); got {input.ShapeString}.", nameof(input));
        if (weight.Rank != 2)
            throw new ArgumentException($"Linear: weight must have rank 2 [out_features, in_features]; got {weight.ShapeString}.", nameof(weight));
        int batch = input.Dim(0), inFeatures = input.Dim(1), outFeatures = weight.Dim(0);
        if (weight.Dim(1) != inFeatures)
            throw new ArgumentException(
                $"Linear: input {input.ShapeString} has {inFeatures} features but weight {weight.ShapeString} expects {weight.Dim(1)} (weight is [out_features, in_features]).", nameof(weight));
        if (bias is not null && (bias.Rank != 1 || bias.Dim(0) != outFeatures))
            throw new ArgumentException(
                $"Linear: bias {bias.ShapeString} does not match weight {weight.ShapeString}: expected [{outFeatures}].", nameof(bias));
        if (!Enum.IsDefined(activation))
            throw new ArgumentException($"Linear: activation {(int)activation} is not one of None, Relu, Sigmoid.", nameof(activation));

        var d = tape.Device;
        var k = d.Kernels;
        var y = tape.NewTensor(batch, outFeatures);
        int tiles = LinearKernels.Tiles(batch, outFeatures);
        int ext = d.Extent(tiles);
        int act = (int)activation;
        int groupSize = tape.GradientGroupSize;
        k.LinearForward(d.Stream, ext, tiles, ext, inFeatures, outFeatures, bias is null ? 0 : 1, act,
            input.View, weight.View, (bias ?? weight).View, y.View);

        if (tape.NeedsGrad(inputs))
            tape.Record("Linear", y, () =>
            {
                var dy = y.Grad.View;
                var saved = activation == LinearActivation.None ? dy : y.View; // y is not read without an activation
                if (input.RequiresGrad)
                {
                    int t = LinearKernels.Tiles(batch, inFeatures);
                    int e = d.Extent(t);
                    var dInput = input.GradForWrite(out int accumulate);
                    k.LinearBackwardInput(d.Stream, e, t, e, inFeatures, outFeatures, act, accumulate, dy, saved, weight.View, dInput);
                }
                bool dWeight = weight.RequiresGrad, dBias = bias is { RequiresGrad: true };
                if (!dWeight && !dBias) return;
                ArrayView<float>[] targets = dWeight && dBias ? [weight.Grad.View, bias!.Grad.View] : dWeight ? [weight.Grad.View] : [bias!.Grad.View];
                ParameterGradients(d, groupSize, batch, targets, (first, count, into) =>
                {
                    var dySub = Samples(dy, outFeatures, first, count);
                    var savedSub = Samples(saved, outFeatures, first, count);
                    if (dWeight)
                    {
                        int t = LinearKernels.Tiles(outFeatures, inFeatures);
                        int e = d.Extent(t);
                        k.LinearBackwardWeight(d.Stream, e, t, e, count, inFeatures, outFeatures, act, dySub, savedSub,
                            Samples(input.View, inFeatures, first, count), into[0]);
                    }
                    if (dBias)
                    {
                        int e = d.Extent(outFeatures);
                        k.LinearBackwardBias(d.Stream, e, outFeatures, e, count, act, dySub, savedSub, into[^1]);
                    }
                });
            });
        return y;
    }
}
