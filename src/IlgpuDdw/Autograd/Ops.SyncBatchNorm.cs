using IlgpuDdw.Distributed;

namespace IlgpuDdw.Autograd;

/// <summary>
/// Where one rank's values lie in the global batch of a synchronised batch norm: rank r holds the values
/// [<see cref="Starts"/>[r], <see cref="Starts"/>[r + 1]) of every channel (in (b, s) order, ranks in rank order), and
/// the global batch is reduced in the chunks of <see cref="ChunkLength"/> values that one process would use. A rank's
/// pieces are its parts of those chunks (see <see cref="Kernels.BatchNormKernels.ForwardStatisticsPieces"/>).
/// </summary>
/// <param name="Group">The ranks.</param>
/// <param name="Starts">Value offsets per rank, Size + 1 entries (the last is the global count B·H·W).</param>
/// <param name="ChunkLength">Values per chunk of the global plan.</param>
/// <param name="StatisticsCount">The values the statistics ran over: the global count, or the live values with a mask.</param>
internal sealed record SyncBatchNormLayout(Communicator Group, int[] Starts, int ChunkLength, long StatisticsCount)
{
    /// <summary>Chunks per channel of the global batch.</summary>
    public int Chunks { get; } = (Starts[^1] + ChunkLength - 1) / ChunkLength;

    /// <summary>This rank's first value.</summary>
    public int Offset => Starts[Group.Rank];

    /// <summary>The first chunk rank <paramref name="r"/> holds a piece of.</summary>
    public int FirstChunk(int r) => Starts[r] / ChunkLength;

    /// <summary>Pieces (chunks it holds part of) of rank <paramref name="r"/>.</summary>
    public int Pieces(int r) => PiecesOf(Starts, ChunkLength, r);

    /// <summary>This rank's layout for the pieces kernels.</summary>
    public BatchNormPieces Pieces(int channels, int spatial, bool masked) =>
        new(channels, spatial, Starts[Group.Rank + 1] - Starts[Group.Rank], Offset, ChunkLength, masked ? 1 : 0);

    /// <summary>The most pieces of any rank (the all-gathered blocks are padded to it).</summary>
    public int MaxPieces { get; } = Enumerable.Range(0, Starts.Length - 1).Max(r => PiecesOf(Starts, ChunkLength, r));

    private static int PiecesOf(int[] starts, int chunkLength, int r) =>
        starts[r + 1] == starts[r] ? 0 : (starts[r + 1] - 1) / chunkLength - starts[r] / chunkLength + 1;
}

public static partial class Ops
{
    /// <summary>
    /// Synchronised batch-norm statistics over every rank of <paramref name="group"/> (the global batch), computed as
    /// one process computes them for the whole batch: the chunks of the plan one process would pick for the global
    /// count (<paramref name="plan"/>, else <see cref="BatchNormPlan.For(Device, int, int)"/>; a per-channel plan is one
    /// chunk), the pivot of the global batch's first (live) sample, each chunk summed in double (a chunk split between
    /// ranks as the sum of its pieces, in rank order), the chunk partials rounded to float and merged with Chan's formula
    /// in double exactly as <see cref="Kernels.BatchNormKernels.ForwardStatisticsFinalizeMasked"/> does. So every rank gets
    /// one process's mean and 1/√(σ² + eps) (bit for bit unless a split chunk's double sum rounds differently) and the
    /// same running-statistics update. With <paramref name="live"/> only the live samples count (N = 0: the running
    /// statistics; N = 1: running statistics unchanged). Returns the layout the backward sums reuse.
    /// </summary>
    internal static SyncBatchNormLayout SyncBatchNormStatistics(Communicator group, BatchNormPlan? plan, Tensor input, float eps, float momentum,
        Tensor mean, Tensor invstd, Tensor runningMean, Tensor runningVar, Tensor? live)
    {
        var d = input.Device;
        int batch = input.Dim(0), channels = input.Dim(1), spatial = input.Dim(2) * input.Dim(3), count = batch * spatial;
        var liveHost = live?.ToArray();
        int liveSamples = liveHost?.Count(v => v != 0f) ?? batch;
        int first = liveHost is null ? 0 : Math.Max(0, Array.FindIndex(liveHost, v => v != 0f));
        // this rank's batch, live samples and pivot candidates x[first, c, 0] (one download of that sample)
        var sample = new float[channels * spatial];
        d.Download(input.View.SubView((long)first * channels * spatial, (long)channels * spatial), sample.AsSpan());
        int width = channels + 2;
        var mine = new double[width];
        mine[0] = batch;
        mine[1] = liveSamples;
        for (int c = 0; c < channels; c++) mine[2 + c] = sample[c * spatial];
        var all = group.AllGather<double>(mine);

        var starts = new int[group.Size + 1];
        long liveCount = 0;
        int pivotRank = -1;
        for (int r = 0; r < group.Size; r++)
        {
            starts[r + 1] = starts[r] + (int)all[r * width] * spatial;
            liveCount += (long)all[r * width + 1] * spatial;
            if (pivotRank < 0 && all[r * width + 1] > 0) pivotRank = r;
        }
        pivotRank = Math.Max(0, pivotRank); // no live sample anywhere: rank 0's first sample, as one process
        var pivot = new float[channels];
        for (int c = 0; c < channels; c++) pivot[c] = (float)all[pivotRank * width + 2 + c];
        int globalCount = starts[^1];
        var global = plan ?? BatchNormPlan.For(d, channels, globalCount);
        int chunkLength = global.Reduction == BatchNormReduction.PerChannel ? globalCount : global.ChunkLength;
        var layout = new SyncBatchNormLayout(group, starts, chunkLength, live is null ? globalCount : liveCount);

        double[] sums;
        using (var pivotTensor = Tensor.FromArray(d, pivot, channels))
            sums = GatherPieces(d, layout, channels, 3, (items, ext, view) => d.Kernels.BatchNormForwardStatisticsPieces(d.Stream, ext, items, ext,
                layout.Pieces(channels, spatial, live is not null), (live ?? pivotTensor).View, pivotTensor.View, input.View, view));

        var meanHost = new float[channels];
        var invstdHost = new float[channels];
        var runningMeanHost = runningMean.ToArray();
        var runningVarHost = runningVar.ToArray();
        var chunk = new double[3];
        for (int c = 0; c < channels; c++)
        {
            double n = 0, m = 0, m2 = 0;
            for (int k = 0; k < layout.Chunks; k++)
            {
                CombinePieces(layout, sums, channels, 3, c, k, chunk);
                double nk = chunk[0];
                if (nk == 0) continue;
                // the chunk kernels' partials (float), then the finalize's merge in double
                double chunkMean = chunk[1] / nk;
                float partialMean = (float)chunkMean, partialM2 = (float)Math.Max(0.0, chunk[2] - chunk[1] * chunkMean);
                double total = n + nk, delta = partialMean - m, weight = nk / total;
                m += delta * weight;
                m2 += partialM2 + delta * delta * n * weight;
                n = total;
            }
            if (n == 0) // no live value anywhere: the running statistics, unchanged
            {
                meanHost[c] = runningMeanHost[c];
                invstdHost[c] = 1f / MathF.Sqrt(runningVarHost[c] + eps);
                continue;
            }
            float mu = (float)(pivot[c] + m);
            meanHost[c] = mu;
            invstdHost[c] = (float)(1.0 / Math.Sqrt(m2 / n + eps));
            if (n < 2) continue; // one value: no unbiased variance, running statistics unchanged
            runningMeanHost[c] = (1f - momentum) * runningMeanHost[c] + momentum * mu;
            runningVarHost[c] = (1f - momentum) * runningVarHost[c] + momentum * (float)(m2 / (n - 1));
        }
        mean.CopyFrom(meanHost);
        invstd.CopyFrom(invstdHost);
        runningMean.CopyFrom(runningMeanHost);
        runningVar.CopyFrom(runningVarHost);
        return layout;
    }

    /// <summary>
    /// The global batch's backward sums Σdy and Σdy·x̂ per channel, as one process computes them: this rank's pieces
    /// of the chunks summed in double, a chunk's pieces added in rank order and rounded to float, the chunks added in
    /// order in double (<see cref="Kernels.BatchNormKernels.BackwardChannelSumsFinalize"/>). With
    /// <paramref name="reluOutput"/> dy is masked where that output is 0; with <paramref name="live"/> only live samples
    /// count. Rank 0 adds the sums into <paramref name="dGamma"/> and <paramref name="dBeta"/> (when given) and the
    /// others add nothing, so the gradient all-reduce gives one process's dγ and dβ exactly.
    /// </summary>
    internal static (float[] SumDy, float[] SumDyXhat) SyncBatchNormChannelSums(SyncBatchNormLayout layout, Tensor input, Tensor dOutput,
        Tensor? reluOutput, Tensor mean, Tensor invstd, Tensor? live, Tensor? dGamma, Tensor? dBeta)
    {
        var d = input.Device;
        int channels = input.Dim(1), spatial = input.Dim(2) * input.Dim(3), count = input.Dim(0) * spatial;
        var output = (reluOutput ?? dOutput).View; // ignored without the mask
        var sums = GatherPieces(d, layout, channels, 2, (items, ext, view) => d.Kernels.BatchNormBackwardChannelSumsPieces(d.Stream, ext, items, ext,
            layout.Pieces(channels, spatial, live is not null), reluOutput is null ? 0 : 1, (live ?? mean).View, input.View, dOutput.View, output, mean.View, invstd.View, view));
        var sumDy = new float[channels];
        var sumDyXhat = new float[channels];
        var chunk = new double[2];
        for (int c = 0; c < channels; c++)
        {
            double dyTotal = 0, dyXhatTotal = 0;
            for (int k = 0; k < layout.Chunks; k++)
            {
                CombinePieces(layout, sums, channels, 2, c, k, chunk);
                dyTotal += (float)chunk[0];
                dyXhatTotal += (float)chunk[1];
            }
            sumDy[c] = (float)dyTotal;
            sumDyXhat[c] = (float)dyXhatTotal;
        }
        if (layout.Group.IsRoot)
        {
            if (dGamma is not null) AccumulateHost(sumDyXhat, dGamma);
            if (dBeta is not null) AccumulateHost(sumDy, dBeta);
        }
        return (sumDy, sumDyXhat);
    }

    /// <summary>
    /// Runs a pieces kernel (<paramref name="launch"/>(items, extent, output)) over this rank's pieces into a double
    /// buffer of <paramref name="width"/> values per piece and all-gathers every rank's pieces, padded to
    /// <see cref="SyncBatchNormLayout.MaxPieces"/>: element w of piece j of channel c of rank r is at
    /// ((r·C + c)·MaxPieces + j)·width + w.
    /// </summary>
    private static double[] GatherPieces(Device d, SyncBatchNormLayout layout, int channels, int width,
        Action<int, int, ArrayView<double>> launch)
    {
        int pieces = layout.Pieces(layout.Group.Rank), maxPieces = layout.MaxPieces, items = channels * pieces;
        var padded = new double[channels * maxPieces * width];
        if (items > 0)
        {
            using var buffer = d.Allocate<double>(width * items);
            launch(items, d.Extent(items), buffer.View);
            var host = new double[width * items];
            d.Download(buffer.View, host.AsSpan());
            for (int c = 0; c < channels; c++)
                host.AsSpan(c * pieces * width, pieces * width).CopyTo(padded.AsSpan(c * maxPieces * width));
        }
        return layout.Group.AllGather<double>(padded);
    }

    /// <summary>Chunk <paramref name="k"/> of channel <paramref name="c"/>: its pieces' sums added in rank order (double).</summary>
    private static void CombinePieces(SyncBatchNormLayout layout, double[] all, int channels, int width, int c, int k, double[] chunk)
    {
        Array.Clear(chunk);
        int maxPieces = layout.MaxPieces;
        for (int r = 0; r < layout.Group.Size; r++)
        {
            int j = k - layout.FirstChunk(r);
            if (j < 0 || j >= layout.Pieces(r)) continue;
            int p = ((r * channels + c) * maxPieces + j) * width;
            for (int w = 0; w < width; w++) chunk[w] += all[p + w];
        }
    }

    /// <summary><c>target[c] += values[c]</c> in float, as the finalize kernels accumulate dγ and dβ.</summary>
    private static void AccumulateHost(float[] values, Tensor target)
    {
        using var t = Tensor.FromArray(target.Device, values, values.Length);
        Accumulate(t, target);
    }
}
