using System.Numerics;

namespace IlgpuDdw.Kernels.Reference;

/// <summary>
/// CPU reference of the router op, <c>a = sigmoid(FC2(ReLU(FC1(GAP(y)))))</c>, composed of the references of
/// the kernels the op launches (<see cref="PoolingReference.GlobalAvgPoolForward{T}"/> and
/// <see cref="LinearReference"/> with a fused activation), generic over float and double. Layouts as in the
/// kernels: <c>y [B, C, H, W]</c>, weights <c>[Out, In]</c>. Backward references accumulate (+=). Also the reference of
/// the fused <see cref="RouterKernels"/>, which compute the same function in one launch per direction.
/// </summary>
public static class RouterReference
{
    /// <summary>
    /// The whole router, <c>a = sigmoid(FC2(ReLU(FC1(GAP(y)))))</c>, for <c>y [batch, C, spatial]</c>;
    /// returns the saved activations.
    /// </summary>
    public static RouterActivations<T> Forward<T>(ReadOnlySpan<T> y, int batch, RouterWeights<T> p, int spatial) where T : IFloatingPointIeee754<T>
    {
        var r = new RouterActivations<T>(new T[batch * p.Channels], new T[batch * p.Hidden], new T[batch * p.OutDegree]);
        PoolingReference.GlobalAvgPoolForward(y, spatial, r.Pooled);
        LinearReference.Forward<T>(r.Pooled, p.W1, p.B1, batch, p.Channels, p.Hidden, LinearActivation.Relu, r.Hidden);
        LinearReference.Forward<T>(r.Hidden, p.W2, p.B2, batch, p.Hidden, p.OutDegree, LinearActivation.Sigmoid, r.Output);
        return r;
    }

    /// <summary>
    /// Backward of <see cref="Forward{T}"/> from <c>dA [batch, outDegree]</c>: accumulates into
    /// <paramref name="dY"/> (skipped when empty) and into every gradient of <paramref name="dP"/>.
    /// </summary>
    public static void Backward<T>(RouterActivations<T> r, ReadOnlySpan<T> dA, int batch, RouterWeights<T> p, int spatial,
        Span<T> dY, RouterWeights<T> dP) where T : IFloatingPointIeee754<T>
    {
        var dHidden = new T[batch * p.Hidden];
        var dPooled = new T[batch * p.Channels];
        LayerBackward(r.Hidden, p.W2, r.Output, dA, batch, p.Hidden, p.OutDegree, LinearActivation.Sigmoid, dHidden, dP.W2, dP.B2);
        LayerBackward(r.Pooled, p.W1, r.Hidden, dHidden, batch, p.Channels, p.Hidden, LinearActivation.Relu, dPooled, dP.W1, dP.B1);
        if (!dY.IsEmpty) PoolingReference.GlobalAvgPoolBackward<T>(dPooled, spatial, dY);
    }

    /// <summary>The three <see cref="LinearReference"/> backwards of one layer (x, W, y saved; accumulates).</summary>
    private static void LayerBackward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> y, ReadOnlySpan<T> dOutput,
        int batch, int inFeatures, int outFeatures, LinearActivation activation, Span<T> dX, Span<T> dW, Span<T> dB)
        where T : IFloatingPointIeee754<T>
    {
        LinearReference.BackwardInput(dOutput, y, w, batch, inFeatures, outFeatures, activation, dX);
        LinearReference.BackwardWeight(dOutput, y, x, batch, inFeatures, outFeatures, activation, dW);
        LinearReference.BackwardBias(dOutput, y, batch, outFeatures, activation, dB);
    }
}

/// <summary>
/// Router parameters on the host: <c>W1 [Hidden, Channels]</c>, <c>B1 [Hidden]</c>, <c>W2 [OutDegree, Hidden]</c>,
/// <c>B2 [OutDegree]</c> (also used for their gradients).
/// </summary>
public sealed record RouterWeights<T>(int Channels, int Hidden, int OutDegree, T[] W1, T[] B1, T[] W2, T[] B2)
{
    /// <summary>Zero-filled weights of the given sizes (a gradient accumulator).</summary>
    public static RouterWeights<T> Zeros(int channels, int hidden, int outDegree) =>
        new(channels, hidden, outDegree, new T[hidden * channels], new T[hidden], new T[outDegree * hidden], new T[outDegree]);
}

/// <summary>What the router's forward saves: <c>Pooled [B, C]</c>, <c>Hidden [B, h]</c> (after ReLU), <c>Output [B, outDegree]</c>.</summary>
public sealed record RouterActivations<T>(T[] Pooled, T[] Hidden, T[] Output);
