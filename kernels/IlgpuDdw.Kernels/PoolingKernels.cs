using ILGPU;

namespace IlgpuDdw.Kernels;

/// <summary>One pooling window (see <see cref="Pool2dGeometry.Window"/>).</summary>
public readonly struct PoolWindow(int plane, int outRow, int outColumn, int rowBegin, int rowEnd, int columnBegin, int columnEnd, int planeStart)
{
    /// <summary>The (batch, channel) plane.</summary>
    public readonly int Plane = plane;
    public readonly int OutRow = outRow;
    public readonly int OutColumn = outColumn;
    /// <summary>First in-bounds input row.</summary>
    public readonly int RowBegin = rowBegin;
    /// <summary>One past the last in-bounds input row.</summary>
    public readonly int RowEnd = rowEnd;
    /// <summary>First in-bounds input column.</summary>
    public readonly int ColumnBegin = columnBegin;
    /// <summary>One past the last in-bounds input column.</summary>
    public readonly int ColumnEnd = columnEnd;
    /// <summary>Offset of the plane's first input element.</summary>
    public readonly int PlaneStart = planeStart;
}

/// <summary>
/// Shape of a square-window 2-d pooling over NCHW planes (PyTorch semantics, floor mode): input
/// [Planes = B·C, Height, Width], output [Planes, OutHeight, OutWidth] with
/// <c>Out = ⌊(In + 2·Padding − Kernel)/Stride⌋ + 1</c>. Window (oh, ow) covers input rows
/// <c>oh·Stride − Padding .. + Kernel − 1</c> (columns likewise); positions outside the input are padding.
/// The constructor does not validate: the ops check <c>In + 2·Padding ≥ Kernel</c>, Kernel, Stride ≥ 1 and
/// <c>Padding ≤ Kernel/2</c> (so every window holds at least one input element) before launching.
/// </summary>
public readonly struct Pool2dGeometry
{
    /// <summary>Number of planes (batch · channels).</summary>
    public readonly int Planes;
    public readonly int Height;
    public readonly int Width;
    public readonly int OutHeight;
    public readonly int OutWidth;
    public readonly int Kernel;
    public readonly int Stride;
    /// <summary>Implicit padding on every side.</summary>
    public readonly int Padding;

    /// <summary>Describes a pooling; the output size follows from the other values.</summary>
    public Pool2dGeometry(int planes, int height, int width, int kernel, int stride, int padding)
    {
        Planes = planes;
        Height = height;
        Width = width;
        Kernel = kernel;
        Stride = stride;
        Padding = padding;
        OutHeight = OutputSize(height, kernel, stride, padding);
        OutWidth = OutputSize(width, kernel, stride, padding);
    }

    /// <summary><c>⌊(size + 2·padding − kernel)/stride⌋ + 1</c>; 0 when the window does not fit even once.</summary>
    public static int OutputSize(int size, int kernel, int stride, int padding)
    {
        int span = size + 2 * padding - kernel;
        return span < 0 ? 0 : span / stride + 1;
    }

    /// <summary>Input elements (Planes · Height · Width).</summary>
    public int InputLength => Planes * Height * Width;

    /// <summary>Output elements (Planes · OutHeight · OutWidth).</summary>
    public int OutputLength => Planes * OutHeight * OutWidth;

    /// <summary>
    /// The window of output element <paramref name="o"/> (flat index over Planes · OutHeight · OutWidth): its
    /// plane, output coordinates and clipped input ranges [RowBegin, RowEnd) × [ColumnBegin, ColumnEnd).
    /// </summary>
    public PoolWindow Window(int o)
    {
        int ow = o % OutWidth;
        int t = o / OutWidth;
        int oh = t % OutHeight;
        int plane = t / OutHeight;
        return new PoolWindow(plane, oh, ow, ClippedBegin(oh), ClippedEnd(oh, Height), ClippedBegin(ow), ClippedEnd(ow, Width),
            plane * Height * Width);
    }

    /// <summary>First in-bounds input coordinate of window <paramref name="o"/> along one axis.</summary>
    public int ClippedBegin(int o)
    {
        int begin = o * Stride - Padding;
        return begin < 0 ? 0 : begin;
    }

    /// <summary>One past the last in-bounds input coordinate of window <paramref name="o"/> along an axis of <paramref name="size"/>.</summary>
    public int ClippedEnd(int o, int size)
    {
        int end = o * Stride - Padding + Kernel;
        return end < size ? end : size;
    }

    /// <summary>
    /// The divisor of average-pooling window (oh, ow): Kernel² when <paramref name="countIncludePad"/> (padding
    /// counts as zeros; floor-mode windows never pass the padded border), else the number of in-bounds inputs.
    /// </summary>
    public int AvgDivisor(int oh, int ow, bool countIncludePad) => countIncludePad
        ? Kernel * Kernel
        : (ClippedEnd(oh, Height) - ClippedBegin(oh)) * (ClippedEnd(ow, Width) - ClippedBegin(ow));

    /// <summary>First window along one axis whose span contains input coordinate <paramref name="i"/>.</summary>
    public int FirstWindow(int i)
    {
        int t = i + Padding - Kernel + 1;
        return t <= 0 ? 0 : (t + Stride - 1) / Stride;
    }

    /// <summary>Last window (clamped to <paramref name="outSize"/> − 1) along one axis whose span contains <paramref name="i"/>.</summary>
    public int LastWindow(int i, int outSize)
    {
        int last = (i + Padding) / Stride;
        return last < outSize - 1 ? last : outSize - 1;
    }
}

/// <summary>
/// Pooling over NCHW tensors: global average pooling, max pooling and average pooling with their backward
/// kernels. Forward kernels are grid-stride loops over output elements and overwrite; backward kernels are
/// deterministic gathers: one thread owns one dInput element, loops in ascending (oh, ow) order over the output
/// windows that contain it and accumulates (+=) into dInput, or overwrites it with accumulate = 0 (the first
/// contribution to a new gradient), so no atomics are needed.
/// The forward of GlobalAvgPool2d is <see cref="ReductionKernels.SumChunks"/> with chunk = H·W and
/// scale = 1/(H·W) (one thread per (b, c) plane, summing in index order).
/// </summary>
public static class PoolingKernels
{
    /// <summary>
    /// Backward of GlobalAvgPool2d ([B, C, H, W] → [B, C]): <c>dInput[i] += scale · dOutput[i / spatial]</c>,
    /// grid-stride over the n = B·C·spatial input elements, scale = 1/spatial. Accumulates when
    /// <paramref name="accumulate"/> ≠ 0, else overwrites (<see cref="ElementwiseKernels.Prior"/>); saves nothing.
    /// </summary>
    [Kernel]
    public static void GlobalAvgPoolBackward(Index1D index, int n, int stride, int spatial, float scale, int accumulate,
        ArrayView<float> dOutput, ArrayView<float> dInput)
    {
        for (int i = index; i < n; i += stride)
            dInput[i] = ElementwiseKernels.Prior(accumulate, dInput, i) + scale * dOutput[i / spatial];
    }

    /// <summary>
    /// Max pooling forward, grid-stride over the <see cref="Pool2dGeometry.OutputLength"/> outputs:
    /// <c>y[o] = max</c> of the window's in-bounds inputs (padding is −∞, so it never wins). The first maximum in
    /// row-major window order wins ties; a NaN wins and propagates. Saves <c>argmax[o]</c> = the winner's index
    /// within its plane (ih·W + iw) encoded as a float (exact because the op requires H·W ≤ 2²⁴). Overwrites y
    /// and argmax.
    /// </summary>
    [Kernel]
    public static void MaxPoolForward(Index1D index, int n, int stride, Pool2dGeometry g,
        ArrayView<float> x, ArrayView<float> y, ArrayView<float> argmax)
    {
        for (int o = index; o < n; o += stride)
        {
            var win = g.Window(o);
            int hs = win.RowBegin, he = win.RowEnd, ws = win.ColumnBegin, we = win.ColumnEnd;
            int planeStart = win.PlaneStart;
            int best = hs * g.Width + ws;
            float bestValue = x[planeStart + best];
            for (int ih = hs; ih < he; ih++)
            {
                for (int iw = ws; iw < we; iw++)
                {
                    int k = ih * g.Width + iw;
                    float v = x[planeStart + k];
                    if (v > bestValue || float.IsNaN(v))
                    {
                        bestValue = v;
                        best = k;
                    }
                }
            }
            y[o] = bestValue;
            argmax[o] = best;
        }
    }

    /// <summary>
    /// Max pooling backward, grid-stride over the <see cref="Pool2dGeometry.InputLength"/> inputs: each thread
    /// owns dInput[i] and sums dOutput[o] over the windows o containing i whose saved argmax is i's in-plane
    /// index, in ascending (oh, ow) order. Accumulates when <paramref name="accumulate"/> ≠ 0, else overwrites
    /// (<see cref="ElementwiseKernels.Prior"/>).
    /// </summary>
    [Kernel]
    public static void MaxPoolBackward(Index1D index, int n, int stride, Pool2dGeometry g, int accumulate,
        ArrayView<float> argmax, ArrayView<float> dOutput, ArrayView<float> dInput)
    {
        for (int i = index; i < n; i += stride)
        {
            int iw = i % g.Width;
            int t = i / g.Width;
            int ih = t % g.Height;
            int plane = t / g.Height;
            int self = ih * g.Width + iw;
            int outStart = plane * g.OutHeight * g.OutWidth;
            int oh1 = g.LastWindow(ih, g.OutHeight), ow0 = g.FirstWindow(iw), ow1 = g.LastWindow(iw, g.OutWidth);
            float sum = 0f;
            for (int oh = g.FirstWindow(ih); oh <= oh1; oh++)
            {
                for (int ow = ow0; ow <= ow1; ow++)
                {
                    int o = outStart + oh * g.OutWidth + ow;
                    if ((int)argmax[o] == self)
                        sum += dOutput[o];
                }
            }
            dInput[i] = ElementwiseKernels.Prior(accumulate, dInput, i) + sum;
        }
    }

    /// <summary>
    /// Average pooling forward, grid-stride over the <see cref="Pool2dGeometry.OutputLength"/> outputs:
    /// <c>y[o] = Σ</c>(in-bounds window inputs, row-major) <c>/ divisor</c> (<see cref="Pool2dGeometry.AvgDivisor"/>
    /// with countIncludePad ≠ 0). Overwrites y; saves nothing.
    /// </summary>
    [Kernel]
    public static void AvgPoolForward(Index1D index, int n, int stride, Pool2dGeometry g, int countIncludePad,
        ArrayView<float> x, ArrayView<float> y)
    {
        for (int o = index; o < n; o += stride)
        {
            var win = g.Window(o);
            int hs = win.RowBegin, he = win.RowEnd, ws = win.ColumnBegin, we = win.ColumnEnd;
            int planeStart = win.PlaneStart;
            float sum = 0f;
            for (int ih = hs; ih < he; ih++)
                for (int iw = ws; iw < we; iw++)
                    sum += x[planeStart + ih * g.Width + iw];
            y[o] = sum / g.AvgDivisor(win.OutRow, win.OutColumn, countIncludePad != 0);
        }
    }

    /// <summary>
    /// Average pooling backward, grid-stride over the <see cref="Pool2dGeometry.InputLength"/> inputs: each thread
    /// owns dInput[i] and sums <c>dOutput[o] / divisor(o)</c> over the windows o containing i, in ascending
    /// (oh, ow) order. Accumulates when <paramref name="accumulate"/> ≠ 0, else overwrites
    /// (<see cref="ElementwiseKernels.Prior"/>).
    /// </summary>
    [Kernel]
    public static void AvgPoolBackward(Index1D index, int n, int stride, Pool2dGeometry g, int countIncludePad, int accumulate,
        ArrayView<float> dOutput, ArrayView<float> dInput)
    {
        for (int i = index; i < n; i += stride)
        {
            int iw = i % g.Width;
            int t = i / g.Width;
            int ih = t % g.Height;
            int plane = t / g.Height;
            int outStart = plane * g.OutHeight * g.OutWidth;
            int oh1 = g.LastWindow(ih, g.OutHeight), ow0 = g.FirstWindow(iw), ow1 = g.LastWindow(iw, g.OutWidth);
            float sum = 0f;
            for (int oh = g.FirstWindow(ih); oh <= oh1; oh++)
                for (int ow = ow0; ow <= ow1; ow++)
                    sum += dOutput[outStart + oh * g.OutWidth + ow] / g.AvgDivisor(oh, ow, countIncludePad != 0);
            dInput[i] = ElementwiseKernels.Prior(accumulate, dInput, i) + sum;
        }
    }
}
