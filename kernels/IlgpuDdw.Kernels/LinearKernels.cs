using ILGPU;

namespace IlgpuDdw.Kernels;

/// <summary>
/// The activation a <see cref="LinearKernels"/> layer applies to its output (the kernels take its int value).
/// The backward kernels form <c>dZ = dY · act′</c> from the saved OUTPUT y.
/// </summary>
public enum LinearActivation
{
    /// <summary>No activation: <c>y = z</c>; the backward does not read y.</summary>
    None = 0,

    /// <summary><c>y = max(z, 0)</c>; derivative <c>y &gt; 0 ? 1 : 0</c> (0 at the kink).</summary>
    Relu = 1,

    /// <summary><c>y = σ(z)</c> (<see cref="ActivationKernels.Sigmoid"/>); derivative <c>y · (1 − y)</c>.</summary>
    Sigmoid = 2,
}

/// <summary>
/// Fully connected layer with an optional fused activation,
/// <c>y[b, o] = act(z[b, o])</c>, <c>z[b, o] = Σ_i x[b, i] · W[o, i] + bias[o]</c>, with x [B, In], W [Out, In]
/// (PyTorch layout), bias [Out], y [B, Out], all row-major, and act a <see cref="LinearActivation"/>. Saved for
/// the backward: x, W, and y when the activation is not <see cref="LinearActivation.None"/>. Every backward
/// kernel applies the activation's derivative itself, <c>dZ[b, o] = dY[b, o] · act′(y[b, o])</c> (ReLU:
/// <c>y &gt; 0</c>; sigmoid: <c>y(1 − y)</c>), to the upstream gradient dY it reads, so dZ is never stored and each
/// gradient goes through act′ exactly once; with <see cref="LinearActivation.None"/> y is never read (pass any view).
/// <para>
/// Register blocking: each logical thread owns <see cref="Block"/> consecutive outputs of one row (a tile) and
/// keeps their sums in registers, so every value it loads from the row that the tile shares (x[b, ·] in the
/// forward, dZ[b, ·] or dZ[·, o] in the backward) is reused <see cref="Block"/> times. The last tile of a row
/// may be partial: its out-of-range columns read a clamped (valid) index and are not written. Grid-stride over
/// tiles: launch any extent ≤ the tile count (<see cref="Tiles"/>) and pass it as <c>stride</c>. Every output
/// is owned by one thread that loops over its reduction in index order, so results are deterministic.
/// </para>
/// </summary>
public static class LinearKernels
{
    /// <summary>Outputs per thread along a row (the register block).</summary>
    public const int Block = 4;

    /// <summary>Number of tiles of <paramref name="rows"/> × <paramref name="columns"/> outputs (⌈columns / Block⌉ per row).</summary>
    public static int Tiles(int rows, int columns) => rows * ((columns + Block - 1) / Block);

    /// <summary><c>act(z)</c> for a <see cref="LinearActivation"/> code.</summary>
    private static float Activate(int activation, float z) =>
        activation == (int)LinearActivation.Relu ? (z > 0f ? z : 0f)
        : activation == (int)LinearActivation.Sigmoid ? ActivationKernels.Sigmoid(z)
        : z;

    /// <summary>
    /// <c>dZ = dY · act′</c> of output element <paramref name="k"/>, from the saved output y (not read for
    /// <see cref="LinearActivation.None"/>).
    /// </summary>
    private static float OutputGradient(int activation, ArrayView<float> y, ArrayView<float> dOutput, int k)
    {
        float g = dOutput[k];
        if (activation == (int)LinearActivation.Relu)
            return y[k] > 0f ? g : 0f;
        if (activation == (int)LinearActivation.Sigmoid)
        {
            float s = y[k];
            return g * s * (1f - s);
        }
        return g;
    }

    /// <summary>
    /// <c>y[b, o] = act(Σ_i x[b, i] · W[o, i] + (hasBias ≠ 0 ? bias[o] : 0))</c> with act the
    /// <see cref="LinearActivation"/> code <paramref name="activation"/>. Tiles are (b, o..o+Block−1).
    /// Overwrites y. When hasBias is 0, <c>bias</c> is never read (pass any view).
    /// </summary>
    [Kernel]
    public static void Forward(Index1D index, int tiles, int stride, int inFeatures, int outFeatures, int hasBias, int activation,
        ArrayView<float> x, ArrayView<float> weight, ArrayView<float> bias, ArrayView<float> y)
    {
        int tilesPerRow = (outFeatures + Block - 1) / Block;
        for (int t = index; t < tiles; t += stride)
        {
            int b = t / tilesPerRow;
            int o0 = (t - b * tilesPerRow) * Block;
            int last = outFeatures - 1;
            int w0 = o0 * inFeatures;
            int w1 = Math.Min(o0 + 1, last) * inFeatures;
            int w2 = Math.Min(o0 + 2, last) * inFeatures;
            int w3 = Math.Min(o0 + 3, last) * inFeatures;
            int xr = b * inFeatures;
            // Deliberate unrolling: a register tile of Block = 4 sums written out by hand (ILGPU 1.5.3 does not unroll
            // loops, and a local array stays in registers only with constant indices); the other passes share the shape.
            float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f;
            for (int i = 0; i < inFeatures; i++)
            {
                float v = x[xr + i];
                s0 += v * weight[w0 + i];
                s1 += v * weight[w1 + i];
                s2 += v * weight[w2 + i];
                s3 += v * weight[w3 + i];
            }
            int yr = b * outFeatures + o0;
            y[yr] = Activate(activation, s0 + (hasBias != 0 ? bias[o0] : 0f));
            if (o0 + 1 < outFeatures) y[yr + 1] = Activate(activation, s1 + (hasBias != 0 ? bias[o0 + 1] : 0f));
            if (o0 + 2 < outFeatures) y[yr + 2] = Activate(activation, s2 + (hasBias != 0 ? bias[o0 + 2] : 0f));
            if (o0 + 3 < outFeatures) y[yr + 3] = Activate(activation, s3 + (hasBias != 0 ? bias[o0 + 3] : 0f));
        }
    }

    /// <summary>
    /// <c>dInput[b, i] += Σ_o dZ[b, o] · W[o, i]</c> with <c>dZ = dOutput · act′(y)</c>. Tiles are
    /// (b, i..i+Block−1) of dInput [B, In]: one thread per <see cref="Block"/> dX elements, looping over Out
    /// (dZ formed once per o and reused for the whole tile). Accumulates when <paramref name="accumulate"/> ≠ 0, else
    /// overwrites every element (<see cref="ElementwiseKernels.Prior"/>).
    /// </summary>
    [Kernel]
    public static void BackwardInput(Index1D index, int tiles, int stride, int inFeatures, int outFeatures, int activation, int accumulate,
        ArrayView<float> dOutput, ArrayView<float> y, ArrayView<float> weight, ArrayView<float> dInput)
    {
        int tilesPerRow = (inFeatures + Block - 1) / Block;
        for (int t = index; t < tiles; t += stride)
        {
            int b = t / tilesPerRow;
            int i0 = (t - b * tilesPerRow) * Block;
            int last = inFeatures - 1;
            int i1 = Math.Min(i0 + 1, last), i2 = Math.Min(i0 + 2, last), i3 = Math.Min(i0 + 3, last);
            int gr = b * outFeatures;
            // Deliberate unrolling: a register tile of Block = 4 sums written out by hand (ILGPU 1.5.3 does not unroll
            // loops, and a local array stays in registers only with constant indices); the other passes share the shape.
            float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f;
            for (int o = 0; o < outFeatures; o++)
            {
                float g = OutputGradient(activation, y, dOutput, gr + o);
                int wr = o * inFeatures;
                s0 += g * weight[wr + i0];
                s1 += g * weight[wr + i1];
                s2 += g * weight[wr + i2];
                s3 += g * weight[wr + i3];
            }
            int xr = b * inFeatures + i0;
            dInput[xr] = ElementwiseKernels.Prior(accumulate, dInput, xr) + s0;
            if (i0 + 1 < inFeatures) dInput[xr + 1] = ElementwiseKernels.Prior(accumulate, dInput, xr + 1) + s1;
            if (i0 + 2 < inFeatures) dInput[xr + 2] = ElementwiseKernels.Prior(accumulate, dInput, xr + 2) + s2;
            if (i0 + 3 < inFeatures) dInput[xr + 3] = ElementwiseKernels.Prior(accumulate, dInput, xr + 3) + s3;
        }
    }

    /// <summary>
    /// <c>dWeight[o, i] += Σ_b dZ[b, o] · x[b, i]</c> with <c>dZ = dOutput · act′(y)</c>. Tiles are
    /// (o, i..i+Block−1) of dWeight [Out, In]: one thread per <see cref="Block"/> dW elements, looping over the
    /// batch (dZ formed once per b and reused for the whole tile). Accumulates.
    /// </summary>
    [Kernel]
    public static void BackwardWeight(Index1D index, int tiles, int stride, int batch, int inFeatures, int outFeatures, int activation,
        ArrayView<float> dOutput, ArrayView<float> y, ArrayView<float> x, ArrayView<float> dWeight)
    {
        int tilesPerRow = (inFeatures + Block - 1) / Block;
        for (int t = index; t < tiles; t += stride)
        {
            int o = t / tilesPerRow;
            int i0 = (t - o * tilesPerRow) * Block;
            int last = inFeatures - 1;
            int i1 = Math.Min(i0 + 1, last), i2 = Math.Min(i0 + 2, last), i3 = Math.Min(i0 + 3, last);
            // Deliberate unrolling: a register tile of Block = 4 sums written out by hand (ILGPU 1.5.3 does not unroll
            // loops, and a local array stays in registers only with constant indices); the other passes share the shape.
            float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f;
            for (int b = 0; b < batch; b++)
            {
                float g = OutputGradient(activation, y, dOutput, b * outFeatures + o);
                int xr = b * inFeatures;
                s0 += g * x[xr + i0];
                s1 += g * x[xr + i1];
                s2 += g * x[xr + i2];
                s3 += g * x[xr + i3];
            }
            int wr = o * inFeatures + i0;
            dWeight[wr] += s0;
            if (i0 + 1 < inFeatures) dWeight[wr + 1] += s1;
            if (i0 + 2 < inFeatures) dWeight[wr + 2] += s2;
            if (i0 + 3 < inFeatures) dWeight[wr + 3] += s3;
        }
    }

    /// <summary>
    /// <c>dBias[o] += Σ_b dZ[b, o]</c> with <c>dZ = dOutput · act′(y)</c>. One thread per bias element
    /// (grid-stride over Out), looping over the batch. Accumulates.
    /// </summary>
    [Kernel]
    public static void BackwardBias(Index1D index, int outFeatures, int stride, int batch, int activation,
        ArrayView<float> dOutput, ArrayView<float> y, ArrayView<float> dBias)
    {
        for (int o = index; o < outFeatures; o += stride)
        {
            float s = 0f;
            for (int b = 0; b < batch; b++)
                s += OutputGradient(activation, y, dOutput, b * outFeatures + o);
            dBias[o] += s;
        }
    }
}
