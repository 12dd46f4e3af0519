using ILGPU;

namespace IlgpuDdw.Kernels;

/// <summary>
/// Shape of one fully connected layer of a router: <c>y[b, o] = act(bias[o] + Σ_k w[o, k] · x[b, k])</c>
/// with <c>x [Batch, In]</c>, <c>w [Out, In]</c> (PyTorch <c>Linear</c> layout), <c>bias [Out]</c>,
/// <c>y [Batch, Out]</c>, and <see cref="Activation"/> one of <see cref="RouterKernels.ActivationRelu"/> or
/// <see cref="RouterKernels.ActivationSigmoid"/>.
/// </summary>
public readonly struct LinearShape
{
    /// <summary>Rows of x and y.</summary>
    public readonly int Batch;
    /// <summary>Input features.</summary>
    public readonly int In;
    /// <summary>Output features.</summary>
    public readonly int Out;
    /// <summary><see cref="RouterKernels.ActivationRelu"/> or <see cref="RouterKernels.ActivationSigmoid"/>.</summary>
    public readonly int Activation;

    /// <summary>Creates the shape.</summary>
    public LinearShape(int batch, int inFeatures, int outFeatures, int activation)
    {
        Batch = batch;
        In = inFeatures;
        Out = outFeatures;
        Activation = activation;
    }
}

/// <summary>
/// The router of a DDW node, <c>a = sigmoid(FC2(ReLU(FC1(GAP(y)))))</c>, as three forward kernels (global
/// average pooling, and one fully connected layer + bias + activation kernel used for both FC layers) with
/// their backward kernels. Grid-stride loops (see <see cref="ElementwiseKernels"/>). The backward of a
/// layer reads its saved OUTPUT (ReLU mask <c>y &gt; 0</c>, sigmoid derivative <c>y(1 − y)</c>) and its
/// saved input; nothing else is kept. Backward kernels accumulate; weight and bias gradients are
/// deterministic (one thread per parameter element loops over the batch in order).
/// </summary>
public static class RouterKernels
{
    /// <summary>Activation code of <see cref="LinearShape.Activation"/>: <c>max(z, 0)</c>.</summary>
    public const int ActivationRelu = 0;

    /// <summary>Activation code of <see cref="LinearShape.Activation"/>: <c>1 / (1 + exp(−z))</c>.</summary>
    public const int ActivationSigmoid = 1;

    /// <summary>
    /// The logistic function <c>1 / (1 + exp(−z))</c>; every sigmoid of the wiring kernels (router output,
    /// dense edge weights) calls this one helper, so equal logits give bitwise equal edge weights.
    /// </summary>
    public static float Sigmoid(float z) => 1f / (1f + MathF.Exp(-z));

    private static float Activate(int activation, float z) =>
        activation == ActivationSigmoid ? Sigmoid(z) : (z > 0f ? z : 0f);

    /// <summary>d act / d z expressed through the activation's output y.</summary>
    private static float ActivationSlope(int activation, float y) =>
        activation == ActivationSigmoid ? y * (1f - y) : (y > 0f ? 1f : 0f);

    /// <summary>
    /// Global average pooling: <c>g[k] = Σ_p x[k · spatial + p] / spatial</c> for k &lt; n = B·C, with
    /// <c>x [B, C, H, W]</c>, spatial = H·W, <c>g [B, C]</c>. One thread per (b, c) sums its plane in order.
    /// Overwrites g; the backward needs nothing saved.
    /// </summary>
    [Kernel]
    public static void GapForward(Index1D index, int n, int stride, int spatial, ArrayView<float> x, ArrayView<float> g)
    {
        for (int k = index; k < n; k += stride)
        {
            int start = k * spatial;
            float s = 0f;
            for (int p = 0; p < spatial; p++)
                s += x[start + p];
            g[k] = s / spatial;
        }
    }

    /// <summary>
    /// Backward of <see cref="GapForward"/>: <c>dX[i] += dG[i / spatial] / spatial</c> for i &lt; n = B·C·H·W.
    /// Accumulates.
    /// </summary>
    [Kernel]
    public static void GapBackward(Index1D index, int n, int stride, int spatial, ArrayView<float> dG, ArrayView<float> dX)
    {
        for (int i = index; i < n; i += stride)
            dX[i] += dG[i / spatial] / spatial;
    }

    /// <summary>
    /// Fully connected layer with bias and activation: <c>y[b, o] = act(bias[o] + Σ_k w[o, k] · x[b, k])</c>
    /// for the n = Batch·Out outputs (one thread per (b, o); the sum starts at the bias and runs over k in
    /// order). Overwrites y; the backward needs x and y.
    /// </summary>
    [Kernel]
    public static void LinearForward(Index1D index, int n, int stride, LinearShape shape,
        ArrayView<float> x, ArrayView<float> w, ArrayView<float> bias, ArrayView<float> y)
    {
        for (int i = index; i < n; i += stride)
        {
            int b = i / shape.Out;
            int o = i - b * shape.Out;
            float z = bias[o];
            int xRow = b * shape.In, wRow = o * shape.In;
            for (int k = 0; k < shape.In; k++)
                z += w[wRow + k] * x[xRow + k];
            y[i] = Activate(shape.Activation, z);
        }
    }

    /// <summary>
    /// Backward of <see cref="LinearForward"/> to its input:
    /// <c>dX[b, k] += Σ_o w[o, k] · act′(y[b, o]) · dY[b, o]</c> for the n = Batch·In inputs (one thread per
    /// (b, k), o in order). Accumulates.
    /// </summary>
    [Kernel]
    public static void LinearBackwardInput(Index1D index, int n, int stride, LinearShape shape,
        ArrayView<float> w, ArrayView<float> y, ArrayView<float> dY, ArrayView<float> dX)
    {
        for (int i = index; i < n; i += stride)
        {
            int b = i / shape.In;
            int k = i - b * shape.In;
            float s = 0f;
            for (int o = 0; o < shape.Out; o++)
            {
                int yi = b * shape.Out + o;
                s += w[o * shape.In + k] * ActivationSlope(shape.Activation, y[yi]) * dY[yi];
            }
            dX[i] += s;
        }
    }

    /// <summary>
    /// Backward of <see cref="LinearForward"/> to its weight:
    /// <c>dW[o, k] += Σ_b act′(y[b, o]) · dY[b, o] · x[b, k]</c> for the n = Out·In weights (one thread per
    /// weight, b in order; deterministic). Accumulates.
    /// </summary>
    [Kernel]
    public static void LinearBackwardWeight(Index1D index, int n, int stride, LinearShape shape,
        ArrayView<float> x, ArrayView<float> y, ArrayView<float> dY, ArrayView<float> dW)
    {
        for (int i = index; i < n; i += stride)
        {
            int o = i / shape.In;
            int k = i - o * shape.In;
            float s = 0f;
            for (int b = 0; b < shape.Batch; b++)
            {
                int yi = b * shape.Out + o;
                s += ActivationSlope(shape.Activation, y[yi]) * dY[yi] * x[b * shape.In + k];
            }
            dW[i] += s;
        }
    }

    /// <summary>
    /// Backward of <see cref="LinearForward"/> to its bias: <c>dBias[o] += Σ_b act′(y[b, o]) · dY[b, o]</c>
    /// for the n = Out biases (one thread per bias, b in order; deterministic). Accumulates.
    /// </summary>
    [Kernel]
    public static void LinearBackwardBias(Index1D index, int n, int stride, LinearShape shape,
        ArrayView<float> y, ArrayView<float> dY, ArrayView<float> dBias)
    {
        for (int o = index; o < n; o += stride)
        {
            float s = 0f;
            for (int b = 0; b < shape.Batch; b++)
            {
                int yi = b * shape.Out + o;
                s += ActivationSlope(shape.Activation, y[yi]) * dY[yi];
            }
            dBias[o] += s;
        }
    }
}
