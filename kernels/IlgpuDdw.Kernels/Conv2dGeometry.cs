namespace IlgpuDdw.Kernels;

/// <summary>
/// The shape of one 2-D convolution, passed by value to every Conv2d kernel and reference. NCHW input
/// <c>[Batch, InChannels, Height, Width]</c>, weight <c>[OutChannels, InChannels / Groups, KernelSize, KernelSize]</c>,
/// optional bias <c>[OutChannels]</c>, output <c>[Batch, OutChannels, OutHeight, OutWidth]</c> with
/// <c>OutHeight = (Height + 2·Padding − KernelSize) / Stride + 1</c> (likewise OutWidth). Output channel
/// <c>co</c> reads the input channels of its group <c>co / (OutChannels / Groups)</c>. The constructor does not
/// validate: callers check the values first (see <c>Ops.Conv2d</c>).
/// </summary>
public readonly struct Conv2dGeometry
{
    /// <summary>Most channels (of one group) one work item handles at once.</summary>
    public const int ChannelBlock = 4;

    /// <summary>Columns one forward or input-gradient work item handles at once.</summary>
    public const int ColumnBlock = 4;

    /// <summary>Creates the geometry and derives the output size.</summary>
    public Conv2dGeometry(int batch, int inChannels, int height, int width, int outChannels, int kernelSize,
        int stride, int padding, int groups)
    {
        Batch = batch;
        InChannels = inChannels;
        Height = height;
        Width = width;
        OutChannels = outChannels;
        KernelSize = kernelSize;
        Stride = stride;
        Padding = padding;
        Groups = groups;
        OutHeight = (height + 2 * padding - kernelSize) / stride + 1;
        OutWidth = (width + 2 * padding - kernelSize) / stride + 1;
    }

    /// <summary>Batch size B.</summary>
    public int Batch { get; }

    /// <summary>Input channels C_in.</summary>
    public int InChannels { get; }

    /// <summary>Input height H.</summary>
    public int Height { get; }

    /// <summary>Input width W.</summary>
    public int Width { get; }

    /// <summary>Output channels C_out.</summary>
    public int OutChannels { get; }

    /// <summary>Side K of the square kernel.</summary>
    public int KernelSize { get; }

    /// <summary>Stride s (both directions).</summary>
    public int Stride { get; }

    /// <summary>Zero padding p on every side.</summary>
    public int Padding { get; }

    /// <summary>Number of channel groups (1: dense, C_in = C_out = groups: depthwise).</summary>
    public int Groups { get; }

    /// <summary>Output height Ho = (H + 2p − K) / s + 1.</summary>
    public int OutHeight { get; }

    /// <summary>Output width Wo = (W + 2p − K) / s + 1.</summary>
    public int OutWidth { get; }

    /// <summary>Input channels per group, C_in / groups.</summary>
    public int InPerGroup => InChannels / Groups;

    /// <summary>Output channels per group, C_out / groups.</summary>
    public int OutPerGroup => OutChannels / Groups;

    /// <summary>Elements of the input, B·C_in·H·W.</summary>
    public int InputLength => Batch * InChannels * Height * Width;

    /// <summary>The same convolution over a batch of <paramref name="batch"/> samples.</summary>
    public Conv2dGeometry WithBatch(int batch) => new(batch, InChannels, Height, Width, OutChannels, KernelSize, Stride, Padding, Groups);

    /// <summary>Elements of the weight, C_out·(C_in/groups)·K·K.</summary>
    public int WeightLength => OutChannels * InPerGroup * KernelSize * KernelSize;

    /// <summary>Elements of the output, B·C_out·Ho·Wo.</summary>
    public int OutputLength => Batch * OutChannels * OutHeight * OutWidth;

    /// <summary>Multiply-accumulates of the forward pass, B·C_out·Ho·Wo·(C_in/groups)·K·K.</summary>
    public long Macs => (long)OutputLength * InPerGroup * KernelSize * KernelSize;

    /// <summary>
    /// Output channels per work item of <see cref="Conv2dKernels.Forward"/> and <see cref="Conv2dKernels.BackwardWeight"/>:
    /// <see cref="ChannelBlock"/> when a group has at least 2 output channels, else 1 (depthwise), where a
    /// 4-channel block would only repeat one channel.
    /// </summary>
    public int OutChannelBlock => OutPerGroup >= 2 ? ChannelBlock : 1;

    /// <summary>
    /// Input channels per work item of <see cref="Conv2dKernels.BackwardInput"/> and <see cref="Conv2dKernels.BackwardWeight"/>:
    /// <see cref="ChannelBlock"/> when a group has at least 2 input channels, else 1.
    /// </summary>
    public int InChannelBlock => InPerGroup >= 2 ? ChannelBlock : 1;

    /// <summary>Column blocks of one output row in the forward: ⌈Wo / 4⌉.</summary>
    public int ForwardColumnBlocks => CeilDiv(OutWidth, ColumnBlock);

    /// <summary>
    /// Column blocks of one input row in the input gradient: the columns of each residue modulo the stride, four at
    /// a time, s · ⌈⌈W / s⌉ / 4⌉ (some blocks of the higher residues may be empty).
    /// </summary>
    public int BackwardInputColumnBlocks => Stride * CeilDiv(CeilDiv(Width, Stride), ColumnBlock);

    /// <summary>Work items of <see cref="Conv2dKernels.Forward"/>: B · groups · ⌈(C_out/groups)/channelBlock⌉ · Ho · ⌈Wo/4⌉.</summary>
    public int ForwardItems(int channelBlock) =>
        Batch * Groups * CeilDiv(OutPerGroup, channelBlock) * OutHeight * ForwardColumnBlocks;

    /// <summary>Work items of <see cref="Conv2dKernels.BackwardInput"/>: B · groups · ⌈(C_in/groups)/channelBlock⌉ · H · column blocks.</summary>
    public int BackwardInputItems(int channelBlock) =>
        Batch * Groups * CeilDiv(InPerGroup, channelBlock) * Height * BackwardInputColumnBlocks;

    /// <summary>Work items of <see cref="Conv2dKernels.BackwardWeight"/>: groups · ⌈(C_out/groups)/outBlock⌉ · ⌈(C_in/groups)/inBlock⌉ · K².</summary>
    public int BackwardWeightItems(int outBlock, int inBlock) =>
        Groups * CeilDiv(OutPerGroup, outBlock) * CeilDiv(InPerGroup, inBlock) * KernelSize * KernelSize;

    /// <summary>
    /// First output row (or column) that reads kernel tap <paramref name="tap"/> from inside the input:
    /// the least o ≥ 0 with o·s − p + tap ≥ 0.
    /// </summary>
    public int FirstOutputForTap(int tap)
    {
        int before = Padding - tap;
        return before <= 0 ? 0 : (before + Stride - 1) / Stride;
    }

    /// <summary>
    /// One past the last output row (or column, with <paramref name="inSize"/> = W, <paramref name="outSize"/>
    /// = Wo) that reads kernel tap <paramref name="tap"/> from inside the input: o·s − p + tap ≤ inSize − 1, o &lt; outSize.
    /// </summary>
    public int EndOutputForTap(int tap, int inSize, int outSize)
    {
        int room = inSize - 1 + Padding - tap;
        if (room < 0) return 0;
        int end = room / Stride + 1;
        return end < outSize ? end : outSize;
    }

    /// <summary>⌈a / b⌉ for a ≥ 0, b &gt; 0.</summary>
    public static int CeilDiv(int a, int b) => (a + b - 1) / b;

    /// <inheritdoc/>
    public override string ToString() =>
        $"B={Batch} Cin={InChannels} H={Height} W={Width} Cout={OutChannels} K={KernelSize} s={Stride} p={Padding} g={Groups}";
}
