using R = IlgpuDdw.Kernels.Reference.BatchNormReference;

namespace IlgpuDdw.Verification;

/// <summary>
/// BatchNorm2d in training and eval mode with the default momentum and eps (PyTorch's 0.1 and 1e-5): output,
/// running-statistics update, and the gradients of the input, gamma and beta, at batch 1, odd sizes, H·W = 1,
/// C = 1 and a larger layer; each with the device's default plan and forced through every reduction
/// (<see cref="BatchNormReduction"/>) at chunk lengths that divide no channel's B·H·W, the grouped one at two warps
/// per group (one where the device's groups hold a single warp), and on small shapes with chunks of 3 values, fewer
/// than such a group's threads wherever warps have 4 lanes or more (idle threads). The fused BatchNorm2d + residual
/// + ReLU (<see cref="Ops.BatchNorm2dRelu"/>) at the same shapes: the default plan with a residual, the chunked and
/// grouped reductions without and with one; residuals keep BN(x) + residual at least 0.05 from the ReLU kink.
/// The live-sample path (a [B] mask) at the same shapes with some samples off, every sample off (no NaN: the running
/// statistics stay, outputs and gradients are 0), a single live value per channel (N = 1: no running update) and
/// every sample live, through the default plan and the forced Chunks and Groups rungs, plain and fused. The
/// synchronised batch norm's pieces kernels at odd offsets and chunk lengths (<see cref="PieceCases"/>).
/// </summary>
internal static class BatchNormCases
{
    private const float Momentum = 0.1f, Eps = 1e-5f; // the reference's, and the op's defaults

    private static readonly string[] Passes =
    [
        "BatchNorm2d.Forward", "BatchNorm2d.RunningMean", "BatchNorm2d.RunningVar",
        "BatchNorm2d.BackwardInput", "BatchNorm2d.BackwardGamma", "BatchNorm2d.BackwardBeta",
    ];

    private static readonly string[] FusedPasses =
    [
        "BatchNorm2d.FusedForward", "BatchNorm2d.RunningMean", "BatchNorm2d.RunningVar",
        "BatchNorm2d.FusedBackwardInput", "BatchNorm2d.FusedBackwardGamma", "BatchNorm2d.FusedBackwardBeta",
    ];

    private static readonly string[] FusedResidualPasses = [.. FusedPasses, "BatchNorm2d.FusedBackwardResidual"];

    private static readonly string[] LivePasses =
    [
        "BatchNorm2d.LiveForward", "BatchNorm2d.RunningMean", "BatchNorm2d.RunningVar",
        "BatchNorm2d.LiveBackwardInput", "BatchNorm2d.LiveBackwardGamma", "BatchNorm2d.LiveBackwardBeta",
    ];

    private static readonly string[] LiveResidualPasses = [.. LivePasses, "BatchNorm2d.LiveBackwardResidual"];

    /// <summary>Live-sample masks per test shape's batch: some off, all off, and (batch 4) all live.</summary>
    private static float[][] LiveMasks(int batch) => batch switch
    {
        1 => [[0f]],
        2 => [[0f, 1f], [0f, 0f]],
        3 => [[1f, 0f, 1f], [0f, 1f, 0f]],
        4 => [[1f, 1f, 1f, 1f], [0f, 0f, 1f, 0f]],
        _ => [[1f, 0f, 0f, 1f, 1f, 0f, 1f, 1f]],
    };

    public static IEnumerable<VerifyCase> All() => Cases().Concat(PieceCases());

    private static IEnumerable<VerifyCase> Cases()
    {
        int[][] shapes = [[1, 3, 5, 7], [3, 5, 7, 5], [2, 4, 1, 1], [8, 16, 14, 14], [4, 1, 3, 2]];
        foreach (var shape in shapes)
            foreach (bool training in new[] { true, false })
            {
                string desc = $"{Tensor.Format(shape)} {(training ? "train" : "eval")}";
                yield return new("BatchNorm2d", desc, Passes, d => Run(d, shape, training, desc, null));
                // chunk lengths dividing no channel's B·H·W; chunks of 3 leave threads idle in groups of 2 warps of 4 or more
                bool large = shape[0] * shape[2] * shape[3] > 200;
                int chunk = large ? 97 : 13, shortChunk = large ? 23 : 3;
                (string Name, BatchNormReduction Reduction, int ChunkLength)[] forced =
                [
                    ("per-channel", BatchNormReduction.PerChannel, 1),
                    ($"chunks of {chunk}", BatchNormReduction.Chunks, chunk),
                    ($"groups, chunks of {chunk}", BatchNormReduction.Groups, chunk),
                    ($"groups, chunks of {shortChunk}", BatchNormReduction.Groups, shortChunk),
                ];
                foreach (var (name, reduction, chunkLength) in forced)
                {
                    string forcedDesc = $"{desc} {name}";
                    yield return new("BatchNorm2d", forcedDesc, Passes,
                        d => Run(d, shape, training, forcedDesc, new BatchNormPlan(reduction, chunkLength, TwoWarps(d))));
                }
                (string Name, BatchNormReduction? Reduction, bool Residual)[] fused =
                [
                    ("+residual+relu", null, true),
                    ($"+relu chunks of {chunk}", BatchNormReduction.Chunks, false),
                    ($"+residual+relu groups, chunks of {chunk}", BatchNormReduction.Groups, true),
                ];
                foreach (var (name, reduction, residual) in fused)
                {
                    string fusedDesc = $"{desc} {name}";
                    yield return new("BatchNorm2d", fusedDesc, residual ? FusedResidualPasses : FusedPasses,
                        d => RunFused(d, shape, training, fusedDesc, residual,
                            reduction is { } r ? new BatchNormPlan(r, chunk, TwoWarps(d)) : null));
                }
                (string Name, BatchNormReduction? Reduction, int ChunkLength, bool Relu, bool Residual)[] masked =
                [
                    ("", null, 0, false, false),
                    ($" chunks of {chunk}", BatchNormReduction.Chunks, chunk, false, false),
                    ($" groups, chunks of {shortChunk}", BatchNormReduction.Groups, shortChunk, false, false),
                    ($" +relu chunks of {shortChunk}", BatchNormReduction.Chunks, shortChunk, true, false),
                    ($" +residual+relu groups, chunks of {chunk}", BatchNormReduction.Groups, chunk, true, true),
                ];
                foreach (var live in LiveMasks(shape[0]))
                    foreach (var (name, reduction, chunkLength, relu, residual) in masked)
                    {
                        string liveDesc = $"{desc} live {string.Concat(live.Select(v => v != 0f ? '1' : '0'))}{name}";
                        yield return new("BatchNorm2d", liveDesc, residual ? LiveResidualPasses : LivePasses,
                            d => RunLive(d, shape, live, training, liveDesc, relu, residual,
                                reduction is { } r ? new BatchNormPlan(r, chunkLength, TwoWarps(d)) : null));
                    }
            }
    }

    /// <summary>
    /// The synchronised batch norm's pieces kernels against <see cref="R.PieceSums"/>: a rank's block at an offset and
    /// chunk length that cut chunks between ranks (and one chunk that is the whole block), every sample or some live,
    /// with and without the fused ReLU's mask.
    /// </summary>
    private static IEnumerable<VerifyCase> PieceCases()
    {
        (int[] Shape, int Offset, int ChunkLength)[] layouts = [([3, 5, 7, 5], 37, 13), ([2, 4, 1, 1], 5, 3), ([1, 3, 5, 7], 0, 35), ([4, 1, 3, 2], 100, 7)];
        foreach (var (shape, offset, chunkLength) in layouts)
            foreach (bool masked in new[] { false, true })
                foreach (bool relu in new[] { false, true })
                {
                    string desc = $"{Tensor.Format(shape)} pieces at {offset}, chunks of {chunkLength}{(masked ? " live" : "")}{(relu ? " +relu" : "")}";
                    yield return new("BatchNorm2d", desc, PiecePasses, d => RunPieces(d, shape, offset, chunkLength, masked, relu, desc));
                }
    }

    private static readonly string[] PiecePasses = ["BatchNorm2d.SyncPiecesForward", "BatchNorm2d.SyncPiecesBackward"];

    /// <summary>One pieces case: both kernels on the device against the reference (sums in double).</summary>
    internal static IEnumerable<VerifyResult> RunPieces(Device device, int[] shape, int offset, int chunkLength, bool masked, bool relu, string desc)
    {
        int b = shape[0], c = shape[1], s = shape[2] * shape[3], n = b * c * s, count = b * s;
        var x = Seeded.Uniform<float>(n, 41, -2, 3); var g = Seeded.Uniform<float>(n, 42); var output = Seeded.Uniform<float>(n, 43);
        var pivot = Seeded.Uniform<float>(c, 44); var mean = Seeded.Uniform<float>(c, 45); var invstd = Seeded.Uniform<float>(c, 46, 0.5, 2);
        var live = masked ? Enumerable.Range(0, b).Select(i => i % 2 == 0 ? 1f : 0f).ToArray() : [];
        int pieces = (offset + count - 1) / chunkLength - offset / chunkLength + 1, items = c * pieces;
        var layout = new Kernels.BatchNormPieces(c, s, count, offset, chunkLength, masked ? 1 : 0);
        using var tx = Tensor.FromArray(device, x, shape);
        using var tg = Tensor.FromArray(device, g, shape);
        using var tOutput = Tensor.FromArray(device, output, shape);
        using var tPivot = Tensor.FromArray(device, pivot, c);
        using var tMean = Tensor.FromArray(device, mean, c);
        using var tInvstd = Tensor.FromArray(device, invstd, c);
        using var tLive = Tensor.FromArray(device, masked ? live : [1f], masked ? b : 1);
        using var forward = device.Allocate<double>(3 * items);
        using var backward = device.Allocate<double>(2 * items);
        int ext = device.Extent(items);
        device.Kernels.BatchNormForwardStatisticsPieces(device.Stream, ext, items, ext, layout, tLive.View, tPivot.View, tx.View, forward.View);
        device.Kernels.BatchNormBackwardChannelSumsPieces(device.Stream, ext, items, ext, layout, relu ? 1 : 0, tLive.View, tx.View, tg.View,
            tOutput.View, tMean.View, tInvstd.View, backward.View);
        var actualForward = new double[3 * items];
        var actualBackward = new double[2 * items];
        device.Download(forward.View, actualForward.AsSpan());
        device.Download(backward.View, actualBackward.AsSpan());
        var expectedForward = new double[3 * items];
        var expectedBackward = new double[2 * items];
        R.PieceSums(x, g, relu ? output : [], b, c, s, offset, chunkLength, live, pivot, mean, invstd, expectedForward, expectedBackward);
        yield return VerifyResult.Compare("BatchNorm2d.SyncPiecesForward", desc, expectedForward, actualForward, Tolerance.Forward);
        yield return VerifyResult.Compare("BatchNorm2d.SyncPiecesBackward", desc, expectedBackward, actualBackward, Tolerance.Forward);
    }

    /// <summary>Two warps, or one where the device's groups hold a single warp.</summary>
    internal static int TwoWarps(Device device)
    {
        int warp = device.Accelerator.WarpSize;
        return Math.Min(2 * warp, device.Accelerator.MaxNumThreadsPerGroup / warp * warp);
    }

    /// <summary>One case: the op with <paramref name="plan"/> (null: the device's default) against the float reference.</summary>
    internal static IEnumerable<VerifyResult> Run(Device device, int[] shape, bool training, string desc, BatchNormPlan? plan)
    {
        int b = shape[0], c = shape[1], s = shape[2] * shape[3], n = b * c * s;
        var x = Seeded.Uniform<float>(n, 1, -2, 3); var g = Seeded.Uniform<float>(n, 2);
        var gamma = Seeded.Uniform<float>(c, 3, 0.5, 1.5); var beta = Seeded.Uniform<float>(c, 4);
        var runningMean = Seeded.Uniform<float>(c, 5); var runningVar = Seeded.Uniform<float>(c, 6, 0.5, 2);
        using var tx = Tensor.FromArray(device, x, shape); tx.RequiresGrad = true;
        using var tGamma = Tensor.FromArray(device, gamma, c); tGamma.RequiresGrad = true;
        using var tBeta = Tensor.FromArray(device, beta, c); tBeta.RequiresGrad = true;
        using var tMean = Tensor.FromArray(device, runningMean, c);
        using var tVar = Tensor.FromArray(device, runningVar, c);
        using var tape = new Tape(device);
        var y = tape.BatchNorm2d(tx, tGamma, tBeta, tMean, tVar, training, Momentum, Eps, plan);
        Overwrite.Poisoned(() => tape.Backward(y, g));

        var ey = new float[n]; var mean = new float[c]; var invstd = new float[c];
        R.Forward<float>(x, b, c, s, gamma, beta, runningMean, runningVar, training, Momentum, Eps, ey, mean, invstd);
        var dx = Overwrite.Reference(n, _ => { }); var dGamma = new float[c]; var dBeta = new float[c]; // dx NaN: overwritten
        R.Backward<float>(x, g, b, c, s, mean, invstd, gamma, training, dx, dGamma, dBeta, accumulate: false);
        yield return VerifyResult.Compare("BatchNorm2d.Forward", desc, ey, y.ToArray(), Tolerance.Forward);
        yield return VerifyResult.Compare("BatchNorm2d.RunningMean", desc, runningMean, tMean.ToArray(), Tolerance.Forward);
        yield return VerifyResult.Compare("BatchNorm2d.RunningVar", desc, runningVar, tVar.ToArray(), Tolerance.Forward);
        yield return VerifyResult.Compare("BatchNorm2d.BackwardInput", desc, dx, tx.GradToArray(), Tolerance.Backward);
        yield return VerifyResult.Compare("BatchNorm2d.BackwardGamma", desc, dGamma, tGamma.GradToArray(), Tolerance.Backward);
        yield return VerifyResult.Compare("BatchNorm2d.BackwardBeta", desc, dBeta, tBeta.GradToArray(), Tolerance.Backward);
        foreach (var row in Overwrite.SecondPass(desc, () => tape.Backward(y, g), ("BatchNorm2d.BackwardInput", tx, tx.GradToArray())))
            yield return row;
    }

    /// <summary>
    /// One fused case: <see cref="Ops.BatchNorm2dRelu"/> with <paramref name="plan"/> (null: the device's default),
    /// with or without a residual, against the float reference.
    /// </summary>
    internal static IEnumerable<VerifyResult> RunFused(Device device, int[] shape, bool training, string desc, bool withResidual,
        BatchNormPlan? plan)
    {
        int b = shape[0], c = shape[1], s = shape[2] * shape[3], n = b * c * s;
        var x = Seeded.Uniform<float>(n, 11, -2, 3); var g = Seeded.Uniform<float>(n, 12);
        var gamma = Seeded.Uniform<float>(c, 13, 0.5, 1.5); var beta = Seeded.Uniform<float>(c, 14);
        var runningMean = Seeded.Uniform<float>(c, 15); var runningVar = Seeded.Uniform<float>(c, 16, 0.5, 2);
        var residual = withResidual ? AwayFromKink(x, b, c, s, gamma, beta, runningMean, runningVar, training) : [];

        using var tx = Tensor.FromArray(device, x, shape); tx.RequiresGrad = true;
        using var tGamma = Tensor.FromArray(device, gamma, c); tGamma.RequiresGrad = true;
        using var tBeta = Tensor.FromArray(device, beta, c); tBeta.RequiresGrad = true;
        using var tMean = Tensor.FromArray(device, runningMean, c);
        using var tVar = Tensor.FromArray(device, runningVar, c);
        using var tResidual = withResidual ? Tensor.FromArray(device, residual, shape) : null;
        if (tResidual is not null) tResidual.RequiresGrad = true;
        using var tape = new Tape(device);
        var y = tape.BatchNorm2dRelu(tx, tGamma, tBeta, tMean, tVar, training, tResidual, Momentum, Eps, plan);
        Overwrite.Poisoned(() => tape.Backward(y, g));

        var ey = new float[n]; var mean = new float[c]; var invstd = new float[c];
        R.ForwardRelu<float>(x, b, c, s, gamma, beta, runningMean, runningVar, training, Momentum, Eps, residual, ey, mean, invstd);
        var dx = Overwrite.Reference(n, _ => { }); var dGamma = new float[c]; var dBeta = new float[c]; // NaN: overwritten
        var dResidual = withResidual ? Overwrite.Reference(n, _ => { }) : [];
        R.BackwardRelu<float>(x, g, ey, b, c, s, mean, invstd, gamma, training, dx, dGamma, dBeta, dResidual, accumulate: false);
        yield return VerifyResult.Compare("BatchNorm2d.FusedForward", desc, ey, y.ToArray(), Tolerance.Forward);
        yield return VerifyResult.Compare("BatchNorm2d.RunningMean", desc, runningMean, tMean.ToArray(), Tolerance.Forward);
        yield return VerifyResult.Compare("BatchNorm2d.RunningVar", desc, runningVar, tVar.ToArray(), Tolerance.Forward);
        yield return VerifyResult.Compare("BatchNorm2d.FusedBackwardInput", desc, dx, tx.GradToArray(), Tolerance.Backward);
        yield return VerifyResult.Compare("BatchNorm2d.FusedBackwardGamma", desc, dGamma, tGamma.GradToArray(), Tolerance.Backward);
        yield return VerifyResult.Compare("BatchNorm2d.FusedBackwardBeta", desc, dBeta, tBeta.GradToArray(), Tolerance.Backward);
        if (tResidual is not null)
            yield return VerifyResult.Compare("BatchNorm2d.FusedBackwardResidual", desc, dResidual, tResidual.GradToArray(), Tolerance.Backward);
        var firsts = new List<(string, Tensor, float[])> { ("BatchNorm2d.FusedBackwardInput", tx, tx.GradToArray()) };
        if (tResidual is not null) firsts.Add(("BatchNorm2d.FusedBackwardResidual", tResidual, tResidual.GradToArray()));
        foreach (var row in Overwrite.SecondPass(desc, () => tape.Backward(y, g), [.. firsts]))
            yield return row;
    }

    /// <summary>
    /// One live-sample case: <see cref="Ops.BatchNorm2d(Tape, Tensor, Tensor, Tensor, Tensor, Tensor, bool, float, float, BatchNormPlan?, Tensor?)"/>
    /// (or <see cref="Ops.BatchNorm2dRelu"/> when <paramref name="relu"/>, with a residual when <paramref name="withResidual"/>)
    /// with the mask <paramref name="live"/> and <paramref name="plan"/> (null: the device's default), against the float reference.
    /// </summary>
    internal static IEnumerable<VerifyResult> RunLive(Device device, int[] shape, float[] live, bool training, string desc, bool relu,
        bool withResidual, BatchNormPlan? plan)
    {
        int b = shape[0], c = shape[1], s = shape[2] * shape[3], n = b * c * s;
        var x = Seeded.Uniform<float>(n, 21, -2, 3); var g = Seeded.Uniform<float>(n, 22);
        var gamma = Seeded.Uniform<float>(c, 23, 0.5, 1.5); var beta = Seeded.Uniform<float>(c, 24);
        var runningMean = Seeded.Uniform<float>(c, 25); var runningVar = Seeded.Uniform<float>(c, 26, 0.5, 2);
        var residual = withResidual ? AwayFromKink(x, b, c, s, gamma, beta, runningMean, runningVar, training, live) : [];

        using var tx = Tensor.FromArray(device, x, shape); tx.RequiresGrad = true;
        using var tGamma = Tensor.FromArray(device, gamma, c); tGamma.RequiresGrad = true;
        using var tBeta = Tensor.FromArray(device, beta, c); tBeta.RequiresGrad = true;
        using var tMean = Tensor.FromArray(device, runningMean, c);
        using var tVar = Tensor.FromArray(device, runningVar, c);
        using var tLive = Tensor.FromArray(device, live, b);
        using var tResidual = withResidual ? Tensor.FromArray(device, residual, shape) : null;
        if (tResidual is not null) tResidual.RequiresGrad = true;
        using var tape = new Tape(device);
        var y = relu
            ? tape.BatchNorm2dRelu(tx, tGamma, tBeta, tMean, tVar, training, tResidual, Momentum, Eps, plan, tLive)
            : tape.BatchNorm2d(tx, tGamma, tBeta, tMean, tVar, training, Momentum, Eps, plan, tLive);
        Overwrite.Poisoned(() => tape.Backward(y, g));

        var ey = new float[n]; var mean = new float[c]; var invstd = new float[c];
        R.LiveForward<float>(x, b, c, s, live, gamma, beta, runningMean, runningVar, training, Momentum, Eps, relu, residual, ey, mean, invstd);
        var dx = Overwrite.Reference(n, _ => { }); var dGamma = new float[c]; var dBeta = new float[c]; // NaN: overwritten
        var dResidual = withResidual ? Overwrite.Reference(n, _ => { }) : [];
        R.LiveBackwardFused<float>(x, g, ey, b, c, s, live, mean, invstd, gamma, training, relu, dx, dGamma, dBeta, dResidual, accumulate: false);
        yield return VerifyResult.Compare("BatchNorm2d.LiveForward", desc, ey, y.ToArray(), Tolerance.Forward);
        yield return VerifyResult.Compare("BatchNorm2d.RunningMean", desc, runningMean, tMean.ToArray(), Tolerance.Forward);
        yield return VerifyResult.Compare("BatchNorm2d.RunningVar", desc, runningVar, tVar.ToArray(), Tolerance.Forward);
        yield return VerifyResult.Compare("BatchNorm2d.LiveBackwardInput", desc, dx, tx.GradToArray(), Tolerance.Backward);
        yield return VerifyResult.Compare("BatchNorm2d.LiveBackwardGamma", desc, dGamma, tGamma.GradToArray(), Tolerance.Backward);
        yield return VerifyResult.Compare("BatchNorm2d.LiveBackwardBeta", desc, dBeta, tBeta.GradToArray(), Tolerance.Backward);
        if (tResidual is not null)
            yield return VerifyResult.Compare("BatchNorm2d.LiveBackwardResidual", desc, dResidual, tResidual.GradToArray(), Tolerance.Backward);
        var firsts = new List<(string, Tensor, float[])> { ("BatchNorm2d.LiveBackwardInput", tx, tx.GradToArray()) };
        if (tResidual is not null) firsts.Add(("BatchNorm2d.LiveBackwardResidual", tResidual, tResidual.GradToArray()));
        foreach (var row in Overwrite.SecondPass(desc, () => tape.Backward(y, g), [.. firsts]))
            yield return row;
    }

    /// <summary>
    /// A residual r in [−1, 1) with |BatchNorm2d(x) + r| ≥ 0.05 everywhere (away from the ReLU kink); with
    /// <paramref name="live"/>, BatchNorm2d over the live samples.
    /// </summary>
    private static float[] AwayFromKink(float[] x, int b, int c, int s, float[] gamma, float[] beta, float[] runningMean,
        float[] runningVar, bool training, float[]? live = null)
    {
        var z = new float[x.Length];
        R.LiveForward<float>(x, b, c, s, live ?? [], gamma, beta, (float[])runningMean.Clone(), (float[])runningVar.Clone(), training,
            Momentum, Eps, relu: false, [], z, new float[c], new float[c]);
        var r = Seeded.Uniform<float>(x.Length, 17);
        for (int i = 0; i < r.Length; i++)
            if (MathF.Abs(z[i] + r[i]) < 0.05f) r[i] += z[i] + r[i] < 0f ? -0.1f : 0.1f;
        return r;
    }
}
