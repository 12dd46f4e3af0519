namespace IlgpuDdw.Runtime;

/// <summary>
/// The roofline cost of each kernel of <c>IlgpuDdw.Kernels</c>, computed on the host from its launch arguments.
/// One static method per <see cref="KernelSet"/> launcher, named like it and taking the kernel's parameters after
/// the index; the launcher's traced wrapper calls it (a kernel without one is listed in
/// <see cref="KernelSet.LaunchersWithoutCost"/>).
/// <para>
/// The counting rules: a multiply-add is 2 FLOPs, an add, compare or multiply 1, exp/log/sqrt/division 1 each (a
/// sigmoid is 4); bytes are the minimum traffic to device memory at 4 bytes per element: every input element read
/// once, every output element written once, an accumulated (+=) output read and written once (so 2 × its size; a backward kernel's gradient written with
/// accumulate = 0, an overwrite, counts once);
/// re-reads a kernel makes (halo taps, per-chunk adjacency reads, two-pass statistics) are not counted. Shapes: B
/// batch, C channels, S = H·W, K kernel side, n the work items.
/// </para>
/// <list type="table">
/// <listheader><term>kernel</term><description>FLOPs; floats moved</description></listheader>
/// <item><term>Conv2dForward</term><description>2·MACs (+ B·C_out·Ho·Wo with bias), MACs = B·C_out·Ho·Wo·(C_in/groups)·K²; x + w (+ bias) + y</description></item>
/// <item><term>Conv2dBackwardInput</term><description>2·MACs; dy + w + 2·dx (dx once when it overwrites)</description></item>
/// <item><term>Conv2dBackwardWeight</term><description>2·MACs; dy + x + 2·dw</description></item>
/// <item><term>Conv2dBackwardWeightSplit</term><description>2·MACs; dy + x + splits·|w| partials</description></item>
/// <item><term>Conv2dBackwardWeightFinalize</term><description>splits·|w|; splits·|w| partials + 2·|w|</description></item>
/// <item><term>Conv2dForwardTiled / Conv2dBackwardInputTiled</term><description>as Conv2dForward / Conv2dBackwardInput (work items: the outputs)</description></item>
/// <item><term>Conv2dForwardTiledTf32 / Conv2dBackwardInputTiledTf32</term><description>as the tiled kernels, the FLOPs on TF32 tensor cores (the roofline's TF32 peak)</description></item>
/// <item><term>Conv2dForwardPlanes / Conv2dBackwardInputPlanes</term><description>as Conv2dForward / Conv2dBackwardInput (work items: the outputs; the halo a tile stages is a re-read, not counted)</description></item>
/// <item><term>Conv2dBackwardWeightTiled / Conv2dBackwardWeightTiledTf32</term><description>as Conv2dBackwardWeightSplit (work items: the splits·|w| partials; TF32: on the TF32 peak)</description></item>
/// <item><term>Conv2dBackwardWeightPlanes</term><description>as Conv2dBackwardWeightSplit (work items: the splits·|w| partials)</description></item>
/// <item><term>RouterForward</term><description>B·C·S + 2·B·(H·C + O·H) + B·O; y + parameters + pooled + hidden + a (work items: samples)</description></item>
/// <item><term>RouterBackwardActivations</term><description>3·B·O + 2·B·(O·H + H·C); dA + a + hidden + W1 + W2 + dZ2 + dZ1 + dPooled</description></item>
/// <item><term>RouterBackwardParameters</term><description>2·B per parameter element; dZ1 + dZ2 + pooled + hidden + 2 per element</description></item>
/// <item><term>Conv2dBackwardBias</term><description>B·C_out·Ho·Wo; dy + 2·C_out</description></item>
/// <item><term>LinearForward</term><description>2·B·In·Out (+ B·Out bias, + B·Out activation); x + W (+ bias) + y</description></item>
/// <item><term>LinearBackwardInput / Weight</term><description>2·B·In·Out (+ B·Out act′); dy (+ y) + W or x + 2·dx (dx once overwriting) or 2·dW</description></item>
/// <item><term>LinearBackwardBias</term><description>B·Out (+ B·Out act′); dy (+ y) + 2·Out</description></item>
/// <item><term>BatchNormForwardStatistics</term><description>4·B·C·S (sum, then squared deviations) + 10·C; x + 2·C (mean, invstd) + 4·C (running stats, updated in place)</description></item>
/// <item><term>BatchNormForwardStatisticsChunks / Groups</term><description>4·C·N (N = B·S: shift, add, square, add); x + 2 per partial (C·chunks partials)</description></item>
/// <item><term>BatchNormBackwardChannelSumsChunks / Groups</term><description>5·C·N (+ C·N for the ReLU mask); x + dy (+ output) + 2·C + 2 per partial</description></item>
/// <item><term>BatchNormForwardStatisticsFinalize</term><description>8 per partial + 12·C; 2 per partial + C pivots + 2·C + 4·C</description></item>
/// <item><term>BatchNormBackwardChannelSumsFinalize</term><description>2 per partial (+ C per accumulated dγ/dβ); 2 per partial + 2·C (+ 2·C per accumulated dγ/dβ)</description></item>
/// <item><term>BatchNormForwardNormalizeRelu</term><description>5·n (+ n residual add); 2·n (+ n residual) + 4·C</description></item>
/// <item><term>BatchNormBackwardInputRelu</term><description>9·n; x + dy + output + 2·dx (dx once when it overwrites) + 5·C</description></item>
/// <item><term>BatchNormInferenceStatistics</term><description>3·C; 4·C</description></item>
/// <item><term>BatchNormForwardNormalize</term><description>4·n; 2·n + 4·C</description></item>
/// <item><term>BatchNormBackwardChannelSums</term><description>5·B·C·S; x + dy + 4·C</description></item>
/// <item><term>BatchNormBackwardInput</term><description>8·n; x + dy + 2·dx (dx once when it overwrites) + 5·C</description></item>
/// <item><term>BatchNorm…Masked (live-sample path)</term><description>as the unmasked kernel, upper bound with every sample live, + B mask floats; statistics partials 3 floats each; ForwardNormalizeMasked 4·n (+ n ReLU, + n residual); BackwardInputMasked 8·n (+ n ReLU mask); the finalizes as the unmasked ones (+ B for the live count)</description></item>
/// <item><term>NodeLiveMask / ClearOffRow</term><description>B·node compares; B·node + B / B·(n + 1) compares; B + 2·B·(n + 1)</description></item>
/// <item><term>AggregationForward</term><description>2·count·B·S; A entries (B·count) + count·B·S + x (2·B·S when accumulating). Upper bound: every edge kept (cut edges skip their reads)</description></item>
/// <item><term>AggregationBackwardSources</term><description>2·k·B·S for the k sources with a gradient; B·k + dX + 2·k·B·S (B·S for each overwritten source)</description></item>
/// <item><term>AggregationBackwardAdjacency</term><description>2·count·B·S; B·count + count·B·S + dX + (partials B·count·parts, or 2·B·count)</description></item>
/// <item><term>AggregationForwardRegisters</term><description>as AggregationForward (the same minimum traffic: its gain is the per-source re-reads of x, which are not counted)</description></item>
/// <item><term>AggregationBackwardFusedChunks / Groups</term><description>BackwardSources' + BackwardAdjacency's FLOPs; their floats with A and dX counted once (partials: one per chunk, B·count·chunks, or 2·B·count with one chunk a sample; work items: the (sample, chunk) items)</description></item>
/// <item><term>AggregationReduceAdjacencyGradient</term><description>n·parts; n·parts + 2·n</description></item>
/// <item><term>GateForward / GateBackward</term><description>n compares (+ n adds); 2·n / 5·n (a, A, dA, 2·da; 4·n overwriting)</description></item>
/// <item><term>ContinuousForward / ContinuousBackward</term><description>3·n / 2·n; 2·n / 5·n (4·n overwriting)</description></item>
/// <item><term>StochasticForward / StochasticBackward</term><description>10·n / 12·n (noise hash, logistic, sigmoid); 3·n / 8·n (one n less per gradient overwritten)</description></item>
/// <item><term>TopKForward</term><description>n·target² compares (rank of each in-edge, n = samples); 2·n·target</description></item>
/// <item><term>InEdgeNormForward / InEdgeNormBackward</term><description>2·n·target / 4·n·target (sum and divide per in-edge); n·(3·target + 1) / n·(4·target + 1)</description></item>
/// <item><term>StoreOutputEdge / ForceOutputEdge</term><description>0 / n·nodes(nodes+1)/2 compares; 2·n / n·(nodes + nodes(nodes+1)/2 + 1)</description></item>
/// <item><term>KeepRate</term><description>≈ 20 per keep input (two sigmoid passes); 2·B·E + B·N² + 1</description></item>
/// <item><term>BatchShaping</term><description>per edge 8·B + B² + 400·B (sigmoids, rank compares, incomplete betas); 2·B·E + E</description></item>
/// <item><term>TermSum</term><description>count; count + 1</description></item>
/// <item><term>TermBackward</term><description>2·n; 1 + 3·n (the host-computed gradient of a term, scaled and accumulated; 1 + 2·n overwriting)</description></item>
/// <item><term>DenseEdgesForward</term><description>4·n (a sigmoid per item); E logits + n</description></item>
/// <item><term>DenseEdgesBackward</term><description>B·E + 6·E; E + B·E + 2·E</description></item>
/// <item><term>ChainFill, Fill</term><description>0; n</description></item>
/// <item><term>Relu/Relu6/Sigmoid forward</term><description>1/2/4 per element; 2·n</description></item>
/// <item><term>Relu/Relu6/Sigmoid backward</term><description>1/1/4 per element; 4·n (x or y, dy, 2·dx; 3·n overwriting)</description></item>
/// <item><term>Copy, AddForward, MultiplyForward</term><description>0 / n / n; 2·n / 3·n / 3·n</description></item>
/// <item><term>Axpy, MultiplyBackward</term><description>2·n; 3·n (2·n overwriting) / 4·n</description></item>
/// <item><term>MaskSamplesForward / MaskSamplesBackward</term><description>n compares; 2·n + B / 3·n + B</description></item>
/// <item><term>CrossEntropyForward</term><description>6·B·K; B·K logits + B labels + B losses + B·K saved</description></item>
/// <item><term>CrossEntropyBackward</term><description>2·n; 1 + n + 2·n (n overwriting)</description></item>
/// <item><term>ArgmaxRows</term><description>rows·columns; rows·columns + rows</description></item>
/// <item><term>CorrectRows</term><description>rows·(columns + 1); rows·columns + 2·rows</description></item>
/// <item><term>SgdStep</term><description>2 (update) + 2 (decay) + 2 (momentum) + 2 (Nesterov) per element, as configured; param 2·n + grad n + momentum 2·n when used + the guard</description></item>
/// <item><term>StepGuard</term><description>the terms' sum, a square root and the comparisons (termCount + 8); reads the record (termCount + 2) and the guard</description></item>
/// <item><term>Max/AvgPoolForward</term><description>Ho·Wo·K² per plane (+ a division per output for avg); input + output (+ argmax for max)</description></item>
/// <item><term>Max/AvgPoolBackward</term><description>one add per (window, input) pair it gathers: outputs·K² for avg, outputs for max; output grad (+ argmax) + 2·dInput (dInput once overwriting)</description></item>
/// <item><term>GlobalAvgPoolBackward</term><description>2·n; n/S + 2·n (n overwriting)</description></item>
/// <item><term>SumChunks, SumBackward</term><description>n (2·n summing squares) / n; n + count / 1 + 2·n</description></item>
/// <item><term>GroupSums</term><description>groups·n adds (the tree and the target); groups·n partials + 2·n target</description></item>
/// <item><term>CopyRows</term><description>0; 2 index ints per row + 2·n</description></item>
/// </list>
/// </summary>
public static class KernelCosts
{
    private const double Float = sizeof(float);

    private static KernelCost Cost(long workItems, double flops, double floats, string? shape = null) =>
        new(workItems, flops, floats * Float, shape);

    /// <summary>Floats moved per element of a gradient a backward kernel writes: 2 when it accumulates (read and written), 1 when it overwrites.</summary>
    private static double Gradient(int accumulate) => accumulate != 0 ? 2.0 : 1.0;

    // ---- Activation ----

    public static KernelCost ReluForward(int n, int stride, ArrayView<float> x, ArrayView<float> y) => Cost(n, n, 2.0 * n);

    public static KernelCost ReluBackward(int n, int stride, int accumulate, ArrayView<float> x, ArrayView<float> dOutput, ArrayView<float> dInput) =>
        Cost(n, n, (2.0 + Gradient(accumulate)) * n);

    public static KernelCost Relu6Forward(int n, int stride, ArrayView<float> x, ArrayView<float> y) => Cost(n, 2.0 * n, 2.0 * n);

    public static KernelCost Relu6Backward(int n, int stride, int accumulate, ArrayView<float> x, ArrayView<float> dOutput, ArrayView<float> dInput) =>
        Cost(n, n, (2.0 + Gradient(accumulate)) * n);

    public static KernelCost SigmoidForward(int n, int stride, ArrayView<float> x, ArrayView<float> y) => Cost(n, 4.0 * n, 2.0 * n);

    public static KernelCost SigmoidBackward(int n, int stride, int accumulate, ArrayView<float> y, ArrayView<float> dOutput, ArrayView<float> dInput) =>
        Cost(n, 4.0 * n, (2.0 + Gradient(accumulate)) * n);

    // ---- Aggregation (every edge assumed kept: an upper bound, cut edges skip their reads) ----

    private static string Describe(AggregationShape s) => $"B={s.Batch} S={s.SampleSize} target={s.Target} sources={s.FirstSource}..{s.FirstSource + s.Count - 1}";

    public static KernelCost AggregationForward(int n, int stride, AggregationShape shape, int accumulate, ArrayView<float> adjacency, NodeViews ys, ArrayView<float> x)
    {
        double elements = (double)shape.Batch * shape.SampleSize;
        return Cost(n, 2.0 * shape.Count * elements,
            (double)shape.Batch * shape.Count + shape.Count * elements + (accumulate != 0 ? 2 : 1) * elements, Describe(shape));
    }

    public static KernelCost AggregationForwardRegisters(int n, int stride, AggregationShape shape, int accumulate, ArrayView<float> adjacency,
        NodeViews ys, ArrayView<float> x) => AggregationForward(n, stride, shape, accumulate, adjacency, ys, x);

    public static KernelCost AggregationBackwardSources(int n, int stride, AggregationShape shape, int gradMask, int accumulateMask,
        ArrayView<float> adjacency, ArrayView<float> dX, NodeViews dYs)
    {
        var (flops, floats, k) = SourceGradients(shape, gradMask, accumulateMask);
        return Cost(n, flops, floats + (double)shape.Batch * k + (double)shape.Batch * shape.SampleSize, Describe(shape));
    }

    public static KernelCost AggregationBackwardAdjacency(int n, int stride, AggregationShape shape, int cutEdgeMask, ArrayView<float> adjacency,
        NodeViews ys, ArrayView<float> dX, ArrayView<float> partial, ArrayView<float> dAdjacency)
    {
        var (flops, floats) = AdjacencyGradients(shape);
        return Cost(n, flops, floats + (double)shape.Batch * shape.Count + (double)shape.Batch * shape.SampleSize, Describe(shape));
    }

    public static KernelCost AggregationBackwardFusedChunks(int n, int stride, AggregationShape shape, int gradMask, int accumulateMask, int cutEdgeMask,
        ArrayView<float> adjacency, ArrayView<float> dX, NodeViews ys, NodeViews dYs, ArrayView<float> partial, ArrayView<float> dAdjacency) =>
        FusedBackward(n, shape, gradMask, accumulateMask);

    public static KernelCost AggregationBackwardFusedGroups(AggregationShape shape, int gradMask, int accumulateMask, int cutEdgeMask,
        ArrayView<float> adjacency, ArrayView<float> dX, NodeViews ys, NodeViews dYs, ArrayView<float> partial, ArrayView<float> dAdjacency) =>
        FusedBackward(shape.ChunkItems, shape, gradMask, accumulateMask);

    /// <summary>A fused backward: the source and adjacency gradients' FLOPs and floats, with A (B·count) and dX read once.</summary>
    private static KernelCost FusedBackward(long items, AggregationShape shape, int gradMask, int accumulateMask)
    {
        var (sourceFlops, sourceFloats, _) = SourceGradients(shape, gradMask, accumulateMask);
        var (dotFlops, dotFloats) = AdjacencyGradients(shape);
        double read = (double)shape.Batch * shape.Count + (double)shape.Batch * shape.SampleSize;
        return Cost(items, sourceFlops + dotFlops, sourceFloats + dotFloats + read, Describe(shape));
    }

    /// <summary>
    /// The source gradients of the k sources in <paramref name="gradMask"/>: 2·k·B·S FLOPs; floats without A and dX:
    /// k·B·S written, and read again for each accumulated one; and k.
    /// </summary>
    private static (double Flops, double Floats, int Sources) SourceGradients(AggregationShape shape, int gradMask, int accumulateMask)
    {
        int sources = gradMask & ((1 << shape.Count) - 1);
        int k = System.Numerics.BitOperations.PopCount((uint)sources);
        int accumulated = System.Numerics.BitOperations.PopCount((uint)(sources & accumulateMask));
        double elements = (double)shape.Batch * shape.SampleSize;
        return (2.0 * k * elements, ((double)k + accumulated) * elements, k);
    }

    /// <summary>
    /// The adjacency gradient's dot products: 2·count·B·S FLOPs; floats without A and dX: count·B·S of y and the output
    /// (B·count·parts partials, or dA read and written with one part).
    /// </summary>
    private static (double Flops, double Floats) AdjacencyGradients(AggregationShape shape)
    {
        double elements = (double)shape.Batch * shape.SampleSize, edges = (double)shape.Batch * shape.Count;
        double output = shape.Parts > 1 ? edges * shape.Parts : 2 * edges;
        return (2.0 * shape.Count * elements, shape.Count * elements + output);
    }

    public static KernelCost AggregationReduceAdjacencyGradient(int n, int stride, AggregationShape shape, ArrayView<float> partial, ArrayView<float> dAdjacency) =>
        Cost(n, (double)n * shape.Parts, (double)n * shape.Parts + 2.0 * n, Describe(shape));

    // ---- BatchNorm ----

    private static string Describe(int batch, int channels, int spatial) => $"B={batch} C={channels} S={spatial}";

    public static KernelCost BatchNormForwardStatistics(int channels, int stride, int batch, int spatial, float eps, float momentum,
        ArrayView<float> x, ArrayView<float> mean, ArrayView<float> invstd, ArrayView<float> runningMean, ArrayView<float> runningVar)
    {
        double elements = (double)batch * channels * spatial;
        return Cost(channels, 4 * elements + 10.0 * channels, elements + 6.0 * channels, Describe(batch, channels, spatial));
    }

    /// <summary>Chunks per channel of the partial-sum rungs.</summary>
    private static int Chunks(int count, int chunkLength) => (count + chunkLength - 1) / Math.Max(1, chunkLength);

    public static KernelCost BatchNormForwardStatisticsChunks(int items, int stride, int channels, int spatial, int count, int chunkLength,
        ArrayView<float> x, ArrayView<float> partials) => StatisticsPartials(items, channels, spatial, count);

    public static KernelCost BatchNormForwardStatisticsGroups(int channels, int spatial, int count, int chunkLength, int planeStep, int positionStep,
        ArrayView<float> x, ArrayView<float> partials) => StatisticsPartials((long)channels * Chunks(count, chunkLength), channels, spatial, count);

    /// <summary>A partial-statistics launch: x read once (4 FLOPs a value: shift, add, square, add), 2 floats per partial.</summary>
    private static KernelCost StatisticsPartials(long items, int channels, int spatial, int count)
    {
        double elements = (double)channels * count;
        return Cost(items, 4 * elements, elements + 2.0 * items, Describe(count / Math.Max(1, spatial), channels, spatial));
    }

    public static KernelCost BatchNormBackwardChannelSumsChunks(int items, int stride, int channels, int spatial, int count, int chunkLength,
        int reluMask, ArrayView<float> x, ArrayView<float> dOutput, ArrayView<float> output, ArrayView<float> mean, ArrayView<float> invstd,
        ArrayView<float> partials) => ChannelSumPartials(items, channels, spatial, count, reluMask);

    public static KernelCost BatchNormBackwardChannelSumsGroups(int channels, int spatial, int count, int chunkLength, int planeStep, int positionStep,
        int reluMask, ArrayView<float> x, ArrayView<float> dOutput, ArrayView<float> output, ArrayView<float> mean, ArrayView<float> invstd,
        ArrayView<float> partials) => ChannelSumPartials((long)channels * Chunks(count, chunkLength), channels, spatial, count, reluMask);

    /// <summary>A partial backward-sums launch: x and dy read once (and the output with the ReLU mask), 5 FLOPs a value (+1 for the mask).</summary>
    private static KernelCost ChannelSumPartials(long items, int channels, int spatial, int count, int reluMask)
    {
        double elements = (double)channels * count;
        bool masked = reluMask != 0;
        return Cost(items, (masked ? 6 : 5) * elements, (masked ? 3 : 2) * elements + 2.0 * channels + 2.0 * items,
            Describe(count / Math.Max(1, spatial), channels, spatial));
    }

    public static KernelCost BatchNormForwardStatisticsFinalize(int channels, int stride, int spatial, int count, int chunkLength, float eps,
        float momentum, ArrayView<float> x, ArrayView<float> partials, ArrayView<float> mean, ArrayView<float> invstd,
        ArrayView<float> runningMean, ArrayView<float> runningVar)
    {
        double parts = (double)channels * Chunks(count, chunkLength);
        return Cost(channels, 8 * parts + 12.0 * channels, 2 * parts + 7.0 * channels); // partials, the pivots, mean/invstd, running stats read and written
    }

    public static KernelCost BatchNormBackwardChannelSumsFinalize(int channels, int stride, int count, int chunkLength, ArrayView<float> partials,
        ArrayView<float> sumDy, ArrayView<float> sumDyXhat, int accumulateGamma, int accumulateBeta, ArrayView<float> dGamma, ArrayView<float> dBeta)
    {
        double parts = (double)channels * Chunks(count, chunkLength);
        int accumulated = (accumulateGamma != 0 ? 1 : 0) + (accumulateBeta != 0 ? 1 : 0);
        return Cost(channels, 2 * parts + accumulated * (double)channels, 2 * parts + 2.0 * channels + 2.0 * accumulated * channels);
    }

    public static KernelCost BatchNormInferenceStatistics(int channels, int stride, float eps, ArrayView<float> runningMean, ArrayView<float> runningVar,
        ArrayView<float> mean, ArrayView<float> invstd) => Cost(channels, 3.0 * channels, 4.0 * channels);

    public static KernelCost BatchNormForwardNormalize(int n, int stride, int channels, int spatial, ArrayView<float> x, ArrayView<float> mean,
        ArrayView<float> invstd, ArrayView<float> gamma, ArrayView<float> beta, ArrayView<float> y) =>
        Cost(n, 4.0 * n, 2.0 * n + 4.0 * channels, Describe(n / Math.Max(1, channels * spatial), channels, spatial));

    public static KernelCost BatchNormForwardNormalizeRelu(int n, int stride, int channels, int spatial, int addResidual, ArrayView<float> x,
        ArrayView<float> mean, ArrayView<float> invstd, ArrayView<float> gamma, ArrayView<float> beta, ArrayView<float> residual, ArrayView<float> y) =>
        Cost(n, (addResidual != 0 ? 6.0 : 5.0) * n, (addResidual != 0 ? 3.0 : 2.0) * n + 4.0 * channels,
            Describe(n / Math.Max(1, channels * spatial), channels, spatial));

    public static KernelCost BatchNormBackwardChannelSums(int channels, int stride, int batch, int spatial, ArrayView<float> x, ArrayView<float> dOutput,
        ArrayView<float> mean, ArrayView<float> invstd, ArrayView<float> sumDy, ArrayView<float> sumDyXhat)
    {
        double elements = (double)batch * channels * spatial;
        return Cost(channels, 5 * elements, 2 * elements + 4.0 * channels, Describe(batch, channels, spatial));
    }

    public static KernelCost BatchNormBackwardInput(int n, int stride, int channels, int spatial, float statisticsWeight, int accumulate,
        ArrayView<float> x, ArrayView<float> dOutput, ArrayView<float> mean, ArrayView<float> invstd, ArrayView<float> gamma,
        ArrayView<float> sums, ArrayView<float> dInput) =>
        Cost(n, 8.0 * n, (2.0 + Gradient(accumulate)) * n + 5.0 * channels, Describe(n / Math.Max(1, channels * spatial), channels, spatial));

    public static KernelCost BatchNormBackwardInputRelu(int n, int stride, int channels, int spatial, float statisticsWeight, int accumulate,
        ArrayView<float> x, ArrayView<float> dOutput, ArrayView<float> output, ArrayView<float> mean, ArrayView<float> invstd,
        ArrayView<float> gamma, ArrayView<float> sums, ArrayView<float> dInput) =>
        Cost(n, 9.0 * n, (3.0 + Gradient(accumulate)) * n + 5.0 * channels, Describe(n / Math.Max(1, channels * spatial), channels, spatial));

    // ---- BatchNorm, synchronised pieces: every value read once (masked: + the mask), sums in double ----

    public static KernelCost BatchNormForwardStatisticsPieces(int items, int stride, BatchNormPieces layout, ArrayView<float> live,
        ArrayView<float> pivot, ArrayView<float> x, ArrayView<double> sums) => Pieces(items, layout, 4, 1, 6);

    public static KernelCost BatchNormBackwardChannelSumsPieces(int items, int stride, BatchNormPieces layout, int reluMask, ArrayView<float> live,
        ArrayView<float> x, ArrayView<float> dOutput, ArrayView<float> output, ArrayView<float> mean, ArrayView<float> invstd,
        ArrayView<double> sums) => Pieces(items, layout, 5, 2 + reluMask, 4);

    /// <summary>A pieces launch: <paramref name="flopsPerValue"/> and <paramref name="floatsPerValue"/> per value read, the mask when masked, and the double sums written.</summary>
    private static KernelCost Pieces(int items, BatchNormPieces layout, int flopsPerValue, int floatsPerValue, int floatsPerItem)
    {
        double elements = (double)layout.Channels * layout.Count;
        return Cost(items, flopsPerValue * elements, floatsPerValue * elements + floatsPerItem * (double)items + 2.0 * layout.Channels
            + layout.Masked * (double)layout.Count / Math.Max(1, layout.Spatial), Describe(layout.Count / Math.Max(1, layout.Spatial), layout.Channels, layout.Spatial));
    }

    // ---- BatchNorm, live-sample path: the unmasked formulas with every sample live (an upper bound), + the [B] mask ----

    public static KernelCost BatchNormForwardStatisticsChunksMasked(int items, int stride, int channels, int spatial, int count, int chunkLength,
        ArrayView<float> live, ArrayView<float> x, ArrayView<float> partials) => MaskedPartials(items, channels, spatial, count);

    public static KernelCost BatchNormForwardStatisticsGroupsMasked(int channels, int spatial, int count, int chunkLength, int planeStep,
        int positionStep, ArrayView<float> live, ArrayView<float> x, ArrayView<float> partials) =>
        MaskedPartials((long)channels * Chunks(count, chunkLength), channels, spatial, count);

    /// <summary>A masked partial-statistics launch: as <see cref="StatisticsPartials"/> with 3 floats per partial and the mask read.</summary>
    private static KernelCost MaskedPartials(long items, int channels, int spatial, int count)
    {
        var c = StatisticsPartials(items, channels, spatial, count);
        return c with { Bytes = c.Bytes + 4.0 * (items + count / Math.Max(1, spatial)) };
    }

    public static KernelCost BatchNormForwardStatisticsFinalizeMasked(int channels, int stride, int spatial, int count, int chunkLength, float eps,
        float momentum, ArrayView<float> live, ArrayView<float> x, ArrayView<float> partials, ArrayView<float> mean, ArrayView<float> invstd,
        ArrayView<float> runningMean, ArrayView<float> runningVar)
    {
        double parts = (double)channels * Chunks(count, chunkLength);
        return Cost(channels, 8 * parts + 12.0 * channels, 3 * parts + 7.0 * channels + count / Math.Max(1, spatial));
    }

    public static KernelCost BatchNormBackwardChannelSumsChunksMasked(int items, int stride, int channels, int spatial, int count, int chunkLength,
        int reluMask, ArrayView<float> live, ArrayView<float> x, ArrayView<float> dOutput, ArrayView<float> output, ArrayView<float> mean,
        ArrayView<float> invstd, ArrayView<float> partials) => MaskedChannelSums(items, channels, spatial, count, reluMask);

    public static KernelCost BatchNormBackwardChannelSumsGroupsMasked(int channels, int spatial, int count, int chunkLength, int planeStep,
        int positionStep, int reluMask, ArrayView<float> live, ArrayView<float> x, ArrayView<float> dOutput, ArrayView<float> output,
        ArrayView<float> mean, ArrayView<float> invstd, ArrayView<float> partials) =>
        MaskedChannelSums((long)channels * Chunks(count, chunkLength), channels, spatial, count, reluMask);

    /// <summary>A masked backward-sums launch: as <see cref="ChannelSumPartials"/> with the mask read.</summary>
    private static KernelCost MaskedChannelSums(long items, int channels, int spatial, int count, int reluMask)
    {
        var c = ChannelSumPartials(items, channels, spatial, count, reluMask);
        return c with { Bytes = c.Bytes + (double)count / Math.Max(1, spatial) };
    }

    public static KernelCost BatchNormBackwardChannelSumsFinalizeMasked(int channels, int stride, int spatial, int count, int chunkLength,
        int training, ArrayView<float> live, ArrayView<float> partials, ArrayView<float> sums, int accumulateGamma, int accumulateBeta,
        ArrayView<float> dGamma, ArrayView<float> dBeta)
    {
        var c = BatchNormBackwardChannelSumsFinalize(channels, stride, count, chunkLength, partials, sums, sums, accumulateGamma, accumulateBeta,
            dGamma, dBeta);
        int batch = count / Math.Max(1, spatial);
        return c with { Flops = c.Flops + batch + 1, Bytes = c.Bytes + batch + 1 };
    }

    public static KernelCost BatchNormForwardNormalizeMasked(int n, int stride, int channels, int spatial, int relu, int addResidual,
        ArrayView<float> live, ArrayView<float> x, ArrayView<float> mean, ArrayView<float> invstd, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> residual, ArrayView<float> y)
    {
        int batch = n / Math.Max(1, channels * spatial);
        double flops = (4.0 + (relu != 0 ? 1 : 0) + (addResidual != 0 ? 1 : 0)) * n;
        return Cost(n, flops, (addResidual != 0 ? 3.0 : 2.0) * n + 4.0 * channels + batch, Describe(batch, channels, spatial));
    }

    public static KernelCost BatchNormBackwardInputMasked(int n, int stride, int channels, int spatial, int flags, ArrayView<float> live,
        ArrayView<float> x, ArrayView<float> dOutput, ArrayView<float> output, ArrayView<float> mean, ArrayView<float> invstd,
        ArrayView<float> gamma, ArrayView<float> sums, ArrayView<float> dInput)
    {
        int batch = n / Math.Max(1, channels * spatial);
        bool masked = (flags & BatchNormKernels.ReluFlag) != 0;
        return Cost(n, (masked ? 9.0 : 8.0) * n, ((masked ? 3.0 : 2.0) + Gradient(flags & BatchNormKernels.AccumulateFlag)) * n + 5.0 * channels + 1 + batch,
            Describe(batch, channels, spatial));
    }

    // ---- Conv2d ----

    public static KernelCost Conv2dForward(int n, int stride, Conv2dGeometry g, int channelBlock, ArrayView<float> input, ArrayView<float> weight,
        ArrayView<float> bias, int hasBias, ArrayView<float> output) =>
        Cost(n, 2.0 * g.Macs + (hasBias != 0 ? g.OutputLength : 0),
            (double)g.InputLength + g.WeightLength + (hasBias != 0 ? g.OutChannels : 0) + g.OutputLength, g.ToString());

    public static KernelCost Conv2dBackwardInput(int n, int stride, Conv2dGeometry g, int channelBlock, int accumulate, ArrayView<float> dOutput,
        ArrayView<float> weight, ArrayView<float> dInput) =>
        Cost(n, 2.0 * g.Macs, (double)g.OutputLength + g.WeightLength + Gradient(accumulate) * g.InputLength, g.ToString());

    public static KernelCost Conv2dForwardTiled(Conv2dGeometry g, int tileM, int tileN, int tileK, ArrayView<float> input, ArrayView<float> weight,
        ArrayView<float> bias, int hasBias, ArrayView<float> output) =>
        Conv2dForward(g.OutputLength, 0, g, 0, input, weight, bias, hasBias, output) with { Shape = $"{g} tiles {tileM}×{tileN}×{tileK}" };

    public static KernelCost Conv2dBackwardInputTiled(Conv2dGeometry g, int tileM, int tileN, int tileK, int accumulate, ArrayView<float> dOutput,
        ArrayView<float> weight, ArrayView<float> dInput) =>
        Conv2dBackwardInput(g.InputLength, 0, g, 0, accumulate, dOutput, weight, dInput) with { Shape = $"{g} tiles {tileM}×{tileN}×{tileK}" };

    public static KernelCost Conv2dForwardTiledTf32(Conv2dGeometry g, int tileM, int tileN, int tileK, ArrayView<float> input, ArrayView<float> weight,
        ArrayView<float> bias, int hasBias, ArrayView<float> output) =>
        Conv2dForwardTiled(g, tileM, tileN, tileK, input, weight, bias, hasBias, output) with { Shape = $"{g} tiles {tileM}×{tileN}×{tileK} TF32", Tf32 = true };

    public static KernelCost Conv2dBackwardInputTiledTf32(Conv2dGeometry g, int tileM, int tileN, int tileK, int accumulate, ArrayView<float> dOutput,
        ArrayView<float> weight, ArrayView<float> dInput) =>
        Conv2dBackwardInputTiled(g, tileM, tileN, tileK, accumulate, dOutput, weight, dInput) with { Shape = $"{g} tiles {tileM}×{tileN}×{tileK} TF32", Tf32 = true };

    public static KernelCost Conv2dBackwardWeightTiled(Conv2dGeometry g, int tileM, int tileN, int tileK, int splits, int accumulate,
        ArrayView<float> dOutput, ArrayView<float> input, ArrayView<float> target) =>
        Conv2dBackwardWeightSplit(splits * g.WeightLength, 0, g, 0, 0, splits, dOutput, input, target) with { Shape = $"{g} ×{splits} tiles {tileM}×{tileN}×{tileK}" };

    public static KernelCost Conv2dBackwardWeightTiledTf32(Conv2dGeometry g, int tileM, int tileN, int tileK, int splits, int accumulate,
        ArrayView<float> dOutput, ArrayView<float> input, ArrayView<float> target) =>
        Conv2dBackwardWeightTiled(g, tileM, tileN, tileK, splits, accumulate, dOutput, input, target) with { Shape = $"{g} ×{splits} tiles {tileM}×{tileN}×{tileK} TF32", Tf32 = true };

    public static KernelCost Conv2dForwardPlanes(Conv2dGeometry g, int tileHeight, int tileWidth, ArrayView<float> input, ArrayView<float> weight,
        ArrayView<float> bias, int hasBias, ArrayView<float> output) =>
        Conv2dForward(g.OutputLength, 0, g, 0, input, weight, bias, hasBias, output) with { Shape = $"{g} plane tiles {tileHeight}×{tileWidth}" };

    public static KernelCost Conv2dBackwardInputPlanes(Conv2dGeometry g, int tileHeight, int tileWidth, int accumulate, ArrayView<float> dOutput,
        ArrayView<float> weight, ArrayView<float> dInput) =>
        Conv2dBackwardInput(g.InputLength, 0, g, 0, accumulate, dOutput, weight, dInput) with { Shape = $"{g} plane tiles {tileHeight}×{tileWidth}" };

    public static KernelCost Conv2dBackwardWeightPlanes(Conv2dGeometry g, int tileHeight, int tileWidth, int splits, ArrayView<float> dOutput,
        ArrayView<float> input, ArrayView<float> partials) =>
        Conv2dBackwardWeightSplit(splits * g.WeightLength, 0, g, 0, 0, splits, dOutput, input, partials) with { Shape = $"{g} ×{splits} plane tiles {tileHeight}×{tileWidth}" };

    public static KernelCost Conv2dBackwardWeight(int n, int stride, Conv2dGeometry g, int outBlock, int inBlock, ArrayView<float> dOutput,
        ArrayView<float> input, ArrayView<float> dWeight) =>
        Cost(n, 2.0 * g.Macs, (double)g.OutputLength + g.InputLength + 2.0 * g.WeightLength, g.ToString());

    public static KernelCost Conv2dBackwardWeightSplit(int n, int stride, Conv2dGeometry g, int outBlock, int inBlock, int splits,
        ArrayView<float> dOutput, ArrayView<float> input, ArrayView<float> partials) =>
        Cost(n, 2.0 * g.Macs, (double)g.OutputLength + g.InputLength + (double)splits * g.WeightLength, $"{g} ×{splits}");

    public static KernelCost Conv2dBackwardWeightFinalize(int n, int stride, int splits, ArrayView<float> partials, ArrayView<float> dWeight) =>
        Cost(n, (double)splits * n, (double)splits * n + 2.0 * n);

    public static KernelCost Conv2dBackwardBias(int n, int stride, Conv2dGeometry g, ArrayView<float> dOutput, ArrayView<float> dBias) =>
        Cost(n, g.OutputLength, (double)g.OutputLength + 2.0 * g.OutChannels, g.ToString());

    // ---- Router ----

    public static KernelCost RouterForward(RouterShape shape, ArrayView<float> y, ArrayView<float> w1,
        ArrayView<float> b1, ArrayView<float> w2, ArrayView<float> b2, ArrayView<float> pooled, ArrayView<float> hiddenOut, ArrayView<float> a)
    {
        var (channels, spatial, hidden, outDegree) = shape;
        long batch = a.Length / Math.Max(1, outDegree), parameters = (long)hidden * channels + hidden + (long)outDegree * hidden + outDegree;
        return Cost(batch, batch * ((double)channels * spatial + 2.0 * ((double)hidden * channels + (double)outDegree * hidden) + outDegree),
            (double)batch * channels * spatial + parameters + batch * ((double)channels + hidden + outDegree), $"B={batch} C={channels} S={spatial} H={hidden} O={outDegree}");
    }

    public static KernelCost RouterBackwardActivations(RouterShape shape, ArrayView<float> dA, ArrayView<float> a,
        ArrayView<float> hiddenIn, ArrayView<float> w1, ArrayView<float> w2, ArrayView<float> dZ2, ArrayView<float> dZ1, ArrayView<float> dPooled)
    {
        var (channels, spatial, hidden, outDegree) = shape;
        long batch = a.Length / Math.Max(1, outDegree);
        return Cost(batch, batch * (3.0 * outDegree + 2.0 * ((double)outDegree * hidden + (double)hidden * channels)),
            batch * (3.0 * outDegree + 2.0 * hidden + channels) + (double)hidden * channels + (double)outDegree * hidden,
            $"B={batch} C={channels} S={spatial} H={hidden} O={outDegree}");
    }

    public static KernelCost RouterBackwardParameters(int n, int stride, int batch, int channels, int hidden, int outDegree, ArrayView<float> dZ1,
        ArrayView<float> dZ2, ArrayView<float> pooled, ArrayView<float> hiddenIn, ArrayView<float> dW1, ArrayView<float> db1, ArrayView<float> dW2,
        ArrayView<float> db2) =>
        Cost(n, 2.0 * batch * n, (double)batch * (2.0 * hidden + outDegree + channels) + 2.0 * n, $"B={batch} C={channels} H={hidden} O={outDegree}");

    // ---- Elementwise ----

    public static KernelCost Fill(int n, int stride, float value, ArrayView<float> y) => Cost(n, 0, n);

    public static KernelCost Copy(int n, int stride, ArrayView<float> x, ArrayView<float> y) => Cost(n, 0, 2.0 * n);

    public static KernelCost Axpy(int n, int stride, int accumulate, float alpha, ArrayView<float> x, ArrayView<float> y) =>
        Cost(n, 2.0 * n, (1.0 + Gradient(accumulate)) * n);

    public static KernelCost AddForward(int n, int stride, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y) => Cost(n, n, 3.0 * n);

    public static KernelCost MaskSamplesForward(int n, int stride, int sampleSize, ArrayView<float> live, ArrayView<float> x, ArrayView<float> y) =>
        Cost(n, n, 2.0 * n + (double)n / Math.Max(1, sampleSize));

    public static KernelCost MaskSamplesBackward(int n, int stride, int sampleSize, int accumulate, ArrayView<float> live, ArrayView<float> dOutput,
        ArrayView<float> dInput) => Cost(n, n, (1.0 + Gradient(accumulate)) * n + (double)n / Math.Max(1, sampleSize));

    public static KernelCost MultiplyForward(int n, int stride, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y) => Cost(n, n, 3.0 * n);

    public static KernelCost MultiplyBackward(int n, int stride, ArrayView<float> dOutput, ArrayView<float> other, ArrayView<float> dSelf) =>
        Cost(n, 2.0 * n, 4.0 * n);

    // ---- Gate ----

    public static KernelCost GateForward(int n, int stride, int nodes, int node, float tau, ArrayView<float> a, ArrayView<float> adjacency) =>
        Cost(n, n, 2.0 * n);

    public static KernelCost GateBackward(int n, int stride, int nodes, int node, float tau, int straightThrough, int accumulate, ArrayView<float> a,
        ArrayView<float> adjacency, ArrayView<float> dAdjacency, ArrayView<float> dWeights) => Cost(n, 2.0 * n, (3.0 + Gradient(accumulate)) * n);

    public static KernelCost ContinuousForward(int n, int stride, int nodes, int node, float tau, ArrayView<float> a, ArrayView<float> adjacency) =>
        Cost(n, 3.0 * n, 2.0 * n);

    public static KernelCost ContinuousBackward(int n, int stride, int nodes, int node, float tau, int accumulate, ArrayView<float> a,
        ArrayView<float> adjacency, ArrayView<float> dAdjacency, ArrayView<float> dWeights) => Cost(n, 2.0 * n, (3.0 + Gradient(accumulate)) * n);

    public static KernelCost StochasticForward(int n, int stride, int nodes, int node, int noise, int key, ArrayView<float> weights,
        ArrayView<float> logits, ArrayView<float> adjacency) => Cost(n, 10.0 * n, 3.0 * n);

    public static KernelCost StochasticBackward(int n, int stride, int nodes, int node, float temperature, int noise, int key, int accumulateMask,
        ArrayView<float> weights, ArrayView<float> logits, ArrayView<float> adjacency, ArrayView<float> dAdjacency, ArrayView<float> dWeights,
        ArrayView<float> dLogits) => Cost(n, 12.0 * n, (4.0 + Gradient(accumulateMask & 1) + Gradient(accumulateMask & 2)) * n);

    public static KernelCost TopKForward(int n, int stride, int nodes, int target, int k, ArrayView<float> adjacency) =>
        Cost(n, (double)n * target * target, 2.0 * n * target);

    public static KernelCost InEdgeNormForward(int n, int stride, int nodes, int target, ArrayView<float> adjacency, ArrayView<float> scale) =>
        Cost(n, 2.0 * n * target, 3.0 * n * target + n);

    public static KernelCost InEdgeNormBackward(int n, int stride, int nodes, int target, ArrayView<float> adjacency, ArrayView<float> scale,
        ArrayView<float> dAdjacency) => Cost(n, 4.0 * n * target, 4.0 * n * target + n);

    public static KernelCost StoreOutputEdge(int n, int stride, int nodes, int node, ArrayView<float> weights, ArrayView<float> fallback) =>
        Cost(n, 0, 2.0 * n);

    public static KernelCost ForceOutputEdge(int n, int stride, int nodes, ArrayView<float> fallback, ArrayView<float> adjacency) =>
        Cost(n, (double)n * nodes * (nodes + 1) / 2, (double)n * (nodes + nodes * (nodes + 1) / 2.0 + 1));

    public static KernelCost NodeLiveMask(int n, int stride, int nodes, int node, ArrayView<float> adjacency, ArrayView<float> live) =>
        Cost(n, (double)n * node, (double)n * node + n);

    public static KernelCost ClearOffRow(int n, int stride, int nodes, int node, ArrayView<float> live, ArrayView<float> adjacency) =>
        Cost(n, n, (double)n / (nodes + 1) + 2.0 * n);

    public static KernelCost KeepRate(int nodes, int batch, float offset, float scale, float rho, float weight, float gradientScale, int slot,
        ArrayView<float> inputs, ArrayView<float> adjacency, ArrayView<float> terms, ArrayView<float> local)
    {
        double n = (double)batch * nodes * (nodes + 1) / 2; // two passes over the B·E keep inputs (sigmoid ≈ 8 FLOPs), the adjacency read once
        return Cost((long)n, 20.0 * n, 2.0 * n + (double)batch * (nodes + 1) * (nodes + 1) + 1);
    }

    public static KernelCost BatchShaping(int nodes, int batch, float offset, float scale, float alpha, float beta, float logBeta,
        float gradientFactor, int slot, ArrayView<float> inputs, ArrayView<float> terms, ArrayView<float> local)
    {
        double edges = nodes * (nodes + 1) / 2.0, n = batch * edges; // per edge: B sigmoids, B² rank compares, B incomplete betas (≈ 40 steps)
        return Cost((long)n, edges * (8.0 * batch + (double)batch * batch + 400.0 * batch), 2.0 * n + edges);
    }

    public static KernelCost TermSum(int n, int stride, int count, float factor, ArrayView<float> terms, ArrayView<float> output) =>
        Cost(1, count, count + 1.0);

    public static KernelCost TermBackward(int n, int stride, int accumulate, ArrayView<float> dOutput, ArrayView<float> gradient, ArrayView<float> dInput) =>
        Cost(n, 2.0 * n, 1 + (1.0 + Gradient(accumulate)) * n);

    public static KernelCost DenseEdgesForward(int n, int stride, int nodes, ArrayView<float> logits, ArrayView<float> adjacency) =>
        Cost(n, 4.0 * n, nodes * (nodes + 1) / 2.0 + n);

    public static KernelCost DenseEdgesBackward(int n, int stride, int nodes, int batch, ArrayView<float> logits, ArrayView<float> dAdjacency,
        ArrayView<float> dLogits) => Cost(n, (double)batch * n + 6.0 * n, 3.0 * n + (double)batch * n);

    public static KernelCost ChainFill(int n, int stride, int nodes, ArrayView<float> adjacency) => Cost(n, 0, n);

    // ---- Indexing ----

    public static KernelCost CopyRows(int n, int stride, int rowLength, ArrayView<int> srcRows, ArrayView<int> dstRows, ArrayView<float> src,
        ArrayView<float> dst) => Cost(n, 0, 2.0 * n / Math.Max(1, rowLength) + 2.0 * n);

    // ---- Linear ----

    private static int Blocks(int features) => (features + LinearKernels.Block - 1) / LinearKernels.Block;

    private static string Describe(long batch, int inFeatures, int outFeatures) => $"B={batch} in={inFeatures} out={outFeatures}";

    public static KernelCost LinearForward(int tiles, int stride, int inFeatures, int outFeatures, int hasBias, int activation, ArrayView<float> x,
        ArrayView<float> weight, ArrayView<float> bias, ArrayView<float> y)
    {
        long batch = tiles / Blocks(outFeatures);
        double outputs = (double)batch * outFeatures;
        return Cost(tiles, 2.0 * batch * inFeatures * outFeatures + (hasBias != 0 ? outputs : 0) + (activation != 0 ? outputs : 0),
            (double)batch * inFeatures + (double)outFeatures * inFeatures + (hasBias != 0 ? outFeatures : 0) + outputs,
            Describe(batch, inFeatures, outFeatures));
    }

    public static KernelCost LinearBackwardInput(int tiles, int stride, int inFeatures, int outFeatures, int activation, int accumulate,
        ArrayView<float> dOutput, ArrayView<float> y, ArrayView<float> weight, ArrayView<float> dInput)
    {
        long batch = tiles / Blocks(inFeatures);
        double outputs = (double)batch * outFeatures;
        return Cost(tiles, 2.0 * batch * inFeatures * outFeatures + (activation != 0 ? outputs : 0),
            outputs * (activation != 0 ? 2 : 1) + (double)outFeatures * inFeatures + Gradient(accumulate) * batch * inFeatures, Describe(batch, inFeatures, outFeatures));
    }

    public static KernelCost LinearBackwardWeight(int tiles, int stride, int batch, int inFeatures, int outFeatures, int activation,
        ArrayView<float> dOutput, ArrayView<float> y, ArrayView<float> x, ArrayView<float> dWeight)
    {
        double outputs = (double)batch * outFeatures;
        return Cost(tiles, 2.0 * batch * inFeatures * outFeatures + (activation != 0 ? outputs : 0),
            outputs * (activation != 0 ? 2 : 1) + (double)batch * inFeatures + 2.0 * outFeatures * inFeatures, Describe(batch, inFeatures, outFeatures));
    }

    public static KernelCost LinearBackwardBias(int outFeatures, int stride, int batch, int activation, ArrayView<float> dOutput, ArrayView<float> y,
        ArrayView<float> dBias)
    {
        double outputs = (double)batch * outFeatures;
        return Cost(outFeatures, outputs * (activation != 0 ? 2 : 1), outputs * (activation != 0 ? 2 : 1) + 2.0 * outFeatures);
    }

    // ---- Loss ----

    public static KernelCost CrossEntropyForward(int batch, int stride, int classes, float smoothing, float invBatch, ArrayView<float> logits,
        ArrayView<int> labels, ArrayView<float> loss, ArrayView<float> saved) =>
        Cost(batch, 6.0 * batch * classes, 2.0 * batch * classes + 2.0 * batch, $"B={batch} K={classes}");

    public static KernelCost CrossEntropyBackward(int n, int stride, int accumulate, ArrayView<float> dLoss, ArrayView<float> saved, ArrayView<float> dLogits) =>
        Cost(n, 2.0 * n, 1 + (1.0 + Gradient(accumulate)) * n);

    public static KernelCost ArgmaxRows(int rows, int stride, int columns, ArrayView<float> x, ArrayView<int> result) =>
        Cost(rows, (double)rows * columns, (double)rows * columns + rows);

    public static KernelCost CorrectRows(int rows, int stride, int columns, ArrayView<float> x, ArrayView<int> labels, ArrayView<float> correct) =>
        Cost(rows, (double)rows * (columns + 1), (double)rows * columns + 2.0 * rows);

    // ---- Optimizer ----

    public static KernelCost SgdStep(int n, int stride, float learningRate, float momentum, float weightDecay, int nesterov, int decoupled,
        ArrayView<float> param, ArrayView<float> grad, ArrayView<float> momentumBuffer, ArrayView<float> guard)
    {
        bool usesMomentum = momentum != 0f;
        double perElement = 2 + 2 + (usesMomentum ? 2 : 0) + (usesMomentum && nesterov != 0 ? 2 : 0);
        return Cost(n, perElement * n, 3.0 * n + (usesMomentum ? 2.0 * n : 0) + 1);
    }

    public static KernelCost StepGuard(int n, int stride, int termCount, int slot, int recordLength, float maxLoss, float lossLimit,
        float maxGradNorm, ArrayView<float> status) =>
        Cost(1, termCount + 8, termCount + 3);

    // ---- Pooling ----

    private static string Describe(Pool2dGeometry g) => $"planes={g.Planes} {g.Height}x{g.Width} K={g.Kernel} s={g.Stride} p={g.Padding}";

    public static KernelCost GlobalAvgPoolBackward(int n, int stride, int spatial, float scale, int accumulate, ArrayView<float> dOutput,
        ArrayView<float> dInput) =>
        Cost(n, 2.0 * n, (double)n / Math.Max(1, spatial) + Gradient(accumulate) * n);

    public static KernelCost MaxPoolForward(int n, int stride, Pool2dGeometry g, ArrayView<float> x, ArrayView<float> y, ArrayView<float> argmax) =>
        Cost(n, (double)g.OutputLength * g.Kernel * g.Kernel, (double)g.InputLength + 2.0 * g.OutputLength, Describe(g));

    public static KernelCost MaxPoolBackward(int n, int stride, Pool2dGeometry g, int accumulate, ArrayView<float> argmax, ArrayView<float> dOutput,
        ArrayView<float> dInput) =>
        Cost(n, g.OutputLength, 2.0 * g.OutputLength + Gradient(accumulate) * g.InputLength, Describe(g));

    public static KernelCost AvgPoolForward(int n, int stride, Pool2dGeometry g, int countIncludePad, ArrayView<float> x, ArrayView<float> y) =>
        Cost(n, (double)g.OutputLength * (g.Kernel * g.Kernel + 1), (double)g.InputLength + g.OutputLength, Describe(g));

    public static KernelCost AvgPoolBackward(int n, int stride, Pool2dGeometry g, int countIncludePad, int accumulate, ArrayView<float> dOutput,
        ArrayView<float> dInput) =>
        Cost(n, (double)g.OutputLength * g.Kernel * g.Kernel, (double)g.OutputLength + Gradient(accumulate) * g.InputLength, Describe(g));

    // ---- Reduction ----

    public static KernelCost SumChunks(int count, int stride, int chunk, int n, float scale, int squares, ArrayView<float> x, ArrayView<float> y) =>
        Cost(count, (squares != 0 ? 2.0 : 1.0) * n, (double)n + count, $"n={n} chunk={chunk}");

    public static KernelCost SumBackward(int n, int stride, float scale, ArrayView<float> dOutput, ArrayView<float> dInput) => Cost(n, n, 1 + 2.0 * n);

    public static KernelCost GroupSums(int n, int stride, int groups, ArrayView<float> partials, ArrayView<float> target) =>
        Cost(n, (double)groups * n, (double)groups * n + 2.0 * n, $"n={n} groups={groups}");
}
