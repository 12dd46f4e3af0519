using ILGPU;

namespace IlgpuDdw.Kernels;

/// <summary>
/// Up to <see cref="Capacity"/> node-output views passed to one aggregation launch by value (the node outputs
/// are separate tensors, so a model writes each node's output wherever its block puts it, with no copy into a
/// stage buffer). Slots past the launch's source count are never read.
/// </summary>
public struct NodeViews
{
    /// <summary>Most sources one launch reads; a target with more in-edges takes several launches.</summary>
    public const int Capacity = 8;

    /// <summary>Source slot 0.</summary>
    public ArrayView<float> V0;
    /// <summary>Source slot 1.</summary>
    public ArrayView<float> V1;
    /// <summary>Source slot 2.</summary>
    public ArrayView<float> V2;
    /// <summary>Source slot 3.</summary>
    public ArrayView<float> V3;
    /// <summary>Source slot 4.</summary>
    public ArrayView<float> V4;
    /// <summary>Source slot 5.</summary>
    public ArrayView<float> V5;
    /// <summary>Source slot 6.</summary>
    public ArrayView<float> V6;
    /// <summary>Source slot 7.</summary>
    public ArrayView<float> V7;

    /// <summary>Slot s (0 ≤ s &lt; <see cref="Capacity"/>).</summary>
    public readonly ArrayView<float> Get(int s) => s switch
    {
        0 => V0,
        1 => V1,
        2 => V2,
        3 => V3,
        4 => V4,
        5 => V5,
        6 => V6,
        _ => V7,
    };

    /// <summary>Sets slot s (host side).</summary>
    public void Set(int s, ArrayView<float> view)
    {
        switch (s)
        {
            case 0: V0 = view; break;
            case 1: V1 = view; break;
            case 2: V2 = view; break;
            case 3: V3 = view; break;
            case 4: V4 = view; break;
            case 5: V5 = view; break;
            case 6: V6 = view; break;
            default: V7 = view; break;
        }
    }
}

/// <summary>
/// One aggregation launch: target node <see cref="Target"/> of a stage whose adjacency is
/// <c>A [Batch, Size, Size]</c> (see <see cref="GateKernels"/>), reading the sources
/// <c>FirstSource .. FirstSource + Count − 1</c> (slot s of <see cref="NodeViews"/> is node FirstSource + s),
/// every tensor <c>[Batch, SampleSize]</c> (SampleSize = C·H·W). Work items are (sample, chunk) pairs:
/// sample b's SampleSize elements are cut into <see cref="ChunksPerSample"/> contiguous chunks of
/// <see cref="Chunk"/> elements (the last may be shorter); the edge weight is uniform over a work item, so a
/// cut edge skips a whole chunk. Adjacency-gradient items are (sample, source, part) triples, the sample cut
/// into <see cref="Parts"/> contiguous parts of <see cref="PartLength"/> elements.
/// </summary>
public readonly struct AggregationShape
{
    public readonly int Batch;
    /// <summary>Elements per sample of every node output (C·H·W).</summary>
    public readonly int SampleSize;
    /// <summary>Adjacency side N = n + 1.</summary>
    public readonly int Size;
    /// <summary>Target node j (1 ≤ j ≤ n).</summary>
    public readonly int Target;
    /// <summary>Node index of source slot 0.</summary>
    public readonly int FirstSource;
    /// <summary>Sources in this launch (1..<see cref="NodeViews.Capacity"/>).</summary>
    public readonly int Count;
    /// <summary>Elements per forward/source-gradient work item.</summary>
    public readonly int Chunk;
    /// <summary>⌈SampleSize / Chunk⌉.</summary>
    public readonly int ChunksPerSample;
    /// <summary>Parts per sample in the adjacency gradient (1: each thread owns a whole edge).</summary>
    public readonly int Parts;
    /// <summary>⌈SampleSize / Parts⌉.</summary>
    public readonly int PartLength;

    /// <summary>Creates the shape; chunk and parts are clamped to [1, sampleSize].</summary>
    public AggregationShape(int batch, int sampleSize, int size, int target, int firstSource, int count, int chunk, int parts)
    {
        Batch = batch;
        SampleSize = sampleSize;
        Size = size;
        Target = target;
        FirstSource = firstSource;
        Count = count;
        Chunk = Math.Clamp(chunk, 1, sampleSize);
        ChunksPerSample = (sampleSize + Chunk - 1) / Chunk;
        Parts = Math.Clamp(parts, 1, sampleSize);
        PartLength = (sampleSize + Parts - 1) / Parts;
    }

    /// <summary>Forward/source-gradient work items: Batch · ChunksPerSample.</summary>
    public int ChunkItems => Batch * ChunksPerSample;

    /// <summary>Adjacency-gradient work items: Batch · Count · Parts.</summary>
    public int PartItems => Batch * Count * Parts;

    /// <summary>
    /// The flat element range <c>[first, last)</c> of forward/source-gradient work item <paramref name="item"/>
    /// (sample <paramref name="b"/>, one chunk of its SampleSize elements).
    /// </summary>
    public void ChunkRange(int item, out int b, out int first, out int last)
    {
        b = item / ChunksPerSample;
        int start = (item - b * ChunksPerSample) * Chunk;
        first = b * SampleSize + start;
        last = b * SampleSize + Math.Min(start + Chunk, SampleSize);
    }

    /// <summary>Offset of <c>A[b, FirstSource + s, Target]</c>.</summary>
    public int EdgeIndex(int b, int s) => (b * Size + FirstSource + s) * Size + Target;
}

/// <summary>
/// Adjacency-masked aggregation of a DDW stage, <c>x_j[b] = Σ_{i&lt;j} A[b, i, j] · y_i[b]</c>, and its
/// backward: <c>dY_i[b] += A[b, i, j] · dX_j[b]</c> and <c>dA[b, i, j] += &lt;y_i[b], dX_j[b]&gt;</c>.
/// Cut edges (A = 0) are skipped for a whole work item, so the work falls with the keep rate. Nothing is
/// saved beyond A and the node outputs (the aggregate is never needed by the backward). Launch layout and
/// indexing: <see cref="AggregationShape"/>. Deterministic: every output element is written by one thread,
/// sources are visited in index order.
/// </summary>
public static class AggregationKernels
{
    /// <summary>
    /// <c>x[b, e] (=|+=) Σ_s A[b, FirstSource + s, Target] · ys_s[b, e]</c> over the kept sources of the
    /// launch; n = shape.ChunkItems. With accumulate = 0 the first kept source overwrites x (a sample with every
    /// source cut gets 0); with accumulate ≠ 0 (a further launch of the same target) it adds.
    /// </summary>
    [Kernel]
    public static void Forward(Index1D index, int n, int stride, AggregationShape shape, int accumulate,
        ArrayView<float> adjacency, NodeViews ys, ArrayView<float> x)
    {
        for (int w = index; w < n; w += stride)
        {
            shape.ChunkRange(w, out int b, out int first, out int last);
            bool written = accumulate != 0;
            for (int s = 0; s < shape.Count; s++)
            {
                float a = adjacency[shape.EdgeIndex(b, s)];
                if (a == 0f) continue;
                var y = ys.Get(s);
                if (written)
                {
                    for (int e = first; e < last; e++)
                        x[e] += a * y[e];
                }
                else
                {
                    for (int e = first; e < last; e++)
                        x[e] = a * y[e];
                    written = true;
                }
            }
            if (!written)
            {
                for (int e = first; e < last; e++)
                    x[e] = 0f;
            }
        }
    }

    /// <summary>
    /// Backward to the node outputs: <c>dYs_s[b, e] += A[b, FirstSource + s, Target] · dX[b, e]</c> for the
    /// kept sources whose bit is set in <paramref name="gradMask"/>; n = shape.ChunkItems (the chunks cover every
    /// element of every sample once). Accumulates into the sources whose bit is set in
    /// <paramref name="accumulateMask"/>; the others are overwritten (a cut edge writes 0, see
    /// <see cref="ElementwiseKernels.Prior"/>).
    /// </summary>
    [Kernel]
    public static void BackwardSources(Index1D index, int n, int stride, AggregationShape shape, int gradMask, int accumulateMask,
        ArrayView<float> adjacency, ArrayView<float> dX, NodeViews dYs)
    {
        for (int w = index; w < n; w += stride)
        {
            shape.ChunkRange(w, out int b, out int first, out int last);
            for (int s = 0; s < shape.Count; s++)
            {
                if (((gradMask >> s) & 1) == 0) continue;
                int accumulate = (accumulateMask >> s) & 1;
                float a = adjacency[shape.EdgeIndex(b, s)];
                var dY = dYs.Get(s);
                if (a == 0f)
                {
                    if (accumulate == 0)
                    {
                        for (int e = first; e < last; e++)
                            dY[e] = 0f;
                    }
                    continue;
                }
                for (int e = first; e < last; e++)
                    dY[e] = ElementwiseKernels.Prior(accumulate, dY, e) + a * dX[e];
            }
        }
    }

    /// <summary>
    /// Backward to the adjacency: per (b, s, part) item (n = shape.PartItems) the partial dot product
    /// <c>Σ_{e in part} ys_s[b, e] · dX[b, e]</c> of edge (FirstSource + s → Target), computed when the edge is
    /// kept or its bit is set in <paramref name="cutEdgeMask"/> (the gate needs cut-edge gradients: straight-
    /// through, dense), else 0. With shape.Parts = 1 the thread owns the whole edge and accumulates into
    /// <c>dAdjacency</c> directly (partial unused); otherwise it overwrites <c>partial[item]</c> and
    /// <see cref="ReduceAdjacencyGradient"/> adds the parts in order.
    /// </summary>
    [Kernel]
    public static void BackwardAdjacency(Index1D index, int n, int stride, AggregationShape shape, int cutEdgeMask,
        ArrayView<float> adjacency, NodeViews ys, ArrayView<float> dX, ArrayView<float> partial, ArrayView<float> dAdjacency)
    {
        for (int w = index; w < n; w += stride)
        {
            int edge = w / shape.Parts;
            int part = w - edge * shape.Parts;
            int b = edge / shape.Count;
            int s = edge - b * shape.Count;
            int at = shape.EdgeIndex(b, s);
            float dot = 0f;
            if (adjacency[at] != 0f || ((cutEdgeMask >> s) & 1) != 0)
            {
                int start = part * shape.PartLength;
                int end = start + shape.PartLength;
                if (end > shape.SampleSize) end = shape.SampleSize;
                int bas = b * shape.SampleSize;
                var y = ys.Get(s);
                for (int e = bas + start; e < bas + end; e++)
                    dot += y[e] * dX[e];
            }
            if (shape.Parts == 1)
                dAdjacency[at] += dot;
            else
                partial[w] = dot;
        }
    }

    /// <summary>
    /// Second pass of <see cref="BackwardAdjacency"/> when shape.Parts &gt; 1: <c>dAdjacency[b, FirstSource + s,
    /// Target] += Σ_p partial[(b · Count + s) · Parts + p]</c>, p in order; n = Batch·Count. Accumulates.
    /// </summary>
    [Kernel(Launcher = "AggregationReduceAdjacencyGradient")]
    public static void ReduceAdjacencyGradient(Index1D index, int n, int stride, AggregationShape shape,
        ArrayView<float> partial, ArrayView<float> dAdjacency)
    {
        for (int edge = index; edge < n; edge += stride)
        {
            int b = edge / shape.Count;
            int s = edge - b * shape.Count;
            float sum = 0f;
            for (int p = 0; p < shape.Parts; p++)
                sum += partial[edge * shape.Parts + p];
            dAdjacency[shape.EdgeIndex(b, s)] += sum;
        }
    }
}
