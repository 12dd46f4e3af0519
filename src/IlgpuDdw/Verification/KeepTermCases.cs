using ILGPU;
using ILGPU.Runtime;
using IlgpuDdw.Kernels;
using IlgpuDdw.Training;
using MathNet.Numerics;

namespace IlgpuDdw.Verification;

/// <summary>
/// The keep-term kernels (<see cref="KeepTermKernels"/>: keep rate against a target, batch shaping, their sum) launched
/// directly on a seeded stage against the double reference <see cref="StageKeepState"/> (whose gradients the gate
/// reference tests check by finite differences): dead nodes (in-edges cut with probability 0.45), a sample tied with
/// another, groups of 1, 3 and the device's widest, and a batch larger than <see cref="KeepTermKernels.ShapingChunk"/>.
/// Part of the Wiring family.
/// </summary>
internal static class KeepTermCases
{
    private static readonly (int Nodes, int Batch, int Seed)[] Shapes = [(1, 5, 401), (2, 6, 402), (3, 11, 403), (4, 9, 404), (5, 33, 405), (1, KeepTermKernels.ShapingChunk + 77, 406)];

    /// <summary>One case per shape.</summary>
    public static IEnumerable<VerifyCase> All() =>
        Shapes.Select(s => new VerifyCase("Wiring", $"keep terms n={s.Nodes} B={s.Batch}", ["KeepRate.Forward", "KeepRate.Backward", "BatchShaping.Forward", "BatchShaping.Backward", "TermSum.Forward"],
            d => Run(d, s.Nodes, s.Batch, s.Seed)));

    /// <summary>Group sizes the case runs: 1, 3 (where groups hold 3) and the device's widest up to <see cref="KeepTermKernels.MaxThreads"/>.</summary>
    internal static int[] Threads(Device d) =>
        new[] { 1, 3, Math.Min(KeepTermKernels.MaxThreads, d.MaxThreadsPerGroup) }.Where(t => t <= d.MaxThreadsPerGroup).Distinct().ToArray();

    private static IEnumerable<VerifyResult> Run(Device d, int nodes, int batch, int seed)
    {
        var rng = new Random(seed);
        int size = nodes + 1, edges = nodes * (nodes + 1) / 2;
        const double offset = 0.5, scale = 4;
        var adjacency = new float[batch * size * size];
        for (int b = 0; b < batch; b++)
            for (int j = 0; j < size; j++)
                for (int i = j + 1; i < size; i++)
                    adjacency[(b * size + j) * size + i] = rng.NextDouble() < 0.45 ? 0f : (float)rng.NextDouble();
        var rows = new float[nodes][];
        for (int i = 0; i < nodes; i++)
        {
            rows[i] = new float[batch * (nodes - i)];
            for (int k = 0; k < rows[i].Length; k++) rows[i][k] = (float)(offset + (rng.NextDouble() - 0.5) * 2);
            if (batch > 3) Array.Copy(rows[i], 0, rows[i], 2 * (nodes - i), nodes - i); // sample 2 ties sample 0
        }
        var state = new StageKeepState(nodes, batch, adjacency, rows.Select(r => Array.ConvertAll(r, v => (double)v)).ToArray(), offset, scale);
        var packed = rows.SelectMany(r => r).ToArray();

        const float rho = 0.4f, weight = 3f, gradientScale = 2f; // a rank's gradient share of one half
        var keepGradient = rows.Select(r => new double[r.Length]).ToArray();
        double keep = state.KeepRate(keepGradient);
        var keepExpected = keepGradient.SelectMany(g => g).Select(g => gradientScale * 2 * weight * (keep - rho) * g).ToArray();
        const float alpha = 0.6f, beta = 0.4f, factor = 0.7f;
        var shapingGradient = rows.Select(r => new double[r.Length]).ToArray();
        double shaping = state.BatchShaping(alpha, beta, shapingGradient);
        var shapingExpected = shapingGradient.SelectMany(g => g).Select(g => factor * g).ToArray();

        using var x = Tensor.FromArray(d, packed, packed.Length);
        using var a = Tensor.FromArray(d, adjacency, adjacency.Length);
        using var terms = Tensor.Empty(d, edges + 1);
        using var local = Tensor.Empty(d, packed.Length);
        using var value = Tensor.Empty(d, 1);
        string shape = $"n={nodes} B={batch}";
        foreach (int threads in Threads(d))
        {
            string desc = $"{shape}, {threads} threads";
            d.Kernels.KeepRate(d.Stream, new KernelConfig(1, threads), nodes, batch, (float)offset, (float)scale, rho, weight, gradientScale, 1,
                x.View, a.View, terms.View, local.View);
            yield return VerifyResult.Compare("KeepRate.Forward", desc, [weight * (keep - rho) * (keep - rho)], [terms.ToArray()[1]], Tolerance.Forward);
            yield return VerifyResult.Compare("KeepRate.Backward", desc, keepExpected, Array.ConvertAll(local.ToArray(), v => (double)v), Tolerance.Forward);
            d.Kernels.BatchShaping(d.Stream, new KernelConfig(edges, threads), nodes, batch, (float)offset, (float)scale, alpha, beta,
                (float)SpecialFunctions.BetaLn(alpha, beta), factor, 1, x.View, terms.View, local.View);
            d.Kernels.TermSum(d.Stream, 1, 1, 1, edges, 0.5f, terms.View.SubView(1, edges), value.View);
            yield return VerifyResult.Compare("BatchShaping.Forward", desc, [shaping], [terms.ToArray().Skip(1).Sum(v => (double)v)], Tolerance.SumForward(edges));
            yield return VerifyResult.Compare("BatchShaping.Backward", desc, shapingExpected, Array.ConvertAll(local.ToArray(), v => (double)v), Tolerance.Backward);
            yield return VerifyResult.Compare("TermSum.Forward", desc, [0.5 * shaping], [value.ToArray()[0]], Tolerance.SumForward(edges));
        }
    }
}
