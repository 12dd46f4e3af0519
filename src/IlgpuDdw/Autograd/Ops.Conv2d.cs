namespace IlgpuDdw.Autograd;

/// <summary>
/// How the Conv2d weight gradient is launched (the rungs of <see cref="Conv2dKernels"/>): <see cref="Splits"/> = 1 runs
/// <see cref="Conv2dKernels.BackwardWeight"/> straight into dWeight, more runs <see cref="Conv2dKernels.BackwardWeightSplit"/>
/// over that many slices of the B·Ho·Wo reduction into pooled partials and <see cref="Conv2dKernels.BackwardWeightFinalize"/>.
/// <see cref="SplitK"/> forces the second rung even at one split; with <see cref="Tiles"/> its slices run as tiled GEMMs
/// (the GPU's default where a channel group has <see cref="Conv2dTilePlan.GpuMinRows"/> output channels or more, and the
/// TF32 path). Every rung is deterministic.
/// <see cref="For(Device, Conv2dGeometry)"/> picks the device's default.
/// </summary>
/// <param name="Splits">Slices of the reduction range K = B·Ho·Wo (may exceed K: the extra slices are empty).</param>
/// <param name="SplitK">Whether the split-K rung runs (with its partials and finalize).</param>
/// <param name="Tiles">Tiled: each slice as an implicit GEMM through shared memory (<see cref="Conv2dKernels.BackwardWeightTiled"/>,
/// on TF32 tensor cores <see cref="Conv2dKernels.BackwardWeightTiledTf32"/>), grid (blocks, splits); direct: the split rung's work items.</param>
public readonly record struct Conv2dWeightPlan(int Splits, bool SplitK, Conv2dTilePlan Tiles = default)
{
    /// <summary>The first rung: every tile sums the whole reduction range into dWeight.</summary>
    public static Conv2dWeightPlan Direct => new(1, false);

    /// <summary>Most slices of the tiled rung (its grid's y extent on Cuda).</summary>
    public const int MaxTiledSplits = 65535;

    /// <summary>Fewest output positions a slice gets from the default GPU plan (more slices would only add partials).</summary>
    public const int GpuMinPositionsPerSplit = 64;

    /// <summary>The split-K rung with <paramref name="splits"/> slices.</summary>
    public static Conv2dWeightPlan Split(int splits) => new(splits, true);

    /// <summary>The split-K rung with <paramref name="splits"/> slices, each a tiled GEMM of <paramref name="tiles"/>.</summary>
    public static Conv2dWeightPlan Tiled(int splits, Conv2dTilePlan tiles) => new(splits, true, tiles);

    /// <summary>The default plan of <paramref name="device"/> for the convolution <paramref name="g"/> (TF32 when <see cref="Device.Tf32"/> is on).</summary>
    public static Conv2dWeightPlan For(Device device, Conv2dGeometry g) => For(device.Kind, device.MaxThreads, g, device.Tf32);

    /// <summary>
    /// The default plan for a device of <paramref name="kind"/> running at most <paramref name="maxThreads"/> threads at
    /// once (<see cref="Device.MaxThreads"/>; an H200: 132 SMs × 2048). Where the GEMM C_out/groups × C_in/groups·K² gets a tile
    /// plan (<see cref="Conv2dTilePlan.For(DeviceKind, int, int, int, int, bool)"/>, TF32 with <paramref name="tf32"/>): the tiled
    /// rung with enough slices that blocks × slices reach half a wave of groups (at least <see cref="GpuMinPositionsPerSplit"/>
    /// positions a slice; one slice on the CPU accelerator, whose only tiled weight plan is the TF32 emulation). Otherwise: CPU accelerator: <see cref="Direct"/> (its
    /// tiles already outnumber the simulated threads). Cuda: enough slices that tiles × slices reach half a wave
    /// (maxThreads / 2 work items: 528 groups of 256 on an H200, two per SM above the 264-group fill rule), but no
    /// fewer than <see cref="GpuMinPositionsPerSplit"/> positions a slice; <see cref="Direct"/> when one slice is enough.
    /// </summary>
    public static Conv2dWeightPlan For(DeviceKind kind, int maxThreads, Conv2dGeometry g, bool tf32 = false)
    {
        int columns = g.InPerGroup * g.KernelSize * g.KernelSize;
        var gemm = Conv2dTilePlan.For(kind, maxThreads, g.Groups, g.OutPerGroup, columns, tf32);
        if (gemm.IsTiled)
        {
            if (kind == DeviceKind.Cpu) return Tiled(1, gemm); // the TF32 emulation
            long blocks = gemm.Blocks(g.Groups, g.OutPerGroup, columns);
            long positionCount = (long)g.Batch * g.OutHeight * g.OutWidth;
            long groupsWanted = Math.Max(1, Math.Max(2, maxThreads) / 2 / gemm.Threads);
            int tiledSplits = (int)Math.Clamp((groupsWanted + blocks - 1) / blocks, 1, Math.Min(MaxTiledSplits, Math.Max(1, positionCount / GpuMinPositionsPerSplit)));
            return Tiled(tiledSplits, gemm);
        }
        if (kind == DeviceKind.Cpu) return Direct;
        long tiles = Math.Max(1, g.BackwardWeightItems(g.OutChannelBlock, g.InChannelBlock));
        long positions = (long)g.Batch * g.OutHeight * g.OutWidth;
        long wanted = (Math.Max(2, maxThreads) / 2 + tiles - 1) / tiles;
        int splits = (int)Math.Clamp(wanted, 1, Math.Max(1, positions / GpuMinPositionsPerSplit));
        return splits == 1 ? Direct : Split(splits);
    }

    /// <summary>Throws when this plan cannot run for <paramref name="g"/>.</summary>
    /// <exception cref="ArgumentException">Fewer than one split, more than one without <see cref="SplitK"/>, or
    /// partials [splits, |w|] or work items beyond 2³¹ − 1.</exception>
    internal void Validate(Conv2dGeometry g)
    {
        if (Splits < 1)
            throw new ArgumentException($"Conv2d: weight-gradient splits must be at least 1; got {Splits}.", "weightPlan");
        if (!SplitK && Splits != 1)
            throw new ArgumentException($"Conv2d: the direct weight-gradient rung takes 1 split; got {Splits}.", "weightPlan");
        if (Tiles.IsTiled && (!SplitK || Splits > MaxTiledSplits))
            throw new ArgumentException($"Conv2d: the tiled weight-gradient rung takes 1 to {MaxTiledSplits} splits with split-K on; got {Splits}{(SplitK ? "" : " without split-K")}.", "weightPlan");
        long items = (long)Splits * Math.Max(g.WeightLength, g.BackwardWeightItems(g.OutChannelBlock, g.InChannelBlock));
        if (items > int.MaxValue)
            throw new ArgumentException($"Conv2d: {Splits} weight-gradient splits of a {g.WeightLength}-element weight exceed 2^31 − 1 partials.", "weightPlan");
    }
}

/// <summary>
/// How the Conv2d forward or input gradient runs: <see cref="Direct"/> (the register-blocked grid-stride kernels
/// <see cref="Conv2dKernels.Forward"/> / <see cref="Conv2dKernels.BackwardInput"/>) or tiled
/// (<see cref="Conv2dKernels.ForwardTiled"/> / <see cref="Conv2dKernels.BackwardInputTiled"/>: an implicit GEMM
/// over tileM × tileN blocks of the output, tileK at a time through shared memory, tileM·tileN/16 threads a group),
/// with <see cref="Tf32"/> on TF32 tensor cores (<see cref="Conv2dKernels.ForwardTiledTf32"/> /
/// <see cref="Conv2dKernels.BackwardInputTiledTf32"/>: the same blocks, mma.sync through inline PTX, FP32 sums; on the CPU
/// accelerator their exact emulation). <see cref="For(DeviceKind, int, int, int, int, bool)"/> picks a device's default per pass.
/// </summary>
/// <param name="TileM">Rows of a block (output channels of the forward, input channels of the input gradient); 0: direct.</param>
/// <param name="TileN">Columns of a block (positions b, h, w).</param>
/// <param name="TileK">Reduction step staged in shared memory.</param>
/// <param name="Tf32">Whether the tiled GEMM runs on TF32 tensor cores (off by default: FP32 throughout).</param>
public readonly record struct Conv2dTilePlan(int TileM, int TileN, int TileK, bool Tf32 = false)
{
    /// <summary>The register-blocked grid-stride kernels (the CPU accelerator's choice: barriers cost it milliseconds).</summary>
    public static Conv2dTilePlan Direct => default;

    /// <summary>Whether the tiled kernels run.</summary>
    public bool IsTiled => TileM > 0;

    /// <summary>Threads per group of a tiled launch (of a TF32 one: its lanes, one thread each on a GPU).</summary>
    public int Threads => TileM * TileN / 16;

    /// <summary>
    /// Threads per group launched on <paramref name="device"/>: <see cref="Threads"/>, except a TF32 plan on the CPU
    /// accelerator, whose emulation runs its lanes in passes on as many threads as a group may hold, up to one per lane.
    /// </summary>
    internal int LaunchThreads(Device device) => Tf32 && device.Kind == DeviceKind.Cpu ? Math.Min(Threads, device.MaxThreadsPerGroup) : Threads;

    /// <summary>Thread groups of a tiled launch over <paramref name="rows"/> × <paramref name="columns"/> per channel group.</summary>
    public long Blocks(int channelGroups, int rows, int columns) =>
        (long)channelGroups * Conv2dGeometry.CeilDiv(rows, TileM) * Conv2dGeometry.CeilDiv(columns, TileN);

    /// <summary>Reduction step of the default GPU plan.</summary>
    public const int GpuTileK = 8;

    /// <summary>Fewest rows a channel group needs for the default GPU plan to tile it (fewer: direct, e.g. depthwise).</summary>
    public const int GpuMinRows = 8;

    /// <summary>Reduction step of the default TF32 plans (two mma steps per staged tile).</summary>
    public const int Tf32TileK = 16;

    /// <summary>The CPU accelerator's TF32 plan: the smallest TF32 block (one warp of 32 lanes), emulated.</summary>
    public static Conv2dTilePlan CpuTf32 => new(Conv2dKernels.Tf32WarpRows, Conv2dKernels.Tf32WarpColumns, Tf32TileK, true);

    /// <summary>
    /// The default plan for a pass whose GEMM per channel group has <paramref name="rows"/> rows and
    /// <paramref name="columns"/> columns, on a device of <paramref name="kind"/> running <paramref name="maxThreads"/>
    /// threads at once. CPU accelerator: <see cref="Direct"/>. Cuda: tileM 16, 32 or 64 (the smallest that holds the
    /// rows, at most 64) and tileN = 2048 / tileM (128 threads a group; 64 × 64 tiles, 256 threads, when that launch
    /// still has two groups per SM, taking 2048 threads an SM), tileK <see cref="GpuTileK"/>; <see cref="Direct"/>
    /// below <see cref="GpuMinRows"/> rows (depthwise, a one-channel input). With <paramref name="tf32"/>: the same
    /// blocks on TF32 tensor cores with tileK <see cref="Tf32TileK"/>, and on the CPU accelerator <see cref="CpuTf32"/>
    /// (both still direct below <see cref="GpuMinRows"/> rows).
    /// </summary>
    public static Conv2dTilePlan For(DeviceKind kind, int maxThreads, int channelGroups, int rows, int columns, bool tf32 = false)
    {
        if (rows < GpuMinRows) return Direct;
        if (kind == DeviceKind.Cpu) return tf32 ? CpuTf32 : Direct;
        int tileM = rows > 32 ? 64 : rows > 16 ? 32 : 16;
        var plan = new Conv2dTilePlan(tileM, 2048 / tileM, GpuTileK);
        var wide = new Conv2dTilePlan(64, 64, GpuTileK);
        long wanted = Math.Max(1, maxThreads / 2048) * 2L;
        var chosen = tileM == 64 && wide.Blocks(channelGroups, rows, columns) >= wanted ? wide : plan;
        return tf32 ? chosen with { TileK = Tf32TileK, Tf32 = true } : chosen;
    }

    /// <summary>Throws when this plan cannot run on <paramref name="device"/>.</summary>
    /// <exception cref="ArgumentException">A tile extent out of range or more threads than a group may have; for TF32, no
    /// tiles, tiles off the warp grid, or (on a GPU) warps not of 32.</exception>
    internal void Validate(Device device)
    {
        if (Tf32)
        {
            ValidateTf32(device);
            return;
        }
        if (!IsTiled) return;
        if (TileM % 4 != 0 || TileN % 4 != 0 || TileM > Conv2dKernels.MaxTileM || TileN > Conv2dKernels.MaxTileN || TileN < 4)
            throw new ArgumentException(
                $"Conv2d: tiles must be multiples of 4, tileM up to {Conv2dKernels.MaxTileM} and tileN up to {Conv2dKernels.MaxTileN}; got {TileM} × {TileN}.", "tilePlan");
        if (TileK < 1 || TileK > Conv2dKernels.MaxTileK)
            throw new ArgumentException($"Conv2d: tileK must be 1 to {Conv2dKernels.MaxTileK}; got {TileK}.", "tilePlan");
        if (Threads > device.MaxThreadsPerGroup)
            throw new ArgumentException(
                $"Conv2d: tiles {TileM} × {TileN} need {Threads} threads a group; the device allows {device.MaxThreadsPerGroup}.", "tilePlan");
    }

    private void ValidateTf32(Device device)
    {
        const int rows = Conv2dKernels.Tf32WarpRows, columns = Conv2dKernels.Tf32WarpColumns, step = Conv2dKernels.Tf32Step;
        if (TileM < rows || TileN < columns || TileM % rows != 0 || TileN % columns != 0 || TileM > Conv2dKernels.MaxTileM || TileN > Conv2dKernels.MaxTileN)
            throw new ArgumentException(
                $"Conv2d: TF32 tiles must be multiples of {rows} × {columns} (one warp's mma tile), tileM up to {Conv2dKernels.MaxTileM} and tileN up to {Conv2dKernels.MaxTileN}; got {TileM} × {TileN}.", "tilePlan");
        if (TileK < step || TileK % step != 0 || TileK > Conv2dKernels.MaxTileK)
            throw new ArgumentException($"Conv2d: the TF32 tileK must be a multiple of {step} up to {Conv2dKernels.MaxTileK}; got {TileK}.", "tilePlan");
        if (device.Kind == DeviceKind.Cpu) return; // the emulation runs any warp size and group size
        if (device.WarpSize != 32)
            throw new ArgumentException($"Conv2d: the TF32 kernels issue mma.sync over warps of 32 lanes; {device} has warps of {device.WarpSize}.", "tilePlan");
        if (Threads > device.MaxThreadsPerGroup)
            throw new ArgumentException(
                $"Conv2d: TF32 tiles {TileM} × {TileN} need {Threads} threads a group; the device allows {device.MaxThreadsPerGroup}.", "tilePlan");
    }
}

/// <summary>
/// How a Conv2d with few channels per group (depthwise, narrow grouped) runs on the plane-tile rung of
/// <see cref="Conv2dKernels"/>: <see cref="Conv2dKernels.ForwardPlanes"/>, <see cref="Conv2dKernels.BackwardInputPlanes"/> and
/// <see cref="Conv2dKernels.BackwardWeightPlanes"/> (then <see cref="Conv2dKernels.BackwardWeightFinalize"/>), a thread group
/// per <see cref="TileHeight"/> × <see cref="TileWidth"/> tile of one plane, the plane's input window staged in shared memory.
/// <see cref="Direct"/> leaves a pass to <see cref="Conv2dTilePlan"/> (forward, input gradient) and <see cref="Conv2dWeightPlan"/>.
/// The defaults per pass: <see cref="ForForward"/>, <see cref="ForInput"/>, <see cref="ForWeight"/>.
/// </summary>
/// <param name="TileHeight">Rows of a tile (of the output plane for the forward and the weight gradient, of the input plane for the input gradient).</param>
/// <param name="TileWidth">Columns of a tile.</param>
/// <param name="Threads">Threads a group; 0: direct.</param>
/// <param name="Splits">Slices of the weight gradient's reduction over the (sample, tile) units (may exceed them: the extra slices write zeros).</param>
public readonly record struct Conv2dPlanePlan(int TileHeight, int TileWidth, int Threads, int Splits)
{
    /// <summary>Not on plane tiles (the CPU accelerator's choice: barriers cost it milliseconds).</summary>
    public static Conv2dPlanePlan Direct => default;

    /// <summary>Whether the plane-tile kernels run.</summary>
    public bool IsPlane => Threads > 0;

    /// <summary>Threads a group of the default GPU plan.</summary>
    public const int GpuThreads = 128;

    /// <summary>Widest tile of the default GPU plan (a plane wider than this is cut into near-equal tiles).</summary>
    public const int GpuMaxTileWidth = 32;

    /// <summary>Most values one thread of the default GPU weight-gradient plan sums in float (more: more slices).</summary>
    public const int GpuMaxSumLength = 4096;

    /// <summary>
    /// The default plan of the forward of <paramref name="g"/> on a device of <paramref name="kind"/>: tiles of the output
    /// plane (<see cref="Tiles"/>) where a group has fewer than <see cref="Conv2dTilePlan.GpuMinRows"/> output channels.
    /// </summary>
    public static Conv2dPlanePlan ForForward(DeviceKind kind, Conv2dGeometry g) =>
        kind == DeviceKind.Cpu || g.OutPerGroup >= Conv2dTilePlan.GpuMinRows ? Direct : Tiles(g, g.OutHeight, g.OutWidth);

    /// <summary>The default plan of the input gradient: tiles of the input plane where a group has fewer than <see cref="Conv2dTilePlan.GpuMinRows"/> input channels.</summary>
    public static Conv2dPlanePlan ForInput(DeviceKind kind, Conv2dGeometry g) =>
        kind == DeviceKind.Cpu || g.InPerGroup >= Conv2dTilePlan.GpuMinRows ? Direct : Tiles(g, g.Height, g.Width);

    /// <summary>
    /// The default plan of the weight gradient on a device running <paramref name="maxThreads"/> threads at once, where a group
    /// has fewer than <see cref="Conv2dTilePlan.GpuMinRows"/> output and input channels: tiles of the output plane and enough
    /// slices that weight planes × slices fill one wave (maxThreads / <see cref="GpuThreads"/> groups: 2,112 on an H200) and no
    /// thread sums more than <see cref="GpuMaxSumLength"/> values, at most one slice a unit.
    /// </summary>
    public static Conv2dPlanePlan ForWeight(DeviceKind kind, int maxThreads, Conv2dGeometry g)
    {
        if (kind == DeviceKind.Cpu || g.OutPerGroup >= Conv2dTilePlan.GpuMinRows || g.InPerGroup >= Conv2dTilePlan.GpuMinRows) return Direct;
        var plan = Tiles(g, g.OutHeight, g.OutWidth);
        if (!plan.IsPlane) return Direct;
        int kk = g.KernelSize * g.KernelSize, lanes = Math.Max(1, GpuThreads / kk);
        long units = (long)g.Batch * Conv2dKernels.PlaneTiles(g.OutHeight, g.OutWidth, plan.TileHeight, plan.TileWidth);
        long planes = (long)g.OutChannels * g.InPerGroup;
        long wave = Math.Max(1, maxThreads / GpuThreads);
        long filling = (wave + planes - 1) / planes;
        long bounded = (units * plan.TileHeight * plan.TileWidth + (long)lanes * GpuMaxSumLength - 1) / ((long)lanes * GpuMaxSumLength);
        return plan with { Splits = (int)Math.Clamp(Math.Max(filling, bounded), 1, units) };
    }

    /// <summary>
    /// <see cref="GpuThreads"/> threads on tiles of a height × width plane: at most <see cref="GpuMaxTileWidth"/> columns and
    /// <see cref="Conv2dKernels.MaxPlaneTile"/> positions, near-equal across the plane (112 → 4 × 28, 56 → 2 × 28; 16 × 28 tiles
    /// at 112 × 112, 14 × 28 at 56 × 56, one tile a plane up to 14 × 14), halved while the input window exceeds
    /// <see cref="Conv2dKernels.MaxPlaneStage"/>; <see cref="Direct"/> above <see cref="Conv2dKernels.MaxPlaneTaps"/> taps.
    /// </summary>
    public static Conv2dPlanePlan Tiles(Conv2dGeometry g, int height, int width)
    {
        if (g.KernelSize * g.KernelSize > Conv2dKernels.MaxPlaneTaps || !FitsGrid(g)) return Direct;
        int tw = Conv2dGeometry.CeilDiv(width, Conv2dGeometry.CeilDiv(width, GpuMaxTileWidth));
        int th = Math.Clamp(Conv2dKernels.MaxPlaneTile / tw, 1, height);
        th = Conv2dGeometry.CeilDiv(height, Conv2dGeometry.CeilDiv(height, th));
        while (th > 1 && Conv2dKernels.PlaneWindow(g, th, tw) > Conv2dKernels.MaxPlaneStage) th = (th + 1) / 2;
        while (tw > 1 && Conv2dKernels.PlaneWindow(g, th, tw) > Conv2dKernels.MaxPlaneStage) tw = (tw + 1) / 2;
        return Conv2dKernels.PlaneWindow(g, th, tw) <= Conv2dKernels.MaxPlaneStage ? new(th, tw, GpuThreads, 1) : Direct;
    }

    /// <summary>Throws when this plan cannot run the passes of <paramref name="g"/> on <paramref name="device"/>.</summary>
    /// <exception cref="ArgumentException">A tile or window too large, too many taps, threads or splits out of range, or a grid dimension beyond Cuda's.</exception>
    internal void Validate(Device device, Conv2dGeometry g)
    {
        if (!IsPlane) return;
        if (TileHeight < 1 || TileWidth < 1 || (long)TileHeight * TileWidth > Conv2dKernels.MaxPlaneTile)
            throw new ArgumentException($"Conv2d: plane tiles must be at least 1 × 1 and hold at most {Conv2dKernels.MaxPlaneTile} positions; got {TileHeight} × {TileWidth}.", "planePlan");
        if (g.KernelSize * g.KernelSize > Conv2dKernels.MaxPlaneTaps)
            throw new ArgumentException($"Conv2d: plane tiles take kernels of at most {Conv2dKernels.MaxPlaneTaps} taps; got {g.KernelSize} × {g.KernelSize}.", "planePlan");
        long window = Conv2dKernels.PlaneWindow(g, TileHeight, TileWidth);
        if (window > Conv2dKernels.MaxPlaneStage)
            throw new ArgumentException(
                $"Conv2d: a {TileHeight} × {TileWidth} plane tile reads a {window}-float window at K = {g.KernelSize}, stride {g.Stride}; at most {Conv2dKernels.MaxPlaneStage} fit.", "planePlan");
        int most = Math.Min(Conv2dKernels.MaxPlaneThreads, device.MaxThreadsPerGroup);
        if (Threads > most)
            throw new ArgumentException($"Conv2d: plane tiles take 1 to {most} threads a group on this device; got {Threads}.", "planePlan");
        if (Splits < 1 || (long)Splits * g.WeightLength > int.MaxValue)
            throw new ArgumentException($"Conv2d: plane-tile weight-gradient splits must be 1 to {int.MaxValue / Math.Max(1, g.WeightLength)} for a {g.WeightLength}-element weight; got {Splits}.", "planePlan");
        if (!FitsGrid(g))
            throw new ArgumentException(
                $"Conv2d: plane tiles put channels, samples and weight planes on grid dimensions of at most {MaxGridDimension}; got C_in = {g.InChannels}, C_out = {g.OutChannels}, B = {g.Batch}, {(long)g.OutChannels * g.InPerGroup} weight planes.", "planePlan");
    }

    /// <summary>Largest grid extent in y and z on Cuda.</summary>
    private const int MaxGridDimension = 65535;

    /// <summary>Whether the channels, the samples and the weight planes C_out · C_in/groups of <paramref name="g"/> each fit a grid dimension.</summary>
    private static bool FitsGrid(Conv2dGeometry g) =>
        Math.Max(Math.Max(g.InChannels, g.OutChannels), Math.Max(g.Batch, (long)g.OutChannels * g.InPerGroup)) <= MaxGridDimension;
}

public static partial class Ops
{
    /// <summary>
    /// 2-D convolution, NCHW: input <c>[B, C_in, H, W]</c>, weight <c>[C_out, C_in/groups, K, K]</c>, optional
    /// bias <c>[C_out]</c>; returns <c>[B, C_out, Ho, Wo]</c> with <c>Ho = (H + 2·padding − K)/stride + 1</c>
    /// (likewise Wo). Zero padding on every side; <paramref name="groups"/> splits the channels into groups
    /// (groups = C_in = C_out is a depthwise convolution). Gradients flow to input, weight and bias. The weight
    /// gradient runs as <paramref name="weightPlan"/> says (default: <see cref="Conv2dWeightPlan.For(Device, Conv2dGeometry)"/>);
    /// the forward and the input gradient as <paramref name="tilePlan"/> says (default: each pass's
    /// <see cref="Conv2dTilePlan.For(DeviceKind, int, int, int, int, bool)"/>, TF32 when <see cref="Device.Tf32"/> is on).
    /// A given <paramref name="planePlan"/> runs all three
    /// passes on plane tiles; without one, each pass takes its default <see cref="Conv2dPlanePlan"/> (plane tiles on Cuda where
    /// a group has few channels) unless a tile plan (forward, input gradient) or weight plan (weight gradient) was given.
    /// </summary>
    /// <exception cref="ArgumentException">A shape or value is invalid, or the plan cannot run; the message names it.</exception>
    public static Tensor Conv2d(this Tape tape, Tensor input, Tensor weight, Tensor? bias, int stride = 1, int padding = 0, int groups = 1,
        Conv2dWeightPlan? weightPlan = null, Conv2dTilePlan? tilePlan = null, Conv2dPlanePlan? planePlan = null)
    {
        Tensor[] operands = bias is null ? [input, weight] : [input, weight, bias];
        RequireSameDevice("Conv2d", tape, operands);
        var g = Conv2dGeometryOf(input, weight, bias, stride, padding, groups);
        var d = tape.Device;
        var plan = weightPlan ?? Conv2dWeightPlan.For(d, g);
        plan.Validate(g);
        plan.Tiles.Validate(d);
        var forwardTiles = tilePlan ?? ForwardTiles(d, g);
        var inputTiles = tilePlan ?? InputTiles(d, g);
        forwardTiles.Validate(d);
        inputTiles.Validate(d);
        var forwardPlanes = planePlan ?? (tilePlan is null ? ForwardPlanes(d, g) : Conv2dPlanePlan.Direct);
        var inputPlanes = planePlan ?? (tilePlan is null ? InputPlanes(d, g) : Conv2dPlanePlan.Direct);
        Conv2dPlanePlan WeightPlanesOf(Conv2dGeometry of) => planePlan ?? (weightPlan is null ? WeightPlanes(d, of) : Conv2dPlanePlan.Direct);
        var weightPlanes = WeightPlanesOf(g);
        forwardPlanes.Validate(d, g);
        inputPlanes.Validate(d, g);
        weightPlanes.Validate(d, g);
        var y = tape.NewTensor(g.Batch, g.OutChannels, g.OutHeight, g.OutWidth);
        int groupSize = tape.GradientGroupSize;
        if (forwardPlanes.IsPlane) Conv2dForwardPlanes(d, g, forwardPlanes, input.View, weight.View, bias?.View, y.View);
        else Conv2dForward(d, g, forwardTiles, input.View, weight.View, bias?.View, y.View);
        if (tape.NeedsGrad(operands))
            tape.Record("Conv2d", y, () =>
            {
                if (input.RequiresGrad)
                {
                    var dInput = input.GradForWrite(out int accumulate);
                    if (inputPlanes.IsPlane) Conv2dBackwardInputPlanes(d, g, inputPlanes, y.Grad.View, weight.View, dInput, accumulate);
                    else Conv2dBackwardInput(d, g, inputTiles, y.Grad.View, weight.View, dInput, accumulate);
                }
                bool dWeight = weight.RequiresGrad, dBias = bias is { RequiresGrad: true };
                if (!dWeight && !dBias) return;
                int inSample = g.InChannels * g.Height * g.Width, outSample = g.OutChannels * g.OutHeight * g.OutWidth;
                var dy = y.Grad.View;
                ArrayView<float>[] targets = dWeight && dBias ? [weight.Grad.View, bias!.Grad.View] : dWeight ? [weight.Grad.View] : [bias!.Grad.View];
                ParameterGradients(d, groupSize, g.Batch, targets, (first, count, into) =>
                {
                    // a group is the convolution of its samples alone: the plan that batch would get, unless one was forced
                    var sub = g.WithBatch(count);
                    var dySub = Samples(dy, outSample, first, count);
                    if (dWeight)
                    {
                        var xSub = Samples(input.View, inSample, first, count);
                        var planes = count == g.Batch ? weightPlanes : WeightPlanesOf(sub);
                        if (planes.IsPlane) Conv2dBackwardWeightPlanes(d, sub, planes, dySub, xSub, into[0]);
                        else Conv2dBackwardWeight(d, sub, count == g.Batch ? plan : weightPlan ?? Conv2dWeightPlan.For(d, sub), dySub, xSub, into[0]);
                    }
                    if (dBias) Conv2dBackwardBias(d, sub, dySub, into[^1]);
                });
            });
        return y;
    }

    /// <summary>Validates a convolution's operands on the host and returns its geometry.</summary>
    internal static Conv2dGeometry Conv2dGeometryOf(Tensor input, Tensor weight, Tensor? bias, int stride, int padding, int groups)
    {
        if (input.Rank != 4)
            throw new ArgumentException($"Conv2d: input must have rank 4 [B, C_in, H, W]; got {input.Describe()} (rank {input.Rank}).", nameof(input));
        if (stride < 1)
            throw new ArgumentException($"Conv2d: stride must be at least 1; got {stride}.", nameof(stride));
        if (padding < 0)
            throw new ArgumentException($"Conv2d: padding must be non-negative; got {padding}.", nameof(padding));
        if (groups < 1)
            throw new ArgumentException($"Conv2d: groups must be at least 1; got {groups}.", nameof(groups));
        int b = input.Dim(0), cin = input.Dim(1), h = input.Dim(2), w = input.Dim(3);
        if (weight.Rank != 4)
            throw new ArgumentException($"Conv2d: weight must have rank 4 [C_out, C_in/groups, K, K]; got {weight.Describe()} (rank {weight.Rank}).", nameof(weight));
        int cout = weight.Dim(0), k = weight.Dim(2);
        if (cin % groups != 0)
            throw new ArgumentException($"Conv2d: input channels C_in = {cin} are not divisible by groups = {groups}.", nameof(groups));
        if (cout % groups != 0)
            throw new ArgumentException($"Conv2d: output channels C_out = {cout} (weight dim 0) are not divisible by groups = {groups}.", nameof(groups));
        if (weight.Dim(3) != k)
            throw new ArgumentException($"Conv2d: the kernel must be square; weight {weight.Describe()} has K_h = {k}, K_w = {weight.Dim(3)}.", nameof(weight));
        if (weight.Dim(1) != cin / groups)
            throw new ArgumentException(
                $"Conv2d: weight shape: expected {Tensor.Format([cout, cin / groups, k, k])} (C_in/groups = {cin}/{groups} = {cin / groups}), got {weight.ShapeString}.", nameof(weight));
        if (k > h + 2 * padding || k > w + 2 * padding)
            throw new ArgumentException(
                $"Conv2d: kernel size {k} is larger than the padded input {h + 2 * padding} × {w + 2 * padding} (H = {h}, W = {w}, padding = {padding}).", nameof(weight));
        if (bias is not null && (bias.Rank != 1 || bias.Length != cout))
            throw new ArgumentException($"Conv2d: bias must have shape [C_out] = [{cout}]; got {bias.Describe()}.", nameof(bias));
        return new Conv2dGeometry(b, cin, h, w, cout, k, stride, padding, groups);
    }

    /// <summary>The device's default plan for the forward of <paramref name="g"/> (rows: output channels per group; TF32 as <see cref="Device.Tf32"/>).</summary>
    internal static Conv2dTilePlan ForwardTiles(Device d, Conv2dGeometry g) =>
        Conv2dTilePlan.For(d.Kind, d.MaxThreads, g.Groups, g.OutPerGroup, g.Batch * g.OutHeight * g.OutWidth, d.Tf32);

    /// <summary>The device's default plan for the input gradient of <paramref name="g"/> (rows: input channels per group; TF32 as <see cref="Device.Tf32"/>).</summary>
    internal static Conv2dTilePlan InputTiles(Device d, Conv2dGeometry g) =>
        Conv2dTilePlan.For(d.Kind, d.MaxThreads, g.Groups, g.InPerGroup, g.Batch * g.Height * g.Width, d.Tf32);

    /// <summary>The device's default plane plan for the forward of <paramref name="g"/>.</summary>
    internal static Conv2dPlanePlan ForwardPlanes(Device d, Conv2dGeometry g) => Conv2dPlanePlan.ForForward(d.Kind, g);

    /// <summary>The device's default plane plan for the input gradient of <paramref name="g"/>.</summary>
    internal static Conv2dPlanePlan InputPlanes(Device d, Conv2dGeometry g) => Conv2dPlanePlan.ForInput(d.Kind, g);

    /// <summary>The device's default plane plan for the weight gradient of <paramref name="g"/>.</summary>
    internal static Conv2dPlanePlan WeightPlanes(Device d, Conv2dGeometry g) => Conv2dPlanePlan.ForWeight(d.Kind, d.MaxThreads, g);

    /// <summary>
    /// Launches the forward (overwrites <paramref name="output"/>): tiled as <paramref name="tiles"/> says, else with
    /// the geometry's channel block (4 output channels per work item, 1 for depthwise).
    /// </summary>
    internal static void Conv2dForward(Device d, Conv2dGeometry g, Conv2dTilePlan tiles, ArrayView<float> input, ArrayView<float> weight,
        ArrayView<float>? bias, ArrayView<float> output)
    {
        // without a bias the kernels read no bias element: any view will do
        var b = bias ?? weight;
        int hasBias = bias is null ? 0 : 1;
        if (tiles.IsTiled)
        {
            var config = new KernelConfig((int)tiles.Blocks(g.Groups, g.OutPerGroup, g.Batch * g.OutHeight * g.OutWidth), tiles.LaunchThreads(d));
            var tiled = tiles.Tf32 ? d.Kernels.Conv2dForwardTiledTf32 : d.Kernels.Conv2dForwardTiled;
            tiled(d.Stream, config, g, tiles.TileM, tiles.TileN, tiles.TileK, input, weight, b, hasBias, output);
            return;
        }
        int block = g.OutChannelBlock, n = g.ForwardItems(block), ext = d.Extent(n);
        d.Kernels.Conv2dForward(d.Stream, ext, n, ext, g, block, input, weight, b, hasBias, output);
    }

    /// <summary>
    /// Accumulates the input gradient (<paramref name="accumulate"/> ≠ 0) or overwrites it (0: every element is
    /// written), tiled as <paramref name="tiles"/> says.
    /// </summary>
    internal static void Conv2dBackwardInput(Device d, Conv2dGeometry g, Conv2dTilePlan tiles, ArrayView<float> dOutput, ArrayView<float> weight,
        ArrayView<float> dInput, int accumulate)
    {
        if (tiles.IsTiled)
        {
            var config = new KernelConfig((int)tiles.Blocks(g.Groups, g.InPerGroup, g.Batch * g.Height * g.Width), tiles.LaunchThreads(d));
            var tiled = tiles.Tf32 ? d.Kernels.Conv2dBackwardInputTiledTf32 : d.Kernels.Conv2dBackwardInputTiled;
            tiled(d.Stream, config, g, tiles.TileM, tiles.TileN, tiles.TileK, accumulate, dOutput, weight, dInput);
            return;
        }
        int block = g.InChannelBlock, n = g.BackwardInputItems(block), ext = d.Extent(n);
        d.Kernels.Conv2dBackwardInput(d.Stream, ext, n, ext, g, block, accumulate, dOutput, weight, dInput);
    }

    /// <summary>Accumulates the weight gradient as <paramref name="plan"/> says (split-K partials come from the device pool).</summary>
    internal static void Conv2dBackwardWeight(Device d, Conv2dGeometry g, Conv2dWeightPlan plan, ArrayView<float> dOutput, ArrayView<float> input,
        ArrayView<float> dWeight)
    {
        int outBlock = g.OutChannelBlock, inBlock = g.InChannelBlock;
        int n = g.BackwardWeightItems(outBlock, inBlock);
        if (!plan.SplitK)
        {
            int ext = d.Extent(n);
            d.Kernels.Conv2dBackwardWeight(d.Stream, ext, n, ext, g, outBlock, inBlock, dOutput, input, dWeight);
            return;
        }
        int splits = plan.Splits, items = splits * n, weights = g.WeightLength;
        if (plan.Tiles.IsTiled)
        {
            // one slice adds straight into dWeight; more go through the partials and the finalize
            var t = plan.Tiles;
            var config = new KernelConfig(new Index3D((int)t.Blocks(g.Groups, g.OutPerGroup, g.InPerGroup * g.KernelSize * g.KernelSize), splits, 1),
                new Index3D(t.LaunchThreads(d), 1, 1));
            using var slices = splits > 1 ? Tensor.Empty(d, splits * weights) : null;
            var target = slices?.View ?? dWeight;
            int accumulate = splits > 1 ? 0 : 1;
            if (t.Tf32) d.Kernels.Conv2dBackwardWeightTiledTf32(d.Stream, config, g, t.TileM, t.TileN, t.TileK, splits, accumulate, dOutput, input, target);
            else d.Kernels.Conv2dBackwardWeightTiled(d.Stream, config, g, t.TileM, t.TileN, t.TileK, splits, accumulate, dOutput, input, target);
            if (slices is null) return;
            int ext = d.Extent(weights);
            d.Kernels.Conv2dBackwardWeightFinalize(d.Stream, ext, weights, ext, splits, slices.View, dWeight);
            return;
        }
        using var partials = Tensor.Empty(d, splits * weights);
        int splitExt = d.Extent(items), finalExt = d.Extent(weights);
        d.Kernels.Conv2dBackwardWeightSplit(d.Stream, splitExt, items, splitExt, g, outBlock, inBlock, splits, dOutput, input, partials.View);
        d.Kernels.Conv2dBackwardWeightFinalize(d.Stream, finalExt, weights, finalExt, splits, partials.View, dWeight);
    }

    /// <summary>Launches the forward on plane tiles (overwrites <paramref name="output"/>): grid (tiles of the output plane, C_out, B).</summary>
    internal static void Conv2dForwardPlanes(Device d, Conv2dGeometry g, Conv2dPlanePlan planes, ArrayView<float> input, ArrayView<float> weight,
        ArrayView<float>? bias, ArrayView<float> output)
    {
        int tiles = Conv2dKernels.PlaneTiles(g.OutHeight, g.OutWidth, planes.TileHeight, planes.TileWidth);
        var config = new KernelConfig(new Index3D(tiles, g.OutChannels, g.Batch), new Index3D(planes.Threads, 1, 1));
        d.Kernels.Conv2dForwardPlanes(d.Stream, config, g, planes.TileHeight, planes.TileWidth, input, weight, bias ?? weight, bias is null ? 0 : 1, output);
    }

    /// <summary>
    /// Accumulates the input gradient on plane tiles (<paramref name="accumulate"/> ≠ 0) or overwrites it (0): grid (tiles of
    /// the input plane, C_in, B).
    /// </summary>
    internal static void Conv2dBackwardInputPlanes(Device d, Conv2dGeometry g, Conv2dPlanePlan planes, ArrayView<float> dOutput,
        ArrayView<float> weight, ArrayView<float> dInput, int accumulate)
    {
        int tiles = Conv2dKernels.PlaneTiles(g.Height, g.Width, planes.TileHeight, planes.TileWidth);
        var config = new KernelConfig(new Index3D(tiles, g.InChannels, g.Batch), new Index3D(planes.Threads, 1, 1));
        d.Kernels.Conv2dBackwardInputPlanes(d.Stream, config, g, planes.TileHeight, planes.TileWidth, accumulate, dOutput, weight, dInput);
    }

    /// <summary>
    /// Accumulates the weight gradient on plane tiles: grid (splits, C_out · C_in/groups weight planes) into pooled partials,
    /// then <see cref="Conv2dKernels.BackwardWeightFinalize"/> adds them in split order.
    /// </summary>
    internal static void Conv2dBackwardWeightPlanes(Device d, Conv2dGeometry g, Conv2dPlanePlan planes, ArrayView<float> dOutput,
        ArrayView<float> input, ArrayView<float> dWeight)
    {
        int weights = g.WeightLength, ext = d.Extent(weights);
        using var partials = Tensor.Empty(d, planes.Splits * weights);
        var config = new KernelConfig(new Index3D(planes.Splits, g.OutChannels * g.InPerGroup, 1), new Index3D(planes.Threads, 1, 1));
        d.Kernels.Conv2dBackwardWeightPlanes(d.Stream, config, g, planes.TileHeight, planes.TileWidth, planes.Splits, dOutput, input, partials.View);
        d.Kernels.Conv2dBackwardWeightFinalize(d.Stream, ext, weights, ext, planes.Splits, partials.View, dWeight);
    }

    /// <summary>Accumulates the bias gradient (one work item per output channel).</summary>
    internal static void Conv2dBackwardBias(Device d, Conv2dGeometry g, ArrayView<float> dOutput, ArrayView<float> dBias)
    {
        int ext = d.Extent(g.OutChannels);
        d.Kernels.Conv2dBackwardBias(d.Stream, ext, g.OutChannels, ext, g, dOutput, dBias);
    }
}
