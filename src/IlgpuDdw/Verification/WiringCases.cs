using IlgpuDdw.Autograd;
using IlgpuDdw.Kernels.Reference;
using IlgpuDdw.Runtime;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Verification;

/// <summary>
/// The wiring kernels (router, gate, dense edges, chain fill, adjacency-masked aggregation, forward and every
/// backward) through a stage's wiring with given node outputs, against <c>StageReference&lt;float&gt;</c>: odd
/// channel counts, non-square maps, batch 1 and 3, 2 to 9 nodes (9: the output node reads its sources in two
/// launches), both gate gradients, and fixed aggregation plans besides the device's own (each rung: the simple
/// read-modify-write forward with separate backward kernels, the register forward with the fused backward per chunk
/// and per group of threads, at chunk lengths, part counts and groups per sample that do not divide the sample); then every gate (<see cref="GateCase"/>: threshold, continuous, stochastic with and
/// without noise, top-k) over whole adjacencies, with and without the output-edge fix-up; then the off-node kernels
/// (<see cref="WiringOps.NodeLiveMask"/>, <see cref="WiringOps.ClearOffRow"/>) node by node over adjacencies with
/// columns cut for some samples, and the in-edge normalisation (<see cref="WiringOps.NormalizeInEdges"/>, forward and
/// backward), against <see cref="GateReference"/>.
/// </summary>
internal static class WiringCases
{
    public static IEnumerable<VerifyCase> All()
    {
        const GateGradient kept = GateGradient.KeptOnly, straight = GateGradient.StraightThrough;
        WiringCase[] cases =
        [
            WiringCase.Create(WiringKind.Dynamic, 3, 3, 5, 3, 2, kept, seed: 11),
            WiringCase.Create(WiringKind.Dynamic, 5, 1, 3, 2, 3, straight, seed: 12),
            WiringCase.Create(WiringKind.Dynamic, 9, 2, 3, 1, 3, straight, tau: 0.3f, seed: 13),
            WiringCase.Create(WiringKind.Dense, 4, 3, 7, 2, 3, seed: 14),
            WiringCase.Create(WiringKind.Chain, 3, 2, 5, 3, 1, seed: 15),
            .. new (WiringKind Kind, int Nodes, int Batch, int Channels, int Height, int Width, GateGradient Gradient, AggregationPlan? Plan)[]
            {
                (WiringKind.Dynamic, 2, 1, 3, 3, 2, kept, null),
                (WiringKind.Dynamic, 2, 3, 5, 2, 3, straight, null),
                (WiringKind.Dynamic, 3, 1, 7, 1, 3, straight, null),
                (WiringKind.Dynamic, 3, 3, 5, 3, 2, kept, Simple(4, 3)),
                (WiringKind.Dynamic, 5, 1, 3, 2, 3, kept, null),
                (WiringKind.Dynamic, 5, 3, 9, 3, 1, straight, Simple(5, 2)),
                (WiringKind.Dynamic, 9, 2, 3, 1, 3, kept, Simple(2, 4)),
                (WiringKind.Dense, 3, 3, 5, 2, 3, kept, null),
                (WiringKind.Dense, 5, 1, 3, 3, 3, kept, Simple(7, 5)),
                (WiringKind.Chain, 2, 1, 3, 3, 2, kept, null),
                (WiringKind.Chain, 5, 3, 5, 2, 3, kept, null),
                // the register and fused rungs at fixed geometries: chunks that do not divide the sample, one chunk a
                // sample (no partials), two launches for 9 sources, cut-edge gradients, groups of one and several warps
                (WiringKind.Dynamic, 3, 3, 5, 3, 2, kept, Fused(AggregationBackward.FusedChunks, 4, 1)),
                (WiringKind.Dynamic, 5, 3, 9, 3, 1, straight, Fused(AggregationBackward.FusedChunks, 5, 1)),
                (WiringKind.Dynamic, 9, 2, 3, 1, 3, straight, Fused(AggregationBackward.FusedChunks, 2, 1)),
                (WiringKind.Dense, 5, 1, 3, 3, 3, kept, Fused(AggregationBackward.FusedChunks, 64, 1)),
                (WiringKind.Dynamic, 3, 3, 5, 3, 2, kept, Fused(AggregationBackward.FusedGroups, 1, 4)),
                (WiringKind.Dynamic, 5, 3, 9, 3, 1, straight, Fused(AggregationBackward.FusedGroups, 1, 3)),
                (WiringKind.Dynamic, 9, 2, 3, 1, 3, kept, Fused(AggregationBackward.FusedGroups, 3, 2)),
                (WiringKind.Dense, 4, 3, 7, 2, 3, kept, Fused(AggregationBackward.FusedGroups, 1, 1)),
                (WiringKind.Chain, 5, 3, 5, 2, 3, kept, Fused(AggregationBackward.Separate, 3, 1) with { Parts = 2 }),
            }.Select(s => WiringCase.Create(s.Kind, s.Nodes, s.Batch, s.Channels, s.Height, s.Width, s.Gradient,
                seed: s.Nodes * 100 + s.Batch * 10 + s.Channels, plan: s.Plan)),
        ];
        const bool noise = true, force = true;
        GateCase[] gates =
        [
            new(GateKind.Threshold, 3, 4, 0.5f, kept, false, force, 0.8, 101),
            new(GateKind.Threshold, 5, 3, 0.3f, straight, false, force, 0.85, 102),
            new(GateKind.Threshold, 4, 2, 0.5f, kept, false, !force, 0.5, 103),
            new(GateKind.Continuous, 2, 1, 0.5f, kept, false, !force, 0.5, 104),
            new(GateKind.Continuous, 3, 4, 0.5f, kept, false, force, 0.8, 105),
            new(GateKind.Continuous, 9, 3, 0.25f, kept, false, force, 0.9, 106),
            new(GateKind.Stochastic, 3, 4, 0.5f, kept, noise, force, 0.8, 107),
            new(GateKind.Stochastic, 5, 4, 0.5f, kept, !noise, force, 0.9, 108),
            new(GateKind.Stochastic, 2, 1, 0.5f, kept, noise, !force, 0.5, 109),
            new(GateKind.TopK, 2, 3, 0.5f, kept, false, !force, 0.5, 110),
            new(GateKind.TopK, 5, 3, 0.5f, kept, false, !force, 0.5, 111),
            new(GateKind.TopK, 9, 2, 0.5f, kept, false, !force, 0.5, 112),
        ];
        (int Nodes, int Batch, int Seed)[] offNodes = [(2, 1, 201), (3, 5, 202), (5, 3, 203), (9, 2, 204)];
        (int Nodes, int Batch, int Seed)[] inEdgeNorm = [(2, 4, 401), (3, 5, 402), (5, 7, 403), (9, 3, 404)];
        return cases.Select(c => new VerifyCase("Wiring", c.ToString(), WiringCase.Passes(c.Kind), d => c.Compare(c.RunOnDevice(d))))
            .Concat(gates.Select(c => new VerifyCase("Wiring", c.ToString(), c.Passes, c.Run)))
            .Concat(offNodes.Select(o => new VerifyCase("Wiring", $"off nodes n={o.Nodes} B={o.Batch}", OffNodePasses,
                d => RunOffNodes(d, o.Nodes, o.Batch, o.Seed))))
            .Concat(new[] { 1, 37, 1031 }.Select(n => new VerifyCase("Wiring", $"objective term backward [{n}]", ["Term.Backward"], d => RunTermBackward(d, n))))
            .Concat(inEdgeNorm.Select(o => new VerifyCase("Wiring", $"in-edge norm n={o.Nodes} B={o.Batch}", InEdgeNormPasses,
                d => RunInEdgeNorm(d, o.Nodes, o.Batch, o.Seed))));
    }

    /// <summary>The simple rung (read-modify-write forward, separate backward kernels) at a fixed chunk length and part count.</summary>
    private static AggregationPlan Simple(int chunk, int parts) =>
        new(AggregationForward.Simple, AggregationBackward.Separate, chunk, parts, 1, 1);

    /// <summary>The register forward with <paramref name="backward"/> at a fixed chunk length and groups per sample (group size: the device's, <see cref="WiringCase.PlanOn"/>).</summary>
    private static AggregationPlan Fused(AggregationBackward backward, int chunk, int groupsPerSample) =>
        new(AggregationForward.Registers, backward, chunk, 1, groupsPerSample, 1);

    /// <summary>
    /// The backward of an objective term (<see cref="Kernels.GateKernels.TermBackward"/>) launched directly: accumulating
    /// onto a gradient, then overwriting garbage with both values of its accumulate flag (<see cref="Overwrite.Rows"/>).
    /// </summary>
    private static IEnumerable<VerifyResult> RunTermBackward(Device device, int n)
    {
        var gradient = Seeded.Uniform<float>(n, 301);
        var prior = Seeded.Uniform<float>(n, 302);
        const float upstream = 0.625f;
        using var tUpstream = Tensor.FromArray(device, [upstream], 1);
        using var tGradient = Tensor.FromArray(device, gradient, n);
        using var tInput = Tensor.FromArray(device, prior, n);
        int ext = device.Extent(n);
        void Launch(int accumulate) => device.Kernels.TermBackward(device.Stream, ext, n, ext, accumulate, tUpstream.View, tGradient.View, tInput.View);
        Launch(1);
        var accumulated = (float[])prior.Clone();
        GateReference.TermBackward<float>(upstream, gradient, accumulated);
        string desc = $"[{n}]";
        yield return VerifyResult.Compare("Term.Backward", desc, accumulated, tInput.ToArray(), Tolerance.Backward);
        var written = Overwrite.Reference(n, buffer => GateReference.TermBackward<float>(upstream, gradient, buffer, accumulate: false));
        foreach (var row in Overwrite.Rows("Term.Backward", desc, written, tInput, Launch, Tolerance.Backward))
            yield return row;
    }

    /// <summary>A seeded adjacency <c>[B, n+1, n+1]</c>: each edge i &lt; j cut (0) with probability <paramref name="cut"/>, else uniform in [low, 1).</summary>
    private static float[] SeededAdjacency(Random r, int nodes, int batch, double cut, double low)
    {
        int size = nodes + 1;
        var a = new float[batch * size * size];
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < size; i++)
                for (int j = i + 1; j < size; j++)
                    a[GateReference.Index(nodes, b, i, j)] = r.NextDouble() < cut ? 0f : (float)(low + (1 - low) * r.NextDouble());
        return a;
    }

    private static readonly string[] InEdgeNormPasses = ["InEdgeNorm.Forward", "InEdgeNorm.Backward"];

    /// <summary>
    /// <see cref="WiringOps.NormalizeInEdges"/> on every column 1..n of a seeded adjacency (entries cut with
    /// probability ⅓, kept ones in [0.05, 1), so column sums fall on both sides of 1 and some columns are all
    /// cut), then the backward from a seeded upstream gradient of the whole matrix, against
    /// <see cref="GateReference.InEdgeNormForward{T}"/> and <see cref="GateReference.InEdgeNormBackward{T}"/>; the
    /// case also requires columns with a sum above 1 and below 1 (so both branches ran).
    /// </summary>
    private static IEnumerable<VerifyResult> RunInEdgeNorm(Device device, int nodes, int batch, int seed)
    {
        var r = new Random(seed);
        var a = SeededAdjacency(r, nodes, batch, cut: 1.0 / 3, low: 0.05);
        var g = new float[a.Length];
        for (int k = 0; k < g.Length; k++) g[k] = (float)(2 * r.NextDouble() - 1);
        var expected = (float[])a.Clone();
        var scales = new List<float[]>();
        for (int j = 1; j <= nodes; j++) scales.Add(GateReference.InEdgeNormForward<float>(batch, nodes, j, expected));
        var expectedGrad = (float[])g.Clone();
        for (int j = nodes; j >= 1; j--) GateReference.InEdgeNormBackward<float>(expected, scales[j - 1], batch, nodes, j, expectedGrad);
        int above = scales.Sum(s => s.Count(v => v > 1f)), atMost = scales.Sum(s => s.Count(v => v == 1f));

        float[] actual, actualGrad;
        using (var tape = new Tape(device))
        {
            var adjacency = new Adjacency(tape, nodes, batch);
            adjacency.Tensor.CopyFrom(a);
            adjacency.Tensor.RequiresGrad = true;
            adjacency.MarkAllRowsWritten();
            for (int j = 1; j <= nodes; j++) tape.NormalizeInEdges(adjacency, j);
            actual = adjacency.Tensor.ToArray();
            tape.Backward(adjacency.Tensor, g);
            actualGrad = adjacency.Tensor.GradToArray();
        }
        string desc = $"n={nodes} B={batch}";
        yield return VerifyResult.Compare("InEdgeNorm.Forward", desc, expected, actual, Tolerance.Forward);
        yield return VerifyResult.Condition("InEdgeNorm.Forward", desc + " both branches", above > 0 && atMost > 0,
            $"{above} columns summed above 1 and {atMost} to at most 1 (need both > 0)");
        yield return VerifyResult.Compare("InEdgeNorm.Backward", desc, expectedGrad, actualGrad, Tolerance.Backward);
    }

    private static readonly string[] OffNodePasses = ["NodeLiveMask.Forward", "ClearOffRow.Forward"];

    /// <summary>
    /// Node by node (1..n−1) over a seeded adjacency whose entries are cut with probability ½: the live mask of the
    /// node's column, then its off rows cleared, on the device and in the reference; the masks and the final matrix
    /// are compared.
    /// </summary>
    private static IEnumerable<VerifyResult> RunOffNodes(Device device, int nodes, int batch, int seed)
    {
        var r = new Random(seed);
        var a = SeededAdjacency(r, nodes, batch, cut: 0.5, low: 0.1);
        var expected = (float[])a.Clone();
        var masks = new List<float>();
        var actualMasks = new List<float>();
        using var tape = new Tape(device);
        using var adjacency = new Adjacency(device, nodes, batch);
        adjacency.Tensor.CopyFrom(a);
        for (int j = 1; j < nodes; j++)
        {
            var live = new float[batch];
            GateReference.NodeLiveMask<float>(expected, batch, nodes, j, live);
            GateReference.ClearOffRow<float>(live, batch, nodes, j, expected);
            masks.AddRange(live);
            var tLive = tape.NodeLiveMask(adjacency, j);
            tape.ClearOffRow(adjacency, j, tLive);
            actualMasks.AddRange(tLive.ToArray());
        }
        string desc = $"n={nodes} B={batch}";
        yield return VerifyResult.Compare("NodeLiveMask.Forward", desc, masks.ToArray(), actualMasks.ToArray(), Tolerance.Forward);
        yield return VerifyResult.Compare("ClearOffRow.Forward", desc, expected, adjacency.Tensor.ToArray(), Tolerance.Forward);
    }
}
