using System.Runtime.CompilerServices;
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

    /// <summary>
    /// Whether the adjacency-gradient parts are the chunks (<see cref="Parts"/> = <see cref="ChunksPerSample"/>), as the
    /// fused backward kernels need: part p of an edge is then the dot product over chunk p of its sample.
    /// </summary>
    public bool PartsAreChunks => Parts == ChunksPerSample;
}

/// <summary>
/// The per-source registers of one (sample, chunk) item of <see cref="AggregationKernels.ForwardRegisters"/>,
/// <see cref="AggregationKernels.BackwardFusedChunks"/> and <see cref="AggregationKernels.BackwardFusedGroups"/>: the
/// edge weights <c>A[b, FirstSource + s, Target]</c> (0 for the slots s ≥ Count, which are therefore never read) and the
/// running dot products <c>&lt;y_s, dX&gt;</c>. One named field a slot, and the per-element code written out slot by slot:
/// ILGPU 1.5.3 does not unroll loops and keeps a local array in registers only when every index is a constant.
/// </summary>
internal struct SourceSlots
{
    public float A0, A1, A2, A3, A4, A5, A6, A7;
    public float D0, D1, D2, D3, D4, D5, D6, D7;

    /// <summary>The weights of sample <paramref name="b"/>'s sources in this launch; dot products 0.</summary>
    public static SourceSlots Load(AggregationShape shape, ArrayView<float> adjacency, int b)
    {
        var w = default(SourceSlots);
        w.A0 = Weight(shape, adjacency, b, 0);
        w.A1 = Weight(shape, adjacency, b, 1);
        w.A2 = Weight(shape, adjacency, b, 2);
        w.A3 = Weight(shape, adjacency, b, 3);
        w.A4 = Weight(shape, adjacency, b, 4);
        w.A5 = Weight(shape, adjacency, b, 5);
        w.A6 = Weight(shape, adjacency, b, 6);
        w.A7 = Weight(shape, adjacency, b, 7);
        return w;
    }

    private static float Weight(AggregationShape shape, ArrayView<float> adjacency, int b, int s) =>
        s < shape.Count ? adjacency[shape.EdgeIndex(b, s)] : 0f;

    /// <summary>Bit s set where slot s's edge is kept (A ≠ 0).</summary>
    public readonly int Kept =>
        (A0 != 0f ? 1 : 0) | (A1 != 0f ? 2 : 0) | (A2 != 0f ? 4 : 0) | (A3 != 0f ? 8 : 0)
        | (A4 != 0f ? 16 : 0) | (A5 != 0f ? 32 : 0) | (A6 != 0f ? 64 : 0) | (A7 != 0f ? 128 : 0);

    /// <summary>Dot product of slot s (a chain of conditionals, no <c>switch</c>: constant-index registers stay registers).</summary>
    public readonly float Dot(int s) =>
        s == 0 ? D0 : s == 1 ? D1 : s == 2 ? D2 : s == 3 ? D3 : s == 4 ? D4 : s == 5 ? D5 : s == 6 ? D6 : D7;

    /// <summary>
    /// <c>x[e] = start + Σ_s A_s · ys_s[e]</c> over the kept slots in slot order, for e = first, first + step, … &lt; last;
    /// <paramref name="accumulate"/> ≠ 0 starts from x[e], else from −0 (−0 + v = v bit for bit, so the first kept source
    /// gives exactly A·y as an overwrite does). Call with at least one slot kept.
    /// </summary>
    public readonly void Forward(int accumulate, NodeViews ys, ArrayView<float> x, int first, int last, int step)
    {
        for (int e = first; e < last; e += step)
        {
            float sum = accumulate != 0 ? x[e] : -0f;
            sum = Term(sum, A0, ys.V0, e);
            sum = Term(sum, A1, ys.V1, e);
            sum = Term(sum, A2, ys.V2, e);
            sum = Term(sum, A3, ys.V3, e);
            sum = Term(sum, A4, ys.V4, e);
            sum = Term(sum, A5, ys.V5, e);
            sum = Term(sum, A6, ys.V6, e);
            sum = Term(sum, A7, ys.V7, e);
            x[e] = sum;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Term(float sum, float a, ArrayView<float> y, int e)
    {
        if (a != 0f) sum += a * y[e];
        return sum;
    }

    /// <summary>
    /// For e = first, first + step, … &lt; last, reading dX[e] once: every slot with its <see cref="SlotMasks.Grad"/> bit
    /// writes <c>dY_s[e] = Prior + A_s · dX[e]</c> when kept, 0 when cut and overwriting (nothing when cut and
    /// accumulating); every slot with its <see cref="SlotMasks.Dot"/> bit adds <c>ys_s[e] · dX[e]</c> to its dot product.
    /// </summary>
    public void Backward(SlotMasks masks, NodeViews ys, NodeViews dYs, ArrayView<float> dX, int first, int last, int step)
    {
        for (int e = first; e < last; e += step)
        {
            float g = dX[e];
            D0 = Step(D0, 0, A0, masks, ys.V0, dYs.V0, e, g);
            D1 = Step(D1, 1, A1, masks, ys.V1, dYs.V1, e, g);
            D2 = Step(D2, 2, A2, masks, ys.V2, dYs.V2, e, g);
            D3 = Step(D3, 3, A3, masks, ys.V3, dYs.V3, e, g);
            D4 = Step(D4, 4, A4, masks, ys.V4, dYs.V4, e, g);
            D5 = Step(D5, 5, A5, masks, ys.V5, dYs.V5, e, g);
            D6 = Step(D6, 6, A6, masks, ys.V6, dYs.V6, e, g);
            D7 = Step(D7, 7, A7, masks, ys.V7, dYs.V7, e, g);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Step(float dot, int s, float a, SlotMasks masks, ArrayView<float> y, ArrayView<float> dY, int e, float g)
    {
        if (((masks.Grad >> s) & 1) != 0)
        {
            int accumulate = (masks.Accumulate >> s) & 1;
            if (a != 0f)
                dY[e] = ElementwiseKernels.Prior(accumulate, dY, e) + a * g;
            else if (accumulate == 0)
                dY[e] = 0f;
        }
        if (((masks.Dot >> s) & 1) != 0)
            dot += y[e] * g;
        return dot;
    }

    /// <summary>
    /// Writes dot product <paramref name="value"/> of slot s for chunk <paramref name="part"/> of sample b: added to
    /// <c>dAdjacency[b, FirstSource + s, Target]</c> when the sample is one chunk (shape.Parts = 1), else written to
    /// <c>partial[(b · Count + s) · Parts + part]</c> (overwrite) for <see cref="AggregationKernels.ReduceAdjacencyGradient"/>.
    /// </summary>
    public static void StoreDot(AggregationShape shape, int b, int part, int s, float value, ArrayView<float> partial, ArrayView<float> dAdjacency)
    {
        if (shape.Parts == 1)
            dAdjacency[shape.EdgeIndex(b, s)] += value;
        else
            partial[(b * shape.Count + s) * shape.Parts + part] = value;
    }
}

/// <summary>The per-slot bits of a fused backward item: bit s of each field is slot s's.</summary>
internal readonly struct SlotMasks
{
    /// <summary>Slots whose source gradient is written.</summary>
    public readonly int Grad;
    /// <summary>Of those, the slots that accumulate (the others are overwritten).</summary>
    public readonly int Accumulate;
    /// <summary>Slots whose dot product is computed: kept edges, and cut edges whose bit is in the cut-edge mask.</summary>
    public readonly int Dot;

    /// <summary>The masks of an item whose kept slots are <paramref name="kept"/>, for a launch of <paramref name="count"/> sources.</summary>
    public SlotMasks(int gradMask, int accumulateMask, int cutEdgeMask, int kept, int count)
    {
        int used = (1 << count) - 1;
        Grad = gradMask & used;
        Accumulate = accumulateMask;
        Dot = (kept | cutEdgeMask) & used;
    }
}

/// <summary>
/// Adjacency-masked aggregation of a DDW stage, <c>x_j[b] = Σ_{i&lt;j} A[b, i, j] · y_i[b]</c>, and its
/// backward: <c>dY_i[b] += A[b, i, j] · dX_j[b]</c> and <c>dA[b, i, j] += &lt;y_i[b], dX_j[b]&gt;</c>.
/// Cut edges (A = 0) are skipped for a whole work item, so the work falls with the keep rate. Nothing is
/// saved beyond A and the node outputs (the aggregate is never needed by the backward). Launch layout and
/// indexing: <see cref="AggregationShape"/>. Deterministic: every output element is written by one thread,
/// sources are visited in index order. Two rungs: the simple kernels (<see cref="Forward"/> read-modify-writes x once
/// per kept source; <see cref="BackwardSources"/> and <see cref="BackwardAdjacency"/> each read dX) and the register
/// kernels (<see cref="ForwardRegisters"/> writes x once; <see cref="BackwardFusedChunks"/> and its grouped GPU form
/// <see cref="BackwardFusedGroups"/> read dX once for both gradients, dot products in registers).
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

    // ---- the register and fused rungs: each element read once, sums held in registers ----------------------

    /// <summary>
    /// <see cref="Forward"/> with the sum held in a register: per element, <c>Σ_s A[b, FirstSource + s, Target] ·
    /// ys_s[b, e]</c> over the kept sources in slot order, then one write of x (no read-modify-write per source);
    /// n = shape.ChunkItems. With accumulate = 0 the sum starts from −0, so the first kept source contributes exactly
    /// A·y and the result is bitwise <see cref="Forward"/>'s (a sample with every source cut gets +0); with
    /// accumulate ≠ 0 (a further launch of the same target) it starts from x[e] (nothing is written for a sample
    /// whose sources in this launch are all cut).
    /// </summary>
    [Kernel]
    public static void ForwardRegisters(Index1D index, int n, int stride, AggregationShape shape, int accumulate,
        ArrayView<float> adjacency, NodeViews ys, ArrayView<float> x)
    {
        for (int w = index; w < n; w += stride)
        {
            shape.ChunkRange(w, out int b, out int first, out int last);
            var slots = SourceSlots.Load(shape, adjacency, b);
            if (slots.Kept != 0)
            {
                slots.Forward(accumulate, ys, x, first, last, 1);
            }
            else if (accumulate == 0)
            {
                for (int e = first; e < last; e++)
                    x[e] = 0f;
            }
        }
    }

    /// <summary>
    /// <see cref="BackwardSources"/> and <see cref="BackwardAdjacency"/> in one pass, one thread per (sample, chunk)
    /// item (n = shape.ChunkItems), reading dX once per element: the source gradients exactly as
    /// <see cref="BackwardSources"/> writes them (<paramref name="gradMask"/>, <paramref name="accumulateMask"/>, a cut edge
    /// writing 0 when overwriting), and in registers the item's dot products <c>Σ_{e in chunk} ys_s[b, e] · dX[b, e]</c>,
    /// in element order, for the kept edges and those whose bit is in <paramref name="cutEdgeMask"/> (else 0). The
    /// adjacency-gradient parts are the chunks (shape.<see cref="AggregationShape.PartsAreChunks"/>): with one chunk a
    /// sample the thread adds its dot products to <c>dAdjacency</c> (partial unused), otherwise it overwrites
    /// <c>partial[(b · Count + s) · Parts + chunk]</c> and <see cref="ReduceAdjacencyGradient"/> adds the parts in order.
    /// Bitwise <see cref="BackwardAdjacency"/>'s partials when its parts are these chunks (PartLength = Chunk).
    /// </summary>
    [Kernel]
    public static void BackwardFusedChunks(Index1D index, int n, int stride, AggregationShape shape, int gradMask, int accumulateMask, int cutEdgeMask,
        ArrayView<float> adjacency, ArrayView<float> dX, NodeViews ys, NodeViews dYs, ArrayView<float> partial, ArrayView<float> dAdjacency)
    {
        for (int w = index; w < n; w += stride)
        {
            shape.ChunkRange(w, out int b, out int first, out int last);
            var slots = SourceSlots.Load(shape, adjacency, b);
            slots.Backward(new SlotMasks(gradMask, accumulateMask, cutEdgeMask, slots.Kept, shape.Count), ys, dYs, dX, first, last, 1);
            int part = w - b * shape.ChunksPerSample;
            for (int s = 0; s < shape.Count; s++)
                SourceSlots.StoreDot(shape, b, part, s, slots.Dot(s), partial, dAdjacency);
        }
    }

    /// <summary>
    /// <see cref="BackwardFusedChunks"/> with a group of threads per (sample, chunk) item: launched with groups of T
    /// threads (a multiple of the warp size, at most <see cref="BatchNormKernels.MaxWarpsPerGroup"/> warps and at most a
    /// warp of warps), group g taking items g, g + grid, … &lt; shape.ChunkItems; thread t handles the chunk's elements
    /// t, t + T, … (coalesced) with the same per-element writes. Each dot product is added up in a fixed tree (warp-shuffle
    /// butterfly, one shared-memory entry per warp, the same butterfly in the first warp), then thread 0 stores it as
    /// <see cref="BackwardFusedChunks"/> does (parts are chunks). No atomics: bit-identical run to run.
    /// </summary>
    [Kernel(ExplicitlyGrouped = true)]
    public static void BackwardFusedGroups(AggregationShape shape, int gradMask, int accumulateMask, int cutEdgeMask,
        ArrayView<float> adjacency, ArrayView<float> dX, NodeViews ys, NodeViews dYs, ArrayView<float> partial, ArrayView<float> dAdjacency)
    {
        var warpDots = SharedMemory.Allocate<float>(BatchNormKernels.MaxWarpsPerGroup * NodeViews.Capacity);
        int warps = Group.DimX / Warp.WarpSize;
        for (int w = Grid.IdxX; w < shape.ChunkItems; w += Grid.DimX)
        {
            shape.ChunkRange(w, out int b, out int first, out int last);
            var slots = SourceSlots.Load(shape, adjacency, b);
            slots.Backward(new SlotMasks(gradMask, accumulateMask, cutEdgeMask, slots.Kept, shape.Count), ys, dYs, dX,
                first + Group.IdxX, last, Group.DimX);
            for (int s = 0; s < shape.Count; s++)
            {
                float warpDot = ReductionKernels.WarpSum(slots.Dot(s));
                if (Warp.IsFirstLane)
                    warpDots[Warp.WarpIdx * NodeViews.Capacity + s] = warpDot;
            }
            Group.Barrier();
            if (Warp.WarpIdx == 0)
            {
                int lane = Warp.LaneIdx, part = w - b * shape.ChunksPerSample;
                for (int s = 0; s < shape.Count; s++)
                {
                    float dot = ReductionKernels.WarpSum(lane < warps ? warpDots[lane * NodeViews.Capacity + s] : 0f);
                    if (lane == 0)
                        SourceSlots.StoreDot(shape, b, part, s, dot, partial, dAdjacency);
                }
            }
            Group.Barrier();
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
