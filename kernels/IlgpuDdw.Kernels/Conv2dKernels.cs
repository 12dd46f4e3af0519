using ILGPU;
using ILGPU.Runtime.Cuda;

namespace IlgpuDdw.Kernels;

/// <summary>
/// 2-D convolution (NCHW, square kernel, any stride, zero padding, channel groups) with its backward kernels.
/// Shapes are those of <see cref="Conv2dGeometry"/>: input x <c>[B, C_in, H, W]</c>, weight w
/// <c>[C_out, C_in/groups, K, K]</c>, optional bias <c>[C_out]</c>, output y <c>[B, C_out, Ho, Wo]</c>:
/// <c>y[b,co,oh,ow] = bias[co] + Σ_{ci_local, kh, kw} w[co, ci_local, kh, kw] · x[b, g·C_in/groups + ci_local, oh·s − p + kh, ow·s − p + kw]</c>
/// with g = co / (C_out/groups); taps outside the input read zero. The backward needs x (for dWeight) and w (for
/// dInput); nothing else is saved.
/// <para>
/// Every kernel is a grid-stride loop over work items: thread <c>index</c> takes items <c>index, index + stride, ...</c>
/// below <c>n</c>; launch any extent and pass it as <c>stride</c>. Each output element is owned by exactly one work
/// item, which sums its reduction in a fixed order: no atomics, results are deterministic.
/// </para>
/// <para>
/// Register blocking: a work item of <see cref="Forward"/> / <see cref="BackwardInput"/> owns up to 4 channels of one
/// group (the <c>channelBlock</c> argument, 1 to 4) × 4 columns of one row and keeps the 16 sums in locals, so each
/// weight load feeds 4 columns and each input load feeds every channel. Along a kernel row the 4 columns read a
/// window that shifts by one column per tap (taps are visited by residue modulo the stride), so each tap loads one
/// new column instead of four. A work item of <see cref="BackwardWeight"/> owns one tap of up to 4 × 4
/// (output, input) channel pairs. Slots past a group's last channel repeat that channel and are not stored, so every
/// block size is correct for every geometry; <see cref="Conv2dGeometry.OutChannelBlock"/> and
/// <see cref="Conv2dGeometry.InChannelBlock"/> pick 4 when a group has at least 2 channels, else 1 (depthwise).
/// The weight gradient has a second rung, <see cref="BackwardWeightSplit"/> + <see cref="BackwardWeightFinalize"/>:
/// the same tiles over slices of the B·Ho·Wo reduction range (split-K, to fill a GPU when the tiles alone are few),
/// whose partials are summed in a fixed order (no atomics: still deterministic).
/// Padding costs no bounds check in the row direction (valid kernel rows are computed per item); in the column
/// direction each loaded column is tested once.
/// </para>
/// </summary>
public static class Conv2dKernels
{
    /// <summary>
    /// Forward: <c>y = conv(x, w) (+ bias)</c>. One work item computes <paramref name="channelBlock"/> (1 to 4) output
    /// channels of one group × 4 adjacent output columns of one output row;
    /// <c>n = </c><see cref="Conv2dGeometry.ForwardItems"/>(channelBlock). <paramref name="bias"/> is read only when
    /// <paramref name="hasBias"/> ≠ 0 (pass any view otherwise). Overwrites <paramref name="output"/>.
    /// </summary>
    [Kernel]
    public static void Forward(Index1D index, int n, int stride, Conv2dGeometry g, int channelBlock,
        ArrayView<float> input, ArrayView<float> weight, ArrayView<float> bias, int hasBias, ArrayView<float> output)
    {
        int k = g.KernelSize, s = g.Stride, p = g.Padding;
        int h = g.Height, w = g.Width, ho = g.OutHeight, wo = g.OutWidth;
        int cinG = g.InPerGroup, coutG = g.OutPerGroup;
        int kk = k * k, hw = h * w, howo = ho * wo;
        int colBlocks = g.ForwardColumnBlocks;
        int coBlocks = Conv2dGeometry.CeilDiv(coutG, channelBlock);
        bool wide = channelBlock > 1;
        int wCo = cinG * kk; // weight elements per output channel
        int rEnd = Min(s, k);
        for (int item = index; item < n; item += stride)
        {
            int t = item, q = t / colBlocks;
            int ow0 = (t - q * colBlocks) * Conv2dGeometry.ColumnBlock;
            t = q; q = t / ho;
            int oh = t - q * ho;
            t = q; q = t / coBlocks;
            int coL0 = (t - q * coBlocks) * channelBlock;
            int b = q / g.Groups;
            int grp = q - b * g.Groups;
            int co0 = grp * coutG + coL0;
            int lastSlot = Min(channelBlock, coutG - coL0) - 1; // later slots repeat the last channel
            int d1 = Min(1, lastSlot), d2 = Min(2, lastSlot), d3 = Min(3, lastSlot);
            int o1 = d1 * wCo, o2 = d2 * wCo, o3 = d3 * wCo;

            float b0 = 0f, b1 = 0f, b2 = 0f, b3 = 0f;
            if (hasBias != 0)
            {
                b0 = bias[co0];
                if (wide)
                {
                    b1 = bias[co0 + d1];
                    b2 = bias[co0 + d2];
                    b3 = bias[co0 + d3];
                }
            }
            // Deliberate unrolling: a 4 × 4 register tile (channels × columns) written out by hand (ILGPU 1.5.3 does not
            // unroll loops, and a local array stays in registers only with constant indices); the other passes share the shape.
            float a00 = b0, a01 = b0, a02 = b0, a03 = b0;
            float a10 = b1, a11 = b1, a12 = b1, a13 = b1;
            float a20 = b2, a21 = b2, a22 = b2, a23 = b2;
            float a30 = b3, a31 = b3, a32 = b3, a33 = b3;

            int ih0 = oh * s - p;
            int khLo = Max(0, -ih0), khHi = Min(k, h - ih0);
            int iwBase = ow0 * s - p;
            int xPlane = (b * g.InChannels + grp * cinG) * hw;
            int wPlane = co0 * wCo;
            for (int ci = 0; ci < cinG; ci++, xPlane += hw, wPlane += kk)
            {
                for (int kh = khLo; kh < khHi; kh++)
                {
                    int xRow = xPlane + (ih0 + kh) * w;
                    int wRow = wPlane + kh * k;
                    // Column c reads x[iwBase + c·s + kw]; stepping kw by s shifts that window by one column,
                    // so each residue class r of kw loads three columns once and then one new column per tap.
                    for (int r = 0; r < rEnd; r++)
                    {
                        int iw = iwBase + r;
                        float x0 = LoadOrZero(input, xRow, iw, w);
                        float x1 = LoadOrZero(input, xRow, iw + s, w);
                        float x2 = LoadOrZero(input, xRow, iw + 2 * s, w);
                        iw += 3 * s;
                        for (int kw = r; kw < k; kw += s, iw += s)
                        {
                            float x3 = LoadOrZero(input, xRow, iw, w);
                            int wi = wRow + kw;
                            float w0 = weight[wi];
                            a00 += w0 * x0; a01 += w0 * x1; a02 += w0 * x2; a03 += w0 * x3;
                            if (wide)
                            {
                                float w1 = weight[wi + o1], w2 = weight[wi + o2], w3 = weight[wi + o3];
                                a10 += w1 * x0; a11 += w1 * x1; a12 += w1 * x2; a13 += w1 * x3;
                                a20 += w2 * x0; a21 += w2 * x1; a22 += w2 * x2; a23 += w2 * x3;
                                a30 += w3 * x0; a31 += w3 * x1; a32 += w3 * x2; a33 += w3 * x3;
                            }
                            x0 = x1; x1 = x2; x2 = x3;
                        }
                    }
                }
            }

            int cols = Min(Conv2dGeometry.ColumnBlock, wo - ow0);
            int y = ((b * g.OutChannels + co0) * ho + oh) * wo + ow0;
            Write4(output, y, 1, cols, a00, a01, a02, a03);
            if (lastSlot >= 1) Write4(output, y + howo, 1, cols, a10, a11, a12, a13);
            if (lastSlot >= 2) Write4(output, y + 2 * howo, 1, cols, a20, a21, a22, a23);
            if (lastSlot >= 3) Write4(output, y + 3 * howo, 1, cols, a30, a31, a32, a33);
        }
    }

    /// <summary>
    /// Input gradient: <c>dInput[b,ci,ih,iw] += Σ_{co ∈ group(ci), kh, kw} dOutput[b,co,oh,ow] · w[co, ci_local, kh, kw]</c>
    /// over the taps with <c>oh·s − p + kh = ih</c>, <c>ow·s − p + kw = iw</c> inside the output (a gather: no
    /// atomics). One work item owns <paramref name="channelBlock"/> (1 to 4) input channels of one group × 4 input
    /// columns of one row with the same residue modulo s (iw0, iw0 + s, iw0 + 2s, iw0 + 3s), which read the same
    /// taps; <c>n = </c><see cref="Conv2dGeometry.BackwardInputItems"/>(channelBlock). Needs w. Accumulates into
    /// <paramref name="dInput"/> when <paramref name="accumulate"/> ≠ 0, else overwrites it (every element is owned
    /// by one work item and written once; <see cref="ElementwiseKernels.Prior"/>).
    /// </summary>
    [Kernel]
    public static void BackwardInput(Index1D index, int n, int stride, Conv2dGeometry g, int channelBlock, int accumulate,
        ArrayView<float> dOutput, ArrayView<float> weight, ArrayView<float> dInput)
    {
        int k = g.KernelSize, s = g.Stride, p = g.Padding;
        int h = g.Height, w = g.Width, ho = g.OutHeight, wo = g.OutWidth;
        int cinG = g.InPerGroup, coutG = g.OutPerGroup;
        int kk = k * k, hw = h * w, howo = ho * wo;
        int colBlocks = g.BackwardInputColumnBlocks;
        int ciBlocks = Conv2dGeometry.CeilDiv(cinG, channelBlock);
        bool wide = channelBlock > 1;
        int wCo = cinG * kk;
        for (int item = index; item < n; item += stride)
        {
            int t = item, q = t / colBlocks;
            int cb = t - q * colBlocks;
            t = q; q = t / h;
            int ih = t - q * h;
            t = q; q = t / ciBlocks;
            int ciL0 = (t - q * ciBlocks) * channelBlock;
            int b = q / g.Groups;
            int grp = q - b * g.Groups;
            int iw0 = cb % s + cb / s * Conv2dGeometry.ColumnBlock * s;
            if (iw0 >= w) continue; // an empty block of a high residue
            int lastSlot = Min(channelBlock, cinG - ciL0) - 1;
            int o1 = Min(1, lastSlot) * kk, o2 = Min(2, lastSlot) * kk, o3 = Min(3, lastSlot) * kk;

            // Deliberate unrolling: a 4 × 4 register tile (channels × columns) written out by hand (ILGPU 1.5.3 does not
            // unroll loops, and a local array stays in registers only with constant indices); the other passes share the shape.
            float a00 = 0f, a01 = 0f, a02 = 0f, a03 = 0f;
            float a10 = 0f, a11 = 0f, a12 = 0f, a13 = 0f;
            float a20 = 0f, a21 = 0f, a22 = 0f, a23 = 0f;
            float a30 = 0f, a31 = 0f, a32 = 0f, a33 = 0f;

            // kh ≡ ih + p (mod s), 0 ≤ oh = (ih + p − kh)/s < Ho; likewise kw for column iw0, and the block's
            // later columns read ow + 1, ow + 2, ow + 3.
            int th = ih + p, u = iw0 + p;
            int khLo = Max(th % s, th - (ho - 1) * s), khHi = Min(k - 1, th);
            int kwLo = Max(u % s, u - (wo - 1) * s), kwHi = Min(k - 1, u + (Conv2dGeometry.ColumnBlock - 1) * s);
            int dyPlane = (b * g.OutChannels + grp * coutG) * howo;
            int wPlane = grp * coutG * wCo + ciL0 * kk;
            for (int coL = 0; coL < coutG; coL++, dyPlane += howo, wPlane += wCo)
            {
                for (int kh = khLo; kh <= khHi; kh += s)
                {
                    int dyRow = dyPlane + (th - kh) / s * wo;
                    int wRow = wPlane + kh * k;
                    // Column c reads dOutput[ow + c] with ow = (u − kw)/s; stepping kw by s moves ow back by one,
                    // so the window shifts by one column: three loads up front, then one new column per tap.
                    int ow = (u - kwLo) / s;
                    float y1 = LoadOrZero(dOutput, dyRow, ow + 1, wo);
                    float y2 = LoadOrZero(dOutput, dyRow, ow + 2, wo);
                    float y3 = LoadOrZero(dOutput, dyRow, ow + 3, wo);
                    for (int kw = kwLo; kw <= kwHi; kw += s, ow--)
                    {
                        float y0 = LoadOrZero(dOutput, dyRow, ow, wo);
                        int wi = wRow + kw;
                        float w0 = weight[wi];
                        a00 += w0 * y0; a01 += w0 * y1; a02 += w0 * y2; a03 += w0 * y3;
                        if (wide)
                        {
                            float w1 = weight[wi + o1], w2 = weight[wi + o2], w3 = weight[wi + o3];
                            a10 += w1 * y0; a11 += w1 * y1; a12 += w1 * y2; a13 += w1 * y3;
                            a20 += w2 * y0; a21 += w2 * y1; a22 += w2 * y2; a23 += w2 * y3;
                            a30 += w3 * y0; a31 += w3 * y1; a32 += w3 * y2; a33 += w3 * y3;
                        }
                        y3 = y2; y2 = y1; y1 = y0;
                    }
                }
            }

            int cols = Min(Conv2dGeometry.ColumnBlock, (w - 1 - iw0) / s + 1);
            int x = (b * g.InChannels + grp * cinG + ciL0) * hw + ih * w + iw0;
            AddOrWrite4(dInput, x, s, cols, accumulate, a00, a01, a02, a03);
            if (lastSlot >= 1) AddOrWrite4(dInput, x + hw, s, cols, accumulate, a10, a11, a12, a13);
            if (lastSlot >= 2) AddOrWrite4(dInput, x + 2 * hw, s, cols, accumulate, a20, a21, a22, a23);
            if (lastSlot >= 3) AddOrWrite4(dInput, x + 3 * hw, s, cols, accumulate, a30, a31, a32, a33);
        }
    }

    /// <summary>
    /// Weight gradient: <c>dWeight[co, ci_local, kh, kw] += Σ_{b, oh, ow} dOutput[b,co,oh,ow] · x[b, ci, oh·s − p + kh, ow·s − p + kw]</c>
    /// over the positions whose tap lies inside the input. One work item owns one tap (kh, kw) of
    /// <paramref name="outBlock"/> output × <paramref name="inBlock"/> input channels (each 1 to 4) of one group and
    /// loops over the batch and the output positions in order;
    /// <c>n = </c><see cref="Conv2dGeometry.BackwardWeightItems"/>(outBlock, inBlock). Needs x. Accumulates into
    /// <paramref name="dWeight"/>. The first rung (the CPU accelerator's choice); <see cref="BackwardWeightSplit"/> is the second.
    /// </summary>
    [Kernel]
    public static void BackwardWeight(Index1D index, int n, int stride, Conv2dGeometry g, int outBlock, int inBlock,
        ArrayView<float> dOutput, ArrayView<float> input, ArrayView<float> dWeight)
    {
        int positions = g.Batch * g.OutHeight * g.OutWidth;
        for (int item = index; item < n; item += stride)
            WeightTile(item, g, outBlock, inBlock, 0, positions, dOutput, input, dWeight, 0, true);
    }

    /// <summary>
    /// Split-K weight gradient, the second rung: the reduction range K = B·Ho·Wo (output positions in (b, oh, ow)
    /// order) is cut into <paramref name="splits"/> contiguous slices of ⌈K / splits⌉ positions (trailing slices
    /// may be short or empty), and work item <c>split·items + i</c> computes tile i of <see cref="BackwardWeight"/>
    /// over slice <c>split</c> only, overwriting its sums into <c>partials[split·|w| + …]</c> (an empty slice writes
    /// zeros); <c>n = splits · </c><see cref="Conv2dGeometry.BackwardWeightItems"/>(outBlock, inBlock), partials
    /// <c>[splits, |w|]</c>. <see cref="BackwardWeightFinalize"/> then adds the slices into dWeight in fixed order,
    /// so the result is deterministic. Needs x.
    /// </summary>
    [Kernel]
    public static void BackwardWeightSplit(Index1D index, int n, int stride, Conv2dGeometry g, int outBlock, int inBlock, int splits,
        ArrayView<float> dOutput, ArrayView<float> input, ArrayView<float> partials)
    {
        int positions = g.Batch * g.OutHeight * g.OutWidth;
        int slice = Conv2dGeometry.CeilDiv(positions, splits);
        int items = n / splits, weights = g.WeightLength;
        for (int item = index; item < n; item += stride)
        {
            int split = item / items;
            int begin = Min(positions, split * slice), end = Min(positions, begin + slice);
            WeightTile(item - split * items, g, outBlock, inBlock, begin, end, dOutput, input, partials, split * weights, false);
        }
    }

    /// <summary>
    /// Finalize of <see cref="BackwardWeightSplit"/>: <c>dWeight[i] += Σ_{split} partials[split·n + i]</c> for
    /// i &lt; n = |w|, summed in split order in double. Accumulates into <paramref name="dWeight"/>.
    /// </summary>
    [Kernel]
    public static void BackwardWeightFinalize(Index1D index, int n, int stride, int splits, ArrayView<float> partials, ArrayView<float> dWeight)
    {
        for (int i = index; i < n; i += stride)
        {
            double sum = 0.0;
            for (int split = 0, j = i; split < splits; split++, j += n)
                sum += partials[j];
            dWeight[i] += (float)sum;
        }
    }

    /// <summary>
    /// One weight-gradient tile: tap (kh, kw) of up to 4 × 4 (output, input) channels (work item
    /// <paramref name="item"/> of <see cref="Conv2dGeometry.BackwardWeightItems"/>), summed over the output positions
    /// [<paramref name="begin"/>, <paramref name="end"/>) of the flat (b, oh, ow) range in order, skipping those whose
    /// tap falls in the padding; added into (or, without <paramref name="accumulate"/>, stored to)
    /// <c>target[offset + weight index]</c>.
    /// </summary>
    private static void WeightTile(int item, Conv2dGeometry g, int outBlock, int inBlock, int begin, int end,
        ArrayView<float> dOutput, ArrayView<float> input, ArrayView<float> target, int offset, bool accumulate)
    {
        int k = g.KernelSize, s = g.Stride, p = g.Padding;
        int h = g.Height, w = g.Width, ho = g.OutHeight, wo = g.OutWidth;
        int cinG = g.InPerGroup, coutG = g.OutPerGroup;
        int kk = k * k, hw = h * w, howo = ho * wo;
        int coBlocks = Conv2dGeometry.CeilDiv(coutG, outBlock);
        int ciBlocks = Conv2dGeometry.CeilDiv(cinG, inBlock);
        bool wideOut = outBlock > 1, wideIn = inBlock > 1;
        int xBatch = g.InChannels * hw, dyBatch = g.OutChannels * howo;

        int t = item, q = t / kk;
        int tap = t - q * kk;
        t = q; q = t / ciBlocks;
        int ciL0 = (t - q * ciBlocks) * inBlock;
        int grp = q / coBlocks;
        int coL0 = (q - grp * coBlocks) * outBlock;
        int kh = tap / k, kw = tap - kh * k;
        int lastCo = Min(outBlock, coutG - coL0) - 1, lastCi = Min(inBlock, cinG - ciL0) - 1;
        int dy1 = Min(1, lastCo) * howo, dy2 = Min(2, lastCo) * howo, dy3 = Min(3, lastCo) * howo;
        int x1 = Min(1, lastCi) * hw, x2 = Min(2, lastCi) * hw, x3 = Min(3, lastCi) * hw;

        // Deliberate unrolling: a 4 × 4 register tile (channels × columns) written out by hand (ILGPU 1.5.3 does not
        // unroll loops, and a local array stays in registers only with constant indices); the other passes share the shape.
        float a00 = 0f, a01 = 0f, a02 = 0f, a03 = 0f;
        float a10 = 0f, a11 = 0f, a12 = 0f, a13 = 0f;
        float a20 = 0f, a21 = 0f, a22 = 0f, a23 = 0f;
        float a30 = 0f, a31 = 0f, a32 = 0f, a33 = 0f;

        int ohLo = g.FirstOutputForTap(kh), ohHi = g.EndOutputForTap(kh, h, ho);
        int owLo = g.FirstOutputForTap(kw), owHi = g.EndOutputForTap(kw, w, wo);
        // rows r = b·Ho + oh of the range; row r covers positions [r·Wo, r·Wo + Wo)
        int rowEnd = end > begin ? (end - 1) / wo + 1 : begin / wo;
        int row = begin / wo;
        int b = row / ho, oh = row - b * ho;
        int dyPlane = (grp * coutG + coL0) * howo + b * dyBatch;
        int xPlane = (grp * cinG + ciL0) * hw + (kh - p) * w + kw - p + b * xBatch;
        for (; row < rowEnd; row++)
        {
            if (oh >= ohLo && oh < ohHi)
            {
                int rowStart = row * wo;
                int owBegin = Max(owLo, begin - rowStart), owEnd = Min(owHi, end - rowStart);
                int dyRow = dyPlane + oh * wo;
                int xRow = xPlane + oh * s * w;
                for (int ow = owBegin; ow < owEnd; ow++)
                {
                    int yi = dyRow + ow, xi = xRow + ow * s;
                    float y0 = dOutput[yi], v0 = input[xi];
                    float v1 = 0f, v2 = 0f, v3 = 0f;
                    a00 += y0 * v0;
                    if (wideIn)
                    {
                        v1 = input[xi + x1]; v2 = input[xi + x2]; v3 = input[xi + x3];
                        a01 += y0 * v1; a02 += y0 * v2; a03 += y0 * v3;
                    }
                    if (wideOut)
                    {
                        float y1 = dOutput[yi + dy1], y2 = dOutput[yi + dy2], y3 = dOutput[yi + dy3];
                        a10 += y1 * v0; a20 += y2 * v0; a30 += y3 * v0;
                        if (wideIn)
                        {
                            a11 += y1 * v1; a12 += y1 * v2; a13 += y1 * v3;
                            a21 += y2 * v1; a22 += y2 * v2; a23 += y2 * v3;
                            a31 += y3 * v1; a32 += y3 * v2; a33 += y3 * v3;
                        }
                    }
                }
            }
            if (++oh == ho)
            {
                oh = 0;
                dyPlane += dyBatch;
                xPlane += xBatch;
            }
        }

        int cols = lastCi + 1;
        int wCo = cinG * kk;
        int dw = offset + ((grp * coutG + coL0) * cinG + ciL0) * kk + tap;
        Store4(target, dw, kk, cols, accumulate, a00, a01, a02, a03);
        if (lastCo >= 1) Store4(target, dw + wCo, kk, cols, accumulate, a10, a11, a12, a13);
        if (lastCo >= 2) Store4(target, dw + 2 * wCo, kk, cols, accumulate, a20, a21, a22, a23);
        if (lastCo >= 3) Store4(target, dw + 3 * wCo, kk, cols, accumulate, a30, a31, a32, a33);
    }

    /// <summary>
    /// Bias gradient: <c>dBias[co] += Σ_{b, oh, ow} dOutput[b, co, oh, ow]</c>, one work item per output channel
    /// (<c>n = C_out</c>), summed in order. Accumulates into <paramref name="dBias"/>.
    /// </summary>
    [Kernel]
    public static void BackwardBias(Index1D index, int n, int stride, Conv2dGeometry g, ArrayView<float> dOutput, ArrayView<float> dBias)
    {
        int howo = g.OutHeight * g.OutWidth, dyBatch = g.OutChannels * howo;
        for (int co = index; co < n; co += stride)
        {
            float acc = 0f;
            for (int b = 0, plane = co * howo; b < g.Batch; b++, plane += dyBatch)
                for (int j = 0; j < howo; j++)
                    acc += dOutput[plane + j];
            dBias[co] += acc;
        }
    }

    // ---- The plane-tile rung (few channels per group: depthwise and narrow grouped convolutions on the GPU) ----
    // A tiled GEMM's rows are the channels of one group, mostly empty when a group has one to seven. Here a thread
    // group owns one tile of one plane instead, stages the input window it reads (the tile and its halo) in shared
    // memory once, and the channel (or weight plane) and the sample (or a split of the reduction) are grid dimensions.

    /// <summary>
    /// Most floats a plane-tile kernel stages at once: the input window of a tile,
    /// <see cref="PlaneWindow"/>(g, tileHeight, tileWidth), which also bounds the dOutput window an input-gradient tile reads.
    /// </summary>
    public const int MaxPlaneStage = 2304;

    /// <summary>Most positions (tileHeight · tileWidth) of one tile of the plane-tile kernels.</summary>
    public const int MaxPlaneTile = 512;

    /// <summary>Most threads a group of the plane-tile kernels may hold.</summary>
    public const int MaxPlaneThreads = 512;

    /// <summary>Most kernel taps K² of the plane-tile kernels (K up to 7).</summary>
    public const int MaxPlaneTaps = 49;

    /// <summary>Tiles of tileHeight × tileWidth that cover a height × width plane: ⌈height/tileHeight⌉ · ⌈width/tileWidth⌉.</summary>
    public static int PlaneTiles(int height, int width, int tileHeight, int tileWidth) =>
        Conv2dGeometry.CeilDiv(height, tileHeight) * Conv2dGeometry.CeilDiv(width, tileWidth);

    /// <summary>
    /// Floats of the input window a tileHeight × tileWidth output tile reads, ((tileHeight − 1)·s + K) · ((tileWidth − 1)·s + K).
    /// Not smaller than the dOutput window of an input tile of the same extent, (⌊(tileHeight + K − 2)/s⌋ + 1) · (⌊(tileWidth + K − 2)/s⌋ + 1).
    /// </summary>
    public static long PlaneWindow(Conv2dGeometry g, int tileHeight, int tileWidth) =>
        ((long)(tileHeight - 1) * g.Stride + g.KernelSize) * ((long)(tileWidth - 1) * g.Stride + g.KernelSize);

    /// <summary>
    /// Forward on plane tiles: thread group (x, y, z) = (tile, output channel co, sample b) computes the outputs of tile x
    /// (<see cref="PlaneTiles"/>(Ho, Wo, tileHeight, tileWidth) tiles, numbered column-fastest; the last row and column of
    /// tiles are partial) of plane (b, co). For each input channel of co's group in turn it stages the tile's input window
    /// (rows·s − p + kh, zeros in the padding) and the K × K weights of (co, ci) in shared memory, then each thread adds the
    /// taps of its outputs (positions tid, tid + threads, … of the tile), whose sums stay in shared memory from one channel to the
    /// next. Launched with grid (tiles, C_out, B) and any group size; overwrites <paramref name="output"/>. Each output sums the bias,
    /// then its channels and taps (kh, kw) in order: <see cref="Forward"/>'s values up to float summation order. Host checks:
    /// tile extents ≥ 1, tileHeight · tileWidth ≤ <see cref="MaxPlaneTile"/>, <see cref="PlaneWindow"/> ≤ <see cref="MaxPlaneStage"/>,
    /// K² ≤ <see cref="MaxPlaneTaps"/>.
    /// </summary>
    [Kernel(ExplicitlyGrouped = true)]
    public static void ForwardPlanes(Conv2dGeometry g, int tileHeight, int tileWidth,
        ArrayView<float> input, ArrayView<float> weight, ArrayView<float> bias, int hasBias, ArrayView<float> output)
    {
        var window = SharedMemory.Allocate<float>(MaxPlaneStage);
        var taps = SharedMemory.Allocate<float>(MaxPlaneTaps);
        var sums = SharedMemory.Allocate<float>(MaxPlaneTile);
        int k = g.KernelSize, s = g.Stride, kk = k * k, cinG = g.InPerGroup, hw = g.Height * g.Width;
        var tile = new PlaneTile(Grid.IdxX, tileHeight, tileWidth, g.OutHeight, g.OutWidth);
        int co = Grid.IdxY, b = Grid.IdxZ;
        int tid = Group.IdxX, threads = Group.DimX;
        int rows = (tile.Rows - 1) * s + k, cols = (tile.Cols - 1) * s + k;
        float start = hasBias != 0 ? bias[co] : 0f;
        for (int e = tid; e < tile.Count; e += threads)
            sums[e] = start;
        int plane = (b * g.InChannels + co / g.OutPerGroup * cinG) * hw;
        for (int ci = 0; ci < cinG; ci++, plane += hw)
        {
            StageWindow(window, input, plane, tile.Row * s - g.Padding, tile.Col * s - g.Padding, rows, cols, g.Height, g.Width);
            StageRange(taps, weight, (co * cinG + ci) * kk, kk);
            Group.Barrier();
            for (int e = tid; e < tile.Count; e += threads)
            {
                int r = e / tile.Cols, c = e - r * tile.Cols;
                float acc = sums[e];
                for (int kh = 0, at = r * s * cols + c * s; kh < k; kh++, at += cols)
                    for (int kw = 0; kw < k; kw++)
                        acc += taps[kh * k + kw] * window[at + kw];
                sums[e] = acc;
            }
            Group.Barrier();
        }
        int y = ((b * g.OutChannels + co) * g.OutHeight + tile.Row) * g.OutWidth + tile.Col;
        for (int e = tid; e < tile.Count; e += threads)
        {
            int r = e / tile.Cols;
            output[y + r * g.OutWidth + e - r * tile.Cols] = sums[e];
        }
    }

    /// <summary>
    /// Input gradient on plane tiles: thread group (x, y, z) = (tile, input channel ci, sample b) computes
    /// <c>dInput[b, ci, ih, iw] = Σ_{co ∈ group(ci), kh, kw} dOutput[b, co, (ih + p − kh)/s, (iw + p − kw)/s] · w[co, ci_local, kh, kw]</c>
    /// for the positions of tile x of the input plane (<see cref="PlaneTiles"/>(H, W, tileHeight, tileWidth), column-fastest) over
    /// the taps whose divisions are exact (kh ≡ ih + p mod s; the transposed convolution of <see cref="BackwardInputTiled"/>).
    /// For each output channel of the group in turn it stages the dOutput window the tile reads (output rows
    /// ⌈(ih₀ + p − K + 1)/s⌉ to ⌊(ih₀ + rows − 1 + p)/s⌋, likewise columns; zeros outside the output, so no tap needs a bounds
    /// check) and the K × K weights of (co, ci), then each thread gathers the taps of its positions. Launched with grid
    /// (tiles, C_in, B) and any group size. Accumulates into <paramref name="dInput"/> when <paramref name="accumulate"/> ≠ 0, else
    /// overwrites it (every element is written once; <see cref="ElementwiseKernels.Prior"/>). Host checks as <see cref="ForwardPlanes"/>.
    /// </summary>
    [Kernel(ExplicitlyGrouped = true)]
    public static void BackwardInputPlanes(Conv2dGeometry g, int tileHeight, int tileWidth, int accumulate,
        ArrayView<float> dOutput, ArrayView<float> weight, ArrayView<float> dInput)
    {
        var window = SharedMemory.Allocate<float>(MaxPlaneStage);
        var taps = SharedMemory.Allocate<float>(MaxPlaneTaps);
        var sums = SharedMemory.Allocate<float>(MaxPlaneTile);
        int k = g.KernelSize, s = g.Stride, p = g.Padding, kk = k * k;
        int cinG = g.InPerGroup, coutG = g.OutPerGroup, howo = g.OutHeight * g.OutWidth;
        var tile = new PlaneTile(Grid.IdxX, tileHeight, tileWidth, g.Height, g.Width);
        int ci = Grid.IdxY, b = Grid.IdxZ;
        int grp = ci / cinG, ciL = ci - grp * cinG;
        int tid = Group.IdxX, threads = Group.DimX;
        int oh0 = FloorDiv(tile.Row + p - k + s, s), ow0 = FloorDiv(tile.Col + p - k + s, s);
        int rows = (tile.Row + tile.Rows - 1 + p) / s - oh0 + 1, cols = (tile.Col + tile.Cols - 1 + p) / s - ow0 + 1;
        for (int e = tid; e < tile.Count; e += threads)
            sums[e] = 0f;
        int plane = (b * g.OutChannels + grp * coutG) * howo;
        int taps0 = (grp * coutG * cinG + ciL) * kk; // w[co, ci_local] of the group's first output channel
        for (int coL = 0; coL < coutG; coL++, plane += howo, taps0 += cinG * kk)
        {
            StageWindow(window, dOutput, plane, oh0, ow0, rows, cols, g.OutHeight, g.OutWidth);
            StageRange(taps, weight, taps0, kk);
            Group.Barrier();
            for (int e = tid; e < tile.Count; e += threads)
            {
                int r = e / tile.Cols;
                int u = tile.Row + r + p, v = tile.Col + e - r * tile.Cols + p;
                float acc = sums[e];
                // (u − kh) and (v − kw) are multiples of s, so the divisions are exact even where negative (the window's zeros)
                for (int kh = u % s; kh < k; kh += s)
                {
                    int at = ((u - kh) / s - oh0) * cols - ow0;
                    for (int kw = v % s; kw < k; kw += s)
                        acc += taps[kh * k + kw] * window[at + (v - kw) / s];
                }
                sums[e] = acc;
            }
            Group.Barrier();
        }
        int x = ((b * g.InChannels + ci) * g.Height + tile.Row) * g.Width + tile.Col;
        for (int e = tid; e < tile.Count; e += threads)
        {
            int r = e / tile.Cols, at = x + r * g.Width + e - r * tile.Cols;
            dInput[at] = ElementwiseKernels.Prior(accumulate, dInput, at) + sums[e];
        }
    }

    /// <summary>
    /// Split-K weight gradient on plane tiles: thread group (split, plane), plane = co·(C_in/groups) + ci_local, sums
    /// <c>dWeight[co, ci_local, kh, kw]</c> over slice <paramref name="splits"/> of the units (b, tile): the B ·
    /// <see cref="PlaneTiles"/>(Ho, Wo, tileHeight, tileWidth) units are cut into <paramref name="splits"/> contiguous slices of
    /// ⌈units / splits⌉ (trailing slices may be short or empty). Per unit the group stages the dOutput tile of (b, co) and the
    /// input window of (b, ci) in shared memory; work item (tap, lane) of K² × lanes, lanes = max(1, threads / K²), adds
    /// dOutput · x over the tile's positions lane, lane + lanes, … into its own sum. Then each tap adds its lanes' sums in lane
    /// order (a fixed-order in-group reduction: no atomics) and overwrites <c>partials[split·|w| + plane·K² + tap]</c> (an empty
    /// slice writes zeros). Launched with grid (splits, C_out · C_in/groups) and any group size; partials <c>[splits, |w|]</c>,
    /// added into dWeight in split order by <see cref="BackwardWeightFinalize"/>: deterministic. Host checks as
    /// <see cref="ForwardPlanes"/>, and at most <see cref="MaxPlaneThreads"/> threads.
    /// </summary>
    [Kernel(ExplicitlyGrouped = true)]
    public static void BackwardWeightPlanes(Conv2dGeometry g, int tileHeight, int tileWidth, int splits,
        ArrayView<float> dOutput, ArrayView<float> input, ArrayView<float> partials)
    {
        var window = SharedMemory.Allocate<float>(MaxPlaneStage);
        var gradients = SharedMemory.Allocate<float>(MaxPlaneTile);
        var sums = SharedMemory.Allocate<float>(MaxPlaneThreads);
        int k = g.KernelSize, s = g.Stride, p = g.Padding, kk = k * k, cinG = g.InPerGroup;
        int split = Grid.IdxX, plane = Grid.IdxY;
        int co = plane / cinG, ci = co / g.OutPerGroup * cinG + plane - co * cinG;
        int tid = Group.IdxX, threads = Group.DimX;
        int lanes = Max(1, threads / kk), items = kk * lanes;
        int tilesPerPlane = PlaneTiles(g.OutHeight, g.OutWidth, tileHeight, tileWidth);
        int units = g.Batch * tilesPerPlane, slice = Conv2dGeometry.CeilDiv(units, splits);
        int begin = Min(units, split * slice), end = Min(units, begin + slice);
        for (int item = tid; item < items; item += threads)
            sums[item] = 0f;
        for (int unit = begin; unit < end; unit++)
        {
            int b = unit / tilesPerPlane;
            var tile = new PlaneTile(unit - b * tilesPerPlane, tileHeight, tileWidth, g.OutHeight, g.OutWidth);
            int cols = (tile.Cols - 1) * s + k;
            StageWindow(window, input, (b * g.InChannels + ci) * g.Height * g.Width, tile.Row * s - p, tile.Col * s - p,
                (tile.Rows - 1) * s + k, cols, g.Height, g.Width);
            StageWindow(gradients, dOutput, (b * g.OutChannels + co) * g.OutHeight * g.OutWidth, tile.Row, tile.Col,
                tile.Rows, tile.Cols, g.OutHeight, g.OutWidth);
            Group.Barrier();
            for (int item = tid; item < items; item += threads)
            {
                int tap = item / lanes, lane = item - tap * lanes;
                int kh = tap / k, kw = tap - kh * k;
                float acc = sums[item];
                for (int e = lane; e < tile.Count; e += lanes)
                {
                    int r = e / tile.Cols, c = e - r * tile.Cols;
                    acc += gradients[e] * window[(r * s + kh) * cols + c * s + kw];
                }
                sums[item] = acc;
            }
            Group.Barrier();
        }
        Group.Barrier(); // an empty slice did not pass the loop's barriers
        int dw = split * g.WeightLength + plane * kk;
        for (int tap = tid; tap < kk; tap += threads)
        {
            float sum = 0f;
            for (int lane = 0, at = tap * lanes; lane < lanes; lane++, at++)
                sum += sums[at];
            partials[dw + tap] = sum;
        }
    }

    /// <summary>
    /// Tile <c>index</c> of a height × width plane cut into tileHeight × tileWidth tiles numbered column-fastest: rows
    /// [Row, Row + Rows) × columns [Col, Col + Cols) (the last row and column of tiles may be partial).
    /// </summary>
    private readonly struct PlaneTile
    {
        public PlaneTile(int index, int tileHeight, int tileWidth, int height, int width)
        {
            int across = Conv2dGeometry.CeilDiv(width, tileWidth), down = index / across;
            Row = down * tileHeight;
            Col = (index - down * across) * tileWidth;
            Rows = Min(tileHeight, height - Row);
            Cols = Min(tileWidth, width - Col);
        }

        public int Row { get; }

        public int Col { get; }

        public int Rows { get; }

        public int Cols { get; }

        /// <summary>Positions of the tile, Rows · Cols.</summary>
        public int Count => Rows * Cols;
    }

    /// <summary>
    /// Copies rows [row0, row0 + rows) × columns [col0, col0 + cols) of the height × width plane starting at
    /// <paramref name="plane"/> into <paramref name="window"/> (row-major, rows · cols floats), zeros where the window leaves
    /// the plane. The group's threads share the copy, consecutive threads on consecutive columns (coalesced reads).
    /// </summary>
    private static void StageWindow(ArrayView<float> window, ArrayView<float> source, int plane, int row0, int col0, int rows, int cols,
        int height, int width)
    {
        for (int e = Group.IdxX; e < rows * cols; e += Group.DimX)
        {
            int r = e / cols, ih = row0 + r, iw = col0 + e - r * cols;
            window[e] = (uint)ih < (uint)height && (uint)iw < (uint)width ? source[plane + ih * width + iw] : 0f;
        }
    }

    /// <summary>Copies <c>source[offset, offset + n)</c> into <paramref name="target"/>, shared by the group's threads.</summary>
    private static void StageRange(ArrayView<float> target, ArrayView<float> source, int offset, int n)
    {
        for (int e = Group.IdxX; e < n; e += Group.DimX)
            target[e] = source[offset + e];
    }

    /// <summary>⌊a / b⌋ for any a and b &gt; 0.</summary>
    private static int FloorDiv(int a, int b) => a >= 0 ? a / b : -((b - 1 - a) / b);

    // ---- The tiled rung (implicit GEMM with shared-memory tiles): the GPU path of the forward, the input gradient and the weight gradient ----

    /// <summary>Largest <c>tileM</c> of the tiled kernels (the shared tiles are sized for it).</summary>
    public const int MaxTileM = 64;

    /// <summary>Largest <c>tileN</c> of the tiled kernels.</summary>
    public const int MaxTileN = 128;

    /// <summary>Largest <c>tileK</c> of the tiled kernels.</summary>
    public const int MaxTileK = 16;

    /// <summary>
    /// Forward as an implicit GEMM per channel group: <c>Y[co, n] = Σ_k W[co, k] · X̂[k, n]</c> with
    /// n = (b, oh, ow), k = (ci, kh, kw) and X̂ the im2col view of the input, formed while loading (never stored).
    /// Launched with <c>groups · ⌈C_out/groups / tileM⌉ · ⌈B·Ho·Wo / tileN⌉</c> groups of <c>tileM·tileN/16</c>
    /// threads (see <see cref="TiledGemm{TOperands}"/>); overwrites <paramref name="output"/>. Same values as
    /// <see cref="Forward"/> up to float summation order (each output sums its taps in k order).
    /// </summary>
    [Kernel(ExplicitlyGrouped = true)]
    public static void ForwardTiled(Conv2dGeometry g, int tileM, int tileN, int tileK,
        ArrayView<float> input, ArrayView<float> weight, ArrayView<float> bias, int hasBias, ArrayView<float> output) =>
        TiledGemm(new ForwardOperands(g, input, weight, bias, hasBias, output), tileM, tileN, tileK);

    /// <summary>
    /// Input gradient as an implicit GEMM per channel group: <c>dX[ci, n] += Σ_k Wᵀ[ci, k] · dŶ[k, n]</c> with
    /// n = (b, ih, iw), k = (co, kh, kw) and <c>dŶ[k, n] = dOutput[b, co, (ih + p − kh)/s, (iw + p − kw)/s]</c> where
    /// both divisions are exact and inside the output, else 0. Launched with
    /// <c>groups · ⌈C_in/groups / tileM⌉ · ⌈B·H·W / tileN⌉</c> groups of <c>tileM·tileN/16</c> threads. Accumulates
    /// into <paramref name="dInput"/> when <paramref name="accumulate"/> ≠ 0, else overwrites it (every element of C is
    /// stored once; <see cref="ElementwiseKernels.Prior"/>).
    /// </summary>
    [Kernel(ExplicitlyGrouped = true)]
    public static void BackwardInputTiled(Conv2dGeometry g, int tileM, int tileN, int tileK, int accumulate,
        ArrayView<float> dOutput, ArrayView<float> weight, ArrayView<float> dInput) =>
        TiledGemm(new BackwardInputOperands(g, dOutput, weight, dInput, accumulate), tileM, tileN, tileK);

    /// <summary>
    /// Split-K weight gradient as an implicit GEMM per channel group and slice: for slice <c>split = Grid.IdxY</c> of
    /// <paramref name="splits"/> contiguous slices of ⌈B·Ho·Wo / splits⌉ output positions (trailing slices may be short
    /// or empty), <c>P[split][co, n] = Σ_{k ∈ slice} dY[co, k] · X̂[k, n]</c> with k = (b, oh, ow), n = (ci, kh, kw) and
    /// X̂ the im2col view of the input (0 in the padding). Launched with grid
    /// (<c>groups · ⌈C_out/groups / tileM⌉ · ⌈C_in/groups·K² / tileN⌉</c>, splits) and <c>tileM·tileN/16</c> threads
    /// (<see cref="TiledGemm{TOperands}"/>); overwrites <c>target[split·|w| + …]</c>, the partials (an empty slice writes zeros),
    /// which <see cref="BackwardWeightFinalize"/> adds into dWeight in split order: deterministic, no atomics. With
    /// <paramref name="accumulate"/> ≠ 0 (one slice only) it adds into <paramref name="target"/> = dWeight itself, no finalize.
    /// </summary>
    [Kernel(ExplicitlyGrouped = true)]
    public static void BackwardWeightTiled(Conv2dGeometry g, int tileM, int tileN, int tileK, int splits, int accumulate,
        ArrayView<float> dOutput, ArrayView<float> input, ArrayView<float> target) =>
        TiledGemm(new WeightOperands(g, splits, Grid.IdxY, accumulate, dOutput, input, target), tileM, tileN, tileK);

    /// <summary>
    /// <see cref="BackwardWeightTiled"/> on TF32 tensor cores (products of output gradient and input rounded to TF32, FP32
    /// sums, <see cref="TiledGemmTf32{TOperands}"/>); launched with the same grid and, on a GPU, one thread a lane.
    /// </summary>
    [Kernel(ExplicitlyGrouped = true)]
    public static void BackwardWeightTiledTf32(Conv2dGeometry g, int tileM, int tileN, int tileK, int splits, int accumulate,
        ArrayView<float> dOutput, ArrayView<float> input, ArrayView<float> target) =>
        TiledGemmTf32(new WeightOperands(g, splits, Grid.IdxY, accumulate, dOutput, input, target), tileM, tileN, tileK);

    /// <summary>The weight gradient's GEMM over one slice of the output positions: A = dY (C_out/groups × slice), B = X̂ (slice × C_in/groups·K²).</summary>
    private readonly struct WeightOperands : IGemmOperands
    {
        private readonly Conv2dGeometry _g;
        private readonly ArrayView<float> _dOutput, _input, _target;
        private readonly int _begin, _length, _split, _accumulate;

        public WeightOperands(Conv2dGeometry g, int splits, int split, int accumulate, ArrayView<float> dOutput, ArrayView<float> input, ArrayView<float> target)
        {
            _g = g;
            _dOutput = dOutput;
            _input = input;
            _target = target;
            _split = split;
            _accumulate = accumulate;
            int positions = g.Batch * g.OutHeight * g.OutWidth, slice = Conv2dGeometry.CeilDiv(positions, splits);
            _begin = Min(positions, split * slice);
            _length = Min(positions, _begin + slice) - _begin;
        }

        public int Groups => _g.Groups;
        public int M => _g.OutPerGroup;
        public int K => _length;
        public int N => _g.InPerGroup * _g.KernelSize * _g.KernelSize;

        public float A(int grp, int m, int k)
        {
            int howo = _g.OutHeight * _g.OutWidth, position = _begin + k, b = position / howo;
            return _dOutput[(b * _g.OutChannels + grp * _g.OutPerGroup + m) * howo + position - b * howo];
        }

        public float B(int grp, int k, int n) => InputTap(_g, _input, grp, _begin + k, n);

        public void Store(int grp, int m, int n, float value)
        {
            int at = _split * _g.WeightLength + (grp * _g.OutPerGroup + m) * N + n;
            _target[at] = ElementwiseKernels.Prior(_accumulate, _target, at) + value;
        }
    }

    /// <summary>
    /// The im2col view of the input, formed on load: the value tap <paramref name="tap"/> = (ci, kh, kw) of channel group
    /// <paramref name="grp"/> reads for output position <paramref name="position"/> = (b, oh, ow), 0 in the padding.
    /// </summary>
    private static float InputTap(Conv2dGeometry g, ArrayView<float> input, int grp, int position, int tap)
    {
        int kk = g.KernelSize * g.KernelSize, howo = g.OutHeight * g.OutWidth;
        int b = position / howo, r = position - b * howo, oh = r / g.OutWidth, ow = r - oh * g.OutWidth;
        int ci = tap / kk, t = tap - ci * kk, kh = t / g.KernelSize, kw = t - kh * g.KernelSize;
        int ih = oh * g.Stride - g.Padding + kh, iw = ow * g.Stride - g.Padding + kw;
        return (uint)ih < (uint)g.Height && (uint)iw < (uint)g.Width
            ? input[((b * g.InChannels + grp * g.InPerGroup + ci) * g.Height + ih) * g.Width + iw]
            : 0f;
    }

    /// <summary>The operands of one tiled convolution pass: an M × K matrix A, a K × N matrix B, where C = A·B goes.</summary>
    private interface IGemmOperands
    {
        /// <summary>Channel groups (one GEMM each).</summary>
        int Groups { get; }

        /// <summary>Rows, reduction length and columns of one group's GEMM.</summary>
        int M { get; }

        int K { get; }

        int N { get; }

        /// <summary>A[m, k] of group <paramref name="grp"/>; m &lt; M and k &lt; K.</summary>
        float A(int grp, int m, int k);

        /// <summary>B[k, n] of group <paramref name="grp"/>; k &lt; K and n &lt; N.</summary>
        float B(int grp, int k, int n);

        /// <summary>Writes C[m, n] = <paramref name="value"/> of group <paramref name="grp"/>; m &lt; M and n &lt; N.</summary>
        void Store(int grp, int m, int n, float value);
    }

    private readonly struct ForwardOperands(Conv2dGeometry g, ArrayView<float> input, ArrayView<float> weight, ArrayView<float> bias,
        int hasBias, ArrayView<float> output) : IGemmOperands
    {
        public int Groups => g.Groups;
        public int M => g.OutPerGroup;
        public int K => g.InPerGroup * g.KernelSize * g.KernelSize;
        public int N => g.Batch * g.OutHeight * g.OutWidth;

        public float A(int grp, int m, int k) => weight[(grp * g.OutPerGroup + m) * K + k];

        public float B(int grp, int k, int n) => InputTap(g, input, grp, n, k);

        public void Store(int grp, int m, int n, float value)
        {
            int co = grp * g.OutPerGroup + m, howo = g.OutHeight * g.OutWidth, b = n / howo;
            output[(b * g.OutChannels + co) * howo + n - b * howo] = hasBias != 0 ? value + bias[co] : value;
        }
    }

    private readonly struct BackwardInputOperands(Conv2dGeometry g, ArrayView<float> dOutput, ArrayView<float> weight,
        ArrayView<float> dInput, int accumulate) : IGemmOperands
    {
        public int Groups => g.Groups;
        public int M => g.InPerGroup;
        public int K => g.OutPerGroup * g.KernelSize * g.KernelSize;
        public int N => g.Batch * g.Height * g.Width;

        public float A(int grp, int m, int k)
        {
            int kk = g.KernelSize * g.KernelSize, co = k / kk;
            return weight[((grp * g.OutPerGroup + co) * g.InPerGroup + m) * kk + k - co * kk];
        }

        public float B(int grp, int k, int n)
        {
            int kk = g.KernelSize * g.KernelSize, hw = g.Height * g.Width, s = g.Stride;
            int b = n / hw, r = n - b * hw, ih = r / g.Width, iw = r - ih * g.Width;
            int co = k / kk, t = k - co * kk, kh = t / g.KernelSize, kw = t - kh * g.KernelSize;
            int rh = ih + g.Padding - kh, rw = iw + g.Padding - kw;
            if (rh < 0 || rw < 0) return 0f;
            int oh = rh / s, ow = rw / s;
            return oh * s == rh && ow * s == rw && oh < g.OutHeight && ow < g.OutWidth
                ? dOutput[((b * g.OutChannels + grp * g.OutPerGroup + co) * g.OutHeight + oh) * g.OutWidth + ow]
                : 0f;
        }

        public void Store(int grp, int m, int n, float value)
        {
            int hw = g.Height * g.Width, b = n / hw;
            int at = (b * g.InChannels + grp * g.InPerGroup + m) * hw + n - b * hw;
            dInput[at] = ElementwiseKernels.Prior(accumulate, dInput, at) + value;
        }
    }

    /// <summary>
    /// C = A·B for every group, one thread group per tileM × tileN block of C (tiles numbered column-fastest, then
    /// row, then channel group), <c>tileM·tileN/16</c> threads each owning a 4 × 4 register tile: rows
    /// <c>tm + i·tileM/4</c>, columns <c>tn + j·tileN/4</c> (tn fastest across threads, so loads of B and stores are
    /// coalesced along n). Per step of tileK, the group stages A (transposed) and B in shared memory, then every
    /// thread runs tileK rank-1 updates from it. Out-of-range rows, columns and k read 0 and are not stored. Host
    /// checks: tileM, tileN multiples of 4 up to <see cref="MaxTileM"/>, <see cref="MaxTileN"/>; 1 ≤ tileK ≤ <see cref="MaxTileK"/>.
    /// </summary>
    private static void TiledGemm<TOperands>(TOperands op, int tileM, int tileN, int tileK) where TOperands : struct, IGemmOperands
    {
        var tileA = SharedMemory.Allocate<float>(MaxTileK * MaxTileM);
        var tileB = SharedMemory.Allocate<float>(MaxTileK * MaxTileN);
        int m = op.M, n = op.N, kTotal = op.K;
        BlockOrigin(op, tileM, tileN, out int grp, out int m0, out int n0);
        int tid = Group.IdxX;
        int rowStep = tileM / 4, colStep = tileN / 4;
        int tm = tid / colStep, tn = tid - tm * colStep;
        var acc = default(Tile4x4);
        for (int k0 = 0; k0 < kTotal; k0 += tileK)
        {
            StageTiles(op, grp, m0, n0, k0, tileM, tileN, tileK, tileA, tileM, tileB, tileN);
            Group.Barrier();
            int steps = Min(tileK, kTotal - k0);
            for (int kq = 0; kq < steps; kq++)
            {
                int a = kq * tileM + tm, b = kq * tileN + tn;
                acc.Add(tileA[a], tileA[a + rowStep], tileA[a + 2 * rowStep], tileA[a + 3 * rowStep],
                    tileB[b], tileB[b + colStep], tileB[b + 2 * colStep], tileB[b + 3 * colStep]);
            }
            Group.Barrier();
        }
        int row = m0 + tm, col = n0 + tn;
        StoreRow(op, grp, row, col, colStep, m, n, acc.C00, acc.C01, acc.C02, acc.C03);
        StoreRow(op, grp, row + rowStep, col, colStep, m, n, acc.C10, acc.C11, acc.C12, acc.C13);
        StoreRow(op, grp, row + 2 * rowStep, col, colStep, m, n, acc.C20, acc.C21, acc.C22, acc.C23);
        StoreRow(op, grp, row + 3 * rowStep, col, colStep, m, n, acc.C30, acc.C31, acc.C32, acc.C33);
    }

    /// <summary>
    /// The block of C this thread group computes: channel group <paramref name="grp"/>, first row <paramref name="m0"/>
    /// and first column <paramref name="n0"/> (blocks numbered column-fastest, then row, then channel group).
    /// </summary>
    private static void BlockOrigin<TOperands>(TOperands op, int tileM, int tileN, out int grp, out int m0, out int n0)
        where TOperands : struct, IGemmOperands
    {
        int tilesN = Conv2dGeometry.CeilDiv(op.N, tileN), tilesM = Conv2dGeometry.CeilDiv(op.M, tileM);
        int tile = Grid.IdxX, q = tile / tilesN;
        n0 = (tile - q * tilesN) * tileN;
        grp = q / tilesM;
        m0 = (q - grp * tilesM) * tileM;
    }

    /// <summary>
    /// Stages reduction step [k0, k0 + tileK) of the block at (m0, n0) in shared memory, every thread of the group taking
    /// its share: A transposed, <c>tileA[kq·ldA + r] = A[m0 + r, k0 + kq]</c>, and <c>tileB[kq·ldB + c] = B[k0 + kq, n0 + c]</c>
    /// (a leading dimension above the tile's extent pads its rows); 0 outside the GEMM.
    /// </summary>
    private static void StageTiles<TOperands>(TOperands op, int grp, int m0, int n0, int k0, int tileM, int tileN, int tileK,
        ArrayView<float> tileA, int ldA, ArrayView<float> tileB, int ldB) where TOperands : struct, IGemmOperands
    {
        int m = op.M, n = op.N, kTotal = op.K;
        int tid = Group.IdxX, threads = Group.DimX;
        for (int e = tid; e < tileM * tileK; e += threads)
        {
            int r = e / tileK, kq = e - r * tileK; // consecutive threads: consecutive k of one row of A
            tileA[kq * ldA + r] = m0 + r < m && k0 + kq < kTotal ? op.A(grp, m0 + r, k0 + kq) : 0f;
        }
        for (int e = tid; e < tileK * tileN; e += threads)
        {
            int kq = e / tileN, c = e - kq * tileN; // consecutive threads: consecutive n
            tileB[kq * ldB + c] = n0 + c < n && k0 + kq < kTotal ? op.B(grp, k0 + kq, n0 + c) : 0f;
        }
    }

    /// <summary>Stores the four values of one register-tile row at columns col + j·step that exist.</summary>
    private static void StoreRow<TOperands>(TOperands op, int grp, int row, int col, int step, int m, int n,
        float v0, float v1, float v2, float v3) where TOperands : struct, IGemmOperands
    {
        if (row >= m) return;
        if (col < n) op.Store(grp, row, col, v0);
        if (col + step < n) op.Store(grp, row, col + step, v1);
        if (col + 2 * step < n) op.Store(grp, row, col + 2 * step, v2);
        if (col + 3 * step < n) op.Store(grp, row, col + 3 * step, v3);
    }

    // ---- The TF32 rung: the tiled implicit GEMM on tensor cores (mma.sync m16n8k8 through inline PTX) ----

    /// <summary>Rows of C one warp of the TF32 kernels owns (one m16n8k8 fragment high); tileM is a multiple of it.</summary>
    public const int Tf32WarpRows = 16;

    /// <summary>Columns of C one warp of the TF32 kernels owns (four n8 fragments side by side); tileN is a multiple of it.</summary>
    public const int Tf32WarpColumns = 32;

    /// <summary>The reduction step of one mma (k8); tileK of the TF32 kernels is a multiple of it.</summary>
    public const int Tf32Step = 8;

    /// <summary>
    /// Padding of each row of the TF32 kernels' shared tiles: with a leading dimension ≡ 8 (mod 16) the 32 lanes of a
    /// fragment load (8 groups along m or n × 4 along k) hit 32 different banks.
    /// </summary>
    public const int Tf32Skew = 8;

    /// <summary>
    /// <see cref="ForwardTiled"/> on TF32 tensor cores: the same implicit GEMM, blocks and operands, each product of
    /// weight and input rounded to TF32 (<see cref="Tf32.Round"/>) and summed in FP32 by
    /// <see cref="TiledGemmTf32{TOperands}"/>. Launched with <c>groups · ⌈C_out/groups / tileM⌉ · ⌈B·Ho·Wo / tileN⌉</c>
    /// groups of <c>tileM·tileN/16</c> threads on a GPU (any count on the CPU accelerator); overwrites
    /// <paramref name="output"/>. The bias is added in FP32.
    /// </summary>
    [Kernel(ExplicitlyGrouped = true)]
    public static void ForwardTiledTf32(Conv2dGeometry g, int tileM, int tileN, int tileK,
        ArrayView<float> input, ArrayView<float> weight, ArrayView<float> bias, int hasBias, ArrayView<float> output) =>
        TiledGemmTf32(new ForwardOperands(g, input, weight, bias, hasBias, output), tileM, tileN, tileK);

    /// <summary>
    /// <see cref="BackwardInputTiled"/> on TF32 tensor cores (products of weight and output gradient rounded to TF32,
    /// FP32 sums); launched like <see cref="ForwardTiledTf32"/> over <c>⌈C_in/groups / tileM⌉ · ⌈B·H·W / tileN⌉</c>
    /// blocks per channel group. Accumulates into <paramref name="dInput"/> when <paramref name="accumulate"/> ≠ 0,
    /// else overwrites it (<see cref="ElementwiseKernels.Prior"/>).
    /// </summary>
    [Kernel(ExplicitlyGrouped = true)]
    public static void BackwardInputTiledTf32(Conv2dGeometry g, int tileM, int tileN, int tileK, int accumulate,
        ArrayView<float> dOutput, ArrayView<float> weight, ArrayView<float> dInput) =>
        TiledGemmTf32(new BackwardInputOperands(g, dOutput, weight, dInput, accumulate), tileM, tileN, tileK);

    /// <summary>
    /// TF32 (tensor-float-32: FP32's 8-bit exponent, 10 of its 23 mantissa bits) as the tensor cores take it, and the
    /// per-lane fragment layout of <c>mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32</c> (PTX ISA, "Matrix Fragments
    /// for mma.m16n8k8", .tf32): with groupID g = lane / 4 and threadID_in_group t = lane mod 4, A (16 × 8, row-major)
    /// a0 (g, t), a1 (g + 8, t), a2 (g, t + 4), a3 (g + 8, t + 4); B (8 × 8, column-major) b0 (k = t, n = g),
    /// b1 (k = t + 4, n = g); C and D (16 × 8, FP32) c0 (g, 2t), c1 (g, 2t + 1), c2 (g + 8, 2t), c3 (g + 8, 2t + 1).
    /// </summary>
    public static class Tf32
    {
        /// <summary>
        /// <paramref name="x"/> rounded to TF32 as <c>cvt.rna.tf32.f32</c> does: to nearest, ties away from zero, at 10
        /// mantissa bits (the 13 low bits cleared); subnormals round the same way, a value past the largest TF32 rounds
        /// to ±∞, NaN and ±∞ are returned as they are.
        /// </summary>
        public static float Round(float x)
        {
            uint bits = Interop.FloatAsInt(x);
            if ((bits & 0x7F800000u) == 0x7F800000u) return x;
            return Interop.IntAsFloat((bits + 0x1000u) & 0xFFFFE000u);
        }

        /// <summary>Row of A held in register <paramref name="reg"/> (0 to 3) of <paramref name="lane"/>: g, g + 8, g, g + 8.</summary>
        public static int ARow(int lane, int reg) => (lane >> 2) + ((reg & 1) << 3);

        /// <summary>Column (k) of A held in register <paramref name="reg"/> of <paramref name="lane"/>: t, t, t + 4, t + 4.</summary>
        public static int ACol(int lane, int reg) => (lane & 3) + ((reg >> 1) << 2);

        /// <summary>Row (k) of B held in register <paramref name="reg"/> (0 or 1) of <paramref name="lane"/>: t, t + 4.</summary>
        public static int BRow(int lane, int reg) => (lane & 3) + (reg << 2);

        /// <summary>Column (n) of B held by <paramref name="lane"/>: g.</summary>
        public static int BCol(int lane) => lane >> 2;

        /// <summary>Row of C held in register <paramref name="reg"/> (0 to 3) of <paramref name="lane"/>: g, g, g + 8, g + 8.</summary>
        public static int CRow(int lane, int reg) => (lane >> 2) + ((reg >> 1) << 3);

        /// <summary>Column of C held in register <paramref name="reg"/> of <paramref name="lane"/>: 2t, 2t + 1, 2t, 2t + 1.</summary>
        public static int CCol(int lane, int reg) => ((lane & 3) << 1) + (reg & 1);
    }

    /// <summary>
    /// C = A·B for every group on TF32 tensor cores, one thread group per tileM × tileN block of C (blocks as in
    /// <see cref="TiledGemm{TOperands}"/>), staged tileK at a time through shared memory rows padded by
    /// <see cref="Tf32Skew"/>. The block's tileM·tileN/16 lanes form warps of 32 (lane = thread index mod 32 on a GPU), each
    /// warp owning a <see cref="Tf32WarpRows"/> × <see cref="Tf32WarpColumns"/> tile of C (warps column-fastest): per k8
    /// step a warp loads one A fragment and four B fragments from the shared tiles, rounds them to TF32
    /// (<c>cvt.rna.tf32.f32</c>) and issues four <c>mma.sync.aligned.m16n8k8</c> into FP32 accumulators, which are stored
    /// (out-of-range rows and columns skipped) as <see cref="Tf32"/>'s C layout places them.
    /// <para>
    /// Without <see cref="CudaAsm.IsSupported"/> (the CPU accelerator) every lane emulates its part of each mma exactly:
    /// each of its four accumulators adds, in k order in FP32, the eight products of the TF32 A and B elements of its
    /// row and column, reading each element through the fragment register of the lane that would hold it (the same
    /// fragment loads as the GPU path), so the tiling, the fragment indexing and the stores run as on the GPU and only the
    /// mma instruction itself differs. The emulation needs no warp intrinsic, so any warp size works, and a group with
    /// fewer threads than lanes runs the lanes in passes (each pass stages the tiles again); on a GPU the group has one
    /// thread per lane and a single pass. Host checks: tileM a multiple of <see cref="Tf32WarpRows"/> up to
    /// <see cref="MaxTileM"/>, tileN of <see cref="Tf32WarpColumns"/> up to <see cref="MaxTileN"/>, tileK of
    /// <see cref="Tf32Step"/> up to <see cref="MaxTileK"/>; on a GPU, tileM·tileN/16 threads a group and warps of 32.
    /// </para>
    /// </summary>
    private static void TiledGemmTf32<TOperands>(TOperands op, int tileM, int tileN, int tileK) where TOperands : struct, IGemmOperands
    {
        var tileA = SharedMemory.Allocate<float>(MaxTileK * (MaxTileM + Tf32Skew));
        var tileB = SharedMemory.Allocate<float>(MaxTileK * (MaxTileN + Tf32Skew));
        int m = op.M, n = op.N, kTotal = op.K;
        BlockOrigin(op, tileM, tileN, out int grp, out int m0, out int n0);
        int ldA = tileM + Tf32Skew, ldB = tileN + Tf32Skew;
        int lanes = tileM * tileN / 16, warpsN = tileN / Tf32WarpColumns;
        int tid = Group.IdxX, threads = Group.DimX;
        for (int first = 0; first < lanes; first += threads)
        {
            int slot = first + tid, warp = slot >> 5, lane = slot & 31;
            int wm = warp / warpsN;
            int rowBase = wm * Tf32WarpRows, colBase = (warp - wm * warpsN) * Tf32WarpColumns;
            bool active = slot < lanes; // always on a GPU (one thread per lane)
            var acc = default(MmaTile);
            for (int k0 = 0; k0 < kTotal; k0 += tileK)
            {
                StageTiles(op, grp, m0, n0, k0, tileM, tileN, tileK, tileA, ldA, tileB, ldB);
                Group.Barrier();
                int steps = Min(tileK, kTotal - k0);
                if (active)
                    for (int kq = 0; kq < steps; kq += Tf32Step)
                        acc.Step(tileA, ldA, tileB, ldB, kq, rowBase, colBase, lane);
                Group.Barrier();
            }
            if (active) acc.Store(op, grp, m0 + rowBase, n0 + colBase, lane, m, n);
        }
    }

    /// <summary>
    /// One warp's <see cref="Tf32WarpRows"/> × <see cref="Tf32WarpColumns"/> tile of C as four m16n8 accumulator
    /// fragments, the four registers one lane holds of each: <c>Cjr</c> is register r of fragment j (columns 8j to
    /// 8j + 7). Deliberate unrolling: written out by hand (ILGPU 1.5.3 does not unroll loops, and a local array stays in
    /// registers only with constant indices).
    /// </summary>
    private struct MmaTile
    {
        public float C00, C01, C02, C03, C10, C11, C12, C13, C20, C21, C22, C23, C30, C31, C32, C33;

        /// <summary>One k8 step at row <paramref name="kq"/> of the shared tiles: this lane's A fragment, then the four mmas.</summary>
        public void Step(ArrayView<float> tileA, int ldA, ArrayView<float> tileB, int ldB, int kq, int rowBase, int colBase, int lane)
        {
            uint a0 = LoadA(tileA, ldA, kq, rowBase, lane, 0), a1 = LoadA(tileA, ldA, kq, rowBase, lane, 1);
            uint a2 = LoadA(tileA, ldA, kq, rowBase, lane, 2), a3 = LoadA(tileA, ldA, kq, rowBase, lane, 3);
            Mma(ref C00, ref C01, ref C02, ref C03, a0, a1, a2, a3, tileA, ldA, tileB, ldB, kq, rowBase, colBase, lane);
            Mma(ref C10, ref C11, ref C12, ref C13, a0, a1, a2, a3, tileA, ldA, tileB, ldB, kq, rowBase, colBase + 8, lane);
            Mma(ref C20, ref C21, ref C22, ref C23, a0, a1, a2, a3, tileA, ldA, tileB, ldB, kq, rowBase, colBase + 16, lane);
            Mma(ref C30, ref C31, ref C32, ref C33, a0, a1, a2, a3, tileA, ldA, tileB, ldB, kq, rowBase, colBase + 24, lane);
        }

        /// <summary>Stores this lane's registers of the warp tile at (<paramref name="row0"/>, <paramref name="col0"/>): register r of every fragment lies on one row.</summary>
        public readonly void Store<TOperands>(TOperands op, int grp, int row0, int col0, int lane, int m, int n) where TOperands : struct, IGemmOperands
        {
            StoreRow(op, grp, row0 + Tf32.CRow(lane, 0), col0 + Tf32.CCol(lane, 0), 8, m, n, C00, C10, C20, C30);
            StoreRow(op, grp, row0 + Tf32.CRow(lane, 1), col0 + Tf32.CCol(lane, 1), 8, m, n, C01, C11, C21, C31);
            StoreRow(op, grp, row0 + Tf32.CRow(lane, 2), col0 + Tf32.CCol(lane, 2), 8, m, n, C02, C12, C22, C32);
            StoreRow(op, grp, row0 + Tf32.CRow(lane, 3), col0 + Tf32.CCol(lane, 3), 8, m, n, C03, C13, C23, C33);
        }
    }

    /// <summary>Register <paramref name="reg"/> of <paramref name="lane"/>'s A fragment at k step <paramref name="kq"/>, in TF32.</summary>
    private static uint LoadA(ArrayView<float> tileA, int ldA, int kq, int rowBase, int lane, int reg) =>
        ToTf32(tileA[(kq + Tf32.ACol(lane, reg)) * ldA + rowBase + Tf32.ARow(lane, reg)]);

    /// <summary>Register <paramref name="reg"/> of <paramref name="lane"/>'s B fragment at k step <paramref name="kq"/>, in TF32.</summary>
    private static uint LoadB(ArrayView<float> tileB, int ldB, int kq, int colBase, int lane, int reg) =>
        ToTf32(tileB[(kq + Tf32.BRow(lane, reg)) * ldB + colBase + Tf32.BCol(lane)]);

    /// <summary>The bits of <paramref name="x"/> rounded to TF32: <c>cvt.rna.tf32.f32</c> on a GPU, <see cref="Tf32.Round"/> elsewhere.</summary>
    private static uint ToTf32(float x)
    {
        if (CudaAsm.IsSupported)
        {
            CudaAsm.Emit("cvt.rna.tf32.f32 %0, %1;", out uint bits, x);
            return bits;
        }
        return Interop.FloatAsInt(Tf32.Round(x));
    }

    /// <summary>
    /// <c>c += A·B</c> for one m16n8k8 step: A the 16 × 8 block at (rowBase, kq) of the shared A tile (this lane's
    /// fragment a0..a3), B the 8 × 8 block at (kq, colBase) of the B tile, c0..c3 this lane's accumulators. On a GPU one
    /// <c>mma.sync</c> of the warp; elsewhere this lane's four sums, each element read through the fragment register
    /// that holds it: A[r, k] in register r/8 + 2·(k/4) of lane 4·(r mod 8) + k mod 4, B[k, c] in register k/4 of lane
    /// 4c + k mod 4.
    /// </summary>
    private static void Mma(ref float c0, ref float c1, ref float c2, ref float c3, uint a0, uint a1, uint a2, uint a3,
        ArrayView<float> tileA, int ldA, ArrayView<float> tileB, int ldB, int kq, int rowBase, int colBase, int lane)
    {
        if (CudaAsm.IsSupported)
        {
            Ref<float> d0 = c0, d1 = c1, d2 = c2, d3 = c3;
            Input<uint> x0 = a0, x1 = a1, x2 = a2, x3 = a3;
            Input<uint> y0 = LoadB(tileB, ldB, kq, colBase, lane, 0), y1 = LoadB(tileB, ldB, kq, colBase, lane, 1);
            CudaAsm.EmitRef("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};",
                ref d0, ref d1, ref d2, ref d3, ref x0, ref x1, ref x2, ref x3, ref y0, ref y1);
            c0 = d0.Value; c1 = d1.Value; c2 = d2.Value; c3 = d3.Value;
            return;
        }
        c0 = EmulatedDot(c0, tileA, ldA, tileB, ldB, kq, rowBase, colBase, Tf32.CRow(lane, 0), Tf32.CCol(lane, 0));
        c1 = EmulatedDot(c1, tileA, ldA, tileB, ldB, kq, rowBase, colBase, Tf32.CRow(lane, 1), Tf32.CCol(lane, 1));
        c2 = EmulatedDot(c2, tileA, ldA, tileB, ldB, kq, rowBase, colBase, Tf32.CRow(lane, 2), Tf32.CCol(lane, 2));
        c3 = EmulatedDot(c3, tileA, ldA, tileB, ldB, kq, rowBase, colBase, Tf32.CRow(lane, 3), Tf32.CCol(lane, 3));
    }

    /// <summary>
    /// <paramref name="acc"/> plus Σ_k A[r, k]·B[k, c] over the eight k of one mma step, in k order in FP32, each operand
    /// the TF32 value its owning lane's fragment register holds (see <see cref="Mma"/>).
    /// </summary>
    private static float EmulatedDot(float acc, ArrayView<float> tileA, int ldA, ArrayView<float> tileB, int ldB, int kq, int rowBase, int colBase,
        int r, int c)
    {
        for (int k = 0; k < Tf32Step; k++)
        {
            int q = k & 3, h = k >> 2;
            float a = Interop.IntAsFloat(LoadA(tileA, ldA, kq, rowBase, ((r & 7) << 2) + q, (r >> 3) + (h << 1)));
            float b = Interop.IntAsFloat(LoadB(tileB, ldB, kq, colBase, (c << 2) + q, h));
            acc += a * b;
        }
        return acc;
    }

    /// <summary>
    /// A 4 × 4 register tile of sums. Deliberate unrolling: written out by hand (ILGPU 1.5.3 does not unroll loops, and
    /// a local array stays in registers only with constant indices).
    /// </summary>
    private struct Tile4x4
    {
        public float C00, C01, C02, C03, C10, C11, C12, C13, C20, C21, C22, C23, C30, C31, C32, C33;

        /// <summary>Adds the outer product of a column (a0..a3) and a row (b0..b3).</summary>
        public void Add(float a0, float a1, float a2, float a3, float b0, float b1, float b2, float b3)
        {
            C00 += a0 * b0; C01 += a0 * b1; C02 += a0 * b2; C03 += a0 * b3;
            C10 += a1 * b0; C11 += a1 * b1; C12 += a1 * b2; C13 += a1 * b3;
            C20 += a2 * b0; C21 += a2 * b1; C22 += a2 * b2; C23 += a2 * b3;
            C30 += a3 * b0; C31 += a3 * b1; C32 += a3 * b2; C33 += a3 * b3;
        }
    }

    /// <summary><c>v[rowStart + col]</c> when 0 ≤ col &lt; width, else 0 (a tap in the zero padding).</summary>
    private static float LoadOrZero(ArrayView<float> v, int rowStart, int col, int width) =>
        (uint)col < (uint)width ? v[rowStart + col] : 0f;

    /// <summary>Stores the first <paramref name="count"/> of four values at <c>offset + j·step</c>.</summary>
    private static void Write4(ArrayView<float> y, int offset, int step, int count, float v0, float v1, float v2, float v3)
    {
        y[offset] = v0;
        if (count > 1) y[offset + step] = v1;
        if (count > 2) y[offset + 2 * step] = v2;
        if (count > 3) y[offset + 3 * step] = v3;
    }

    /// <summary>Adds the first <paramref name="count"/> of four values at <c>offset + j·step</c>.</summary>
    private static void Add4(ArrayView<float> y, int offset, int step, int count, float v0, float v1, float v2, float v3)
    {
        y[offset] += v0;
        if (count > 1) y[offset + step] += v1;
        if (count > 2) y[offset + 2 * step] += v2;
        if (count > 3) y[offset + 3 * step] += v3;
    }

    /// <summary>
    /// <see cref="Add4"/> when <paramref name="accumulate"/> ≠ 0, else the four sums written as <c>0 + v</c>
    /// (<see cref="ElementwiseKernels.Prior"/>: bitwise what adding onto zeros gives).
    /// </summary>
    private static void AddOrWrite4(ArrayView<float> y, int offset, int step, int count, int accumulate, float v0, float v1, float v2, float v3)
    {
        if (accumulate != 0) Add4(y, offset, step, count, v0, v1, v2, v3);
        else Write4(y, offset, step, count, 0f + v0, 0f + v1, 0f + v2, 0f + v3);
    }

    /// <summary><see cref="Add4"/> when <paramref name="accumulate"/>, else <see cref="Write4"/>.</summary>
    private static void Store4(ArrayView<float> y, int offset, int step, int count, bool accumulate, float v0, float v1, float v2, float v3)
    {
        if (accumulate) Add4(y, offset, step, count, v0, v1, v2, v3);
        else Write4(y, offset, step, count, v0, v1, v2, v3);
    }

    private static int Min(int a, int b) => a < b ? a : b;

    private static int Max(int a, int b) => a > b ? a : b;
}
