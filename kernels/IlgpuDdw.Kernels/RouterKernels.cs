using ILGPU;
using static IlgpuDdw.Kernels.ReductionKernels;

namespace IlgpuDdw.Kernels;

/// <summary>
/// A node's router in one pass per direction: <c>a = sigmoid(W2 · relu(W1 · GAP(y) + b1) + b2)</c> for a node output
/// <c>y [B, C, H, W]</c>, <c>W1 [Hidden, C]</c>, <c>b1 [Hidden]</c>, <c>W2 [OutDegree, Hidden]</c>, <c>b2 [OutDegree]</c>
/// (the layout of two PyTorch <c>Linear</c> layers), <c>a [B, OutDegree]</c>. The fused variant of global average
/// pooling followed by two <c>LinearKernels</c> launches with their fused ReLU and sigmoid: one group per sample stages
/// the pooled features and hidden activations in shared memory; the backward is one group per sample for the
/// activations' gradients (and the input's) plus one grid-stride launch for the parameters' gradients, each summed
/// over the batch in order (no atomics: deterministic).
/// </summary>
/// <summary>Sizes of a fused router launch: C channels of H·W = Spatial values, Hidden units, OutDegree outputs.</summary>
public readonly record struct RouterShape(int Channels, int Spatial, int Hidden, int OutDegree);

public static class RouterKernels
{
    /// <summary>Most channels C the fused kernels take (the shared vectors are sized for it).</summary>
    public const int MaxChannels = 2048;

    /// <summary>Most hidden units the fused kernels take.</summary>
    public const int MaxHidden = 512;

    /// <summary>Most out-edges the fused kernels take.</summary>
    public const int MaxOutDegree = 64;

    /// <summary>
    /// Forward, one group per sample b (grid = B, any whole number of warps a group): each warp sums whole channel
    /// planes (lanes strided over H·W, a butterfly of shuffles) into <c>pooled[b, c] = mean(y[b, c])</c>, then each
    /// warp forms whole dot products for <c>hidden[b, j] = relu(b1[j] + W1[j] · pooled[b])</c> and
    /// <c>a[b, o] = sigmoid(b2[o] + W2[o] · hidden[b])</c>, lanes strided over the row (coalesced). Writes pooled
    /// and hidden (for the backward) and a. Host checks: C ≤ <see cref="MaxChannels"/>, Hidden ≤
    /// <see cref="MaxHidden"/>, OutDegree ≤ <see cref="MaxOutDegree"/>.
    /// </summary>
    [Kernel(ExplicitlyGrouped = true)]
    public static void Forward(RouterShape shape, ArrayView<float> y, ArrayView<float> w1, ArrayView<float> b1, ArrayView<float> w2, ArrayView<float> b2,
        ArrayView<float> pooled, ArrayView<float> hiddenOut, ArrayView<float> a)
    {
        int channels = shape.Channels, spatial = shape.Spatial, hidden = shape.Hidden, outDegree = shape.OutDegree;
        var sharedPooled = SharedMemory.Allocate<float>(MaxChannels);
        var sharedHidden = SharedMemory.Allocate<float>(MaxHidden);
        int b = Grid.IdxX, warps = Group.DimX / Warp.WarpSize, warp = Warp.WarpIdx;
        float scale = 1f / spatial;
        for (int c = warp; c < channels; c += warps)
        {
            float s = WarpRowDot(y, (b * channels + c) * spatial, spatial, y, -1);
            if (Warp.IsFirstLane)
            {
                sharedPooled[c] = s * scale;
                pooled[b * channels + c] = s * scale;
            }
        }
        Group.Barrier();
        for (int j = warp; j < hidden; j += warps)
        {
            float z = b1[j] + WarpRowDot(w1, j * channels, channels, sharedPooled, 0);
            if (Warp.IsFirstLane)
            {
                float h = z > 0f ? z : 0f;
                sharedHidden[j] = h;
                hiddenOut[b * hidden + j] = h;
            }
        }
        Group.Barrier();
        for (int o = warp; o < outDegree; o += warps)
        {
            float z = b2[o] + WarpRowDot(w2, o * hidden, hidden, sharedHidden, 0);
            if (Warp.IsFirstLane) a[b * outDegree + o] = ActivationKernels.Sigmoid(z);
        }
    }

    /// <summary>
    /// <c>Σ_i row[offset + i] · vector[vectorOffset + i]</c> over i &lt; length, lanes strided over i and summed by a
    /// butterfly (every lane gets the sum); a negative <paramref name="vectorOffset"/> sums the row alone.
    /// </summary>
    private static float WarpRowDot(ArrayView<float> row, int offset, int length, ArrayView<float> vector, int vectorOffset)
    {
        float s = 0f;
        for (int i = Warp.LaneIdx; i < length; i += Warp.WarpSize)
            s += vectorOffset < 0 ? row[offset + i] : row[offset + i] * vector[vectorOffset + i];
        return WarpSum(s);
    }

    /// <summary>
    /// Backward of the activations, one group per sample b: <c>dZ2[b, o] = dA[b, o] · a(1 − a)</c>,
    /// <c>dZ1[b, j] = hidden[b, j] &gt; 0 ? Σ_o W2[o, j] · dZ2[b, o] : 0</c> (a thread a hidden unit, reading a
    /// column of W2: consecutive threads, consecutive j), <c>dPooled[c] = Σ_j W1[j, c] · dZ1[b, j]</c> (a thread a
    /// channel). Writes dZ2 and dZ1 for <see cref="BackwardParameters"/> and <c>dPooled [B, C]</c>, which global average
    /// pooling's backward spreads over the input (a launch over every input element, so the GPU fills whatever the
    /// batch). Host checks as <see cref="Forward"/>.
    /// </summary>
    [Kernel(ExplicitlyGrouped = true)]
    public static void BackwardActivations(RouterShape shape, ArrayView<float> dA, ArrayView<float> a, ArrayView<float> hiddenIn, ArrayView<float> w1, ArrayView<float> w2,
        ArrayView<float> dZ2, ArrayView<float> dZ1, ArrayView<float> dPooled)
    {
        var sharedDz2 = SharedMemory.Allocate<float>(MaxOutDegree);
        var sharedDz1 = SharedMemory.Allocate<float>(MaxHidden);
        var (channels, spatial, hidden, outDegree) = shape;
        int b = Grid.IdxX, tid = Group.IdxX, threads = Group.DimX;
        for (int o = tid; o < outDegree; o += threads)
        {
            float v = a[b * outDegree + o];
            float g = dA[b * outDegree + o] * v * (1f - v);
            sharedDz2[o] = g;
            dZ2[b * outDegree + o] = g;
        }
        Group.Barrier();
        for (int j = tid; j < hidden; j += threads)
        {
            float s = 0f;
            for (int o = 0; o < outDegree; o++) s += w2[o * hidden + j] * sharedDz2[o];
            float g = hiddenIn[b * hidden + j] > 0f ? s : 0f;
            sharedDz1[j] = g;
            dZ1[b * hidden + j] = g;
        }
        Group.Barrier();
        for (int c = tid; c < channels; c += threads)
        {
            float s = 0f;
            for (int j = 0; j < hidden; j++) s += w1[j * channels + c] * sharedDz1[j];
            dPooled[b * channels + c] = s;
        }
    }

    /// <summary>
    /// Parameter gradients, one work item per parameter element, each summed over the batch in order; items
    /// <c>[0, H·C)</c>: <c>dW1[j, c] += Σ_b dZ1[b, j] · pooled[b, c]</c>; then H: <c>db1[j] += Σ_b dZ1[b, j]</c>;
    /// then O·H: <c>dW2[o, j] += Σ_b dZ2[b, o] · hidden[b, j]</c>; then O: <c>db2[o] += Σ_b dZ2[b, o]</c>;
    /// <c>n = H·C + H + O·H + O</c>. Accumulates.
    /// </summary>
    [Kernel]
    public static void BackwardParameters(Index1D index, int n, int stride, int batch, int channels, int hidden, int outDegree,
        ArrayView<float> dZ1, ArrayView<float> dZ2, ArrayView<float> pooled, ArrayView<float> hiddenIn,
        ArrayView<float> dW1, ArrayView<float> db1, ArrayView<float> dW2, ArrayView<float> db2)
    {
        int w1End = hidden * channels, b1End = w1End + hidden, w2End = b1End + outDegree * hidden;
        for (int item = index; item < n; item += stride)
        {
            if (item < w1End)
            {
                int j = item / channels, c = item - j * channels;
                dW1[item] += BatchDot(dZ1, j, hidden, pooled, c, channels, batch);
            }
            else if (item < b1End)
                db1[item - w1End] += BatchDot(dZ1, item - w1End, hidden, dZ1, -1, 0, batch);
            else if (item < w2End)
            {
                int k = item - b1End, o = k / hidden, j = k - o * hidden;
                dW2[k] += BatchDot(dZ2, o, outDegree, hiddenIn, j, hidden, batch);
            }
            else
                db2[item - w2End] += BatchDot(dZ2, item - w2End, outDegree, dZ2, -1, 0, batch);
        }
    }

    /// <summary>
    /// <c>Σ_b u[b·uStride + u0] · v[b·vStride + v0]</c> in order of b; a negative <paramref name="v0"/> sums u alone.
    /// </summary>
    private static float BatchDot(ArrayView<float> u, int u0, int uStride, ArrayView<float> v, int v0, int vStride, int batch)
    {
        float s = 0f;
        for (int b = 0; b < batch; b++)
            s += v0 < 0 ? u[b * uStride + u0] : u[b * uStride + u0] * v[b * vStride + v0];
        return s;
    }
}
