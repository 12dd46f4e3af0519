using ILGPU;
using ILGPU.Runtime;

namespace IlgpuDdw.Kernels;

/// <summary>
/// The budget and diversity objective terms of a dynamic stage on the device: the soft keep rate against a target and
/// batch shaping towards a Beta prior, each writing its value slots and, in the same pass, the local gradient with
/// respect to the gates' keep inputs (the backward then is <see cref="GateKernels.TermBackward"/>, one launch per row
/// tensor), so that a training step reads nothing back. The host reference is <c>IlgpuDdw.Training.StageKeepState</c>
/// (double precision).
/// <para>
/// A stage of n nodes and B samples has E = n(n+1)/2 edges; its keep inputs x (router outputs, or gate logits of the
/// stochastic gate) are packed row after row, row i holding B · (n − i) values <c>[b, o]</c> from
/// <see cref="RowOffset"/>(B, n, i). The soft keep indicator is <c>p = sigmoid(z)</c>, <c>z = (x − offset) · scale</c>.
/// </para>
/// </summary>
public static class KeepTermKernels
{
    /// <summary>Most threads a group of <see cref="KeepRate"/> and <see cref="BatchShaping"/> may hold.</summary>
    public const int MaxThreads = 256;

    /// <summary>Samples <see cref="BatchShaping"/> stages in shared memory at once (larger batches are ranked chunk by chunk).</summary>
    public const int ShapingChunk = 1024;

    /// <summary>Continued-fraction steps of the regularized incomplete beta function at most.</summary>
    public const int BetaIterations = 200;

    /// <summary>Offset of row i in the packed keep inputs of a stage of <paramref name="nodes"/> nodes and <paramref name="batch"/> samples: B · Σ_{j&lt;i} (n − j).</summary>
    public static int RowOffset(int batch, int nodes, int row) => batch * (row * nodes - row * (row - 1) / 2);

    /// <summary>
    /// Soft keep rate of one stage against a target, one thread group of any size (at most <see cref="MaxThreads"/>):
    /// <c>k̂ = Σ_{b, i live, o} p[b, i, o] / (B · E)</c>, edges out of an off node counted as cut (node 0 is live; node
    /// i ≥ 1 is live for sample b when one of its in-edges <c>adjacency[b, j, i]</c>, j &lt; i, is non-zero). Each thread
    /// sums a strided share in float, then the shares are added in thread order (deterministic). Writes
    /// <c>terms[slot] = weight · (k̂ − rho)²</c> and the local gradient <c>local[k] = gradientScale · 2 · weight ·
    /// (k̂ − rho) · p(1 − p) · scale / (B · E)</c> for live entries, 0 for the others (the liveness held fixed, exact).
    /// </summary>
    [Kernel(ExplicitlyGrouped = true)]
    public static void KeepRate(int nodes, int batch, float offset, float scale, float rho, float weight, float gradientScale, int slot,
        ArrayView<float> inputs, ArrayView<float> adjacency, ArrayView<float> terms, ArrayView<float> local)
    {
        var shares = SharedMemory.Allocate<float>(MaxThreads);
        var rate = SharedMemory.Allocate<float>(1);
        int tid = Group.IdxX, threads = Group.DimX;
        int count = batch * nodes * (nodes + 1) / 2;
        float sum = 0f;
        for (int k = tid; k < count; k += threads)
            if (IsLive(k, nodes, batch, adjacency))
                sum += Sigmoid((inputs[k] - offset) * scale);
        shares[tid] = sum;
        Group.Barrier();
        if (tid == 0)
        {
            float total = 0f;
            for (int t = 0; t < threads; t++)
                total += shares[t];
            float keep = total / count;
            rate[0] = keep;
            terms[slot] = weight * (keep - rho) * (keep - rho);
        }
        Group.Barrier();
        float c = gradientScale * 2f * weight * (rate[0] - rho) * scale / count;
        for (int k = tid; k < count; k += threads)
        {
            float p = Sigmoid((inputs[k] - offset) * scale);
            local[k] = IsLive(k, nodes, batch, adjacency) ? c * p * (1f - p) : 0f;
        }
    }

    /// <summary>
    /// Batch shaping of one stage (Bejnordi et al. 2020), thread group e (any size, at most <see cref="MaxThreads"/>) per
    /// edge e of the stage (edges numbered row after row): the edge's soft keep values over the batch ranked,
    /// r(b) = #{u : p_u &lt; p_b} + #{u &lt; b : p_u = p_b} (ties to the lower sample), and
    /// <c>L_e = (1/B) Σ_b (q_b − F(p_b))²</c>, <c>q_b = (r(b) + 1)/(B + 1)</c>, F the CDF of Beta(α, β)
    /// (<see cref="BetaCdf"/>; <paramref name="logBeta"/> = ln B(α, β) from the host). Writes <c>terms[slot + e] = L_e</c>
    /// (the sample shares added in thread order) and
    /// <c>local = gradientFactor · (2/B)(F(p) − q) · f(p) · p(1 − p) · scale</c>, f the Beta density: exact wherever the
    /// order of the batch does not change; 0 where p is exactly 0 or 1. The p values are staged in shared memory
    /// <see cref="ShapingChunk"/> samples at a time.
    /// </summary>
    [Kernel(ExplicitlyGrouped = true)]
    public static void BatchShaping(int nodes, int batch, float offset, float scale, float alpha, float beta, float logBeta,
        float gradientFactor, int slot, ArrayView<float> inputs, ArrayView<float> terms, ArrayView<float> local)
    {
        var staged = SharedMemory.Allocate<float>(ShapingChunk);
        var shares = SharedMemory.Allocate<float>(MaxThreads);
        int tid = Group.IdxX, threads = Group.DimX;
        int row = 0, o = Grid.IdxX;
        while (o >= nodes - row)
        {
            o -= nodes - row;
            row++;
        }
        int degree = nodes - row, start = RowOffset(batch, nodes, row) + o;
        float share = 0f;
        // each thread's samples b = tid, tid + threads, …: their ranks are counted over every chunk of the batch
        int rounds = (batch + threads - 1) / threads;
        for (int round = 0; round < rounds; round++)
        {
            int b = round * threads + tid;
            bool mine = b < batch;
            float z = mine ? (inputs[start + b * degree] - offset) * scale : 0f;
            float p = Sigmoid(z);
            int rank = 0;
            for (int chunk = 0; chunk < batch; chunk += ShapingChunk)
            {
                int size = Math.Min(ShapingChunk, batch - chunk);
                for (int u = tid; u < size; u += threads)
                    staged[u] = Sigmoid((inputs[start + (chunk + u) * degree] - offset) * scale);
                Group.Barrier();
                if (mine)
                    for (int u = 0; u < size; u++)
                    {
                        float pu = staged[u];
                        if (pu < p || (pu == p && chunk + u < b)) rank++;
                    }
                Group.Barrier();
            }
            if (!mine) continue;
            float lnP = -Softplus(-z), lnQ = -Softplus(z);
            float f = BetaCdf(p, Sigmoid(-z), lnP, lnQ, alpha, beta, logBeta);
            float q = (rank + 1f) / (batch + 1f);
            share += (q - f) * (q - f) / batch;
            // f(p) · p(1 − p) = exp(α ln p + β ln(1 − p) − ln B(α, β)): 0 at p = 0 or 1
            float density = p > 0f && p < 1f ? MathF.Exp(alpha * lnP + beta * lnQ - logBeta) : 0f;
            local[start + b * degree] = gradientFactor * 2f / batch * (f - q) * density * scale;
        }
        shares[tid] = share;
        Group.Barrier();
        if (tid == 0)
        {
            float total = 0f;
            for (int t = 0; t < threads; t++)
                total += shares[t];
            terms[slot + Grid.IdxX] = total;
        }
    }

    /// <summary>
    /// A term's value from its slots: <c>output[0] = factor · Σ_{t &lt; count} terms[t]</c>, added in order by work item 0
    /// (launched with n = 1).
    /// </summary>
    [Kernel]
    public static void TermSum(Index1D index, int n, int stride, int count, float factor, ArrayView<float> terms, ArrayView<float> output)
    {
        if (index != 0) return;
        float sum = 0f;
        for (int t = 0; t < count; t++)
            sum += terms[t];
        output[0] = factor * sum;
    }

    /// <summary>
    /// The regularized incomplete beta function I_p(a, b), the CDF of Beta(a, b) at p, by its continued fraction (modified
    /// Lentz) on the side where it converges fast (p &lt; (a + 1)/(a + b + 2), else 1 − I_q(b, a)); q = 1 − p and the logarithms
    /// are passed separately so that p near 1 keeps its precision.
    /// </summary>
    public static float BetaCdf(float p, float q, float lnP, float lnQ, float a, float b, float logBeta)
    {
        if (p <= 0f) return 0f;
        if (q <= 0f) return 1f;
        float front = MathF.Exp(a * lnP + b * lnQ - logBeta);
        return p < (a + 1f) / (a + b + 2f) ? front * ContinuedFraction(a, b, p) / a : 1f - front * ContinuedFraction(b, a, q) / b;
    }

    private static float ContinuedFraction(float a, float b, float x)
    {
        const float Tiny = 1e-30f;
        float qab = a + b, qap = a + 1f, qam = a - 1f;
        float c = 1f, d = 1f - qab * x / qap;
        d = 1f / NotTiny(d, Tiny);
        float h = d;
        for (int m = 1; m <= BetaIterations; m++)
        {
            int m2 = 2 * m;
            float aa = m * (b - m) * x / ((qam + m2) * (a + m2));
            d = 1f / NotTiny(1f + aa * d, Tiny);
            c = NotTiny(1f + aa / c, Tiny);
            h *= d * c;
            aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
            d = 1f / NotTiny(1f + aa * d, Tiny);
            c = NotTiny(1f + aa / c, Tiny);
            float delta = d * c;
            h *= delta;
            if (Abs(delta - 1f) < 3e-7f) break;
        }
        return h;
    }

    /// <summary>Whether entry k of the packed keep inputs leaves a live node (node 0 always; node i when an in-edge is non-zero).</summary>
    private static bool IsLive(int k, int nodes, int batch, ArrayView<float> adjacency)
    {
        int row = 0, rest = k;
        while (rest >= batch * (nodes - row))
        {
            rest -= batch * (nodes - row);
            row++;
        }
        if (row == 0) return true;
        int b = rest / (nodes - row), size = nodes + 1;
        for (int j = 0; j < row; j++)
            if (adjacency[(b * size + j) * size + row] != 0f) return true;
        return false;
    }

    private static float Sigmoid(float z)
    {
        if (z >= 0f) return 1f / (1f + MathF.Exp(-z));
        float e = MathF.Exp(z);
        return e / (1f + e);
    }

    /// <summary>ln(1 + e^z) without overflow.</summary>
    private static float Softplus(float z) => (z > 0f ? z : 0f) + MathF.Log(1f + MathF.Exp(-Abs(z)));

    private static float NotTiny(float v, float tiny) => Abs(v) < tiny ? tiny : v;

    private static float Abs(float v) => v < 0f ? -v : v;
}
