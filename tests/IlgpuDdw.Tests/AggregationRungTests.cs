using IlgpuDdw.Kernels.Reference;
using IlgpuDdw.Runtime;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Tests;

/// <summary>
/// A stage's node outputs, upstream gradient and adjacency for the aggregation rung tests: <c>nodes</c> node outputs of
/// <c>[batch, sample]</c> (seeded, with exact zeros and −0 among them), an adjacency with about a third of the edges
/// cut and every in-edge of sample 1 cut (a sample whose aggregate has no source), and an upstream gradient.
/// </summary>
internal sealed class RungStage : IDisposable
{
    public RungStage(Device device, int nodes, int batch, int sample, int seed)
    {
        Nodes = nodes;
        Batch = batch;
        Sample = sample;
        var r = new Random(seed);
        HostYs = Enumerable.Range(0, nodes).Select(i =>
        {
            var y = Seeded.Uniform<float>(batch * sample, seed + 10 + i);
            for (int e = i % 3; e < y.Length; e += 5) y[e] = e % 2 == 0 ? -0f : 0f;
            return y;
        }).ToArray();
        HostDx = Seeded.Uniform<float>(batch * sample, seed + 5);
        var a = new float[batch, nodes + 1, nodes + 1];
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < nodes; i++)
                for (int j = i + 1; j <= nodes; j++)
                    a[b, i, j] = b == 1 || r.NextDouble() < 0.35 ? 0f : (float)(0.1 + 0.9 * r.NextDouble());
        HostA = new float[a.Length];
        Buffer.BlockCopy(a, 0, HostA, 0, HostA.Length * sizeof(float));
        Adjacency = new Adjacency(device, nodes, batch);
        Adjacency.Write(a);
        Ys = HostYs.Select(y => Tensor.FromArray(device, y, batch, sample)).ToArray();
        Dx = Tensor.FromArray(device, HostDx, batch, sample);
    }

    public int Nodes { get; }
    public int Batch { get; }
    public int Sample { get; }
    public float[][] HostYs { get; }
    public float[] HostDx { get; }
    public float[] HostA { get; }
    public Adjacency Adjacency { get; }
    public Tensor[] Ys { get; }
    public Tensor Dx { get; }

    /// <summary>The aggregate into <paramref name="target"/> under <paramref name="plan"/>, over a NaN-filled output.</summary>
    public float[] Forward(int target, AggregationPlan plan)
    {
        using var x = Tensor.Empty(Dx.Device, Batch, Sample);
        x.Fill(float.NaN);
        AggregationLaunch.WithPlan(plan, () => { AggregationLaunch.Forward(Adjacency, target, Ys[..target], x); return 0; });
        return x.ToArray();
    }

    /// <summary>
    /// The backward of the aggregation into <paramref name="target"/> under <paramref name="plan"/>: sources with
    /// <paramref name="gradient"/>[i] get a gradient (the overwritten ones, <paramref name="overwrite"/>[i], start as
    /// <paramref name="garbage"/>, the others as a seeded prior), the adjacency gradient starts as a seeded prior. Returns
    /// every source gradient (null where none) and dA.
    /// </summary>
    public (float[]?[] DYs, float[] DA) Backward(int target, AggregationPlan plan, bool[] gradient, bool[] overwrite, float garbage = float.NaN)
    {
        var d = Dx.Device;
        var dYs = new Tensor?[target];
        try
        {
            for (int i = 0; i < target; i++)
                if (gradient[i])
                    dYs[i] = overwrite[i] ? Filled(d, garbage) : Tensor.FromArray(d, Prior(i), Batch, Sample);
            using var dA = Tensor.FromArray(d, PriorA(), Batch, Nodes + 1, Nodes + 1);
            AggregationLaunch.WithPlan(plan, () =>
            {
                AggregationLaunch.Backward(Adjacency, target, Ys[..target], Dx, dYs, overwrite[..target], dA);
                return 0;
            });
            return (dYs.Select(t => t?.ToArray()).ToArray(), dA.ToArray());
        }
        finally
        {
            foreach (var t in dYs) t?.Dispose();
        }
    }

    /// <summary><see cref="Backward"/> in the reference (float): overwritten sources start at NaN, which it never reads.</summary>
    public (float[]?[] DYs, float[] DA) Reference(int target, bool[] gradient, bool[] overwrite)
    {
        var dYs = Enumerable.Range(0, target).Select(i => !gradient[i] ? null : overwrite[i] ? Enumerable.Repeat(float.NaN, Batch * Sample).ToArray() : Prior(i)).ToArray();
        AggregationReference.BackwardSources<float>(HostA, HostDx, Batch, Nodes, target, dYs, overwrite[..target]);
        var dA = PriorA();
        var cutRows = Enumerable.Range(0, Nodes).Select(i => Adjacency.NeedsCutEdgeGradient(i)).ToArray();
        AggregationReference.BackwardAdjacency<float>(HostA, HostYs, HostDx, Batch, Nodes, target, cutRows, dA);
        return (dYs, dA);
    }

    private Tensor Filled(Device d, float value)
    {
        var t = Tensor.Empty(d, Batch, Sample);
        t.Fill(value);
        return t;
    }

    private float[] Prior(int i) => Seeded.Uniform<float>(Batch * Sample, 700 + i);

    private float[] PriorA() => Seeded.Uniform<float>(HostA.Length, 699);

    public void Dispose()
    {
        foreach (var t in Ys) t.Dispose();
        Dx.Dispose();
        Adjacency.Dispose();
    }
}

/// <summary>
/// The aggregation's register forward and fused backward against the simple kernels (bit for bit where the summation
/// order is the same) and the reference, on the CPU accelerator: odd sample sizes, chunks that do not divide them,
/// 1 to 8 sources a launch and two launches for 9 to 11 sources, cut edges and a sample with every source cut, source
/// gradients written, skipped, overwritten and accumulated, and cut-edge adjacency gradients on some rows.
/// </summary>
[Collection("cpu")]
public sealed class AggregationRungTests(DeviceFixture fx)
{
    /// <summary>Stages: nodes (targets 1..nodes), batch, sample size, chunk (dividing the sample into parts of exactly that length).</summary>
    public static TheoryData<int, int, int, int> Stages() => new()
    {
        { 11, 3, 7, 3 },    // 3 chunks of 3, 3, 1; targets 9..11 take two launches
        { 8, 2, 37, 5 },    // 8 chunks, the last of 2
        { 3, 1, 1, 1 },     // one element a sample
        { 9, 3, 30, 64 },   // one chunk a sample: the dot products go straight into dA
    };

    internal static AggregationPlan Plan(AggregationForward forward, AggregationBackward backward, int chunk, int parts = 1, int groupsPerSample = 1, int groupSize = 1) =>
        new(forward, backward, chunk, parts, groupsPerSample, groupSize);

    /// <summary>Which sources get a gradient (all but every fourth) and which of those are overwritten (every third).</summary>
    internal static (bool[] Gradient, bool[] Overwrite) Masks(int nodes) =>
        (Enumerable.Range(0, nodes).Select(i => i % 4 != 3).ToArray(), Enumerable.Range(0, nodes).Select(i => i % 3 == 0).ToArray());

    [Theory, MemberData(nameof(Stages))]
    public void ForwardRegisters_IsBitwiseTheSimpleForward_AndMatchesTheReference(int nodes, int batch, int sample, int chunk)
    {
        using var stage = new RungStage(fx.Device, nodes, batch, sample, seed: nodes * 31 + sample);
        for (int target = 1; target <= nodes; target++)
        {
            var simple = stage.Forward(target, Plan(AggregationForward.Simple, AggregationBackward.Separate, chunk));
            var registers = stage.Forward(target, Plan(AggregationForward.Registers, AggregationBackward.Separate, chunk));
            Assert.True(Overwrite.BitEqual(simple, registers), $"target {target}: the register forward differs bitwise from the simple one");
            var expected = new float[batch * sample];
            AggregationReference.Forward<float>(stage.HostA, stage.HostYs, batch, nodes, target, expected);
            Check.Close(expected, registers, Tolerance.Forward, $"ForwardRegisters target {target}");
            if (batch > 1) // sample 1: every source cut, +0
                Assert.All(registers.AsSpan(sample, sample).ToArray(), v => Assert.Equal(0, BitConverter.SingleToInt32Bits(v)));
        }
    }

    [Theory, MemberData(nameof(Stages))]
    public void FusedChunks_IsBitwiseTheSeparateKernels_AndMatchesTheReference(int nodes, int batch, int sample, int chunk)
    {
        using var stage = new RungStage(fx.Device, nodes, batch, sample, seed: nodes * 37 + sample);
        for (int i = 1; i < nodes; i += 2) stage.Adjacency.SetCutEdgeGradient(i, true);
        int parts = (sample + chunk - 1) / chunk;
        Assert.Equal(Math.Min(chunk, sample), (sample + parts - 1) / parts); // the separate parts are the chunks
        var (gradient, overwrite) = Masks(nodes);
        for (int target = 1; target <= nodes; target++)
        {
            var separate = stage.Backward(target, Plan(AggregationForward.Simple, AggregationBackward.Separate, chunk, parts), gradient, overwrite);
            var fused = stage.Backward(target, Plan(AggregationForward.Registers, AggregationBackward.FusedChunks, chunk), gradient, overwrite);
            var reference = stage.Reference(target, gradient, overwrite);
            Assert.True(Overwrite.BitEqual(separate.DA, fused.DA), $"target {target}: dA differs bitwise");
            Check.Close(reference.DA, fused.DA, Tolerance.Backward, $"FusedChunks dA target {target}");
            for (int i = 0; i < target; i++)
            {
                Assert.Equal(gradient[i], fused.DYs[i] is not null);
                if (fused.DYs[i] is not { } dY) continue;
                Assert.True(Overwrite.BitEqual(separate.DYs[i]!, dY), $"target {target}: dY{i} differs bitwise");
                Check.Close(reference.DYs[i]!, dY, Tolerance.Backward, $"FusedChunks dY{i} target {target}");
            }
        }
    }

    [Theory, MemberData(nameof(Stages))]
    public void FusedChunks_OverwritingGarbage_IsBitwiseAccumulatingOntoZeros(int nodes, int batch, int sample, int chunk)
    {
        using var stage = new RungStage(fx.Device, nodes, batch, sample, seed: nodes * 41 + sample);
        var plan = Plan(AggregationForward.Registers, AggregationBackward.FusedChunks, chunk);
        var all = Enumerable.Repeat(true, nodes).ToArray();
        int target = nodes;
        var accumulated = AccumulateOntoZeros(stage, target, plan);
        foreach (float garbage in Overwrite.Garbage)
        {
            var written = stage.Backward(target, plan, all, all, garbage);
            for (int i = 0; i < target; i++)
                Assert.True(Overwrite.BitEqual(accumulated[i], written.DYs[i]!), $"dY{i} over {garbage}: the overwrite differs bitwise from accumulating onto zeros");
        }
    }

    /// <summary>The source gradients of the fused backward into <paramref name="target"/>, accumulated onto zeroed buffers.</summary>
    private static float[][] AccumulateOntoZeros(RungStage stage, int target, AggregationPlan plan)
    {
        var d = stage.Dx.Device;
        var dYs = Enumerable.Range(0, target).Select(_ => Tensor.Zeros(d, stage.Batch, stage.Sample)).ToArray();
        try
        {
            using var dA = Tensor.Zeros(d, stage.Batch, stage.Nodes + 1, stage.Nodes + 1);
            AggregationLaunch.WithPlan(plan, () =>
            {
                AggregationLaunch.Backward(stage.Adjacency, target, stage.Ys[..target], stage.Dx, dYs, null, dA);
                return 0;
            });
            return dYs.Select(t => t.ToArray()).ToArray();
        }
        finally
        {
            foreach (var t in dYs) t.Dispose();
        }
    }

    [Fact]
    public void DefaultPlans_SimpleOnTheCpu_RegistersAndGroupsOnCuda()
    {
        var cpu = AggregationPlan.For(DeviceKind.Cpu, 4, 32, 6, 8192);
        Assert.Equal((AggregationForward.Simple, AggregationBackward.Separate, 2048, 1), (cpu.Forward, cpu.Backward, cpu.Chunk, cpu.Parts));
        Assert.Equal(AggregationPlan.For(fx.Device, 32, 6, 8192), AggregationPlan.For(DeviceKind.Cpu, fx.Device.MaxThreads, 32, 6, 8192));
        int h200 = GpuProfile.H200.Multiprocessors * GpuProfile.H200.MaxThreadsPerMultiprocessor;
        var gpu = AggregationPlan.For(DeviceKind.Cuda, h200, 64, 2, 64 * 56 * 56);
        Assert.Equal((AggregationForward.Registers, AggregationBackward.FusedGroups, 1, AggregationPlan.GpuGroupSize), (gpu.Forward, gpu.Backward, gpu.Chunk, gpu.GroupSize));
        Assert.Equal(17, gpu.GroupsPerSample); // ⌈1056 groups / 64 samples⌉: one wave of resident groups
        Assert.Equal(1, AggregationPlan.For(DeviceKind.Cuda, h200, 256, 3, 64 * 7 * 7).GroupsPerSample); // at least 8 elements a thread
    }

    [Fact]
    public void APlanTheDeviceCannotRun_ThrowsBeforeAnyLaunch()
    {
        using var stage = new RungStage(fx.Device, 3, 2, 5, seed: 3);
        var (gradient, overwrite) = Masks(3);
        void Throws(AggregationPlan plan, string message) =>
            Assert.Contains(message, Assert.Throws<ArgumentException>(() => stage.Backward(3, plan, gradient, overwrite)).Message);
        Throws(Plan(AggregationForward.Registers, AggregationBackward.FusedGroups, 1, groupSize: 3), "multiple of the warp size");
        Throws(Plan(AggregationForward.Registers, AggregationBackward.FusedGroups, 1, groupSize: 4 * fx.Device.MaxThreadsPerGroup), "at most");
        Throws(Plan(AggregationForward.Registers, AggregationBackward.FusedChunks, 0), "at least 1");
        Throws(Plan((AggregationForward)7, AggregationBackward.FusedChunks, 1), "unknown forward");
    }
}

/// <summary>
/// The grouped fused backward (the Cuda default) on a CPU accelerator with groups of up to 4 warps of 4 threads: one,
/// two and four warps a group, one to three chunks a sample (chunks that do not divide the sample), two launches for 9
/// sources. The source gradients are bitwise the per-chunk kernel's (the same per-element arithmetic); dA, added up in
/// a tree, matches the reference and is bit-identical run to run.
/// </summary>
[Collection("cpu-groups")]
public sealed class AggregationGroupRungTests(GroupedDeviceFixture fx)
{
    [Theory]
    [InlineData(9, 3, 37, 1, 4)]
    [InlineData(9, 3, 37, 3, 8)]
    [InlineData(4, 2, 30, 2, 16)]
    [InlineData(5, 1, 5, 3, 16)]
    public void FusedGroups_MatchesTheChunkKernel_AndTheReference_Deterministically(int nodes, int batch, int sample, int groupsPerSample, int groupSize)
    {
        using var stage = new RungStage(fx.Device, nodes, batch, sample, seed: nodes * 43 + sample);
        stage.Adjacency.SetCutEdgeGradient(0, true);
        var (gradient, overwrite) = AggregationRungTests.Masks(nodes);
        var grouped = AggregationRungTests.Plan(AggregationForward.Registers, AggregationBackward.FusedGroups, 1, groupsPerSample: groupsPerSample, groupSize: groupSize);
        var chunked = AggregationRungTests.Plan(AggregationForward.Registers, AggregationBackward.FusedChunks, (sample + groupsPerSample - 1) / groupsPerSample);
        for (int target = 1; target <= nodes; target++)
        {
            var a = stage.Backward(target, grouped, gradient, overwrite);
            var again = stage.Backward(target, grouped, gradient, overwrite);
            var perChunk = stage.Backward(target, chunked, gradient, overwrite);
            var reference = stage.Reference(target, gradient, overwrite);
            Assert.True(Overwrite.BitEqual(a.DA, again.DA), $"target {target}: dA differs run to run");
            Check.Close(reference.DA, a.DA, Tolerance.Backward, $"FusedGroups dA target {target}");
            for (int i = 0; i < target; i++)
            {
                if (a.DYs[i] is not { } dY) continue;
                Assert.True(Overwrite.BitEqual(perChunk.DYs[i]!, dY), $"target {target}: dY{i} differs bitwise from the per-chunk kernel");
                Check.Close(reference.DYs[i]!, dY, Tolerance.Backward, $"FusedGroups dY{i} target {target}");
            }
        }
    }
}
