using R = IlgpuDdw.Kernels.Reference.Conv2dReference;

namespace IlgpuDdw.Verification;

/// <summary>
/// Conv2d (forward, input, weight and bias gradients) at odd, non-square shapes: batch 1 to 3, C_in ≠ C_out,
/// kernels 1/3/5/7, strides 1 to 3, padding 0 to 3 (wider than the kernel too), dense, grouped (1, 2 and 4
/// channels per group) and depthwise, with and without bias. Each geometry runs twice: through the tape (the
/// channel block the op picks), and with the kernels launched directly at every channel block (1, 3: a partial
/// block, 4: repeated slots at depthwise shapes) and several (output, input) weight-gradient blocks, each
/// backward accumulating onto a non-zero gradient. The weight gradient's split-K rung runs at every geometry
/// through the tape and directly at 1 split, 2, 7, a count that does not divide K = B·Ho·Wo and more splits than K.
/// The tiled forward and input gradient run at every geometry with every tile plan of <see cref="TilePlans"/> the
/// device's groups can hold (blocks larger than the GEMM, partial blocks, tileK 1 to 16) and through the tape, and
/// (the TF32 cases, <see cref="VerifyCase.Tf32"/>) on TF32 tensor cores with every plan of <see cref="Tf32Plans"/>:
/// against the FP32 reference at <see cref="Tolerance.Tf32"/>, and on the CPU accelerator (the exact emulation) against a
/// double reference on the same TF32-rounded operands at <see cref="Tolerance.Forward"/>. The
/// plane-tile kernels (forward, input and weight gradients) run at every geometry with every plan of <see cref="PlanePlans"/>
/// the device's groups can hold (tiles that do not divide the plane, a tile larger than it, 1 split to more splits than
/// units) and through the tape with all four passes.
/// </summary>
internal static class Conv2dCases
{
    private const string Family = "Conv2d";

    internal static readonly (Conv2dGeometry Geometry, bool Bias)[] Geometries =
    [
        (new(2, 3, 7, 5, 4, 3, 1, 1, 1), true),
        (new(1, 4, 9, 6, 6, 5, 2, 2, 2), true),
        (new(3, 6, 8, 7, 6, 3, 2, 1, 6), false),
        (new(2, 8, 6, 5, 4, 1, 1, 0, 1), true),
        (new(1, 2, 4, 5, 3, 7, 1, 3, 1), true),   // 7×7, padding 3
        (new(2, 16, 7, 9, 16, 3, 1, 1, 8), true),
        (new(1, 3, 7, 5, 4, 3, 1, 1, 1), true),
        (new(3, 2, 7, 5, 5, 3, 2, 0, 1), true),
        (new(2, 4, 6, 9, 6, 1, 1, 0, 2), true),
        (new(1, 6, 9, 7, 6, 3, 2, 1, 6), true),   // depthwise, stride 2
        (new(2, 3, 5, 6, 3, 5, 1, 2, 3), false),  // depthwise 5×5
        (new(2, 5, 7, 9, 5, 3, 1, 1, 5), false),  // depthwise 3×3, stride 1 (an inverted residual's)
        (new(3, 8, 7, 5, 8, 3, 1, 1, 2), false),  // 4 channels per group
        (new(1, 5, 8, 11, 7, 5, 2, 2, 1), true),
        (new(2, 4, 7, 7, 8, 3, 3, 2, 4), true),   // stride 3, 1 → 2 channels per group
        (new(1, 1, 9, 6, 16, 3, 1, 1, 1), true),  // a first layer: one input channel
        (new(2, 6, 5, 7, 4, 1, 2, 0, 2), true),   // 1×1, stride 2
        (new(1, 16, 6, 5, 16, 3, 1, 0, 8), true), // 2 channels per group
        (new(3, 5, 1, 1, 6, 3, 1, 1, 1), true),   // 1×1 input, padded
        (new(1, 3, 3, 4, 2, 1, 2, 2, 1), true),   // padding wider than the kernel: border outputs are the bias
    ];

    private static readonly string[] Passes = ["Conv2d.Forward", "Conv2d.BackwardInput", "Conv2d.BackwardWeight", "Conv2d.BackwardBias"];

    public static IEnumerable<VerifyCase> All()
    {
        foreach (var (g, bias) in Geometries)
        {
            string shape = Describe(g, bias);
            yield return new(Family, shape, Passes, d => ThroughTape(d, g, bias, shape));
        }
        foreach (var (g, bias) in Geometries)
        {
            string shape = Describe(g, bias);
            yield return new(Family, $"every block, {shape}", Passes, d => EveryBlock(d, g, bias, shape));
        }
        foreach (var (g, bias) in Geometries.Where(x => x.Geometry.Batch > 1))
            foreach (int groupSize in new[] { 1, 2 })
            {
                string shape = $"gradient groups of {groupSize}, {Describe(g, bias)}";
                yield return new(Family, shape, bias ? ["Conv2d.BackwardWeight", "Conv2d.BackwardBias"] : ["Conv2d.BackwardWeight"],
                    d => GradientGroups(d, g, bias, groupSize, shape));
            }
        foreach (var (g, bias) in Geometries)
        {
            string shape = Describe(g, bias);
            yield return new(Family, $"split-K, {shape}", ["Conv2d.BackwardWeight"], d => SplitK(d, g, bias, shape));
        }
        foreach (var (g, bias) in Geometries)
        {
            string shape = Describe(g, bias);
            yield return new(Family, $"tiled, {shape}", ["Conv2d.Forward", "Conv2d.BackwardInput", "Conv2d.BackwardWeight"], d => Tiled(d, g, bias, shape, tf32: false));
        }
        foreach (var (g, bias) in Geometries)
        {
            string shape = Describe(g, bias);
            yield return new(Family, $"TF32 tiled, {shape}", ["Conv2d.Forward", "Conv2d.BackwardInput", "Conv2d.BackwardWeight"], d => Tiled(d, g, bias, shape, tf32: true), Tf32: true);
        }
        foreach (var (g, bias) in Geometries)
        {
            string shape = Describe(g, bias);
            yield return new(Family, $"plane tiles, {shape}", Passes, d => Planes(d, g, bias, shape));
        }
    }

    /// <summary>
    /// Plane plans that fit <paramref name="device"/>'s groups, as <see cref="TilePlans"/>: 1 and 2 threads where groups hold at
    /// most 2 (the default CPU accelerator), otherwise those of 4 threads and more that fit (4 to 16 on warps of 4, and the
    /// GPU's 128). Tiles of 1 × 1 to 4 × 4 and 8 × 16; weight-gradient splits 1 to 1000 (more than the units).
    /// </summary>
    internal static Conv2dPlanePlan[] PlanePlans(Device device)
    {
        int max = device.MaxThreadsPerGroup;
        return
        [
            .. new Conv2dPlanePlan[] { new(1, 1, 1, 1), new(2, 3, 2, 3), new(3, 2, 4, 2), new(2, 4, 8, 1000), new(4, 4, 16, 7), new(8, 16, 128, 5) }
                .Where(p => p.Threads <= max && (max <= 2 || p.Threads > 2))
        ];
    }

    /// <summary>
    /// The plane-tile kernels launched directly with every plan of <see cref="PlanePlans"/> (each backward accumulating onto a
    /// non-zero gradient, the input gradient's overwrite over garbage too), then the tape with the last plan forced.
    /// </summary>
    private static IEnumerable<VerifyResult> Planes(Device d, Conv2dGeometry g, bool hasBias, string shape)
    {
        var e = Reference(g, hasBias);
        var dx0 = Seeded.Uniform<float>(g.InputLength, 5);
        var dw0 = Seeded.Uniform<float>(g.WeightLength, 6);
        var written = Overwrite.Reference(g.InputLength, buffer => R.BackwardInput<float>(g, e.DY, e.W, buffer, accumulate: false));
        var plans = PlanePlans(d);
        using (var t = new OnDevice(d, e, g))
            foreach (var plan in plans)
            {
                plan.Validate(d, g);
                string tiles = $"plane tiles {plan.TileHeight}×{plan.TileWidth}, {plan.Threads} threads";
                Ops.Conv2dForwardPlanes(d, g, plan, t.X.View, t.W.View, hasBias ? t.B.View : null, t.Y.View);
                yield return VerifyResult.Compare($"Conv2d.Forward {tiles}", shape, e.Y, t.Y.ToArray(), Tolerance.Forward);
                void Input(int accumulate) => Ops.Conv2dBackwardInputPlanes(d, g, plan, t.DY.View, t.W.View, t.DX.View, accumulate);
                t.DX.CopyFrom(dx0);
                Input(1);
                yield return VerifyResult.Compare($"Conv2d.BackwardInput {tiles}", shape, Plus(e.DX, dx0), t.DX.ToArray(), Tolerance.Backward);
                foreach (var row in Overwrite.Rows($"Conv2d.BackwardInput {tiles}", shape, written, t.DX, Input, Tolerance.Backward))
                    yield return row;
                t.DW.CopyFrom(dw0);
                Ops.Conv2dBackwardWeightPlanes(d, g, plan, t.DY.View, t.X.View, t.DW.View);
                yield return VerifyResult.Compare($"Conv2d.BackwardWeight {tiles} ×{plan.Splits}", shape, Plus(e.DW, dw0), t.DW.ToArray(), Tolerance.Backward);
            }
        foreach (var row in ThroughTape(d, g, hasBias, shape, plans[^1]))
            yield return row;
    }

    /// <summary>Element-wise sum of two arrays of one length.</summary>
    private static float[] Plus(float[] a, float[] b) => a.Zip(b, (u, v) => u + v).ToArray();

    /// <summary>The reference's inputs and upstream gradient on a device (flat), with output and gradient buffers; disposed together.</summary>
    private sealed class OnDevice(Device d, Data e, Conv2dGeometry g) : IDisposable
    {
        public Tensor X { get; } = Tensor.FromArray(d, e.X, g.InputLength);

        public Tensor W { get; } = Tensor.FromArray(d, e.W, g.WeightLength);

        public Tensor B { get; } = Tensor.FromArray(d, e.B, g.OutChannels);

        public Tensor DY { get; } = Tensor.FromArray(d, e.DY, g.OutputLength);

        public Tensor Y { get; } = Tensor.Empty(d, g.OutputLength);

        public Tensor DX { get; } = Tensor.Empty(d, g.InputLength);

        public Tensor DW { get; } = Tensor.Empty(d, g.WeightLength);

        public void Dispose()
        {
            foreach (var t in new[] { X, W, B, DY, Y, DX, DW })
                t.Dispose();
        }
    }

    /// <summary>
    /// TF32 plans: on the CPU accelerator (the emulation, any group size) one warp tile, two warps across and two down
    /// at both tileK; on a GPU also the default plans' blocks (128 and 256 threads).
    /// </summary>
    internal static Conv2dTilePlan[] Tf32Plans(Device device) =>
    [
        new(16, 32, 8, true), new(32, 32, 16, true), new(16, 64, 8, true),
        .. device.Kind == DeviceKind.Cpu ? [] : new Conv2dTilePlan[] { new(16, 128, 16, true), new(64, 64, 16, true), new(64, 32, 8, true) },
    ];

    /// <summary>
    /// Tile plans for the tiled kernels that fit <paramref name="device"/>'s groups: 1 and 2 threads where groups hold
    /// at most 2 (the default CPU accelerator), otherwise the plans of 4 threads and more that fit (16 on warps of 4,
    /// up to the GPU's 128 and 256).
    /// </summary>
    internal static Conv2dTilePlan[] TilePlans(Device device)
    {
        int max = device.MaxThreadsPerGroup;
        return
        [
            .. new Conv2dTilePlan[] { new(4, 4, 1), new(8, 4, 3), new(4, 8, 16), new(8, 8, 5), new(16, 16, 8), new(64, 16, 4), new(16, 128, 8), new(64, 64, 8) }
                .Where(p => p.Threads <= max && (max <= 2 || p.Threads > 2))
        ];
    }

    /// <summary>
    /// The tiled kernels at every plan of <see cref="TilePlans"/>, or with <paramref name="tf32"/> the TF32 kernels at every
    /// plan of <see cref="Tf32Plans"/>: forward; input gradient accumulating, and overwriting over garbage; then through the
    /// tape (the last FP32 plan, or <see cref="Device.Tf32"/> on: the device's default TF32 plans).
    /// </summary>
    private static IEnumerable<VerifyResult> Tiled(Device d, Conv2dGeometry g, bool hasBias, string shape, bool tf32)
    {
        var e = Reference(g, hasBias);
        var x0 = Seeded.Uniform<float>(g.InputLength, 5);
        var edx = e.DX.Zip(x0, (a, z) => a + z).ToArray();
        var written = Overwrite.Reference(g.InputLength, buffer => R.BackwardInput<float>(g, e.DY, e.W, buffer, accumulate: false));
        var plans = tf32 ? Tf32Plans(d) : TilePlans(d);
        var forward = tf32 ? Tolerance.Tf32(g.InPerGroup * g.KernelSize * g.KernelSize) : Tolerance.Forward;
        var backward = tf32 ? Tolerance.Tf32(g.OutPerGroup * g.KernelSize * g.KernelSize) : Tolerance.Backward;
        // what the TF32 emulation computes up to FP32 summation order: the convolution in double on TF32-rounded operands
        bool emulated = tf32 && d.Kind == DeviceKind.Cpu;
        double[] Rounded(float[] v) => Array.ConvertAll(v, z => (double)Conv2dKernels.Tf32.Round(z));
        var y64 = new double[g.OutputLength];
        var dx64 = Array.ConvertAll(x0, z => (double)z);
        var w0 = Seeded.Uniform<float>(g.WeightLength, 6);
        var edw = Plus(e.DW, w0);
        var dw64 = Array.ConvertAll(w0, z => (double)z);
        int positions = g.Batch * g.OutHeight * g.OutWidth;
        var weightTolerance = tf32 ? Tolerance.Tf32(positions) : Tolerance.Backward;
        if (emulated)
        {
            R.Forward<double>(g, Rounded(e.X), Rounded(e.W), hasBias ? Array.ConvertAll(e.B, z => (double)z) : [], y64);
            R.BackwardInput<double>(g, Rounded(e.DY), Rounded(e.W), dx64);
            R.BackwardWeight<double>(g, Rounded(e.DY), Rounded(e.X), dw64);
        }
        using (var tx = Tensor.FromArray(d, e.X, g.InputLength))
        using (var tw = Tensor.FromArray(d, e.W, g.WeightLength))
        using (var tb = Tensor.FromArray(d, e.B, g.OutChannels))
        using (var tdy = Tensor.FromArray(d, e.DY, g.OutputLength))
        using (var ty = Tensor.Empty(d, g.OutputLength))
        using (var tdx = Tensor.Empty(d, g.InputLength))
        using (var tdw = Tensor.Empty(d, g.WeightLength))
            foreach (var plan in plans)
            {
                plan.Validate(d);
                string tiles = $"{(tf32 ? "TF32 " : "")}tiles {plan.TileM}×{plan.TileN}×{plan.TileK}";
                Ops.Conv2dForward(d, g, plan, tx.View, tw.View, hasBias ? tb.View : null, ty.View);
                var y = ty.ToArray();
                yield return VerifyResult.Compare($"Conv2d.Forward {tiles}", shape, e.Y, y, forward);
                if (emulated)
                    yield return VerifyResult.Compare($"Conv2d.Forward {tiles} emulation", shape, y64, Array.ConvertAll(y, z => (double)z), Tolerance.Forward);
                tdx.CopyFrom(x0);
                Ops.Conv2dBackwardInput(d, g, plan, tdy.View, tw.View, tdx.View, 1);
                var dx = tdx.ToArray();
                yield return VerifyResult.Compare($"Conv2d.BackwardInput {tiles}", shape, edx, dx, backward);
                if (emulated)
                    yield return VerifyResult.Compare($"Conv2d.BackwardInput {tiles} emulation", shape, dx64, Array.ConvertAll(dx, z => (double)z), Tolerance.Forward);
                foreach (var row in Overwrite.Rows($"Conv2d.BackwardInput {tiles}", shape, written, tdx,
                             accumulate => Ops.Conv2dBackwardInput(d, g, plan, tdy.View, tw.View, tdx.View, accumulate), backward))
                    yield return row;
                // the weight gradient's GEMM on the same tiles: one slice straight into dWeight, 3, and (last plan) more than K = B·Ho·Wo
                foreach (int splits in plan == plans[^1] ? new[] { 1, 3, positions + 2 } : [1, 3])
                {
                    tdw.CopyFrom(w0);
                    Ops.Conv2dBackwardWeight(d, g, Conv2dWeightPlan.Tiled(splits, plan), tdy.View, tx.View, tdw.View);
                    var dw = tdw.ToArray();
                    yield return VerifyResult.Compare($"Conv2d.BackwardWeight {tiles} ×{splits}", shape, edw, dw, weightTolerance);
                    if (emulated)
                        yield return VerifyResult.Compare($"Conv2d.BackwardWeight {tiles} ×{splits} emulation", shape, dw64, Array.ConvertAll(dw, z => (double)z), Tolerance.Backward);
                }
            }
        using var x = Tensor.FromArray(d, e.X, g.Batch, g.InChannels, g.Height, g.Width); x.RequiresGrad = true;
        using var w = Tensor.FromArray(d, e.W, g.OutChannels, g.InPerGroup, g.KernelSize, g.KernelSize);
        using var b = Tensor.FromArray(d, e.B, g.OutChannels);
        using var tape = new Tape(d);
        bool was = d.Tf32;
        Tensor yt;
        d.Tf32 = tf32;
        try
        {
            yt = tape.Conv2d(x, w, hasBias ? b : null, g.Stride, g.Padding, g.Groups, tilePlan: tf32 ? null : plans[^1]);
        }
        finally
        {
            d.Tf32 = was;
        }
        Overwrite.Poisoned(() => tape.Backward(yt, e.DY));
        string mode = tf32 ? "TF32" : "tiled";
        yield return VerifyResult.Compare($"Conv2d.Forward {mode} (tape)", shape, e.Y, yt.ToArray(), forward);
        yield return VerifyResult.Compare($"Conv2d.BackwardInput {mode} (tape)", shape, e.DX, x.GradToArray(), backward);
    }

    /// <summary>Weight and bias gradients through the tape in gradient groups of <paramref name="groupSize"/> samples (the last may be short).</summary>
    private static IEnumerable<VerifyResult> GradientGroups(Device d, Conv2dGeometry g, bool hasBias, int groupSize, string shape)
    {
        var e = Reference(g, hasBias);
        using var x = Tensor.FromArray(d, e.X, g.Batch, g.InChannels, g.Height, g.Width);
        using var w = Tensor.FromArray(d, e.W, g.OutChannels, g.InPerGroup, g.KernelSize, g.KernelSize); w.RequiresGrad = true;
        using var b = Tensor.FromArray(d, e.B, g.OutChannels); b.RequiresGrad = true;
        using var tape = new Tape(d) { GradientGroupSize = groupSize };
        var y = tape.Conv2d(x, w, hasBias ? b : null, g.Stride, g.Padding, g.Groups);
        tape.Backward(y, e.DY);
        yield return VerifyResult.Compare("Conv2d.BackwardWeight", shape, e.DW, w.GradToArray(), Tolerance.Backward);
        if (hasBias) yield return VerifyResult.Compare("Conv2d.BackwardBias", shape, e.DB, b.GradToArray(), Tolerance.Backward);
    }

    private static string Describe(Conv2dGeometry g, bool bias) =>
        $"x [{g.Batch}, {g.InChannels}, {g.Height}, {g.Width}] w [{g.OutChannels}, {g.InPerGroup}, {g.KernelSize}, {g.KernelSize}] " +
        $"s={g.Stride} p={g.Padding} groups={g.Groups}{(bias ? " +bias" : "")}";

    private sealed record Data(float[] X, float[] W, float[] B, float[] DY, float[] Y, float[] DX, float[] DW, float[] DB);

    /// <summary>Seeded inputs and the float reference's output and gradients (from zero gradients).</summary>
    private static Data Reference(Conv2dGeometry g, bool bias)
    {
        var x = Seeded.Uniform<float>(g.InputLength, 1);
        var w = Seeded.Uniform<float>(g.WeightLength, 2);
        var b = Seeded.Uniform<float>(g.OutChannels, 3);
        var dy = Seeded.Uniform<float>(g.OutputLength, 4);
        var y = new float[g.OutputLength];
        R.Forward<float>(g, x, w, bias ? b : [], y);
        var dx = new float[x.Length]; var dw = new float[w.Length]; var db = new float[b.Length];
        R.BackwardInput<float>(g, dy, w, dx);
        R.BackwardWeight<float>(g, dy, x, dw);
        R.BackwardBias<float>(g, dy, db);
        return new Data(x, w, b, dy, y, dx, dw, db);
    }

    /// <summary>Split counts for <paramref name="g"/>: 1, 2, 7, one that does not divide K = B·Ho·Wo, and K + 3.</summary>
    internal static int[] SplitCounts(Conv2dGeometry g)
    {
        int k = g.Batch * g.OutHeight * g.OutWidth;
        int odd = Enumerable.Range(2, Math.Max(1, k)).First(s => k % s != 0);
        return [.. new[] { 1, 2, 7, odd, k + 3 }.Distinct()];
    }

    private static IEnumerable<VerifyResult> SplitK(Device d, Conv2dGeometry g, bool hasBias, string shape)
    {
        var e = Reference(g, hasBias);
        using (var tx = Tensor.FromArray(d, e.X, g.Batch, g.InChannels, g.Height, g.Width))
        using (var tw = Tensor.FromArray(d, e.W, g.OutChannels, g.InPerGroup, g.KernelSize, g.KernelSize))
        using (var tb = Tensor.FromArray(d, e.B, g.OutChannels))
        using (var tape = new Tape(d))
        {
            tw.RequiresGrad = true;
            var y = tape.Conv2d(tx, tw, hasBias ? tb : null, g.Stride, g.Padding, g.Groups, Conv2dWeightPlan.Split(5));
            tape.Backward(y, e.DY);
            yield return VerifyResult.Compare("Conv2d.BackwardWeight split-K ×5 (tape)", shape, e.DW, tw.GradToArray(), Tolerance.Backward);
        }
        var w0 = Seeded.Uniform<float>(g.WeightLength, 6);
        var edw = Plus(e.DW, w0);
        using var x = Tensor.FromArray(d, e.X, g.InputLength);
        using var dy = Tensor.FromArray(d, e.DY, g.OutputLength);
        using var dw = Tensor.Empty(d, g.WeightLength);
        foreach (int splits in SplitCounts(g))
        {
            dw.CopyFrom(w0);
            Ops.Conv2dBackwardWeight(d, g, Conv2dWeightPlan.Split(splits), dy.View, x.View, dw.View);
            yield return VerifyResult.Compare($"Conv2d.BackwardWeight split-K ×{splits}", shape, edw, dw.ToArray(), Tolerance.Backward);
        }
    }

    /// <summary>Every pass through the tape, with the default plans or the plane plan <paramref name="planes"/> forced.</summary>
    private static IEnumerable<VerifyResult> ThroughTape(Device device, Conv2dGeometry g, bool hasBias, string shape, Conv2dPlanePlan? planes = null)
    {
        var e = Reference(g, hasBias);
        using var tx = Tensor.FromArray(device, e.X, g.Batch, g.InChannels, g.Height, g.Width); tx.RequiresGrad = true;
        using var tw = Tensor.FromArray(device, e.W, g.OutChannels, g.InPerGroup, g.KernelSize, g.KernelSize); tw.RequiresGrad = true;
        using var tb = Tensor.FromArray(device, e.B, g.OutChannels); tb.RequiresGrad = true;
        using var tape = new Tape(device);
        var y = tape.Conv2d(tx, tw, hasBias ? tb : null, g.Stride, g.Padding, g.Groups, planePlan: planes);
        Overwrite.Poisoned(() => tape.Backward(y, e.DY));
        yield return VerifyResult.Compare("Conv2d.Forward", shape, e.Y, y.ToArray(), Tolerance.Forward)
            .RequireShape(y.Shape, [g.Batch, g.OutChannels, g.OutHeight, g.OutWidth]);
        var dx = tx.GradToArray();
        yield return VerifyResult.Compare("Conv2d.BackwardInput", shape, e.DX, dx, Tolerance.Backward);
        yield return VerifyResult.Compare("Conv2d.BackwardWeight", shape, e.DW, tw.GradToArray(), Tolerance.Backward);
        yield return hasBias
            ? VerifyResult.Compare("Conv2d.BackwardBias", shape, e.DB, tb.GradToArray(), Tolerance.Backward)
            : VerifyResult.Condition("Conv2d.BackwardBias none", shape, tb.GradOrNull is null, ": a bias left out of the op got a gradient");
        foreach (var row in Overwrite.SecondPass(shape, () => tape.Backward(y, e.DY), ("Conv2d.BackwardInput", tx, dx)))
            yield return row;
    }

    private static IEnumerable<VerifyResult> EveryBlock(Device d, Conv2dGeometry g, bool hasBias, string shape)
    {
        var ks = d.Kernels;
        var e = Reference(g, hasBias);
        var x0 = Seeded.Uniform<float>(g.InputLength, 5);
        var w0 = Seeded.Uniform<float>(g.WeightLength, 6);
        var b0 = Seeded.Uniform<float>(g.OutChannels, 7);
        var edx = e.DX.Zip(x0, (a, z) => a + z).ToArray();
        var edw = Plus(e.DW, w0);
        var written = Overwrite.Reference(g.InputLength, buffer => R.BackwardInput<float>(g, e.DY, e.W, buffer, accumulate: false));
        using var tx = Tensor.FromArray(d, e.X, g.InputLength);
        using var tw = Tensor.FromArray(d, e.W, g.WeightLength);
        using var tb = Tensor.FromArray(d, e.B, g.OutChannels);
        using var tdy = Tensor.FromArray(d, e.DY, g.OutputLength);
        using var ty = Tensor.Empty(d, g.OutputLength);
        using var tdx = Tensor.Empty(d, g.InputLength);
        using var tdw = Tensor.Empty(d, g.WeightLength);
        using var tdb = Tensor.FromArray(d, b0, g.OutChannels);
        foreach (int block in new[] { 1, 3, 4 })
        {
            int n = g.ForwardItems(block), ext = d.Extent(n);
            ks.Conv2dForward(d.Stream, ext, n, ext, g, block, tx.View, tw.View, tb.View, hasBias ? 1 : 0, ty.View);
            yield return VerifyResult.Compare($"Conv2d.Forward block {block}", shape, e.Y, ty.ToArray(), Tolerance.Forward);
            tdx.CopyFrom(x0);
            n = g.BackwardInputItems(block); ext = d.Extent(n);
            ks.Conv2dBackwardInput(d.Stream, ext, n, ext, g, block, 1, tdy.View, tw.View, tdx.View);
            yield return VerifyResult.Compare($"Conv2d.BackwardInput block {block}", shape, edx, tdx.ToArray(), Tolerance.Backward);
            foreach (var row in Overwrite.Rows($"Conv2d.BackwardInput block {block}", shape, written, tdx,
                         accumulate => ks.Conv2dBackwardInput(d.Stream, ext, n, ext, g, block, accumulate, tdy.View, tw.View, tdx.View), Tolerance.Backward))
                yield return row;
        }
        foreach (var (outBlock, inBlock) in new[] { (1, 1), (4, 1), (1, 4), (4, 4), (3, 2) })
        {
            tdw.CopyFrom(w0);
            int n = g.BackwardWeightItems(outBlock, inBlock), ext = d.Extent(n);
            ks.Conv2dBackwardWeight(d.Stream, ext, n, ext, g, outBlock, inBlock, tdy.View, tx.View, tdw.View);
            yield return VerifyResult.Compare($"Conv2d.BackwardWeight blocks {outBlock}×{inBlock}", shape, edw, tdw.ToArray(), Tolerance.Backward);
        }
        int eb = d.Extent(g.OutChannels);
        ks.Conv2dBackwardBias(d.Stream, eb, g.OutChannels, eb, g, tdy.View, tdb.View);
        yield return VerifyResult.Compare("Conv2d.BackwardBias direct", shape, e.DB.Zip(b0, (a, z) => a + z).ToArray(), tdb.ToArray(), Tolerance.Backward);
    }
}
