using ILGPU;

namespace IlgpuDdw.Kernels;

/// <summary>
/// 2-D convolution (NCHW, square kernel, any stride, zero padding, channel groups) with its backward kernels.
/// Shapes are those of <see cref="Conv2dGeometry"/>: input x <c>[B, C_in, H, W]</c>, weight w
/// <c>[C_out, C_in/groups, K, K]</c>, optional bias <c>[C_out]</c>, output y <c>[B, C_out, Ho, Wo]</c>:
/// <c>y[b,co,oh,ow] = bias[co] + Σ_{ci ∈ group(co), kh, kw} w[co, ci − g·C_in/groups, kh, kw] · x[b, ci, oh·s − p + kh, ow·s − p + kw]</c>
/// (taps outside the input read zero). The backward needs x (for dWeight) and w (for dInput); nothing else is saved.
/// <para>
/// Every kernel is a grid-stride loop over work items: thread <c>index</c> takes items <c>index, index + stride, ...</c>
/// below <c>n</c>; launch any extent and pass it as <c>stride</c>. Each output element is owned by exactly one
/// work item, which sums its reduction in a fixed order: no atomics, results are deterministic.
/// The blocked kernels (<see cref="Forward"/>, <see cref="BackwardInput"/>, <see cref="BackwardWeight"/>) give a
/// work item a 4 × 4 register block (4 channels of one group × 4 columns, or 4 × 4 channel pairs) so every load
/// feeds four multiply-adds; slots past the group's last channel repeat that channel and are not stored, so the
/// blocked kernels are correct for every geometry but waste work when a group has fewer than 4 channels. The
/// per-element kernels (one output element per item) are the path for such narrow groups (depthwise).
/// Padding never costs a bounds check per tap in the row direction (valid kernel rows are computed per item);
/// in the column direction the blocked kernels test each of the 4 columns once per tap.
/// </para>
/// </summary>
public static class Conv2dKernels
{
    /// <summary>
    /// Forward, register-blocked: <c>y = conv(x, w) (+ bias)</c>. One work item computes 4 output channels of one
    /// group × 4 adjacent output columns of one output row; <c>n = </c><see cref="Conv2dGeometry.ForwardItems"/>.
    /// <paramref name="bias"/> is read only when <paramref name="hasBias"/> ≠ 0 (pass any view otherwise).
    /// Overwrites <paramref name="output"/>.
    /// </summary>
    [Kernel]
    public static void Forward(Index1D index, int n, int stride, Conv2dGeometry g,
        ArrayView<float> input, ArrayView<float> weight, ArrayView<float> bias, int hasBias, ArrayView<float> output)
    {
        int k = g.KernelSize, s = g.Stride, p = g.Padding;
        int h = g.Height, w = g.Width, ho = g.OutHeight, wo = g.OutWidth;
        int cinG = g.InPerGroup, coutG = g.OutPerGroup;
        int kk = k * k, hw = h * w, howo = ho * wo;
        int colBlocks = g.ForwardColumnBlocks;
        int coBlocks = Conv2dGeometry.CeilDiv(coutG, Conv2dGeometry.ChannelBlock);
        int wCo = cinG * kk; // weight elements per output channel
        int rEnd = Min(s, k);
        for (int item = index; item < n; item += stride)
        {
            int t = item;
            int ow0 = t % colBlocks * Conv2dGeometry.ColumnBlock; t /= colBlocks;
            int oh = t % ho; t /= ho;
            int coL0 = t % coBlocks * Conv2dGeometry.ChannelBlock; t /= coBlocks;
            int grp = t % g.Groups;
            int b = t / g.Groups;
            int co0 = grp * coutG + coL0;
            int lastSlot = coutG - 1 - coL0; // slots beyond it repeat the group's last channel
            int o1 = Min(1, lastSlot) * wCo, o2 = Min(2, lastSlot) * wCo, o3 = Min(3, lastSlot) * wCo;

            float b0 = 0f, b1 = 0f, b2 = 0f, b3 = 0f;
            if (hasBias != 0)
            {
                b0 = bias[co0];
                b1 = bias[co0 + Min(1, lastSlot)];
                b2 = bias[co0 + Min(2, lastSlot)];
                b3 = bias[co0 + Min(3, lastSlot)];
            }
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
                            float w0 = weight[wi], w1 = weight[wi + o1], w2 = weight[wi + o2], w3 = weight[wi + o3];
                            a00 += w0 * x0; a01 += w0 * x1; a02 += w0 * x2; a03 += w0 * x3;
                            a10 += w1 * x0; a11 += w1 * x1; a12 += w1 * x2; a13 += w1 * x3;
                            a20 += w2 * x0; a21 += w2 * x1; a22 += w2 * x2; a23 += w2 * x3;
                            a30 += w3 * x0; a31 += w3 * x1; a32 += w3 * x2; a33 += w3 * x3;
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
    /// Forward, one output element per work item (<c>n = B·C_out·Ho·Wo</c>): the path for groups with one output
    /// channel (depthwise), correct for every geometry. Same formula and bias rule as <see cref="Forward"/>.
    /// Overwrites <paramref name="output"/>.
    /// </summary>
    [Kernel]
    public static void ForwardPerElement(Index1D index, int n, int stride, Conv2dGeometry g,
        ArrayView<float> input, ArrayView<float> weight, ArrayView<float> bias, int hasBias, ArrayView<float> output)
    {
        int k = g.KernelSize, s = g.Stride, p = g.Padding;
        int h = g.Height, w = g.Width, ho = g.OutHeight, wo = g.OutWidth;
        int cinG = g.InPerGroup, coutG = g.OutPerGroup;
        int kk = k * k, hw = h * w;
        for (int i = index; i < n; i += stride)
        {
            int t = i;
            int ow = t % wo; t /= wo;
            int oh = t % ho; t /= ho;
            int co = t % g.OutChannels;
            int b = t / g.OutChannels;
            int ih0 = oh * s - p, iw0 = ow * s - p;
            int khLo = Max(0, -ih0), khHi = Min(k, h - ih0);
            int kwLo = Max(0, -iw0), kwHi = Min(k, w - iw0);
            float acc = hasBias != 0 ? bias[co] : 0f;
            int xPlane = (b * g.InChannels + co / coutG * cinG) * hw + ih0 * w + iw0;
            int wPlane = co * cinG * kk;
            for (int ci = 0; ci < cinG; ci++, xPlane += hw, wPlane += kk)
            {
                for (int kh = khLo; kh < khHi; kh++)
                {
                    int xRow = xPlane + kh * w;
                    int wRow = wPlane + kh * k;
                    for (int kw = kwLo; kw < kwHi; kw++)
                        acc += weight[wRow + kw] * input[xRow + kw];
                }
            }
            output[i] = acc;
        }
    }

    /// <summary>
    /// Input gradient, register-blocked: <c>dInput[b,ci,ih,iw] += Σ_{co ∈ group(ci), kh, kw} dOutput[b,co,oh,ow] · w[co, ci_local, kh, kw]</c>
    /// over the taps with <c>oh·s − p + kh = ih</c>, <c>ow·s − p + kw = iw</c> inside the output (a gather: no
    /// atomics). One work item owns 4 input channels of one group × 4 input columns of one row that share the same
    /// residue modulo s (columns iw0, iw0 + s, iw0 + 2s, iw0 + 3s), so they read the same kernel taps;
    /// <c>n = </c><see cref="Conv2dGeometry.BackwardInputItems"/>. Needs w. Accumulates into <paramref name="dInput"/>.
    /// </summary>
    [Kernel]
    public static void BackwardInput(Index1D index, int n, int stride, Conv2dGeometry g,
        ArrayView<float> dOutput, ArrayView<float> weight, ArrayView<float> dInput)
    {
        int k = g.KernelSize, s = g.Stride, p = g.Padding;
        int h = g.Height, w = g.Width, ho = g.OutHeight, wo = g.OutWidth;
        int cinG = g.InPerGroup, coutG = g.OutPerGroup;
        int kk = k * k, hw = h * w, howo = ho * wo;
        int colBlocks = g.BackwardInputColumnBlocks;
        int ciBlocks = Conv2dGeometry.CeilDiv(cinG, Conv2dGeometry.ChannelBlock);
        int wCo = cinG * kk;
        for (int item = index; item < n; item += stride)
        {
            int t = item;
            int cb = t % colBlocks; t /= colBlocks;
            int ih = t % h; t /= h;
            int ciL0 = t % ciBlocks * Conv2dGeometry.ChannelBlock; t /= ciBlocks;
            int grp = t % g.Groups;
            int b = t / g.Groups;
            int iw0 = cb % s + cb / s * Conv2dGeometry.ColumnBlock * s;
            if (iw0 >= w) continue; // an empty block of a high residue
            int lastSlot = cinG - 1 - ciL0;
            int o1 = Min(1, lastSlot) * kk, o2 = Min(2, lastSlot) * kk, o3 = Min(3, lastSlot) * kk;

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
                        float w0 = weight[wi], w1 = weight[wi + o1], w2 = weight[wi + o2], w3 = weight[wi + o3];
                        a00 += w0 * y0; a01 += w0 * y1; a02 += w0 * y2; a03 += w0 * y3;
                        a10 += w1 * y0; a11 += w1 * y1; a12 += w1 * y2; a13 += w1 * y3;
                        a20 += w2 * y0; a21 += w2 * y1; a22 += w2 * y2; a23 += w2 * y3;
                        a30 += w3 * y0; a31 += w3 * y1; a32 += w3 * y2; a33 += w3 * y3;
                        y3 = y2; y2 = y1; y1 = y0;
                    }
                }
            }

            int cols = Min(Conv2dGeometry.ColumnBlock, (w - 1 - iw0) / s + 1);
            int x = (b * g.InChannels + grp * cinG + ciL0) * hw + ih * w + iw0;
            Add4(dInput, x, s, cols, a00, a01, a02, a03);
            if (lastSlot >= 1) Add4(dInput, x + hw, s, cols, a10, a11, a12, a13);
            if (lastSlot >= 2) Add4(dInput, x + 2 * hw, s, cols, a20, a21, a22, a23);
            if (lastSlot >= 3) Add4(dInput, x + 3 * hw, s, cols, a30, a31, a32, a33);
        }
    }

    /// <summary>
    /// Input gradient, one input element per work item (<c>n = B·C_in·H·W</c>): the path for groups with one input
    /// channel (depthwise), correct for every geometry. Same formula as <see cref="BackwardInput"/>. Needs w.
    /// Accumulates into <paramref name="dInput"/>.
    /// </summary>
    [Kernel]
    public static void BackwardInputPerElement(Index1D index, int n, int stride, Conv2dGeometry g,
        ArrayView<float> dOutput, ArrayView<float> weight, ArrayView<float> dInput)
    {
        int k = g.KernelSize, s = g.Stride, p = g.Padding;
        int h = g.Height, w = g.Width, ho = g.OutHeight, wo = g.OutWidth;
        int cinG = g.InPerGroup, coutG = g.OutPerGroup;
        int kk = k * k, howo = ho * wo, wCo = cinG * kk;
        for (int i = index; i < n; i += stride)
        {
            int t = i;
            int iw = t % w; t /= w;
            int ih = t % h; t /= h;
            int ci = t % g.InChannels;
            int b = t / g.InChannels;
            int grp = ci / cinG;
            int th = ih + p, u = iw + p;
            int khLo = Max(th % s, th - (ho - 1) * s), khHi = Min(k - 1, th);
            int kwLo = Max(u % s, u - (wo - 1) * s), kwHi = Min(k - 1, u);
            int dyPlane = (b * g.OutChannels + grp * coutG) * howo;
            int wPlane = grp * coutG * wCo + (ci - grp * cinG) * kk;
            float acc = 0f;
            for (int coL = 0; coL < coutG; coL++, dyPlane += howo, wPlane += wCo)
            {
                for (int kh = khLo; kh <= khHi; kh += s)
                {
                    int dyRow = dyPlane + (th - kh) / s * wo;
                    int wRow = wPlane + kh * k;
                    for (int kw = kwLo; kw <= kwHi; kw += s)
                        acc += weight[wRow + kw] * dOutput[dyRow + (u - kw) / s];
                }
            }
            dInput[i] += acc;
        }
    }

    /// <summary>
    /// Weight gradient, register-blocked: <c>dWeight[co, ci_local, kh, kw] += Σ_{b, oh, ow} dOutput[b,co,oh,ow] · x[b, ci, oh·s − p + kh, ow·s − p + kw]</c>
    /// over the positions whose tap lies inside the input. One work item owns one tap (kh, kw) of 4 output
    /// channels × 4 input channels of one group and loops over the batch and the output positions in order;
    /// <c>n = </c><see cref="Conv2dGeometry.BackwardWeightItems"/>. Needs x. Accumulates into <paramref name="dWeight"/>.
    /// </summary>
    [Kernel]
    public static void BackwardWeight(Index1D index, int n, int stride, Conv2dGeometry g,
        ArrayView<float> dOutput, ArrayView<float> input, ArrayView<float> dWeight)
    {
        int k = g.KernelSize, s = g.Stride, p = g.Padding;
        int h = g.Height, w = g.Width, ho = g.OutHeight, wo = g.OutWidth;
        int cinG = g.InPerGroup, coutG = g.OutPerGroup;
        int kk = k * k, hw = h * w, howo = ho * wo;
        int coBlocks = Conv2dGeometry.CeilDiv(coutG, Conv2dGeometry.ChannelBlock);
        int ciBlocks = Conv2dGeometry.CeilDiv(cinG, Conv2dGeometry.ChannelBlock);
        int xBatch = g.InChannels * hw, dyBatch = g.OutChannels * howo;
        for (int item = index; item < n; item += stride)
        {
            int t = item;
            int tap = t % kk; t /= kk;
            int ciL0 = t % ciBlocks * Conv2dGeometry.ChannelBlock; t /= ciBlocks;
            int coL0 = t % coBlocks * Conv2dGeometry.ChannelBlock;
            int grp = t / coBlocks;
            int kh = tap / k, kw = tap % k;
            int lastCo = coutG - 1 - coL0, lastCi = cinG - 1 - ciL0;
            int dy1 = Min(1, lastCo) * howo, dy2 = Min(2, lastCo) * howo, dy3 = Min(3, lastCo) * howo;
            int x1 = Min(1, lastCi) * hw, x2 = Min(2, lastCi) * hw, x3 = Min(3, lastCi) * hw;

            float a00 = 0f, a01 = 0f, a02 = 0f, a03 = 0f;
            float a10 = 0f, a11 = 0f, a12 = 0f, a13 = 0f;
            float a20 = 0f, a21 = 0f, a22 = 0f, a23 = 0f;
            float a30 = 0f, a31 = 0f, a32 = 0f, a33 = 0f;

            int ohLo = g.FirstOutputForTap(kh), ohHi = g.EndOutputForTap(kh, h, ho);
            int owLo = g.FirstOutputForTap(kw), owHi = g.EndOutputForTap(kw, w, wo);
            int dyPlane = (grp * coutG + coL0) * howo;
            int xPlane = (grp * cinG + ciL0) * hw + (kh - p) * w + kw - p;
            for (int b = 0; b < g.Batch; b++, dyPlane += dyBatch, xPlane += xBatch)
            {
                for (int oh = ohLo; oh < ohHi; oh++)
                {
                    int dyRow = dyPlane + oh * wo;
                    int xRow = xPlane + oh * s * w;
                    for (int ow = owLo; ow < owHi; ow++)
                    {
                        int yi = dyRow + ow, xi = xRow + ow * s;
                        float y0 = dOutput[yi], y1 = dOutput[yi + dy1], y2 = dOutput[yi + dy2], y3 = dOutput[yi + dy3];
                        float v0 = input[xi], v1 = input[xi + x1], v2 = input[xi + x2], v3 = input[xi + x3];
                        a00 += y0 * v0; a01 += y0 * v1; a02 += y0 * v2; a03 += y0 * v3;
                        a10 += y1 * v0; a11 += y1 * v1; a12 += y1 * v2; a13 += y1 * v3;
                        a20 += y2 * v0; a21 += y2 * v1; a22 += y2 * v2; a23 += y2 * v3;
                        a30 += y3 * v0; a31 += y3 * v1; a32 += y3 * v2; a33 += y3 * v3;
                    }
                }
            }

            int cols = Min(Conv2dGeometry.ChannelBlock, lastCi + 1);
            int wCo = cinG * kk;
            int dw = ((grp * coutG + coL0) * cinG + ciL0) * kk + tap;
            Add4(dWeight, dw, kk, cols, a00, a01, a02, a03);
            if (lastCo >= 1) Add4(dWeight, dw + wCo, kk, cols, a10, a11, a12, a13);
            if (lastCo >= 2) Add4(dWeight, dw + 2 * wCo, kk, cols, a20, a21, a22, a23);
            if (lastCo >= 3) Add4(dWeight, dw + 3 * wCo, kk, cols, a30, a31, a32, a33);
        }
    }

    /// <summary>
    /// Weight gradient, one weight element per work item (<c>n = C_out·(C_in/groups)·K²</c>): the path for groups
    /// with one channel (depthwise), correct for every geometry. Same formula as <see cref="BackwardWeight"/>.
    /// Needs x. Accumulates into <paramref name="dWeight"/>.
    /// </summary>
    [Kernel]
    public static void BackwardWeightPerElement(Index1D index, int n, int stride, Conv2dGeometry g,
        ArrayView<float> dOutput, ArrayView<float> input, ArrayView<float> dWeight)
    {
        int k = g.KernelSize, s = g.Stride, p = g.Padding;
        int h = g.Height, w = g.Width, ho = g.OutHeight, wo = g.OutWidth;
        int cinG = g.InPerGroup, coutG = g.OutPerGroup;
        int kk = k * k, hw = h * w, howo = ho * wo;
        int xBatch = g.InChannels * hw, dyBatch = g.OutChannels * howo;
        for (int i = index; i < n; i += stride)
        {
            int t = i;
            int kw = t % k; t /= k;
            int kh = t % k; t /= k;
            int ciL = t % cinG;
            int co = t / cinG;
            int ohLo = g.FirstOutputForTap(kh), ohHi = g.EndOutputForTap(kh, h, ho);
            int owLo = g.FirstOutputForTap(kw), owHi = g.EndOutputForTap(kw, w, wo);
            int dyPlane = co * howo;
            int xPlane = (co / coutG * cinG + ciL) * hw + (kh - p) * w + kw - p;
            float acc = 0f;
            for (int b = 0; b < g.Batch; b++, dyPlane += dyBatch, xPlane += xBatch)
            {
                for (int oh = ohLo; oh < ohHi; oh++)
                {
                    int dyRow = dyPlane + oh * wo;
                    int xRow = xPlane + oh * s * w;
                    for (int ow = owLo; ow < owHi; ow++)
                        acc += dOutput[dyRow + ow] * input[xRow + ow * s];
                }
            }
            dWeight[i] += acc;
        }
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

    private static int Min(int a, int b) => a < b ? a : b;

    private static int Max(int a, int b) => a > b ? a : b;
}
