using System.Numerics;

namespace IlgpuDdw.Kernels.Reference;

/// <summary>
/// CPU reference of <see cref="RouterKernels"/>, generic over float and double. Layouts as in the kernels:
/// <c>x [B, C, H, W]</c>, weights <c>[Out, In]</c>. Backward references accumulate (+=).
/// </summary>
public static class RouterReference
{
    /// <summary>The logistic function <c>1 / (1 + exp(−z))</c>.</summary>
    public static T Sigmoid<T>(T z) where T : IFloatingPointIeee754<T> => T.One / (T.One + T.Exp(-z));

    private static T Activate<T>(int activation, T z) where T : IFloatingPointIeee754<T> =>
        activation == RouterKernels.ActivationSigmoid ? Sigmoid(z) : (z > T.Zero ? z : T.Zero);

    private static T Slope<T>(int activation, T y) where T : IFloatingPointIeee754<T> =>
        activation == RouterKernels.ActivationSigmoid ? y * (T.One - y) : (y > T.Zero ? T.One : T.Zero);

    /// <summary><c>g[k] = mean of x[k·spatial .. (k+1)·spatial)</c> for k &lt; g.Length.</summary>
    public static void GapForward<T>(ReadOnlySpan<T> x, int spatial, Span<T> g) where T : IFloatingPointIeee754<T>
    {
        for (int k = 0; k < g.Length; k++)
        {
            T s = T.Zero;
            for (int p = 0; p < spatial; p++) s += x[k * spatial + p];
            g[k] = s / T.CreateChecked(spatial);
        }
    }

    /// <summary><c>dX[i] += dG[i / spatial] / spatial</c>.</summary>
    public static void GapBackward<T>(ReadOnlySpan<T> dG, int spatial, Span<T> dX) where T : IFloatingPointIeee754<T>
    {
        for (int i = 0; i < dX.Length; i++) dX[i] += dG[i / spatial] / T.CreateChecked(spatial);
    }

    /// <summary><c>y[b, o] = act(bias[o] + Σ_k w[o, k] · x[b, k])</c>.</summary>
    public static void LinearForward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> bias, LinearShape s, Span<T> y)
        where T : IFloatingPointIeee754<T>
    {
        for (int b = 0; b < s.Batch; b++)
            for (int o = 0; o < s.Out; o++)
            {
                T z = bias[o];
                for (int k = 0; k < s.In; k++) z += w[o * s.In + k] * x[b * s.In + k];
                y[b * s.Out + o] = Activate(s.Activation, z);
            }
    }

    /// <summary>
    /// Backward of <see cref="LinearForward{T}"/> from its saved input x and output y: with
    /// <c>dz = act′(y) · dY</c>, <c>dX += dz · w</c>, <c>dW += dzᵀ · x</c>, <c>dBias += Σ_b dz</c>. An empty
    /// span skips that gradient.
    /// </summary>
    public static void LinearBackward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> y, ReadOnlySpan<T> dY, LinearShape s,
        Span<T> dX, Span<T> dW, Span<T> dBias) where T : IFloatingPointIeee754<T>
    {
        for (int b = 0; b < s.Batch; b++)
            for (int o = 0; o < s.Out; o++)
            {
                int yi = b * s.Out + o;
                T dz = Slope(s.Activation, y[yi]) * dY[yi];
                if (!dBias.IsEmpty) dBias[o] += dz;
                for (int k = 0; k < s.In; k++)
                {
                    if (!dX.IsEmpty) dX[b * s.In + k] += w[o * s.In + k] * dz;
                    if (!dW.IsEmpty) dW[o * s.In + k] += dz * x[b * s.In + k];
                }
            }
    }

    /// <summary>
    /// The whole router, <c>a = sigmoid(FC2(ReLU(FC1(GAP(y)))))</c>, for <c>y [batch, C, spatial]</c>;
    /// returns the saved activations.
    /// </summary>
    public static RouterActivations<T> Forward<T>(ReadOnlySpan<T> y, int batch, RouterWeights<T> p, int spatial) where T : IFloatingPointIeee754<T>
    {
        var r = new RouterActivations<T>(new T[batch * p.Channels], new T[batch * p.Hidden], new T[batch * p.OutDegree]);
        GapForward(y, spatial, r.Pooled);
        LinearForward<T>(r.Pooled, p.W1, p.B1, Fc1(batch, p), r.Hidden);
        LinearForward<T>(r.Hidden, p.W2, p.B2, Fc2(batch, p), r.Output);
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
        LinearBackward<T>(r.Hidden, p.W2, r.Output, dA, Fc2(batch, p), dHidden, dP.W2, dP.B2);
        LinearBackward<T>(r.Pooled, p.W1, r.Hidden, dHidden, Fc1(batch, p), dPooled, dP.W1, dP.B1);
        if (!dY.IsEmpty) GapBackward<T>(dPooled, spatial, dY);
    }

    private static LinearShape Fc1<T>(int batch, RouterWeights<T> p) => new(batch, p.Channels, p.Hidden, RouterKernels.ActivationRelu);

    private static LinearShape Fc2<T>(int batch, RouterWeights<T> p) => new(batch, p.Hidden, p.OutDegree, RouterKernels.ActivationSigmoid);
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
