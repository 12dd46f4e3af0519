using System.Diagnostics;
using IlgpuDdw.Autograd;
using IlgpuDdw.Kernels;
using IlgpuDdw.Models;
using IlgpuDdw.Nn;
using IlgpuDdw.Runtime;
using IlgpuDdw.Training;
using IlgpuDdw.Wiring;
using Device = IlgpuDdw.Runtime.Device;

namespace IlgpuDdw.Tests;

/// <summary>The launch trace, the cost formulas, the counting of synchronisations and allocations, and dry runs.</summary>
[Collection("cpu")]
public sealed class LaunchTraceTests(DeviceFixture fx)
{
    /// <summary>Runs <paramref name="work"/> with a fresh trace attached to <paramref name="device"/>.</summary>
    private static LaunchTrace Traced(Device device, Action work, LaunchTiming timing = LaunchTiming.None)
    {
        var trace = new LaunchTrace();
        device.Tracer = trace;
        device.Timing = timing;
        try
        {
            work();
        }
        finally
        {
            device.Tracer = null;
            device.Timing = LaunchTiming.None;
        }
        return trace;
    }

    [Fact]
    public void EveryKernel_HasACostFormula() => Assert.Empty(KernelSet.LaunchersWithoutCost);

    [Fact]
    public void Conv2dLaunches_HaveTheHandCountedFlopsAndBytes()
    {
        var d = fx.Device;
        // B=2, C_in=3, 7×5, C_out=4, K=3, stride 1, padding 1: Ho = 7, Wo = 5.
        var g = new Conv2dGeometry(2, 3, 7, 5, 4, 3, 1, 1, 1);
        using var x = Tensor.FromArray(d, Seeded.Uniform<float>(g.InputLength, 1), 2, 3, 7, 5);
        using var w = Tensor.FromArray(d, Seeded.Uniform<float>(g.WeightLength, 2), 4, 3, 3, 3);
        using var b = Tensor.FromArray(d, Seeded.Uniform<float>(4, 3), 4);
        using var tape = new Tape(d);
        x.RequiresGrad = w.RequiresGrad = b.RequiresGrad = true;
        var trace = Traced(d, () =>
        {
            var y = tape.Conv2d(x, w, b, stride: 1, padding: 1);
            tape.Backward(tape.Sum(y));
        });
        const long macs = 2L * 4 * 7 * 5 * 3 * 3 * 3; // B·C_out·Ho·Wo·C_in·K²
        long input = 2 * 3 * 7 * 5, weight = 4 * 3 * 3 * 3, output = 2 * 4 * 7 * 5;

        var forward = Assert.Single(trace.Launches, l => l.Kernel == "Conv2dForward");
        Assert.Equal(2.0 * macs + output, forward.Cost!.Value.Flops); // + the bias adds
        Assert.Equal(4.0 * (input + weight + 4 + output), forward.Cost.Value.Bytes);
        Assert.Equal(g.ForwardItems(g.OutChannelBlock), forward.WorkItems);
        Assert.Equal(d.Extent(forward.WorkItems), forward.Extent);
        Assert.Equal("Conv2d", forward.Family);

        var dx = Assert.Single(trace.Launches, l => l.Kernel == "Conv2dBackwardInput");
        Assert.Equal(2.0 * macs, dx.Cost!.Value.Flops);
        Assert.Equal(4.0 * (output + weight + input), dx.Cost.Value.Bytes); // x's first gradient: dInput overwritten, written once
        var dw = Assert.Single(trace.Launches, l => l.Kernel == "Conv2dBackwardWeight");
        Assert.Equal(2.0 * macs, dw.Cost!.Value.Flops);
        Assert.Equal(4.0 * (output + input + 2 * weight), dw.Cost.Value.Bytes);
        var db = Assert.Single(trace.Launches, l => l.Kernel == "Conv2dBackwardBias");
        Assert.Equal(4.0 * (output + 2 * 4), db.Cost!.Value.Bytes);

        // H200 floor of the forward: max(FLOPs / 67e12, bytes / 4.3e12).
        double floor = Math.Max((2.0 * macs + output) / 67e12, 4.0 * (input + weight + 4 + output) / 4.3e12) * 1e6;
        Assert.Equal(floor, forward.FloorUs(GpuProfile.H200), 12);
    }

    /// <summary>
    /// Intermediate gradients are not zero-filled: the first backward kernel to reach one overwrites it. A chain of
    /// convolution, fused batch norm + ReLU, ReLU and pooling from a given upstream gradient launches no Fill at all
    /// (the input's, the convolution output's and the ReLU's gradients are each written once); the weight's gradient,
    /// which the weight-gradient kernel accumulates into, gets its one Fill.
    /// </summary>
    [Fact]
    public void FirstContributions_Overwrite_WithoutZeroFills()
    {
        var d = fx.Device;
        using var x = Tensor.FromArray(d, Seeded.Uniform<float>(2 * 3 * 5 * 4, 1), 2, 3, 5, 4);
        using var w = Tensor.FromArray(d, Seeded.Uniform<float>(4 * 3 * 3 * 3, 2), 4, 3, 3, 3);
        using var gamma = Tensor.FromArray(d, [1f, 1.1f, 0.9f, 1.2f], 4);
        using var beta = Tensor.FromArray(d, [0f, 0.1f, -0.1f, 0.2f], 4);
        using var mean = Tensor.Zeros(d, 4);
        using var variance = Tensor.FromArray(d, [1f, 1f, 1f, 1f], 4);
        using var tape = new Tape(d);
        x.RequiresGrad = true;
        var y = tape.GlobalAvgPool2d(tape.Relu(tape.BatchNorm2dRelu(tape.Conv2d(x, w, null, stride: 1, padding: 1), gamma, beta, mean, variance, training: true)));
        var upstream = Seeded.Uniform<float>(y.Length, 3);
        var first = Traced(d, () => tape.Backward(y, upstream));
        Assert.Equal(0, first.Launches.Count(l => l.Kernel == "Fill"));
        var dx = x.GradToArray();
        Assert.Contains(dx, v => v != 0f);
        Assert.All(dx, v => Assert.True(float.IsFinite(v)));
        w.RequiresGrad = true; // a gradient read before it is written (Tensor.Grad) is still zeroed first
        var second = Traced(d, () => tape.Backward(y, upstream));
        Assert.Equal(1, second.Launches.Count(l => l.Kernel == "Fill"));
    }

    /// <summary>
    /// A traced training step records one launch per launcher call: the SGD updates match the parameters, the
    /// convolution and batch-norm launches the layers of the model, and a dry run of the same step records the
    /// same kernels in the same order with the same FLOPs.
    /// </summary>
    [Theory]
    [InlineData(WiringKind.Chain)]
    [InlineData(WiringKind.Dynamic)]
    public void TracedStep_CountsEveryLauncherCall_AndTheDryRunRecordsTheSameLaunches(WiringKind kind)
    {
        var spec = ModelZoo.Get("resnet_mini", 8);
        var wiring = new WiringConfig { Kind = kind };
        var d = fx.Device;
        LaunchTrace real;
        int parameters, convs, norms, linears, routers;
        using (var workload = new TrainingStepWorkload(d, spec, wiring, 2))
        {
            for (int i = 0; i < 2; i++) workload.Step(readKeepRate: false, synchronize: false);
            real = Traced(d, () => workload.Step(readKeepRate: false, synchronize: false));
            d.Synchronize();
            parameters = workload.Net.Parameters().Count();
            var modules = workload.Net.NamedModules().Select(m => m.Module).ToArray();
            convs = modules.OfType<Conv2d>().Count();
            norms = modules.OfType<BatchNorm2d>().Count();
            routers = modules.OfType<Router>().Count();
            linears = modules.OfType<Linear>().Count() - 2 * routers; // a router's two layers run as one fused op
        }
        int Count(LaunchTrace t, string kernel) => t.Launches.Count(l => l.Kernel == kernel);
        Assert.True(parameters > 20);
        Assert.Equal(1, Count(real, "SgdStep")); // one launch over the flat parameter, gradient and momentum buffers
        Assert.Equal(convs, Count(real, "Conv2dForward"));
        Assert.Equal(convs, Count(real, "Conv2dBackwardWeight"));
        // every batch norm: partial sums, then one finalize (the live-sample one in a dynamic stage's nodes after the first)
        Assert.Equal(norms, Count(real, "BatchNormForwardStatisticsFinalize") + Count(real, "BatchNormForwardStatisticsFinalizeMasked"));
        Assert.Equal(kind == WiringKind.Dynamic, Count(real, "BatchNormForwardStatisticsFinalizeMasked") > 0);
        // on the CPU accelerator a router runs op by op (pooling and its two linear layers), on Cuda as one fused op
        Assert.Equal(linears + 2 * routers, Count(real, "LinearForward"));
        Assert.Equal(0, Count(real, "RouterForward"));
        Assert.Equal(0, real.Allocations); // after two warm-up steps the pool serves every tensor
        Assert.Equal(0, real.Synchronizations);

        using var dry = Device.CreateDryRun(GpuProfile.H200);
        LaunchTrace recorded;
        using (var workload = new TrainingStepWorkload(dry, spec, wiring, 2))
        {
            for (int i = 0; i < 2; i++) workload.Step(readKeepRate: false, synchronize: false);
            recorded = Traced(dry, () => workload.Step(readKeepRate: false, synchronize: false));
            workload.Step(); // reads the keep rate back: zeros
            Assert.Equal(kind == WiringKind.Chain ? 1 : 0, workload.LastKeepRate); // a chain stage has no adjacency to read
            workload.EvalForward(); // a dynamic stage's dead-node skipping sees every node dead
        }
        Assert.Equal(linears, Count(recorded, "LinearForward"));
        Assert.Equal(routers, Count(recorded, "RouterForward"));
        Assert.Equal(routers, Count(recorded, "RouterBackwardActivations"));
        Assert.Equal(routers, Count(recorded, "RouterBackwardParameters"));
        Assert.Equal(kind == WiringKind.Dynamic, routers > 0);
        // Where the two devices take different kernel variants: the Cuda path runs each router as one fused op where
        // the CPU path pools and runs two linear layers (pooling, sums and linear layers are left out of the comparison); it reduces batch-norm channels with
        // groups of threads where the CPU path uses chunked work items, and it splits each adjacency-gradient dot
        // product into parts (a second, reducing launch) where the CPU path gives a thread a whole edge; it splits
        // the weight gradient's reduction (split-K, then a finalize) where the CPU path sums it in one launch; it runs
        // the forward and input gradient as tiled implicit GEMMs where the CPU path runs the register-blocked kernels; it
        // runs the register aggregation forward where the CPU path runs the simple one, and each aggregation's backward
        // as one fused pass where the CPU path runs the source and adjacency gradients separately (compared below).
        static IEnumerable<LaunchRecord> Common(LaunchTrace t) =>
            t.Launches.Where(l => l.Kernel is not ("AggregationReduceAdjacencyGradient" or "Conv2dBackwardWeightFinalize")
                && !l.Kernel.StartsWith("AggregationBackward", StringComparison.Ordinal)
                && !l.Kernel.StartsWith("Router", StringComparison.Ordinal) && !l.Kernel.StartsWith("Linear", StringComparison.Ordinal)
                && !l.Kernel.StartsWith("GlobalAvgPool", StringComparison.Ordinal)
                && l.Kernel is not ("SumChunks" or "Fill")); // pooling runs SumChunks; gradient zeroing follows the op order
        static string Variant(LaunchRecord l) =>
            l.Kernel.Replace("Chunks", "Rung").Replace("Groups", "Rung").Replace("Conv2dBackwardWeightSplit", "Conv2dBackwardWeight").Replace("Tiled", "")
                .Replace("AggregationForwardRegisters", "AggregationForward");
        Assert.Equal(Common(real).Select(Variant), Common(recorded).Select(Variant));
        Assert.Equal(Common(real).Select(l => l.Cost!.Value.Flops), Common(recorded).Select(l => l.Cost!.Value.Flops));
        Assert.Contains(recorded.Launches, l => l.Kernel == "BatchNormForwardStatisticsGroups");
        // every aggregation of a dynamic step needs both gradients: one fused pass on Cuda for the CPU path's two, with their FLOPs
        static double Flops(LaunchTrace t, params string[] kernels) => t.Launches.Where(l => kernels.Contains(l.Kernel)).Sum(l => l.Cost!.Value.Flops);
        Assert.Equal(Count(real, "AggregationBackwardAdjacency"), Count(recorded, "AggregationBackwardFusedGroups"));
        Assert.Equal(Count(real, "AggregationForward"), Count(recorded, "AggregationForwardRegisters"));
        Assert.Equal(0, Count(recorded, "AggregationBackwardSources") + Count(recorded, "AggregationBackwardAdjacency") + Count(recorded, "AggregationForward"));
        Assert.Equal(Flops(real, "AggregationBackwardSources", "AggregationBackwardAdjacency"), Flops(recorded, "AggregationBackwardFusedGroups"));
        Assert.Equal(kind == WiringKind.Dynamic, Count(recorded, "AggregationBackwardFusedGroups") > 0);
        Assert.All(recorded.Launches, l =>
        {
            if (l.Kernel.EndsWith("Tiled", StringComparison.Ordinal))
            {
                Assert.True(l.GroupSize is 128 or 256, $"{l.Kernel}: {l.GroupSize} threads a group"); // tileM·tileN/16
                return;
            }
            Assert.Equal(Device.GpuGroupSize, l.GroupSize);
            if (l.ExplicitlyGrouped) return; // the op chose the grid
            Assert.Equal(dry.Extent(l.WorkItems), l.Extent); // the GPU launch policy, not the CPU's
            Assert.Equal((l.Extent + Device.GpuGroupSize - 1) / Device.GpuGroupSize, l.Groups);
        });
        Assert.Equal(0, dry.AllocatedBytes);
    }

    [Fact]
    public void DryRun_UsesTheGpuLaunchPolicy_ExecutesNothing_AndReadsZeros()
    {
        using var dry = Device.CreateDryRun(GpuProfile.H200);
        Assert.Equal(DeviceKind.Cuda, dry.Kind);
        Assert.Equal(132 * 2048, dry.MaxThreads);
        Assert.Equal("dry-run:h200 (NVIDIA H200)", dry.ToString());
        const int n = 10_000_000;
        float[] read = [];
        var trace = Traced(dry, () =>
        {
            using var tape = new Tape(dry);
            using var x = Tensor.FromArray(dry, new float[n], n);
            read = tape.Relu(x).ToArray();
            dry.Synchronize();
        });
        var relu = Assert.Single(trace.Launches);
        Assert.Equal("ReluForward", relu.Kernel);
        Assert.Equal(132 * 8 * 2, relu.Groups); // twice the resident 256-thread groups of 132 SMs
        Assert.Equal(256, relu.ThreadsPerGroup);
        Assert.Equal(n, relu.WorkItems);
        Assert.All(read, v => Assert.Equal(0f, v));
        Assert.Equal(1, trace.HostReads);
        Assert.Equal(1, trace.HostWrites);
        Assert.Equal(1, trace.SynchronizeCalls);
        Assert.Equal(2, trace.Allocations);
        Assert.Equal(2L * n * sizeof(float), trace.AllocatedBytes);
        Assert.Equal(0, dry.AllocatedBytes); // placeholders: nothing behind them
        Assert.Throws<ArgumentException>(() => dry.Timing = LaunchTiming.Synchronized);
    }

    [Fact]
    public void DryRun_Resnet18At224Batch64_TakesSeconds_AndHoldsNoTensorMemory()
    {
        using var dry = Device.CreateDryRun(GpuProfile.H200);
        long before = Process.GetCurrentProcess().WorkingSet64;
        var clock = Stopwatch.StartNew();
        var profile = StepProfile.Run(dry, ModelZoo.Get("resnet18", 224), new WiringConfig { Kind = WiringKind.Dynamic }, 64, GpuProfile.H200, warmup: 2);
        clock.Stop();
        long grown = Process.GetCurrentProcess().WorkingSet64 - before;
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"dry run took {clock.Elapsed}");
        Assert.True(profile.PeakBytes > 1L << 30, $"the step would hold {profile.PeakBytes} bytes on the GPU");
        // the working set is the whole process's, and other collections' tests run meanwhile: half the step's tensor
        // memory is far below what holding it would cost and well above what they add
        Assert.True(grown < profile.PeakBytes / 2, $"the process grew by {grown} bytes for a step that holds {profile.PeakBytes}");
        Assert.Equal(0, dry.AllocatedBytes);
        var t = profile.Trace;
        Assert.True(t.Launches > 300, $"{t.Launches} launches");
        Assert.Equal(0, t.Allocations);
        Assert.Equal(0, t.Synchronizations);
        Assert.True(t.FloorUs > 1000);
        Assert.Equal(t.Launches, t.Kernels.Sum(k => k.Launches));
        Assert.Equal(t.FloorUs, t.Kernels.Sum(k => k.FloorSumUs), 6);
        Assert.DoesNotContain(t.Underfilled, l => l.Kernel.StartsWith("Conv2dBackwardWeight", StringComparison.Ordinal)); // split-K fills the GPU
        Assert.All(t.Kernels, k => Assert.Null(k.MeasuredUs));
    }

    /// <summary>
    /// The GPU fast path's aggregation at the sizes of the GPU check: the register forward and one fused backward pass per
    /// aggregation (no separate source or adjacency kernels), and no launch of the step breaks the launch-shape rule.
    /// </summary>
    [Theory]
    [InlineData("resnet_mini", 28, 256, WiringKind.Chain, 231)]
    [InlineData("resnet_mini", 28, 256, WiringKind.Dense, 273)]
    [InlineData("resnet_mini", 28, 256, WiringKind.Dynamic, 333)]
    [InlineData("resnet18", 224, 64, WiringKind.Dense, 263)]
    [InlineData("resnet18", 224, 64, WiringKind.Dynamic, 311)]
    public void DryRun_Aggregation_RunsTheFusedRung_AndEveryLaunchFillsTheGpu(string model, int size, int batch, WiringKind kind, int launches)
    {
        using var dry = Device.CreateDryRun(GpuProfile.H200);
        var t = StepProfile.Run(dry, ModelZoo.Get(model, size), new WiringConfig { Kind = kind }, batch, GpuProfile.H200, warmup: 2).Trace;
        Assert.Empty(t.Underfilled);
        Assert.Equal(launches, t.Launches);
        int Launches(string kernel) => t.Kernels.SingleOrDefault(k => k.Kernel == kernel)?.Launches ?? 0;
        Assert.Equal(0, Launches("AggregationForward") + Launches("AggregationBackwardSources") + Launches("AggregationBackwardAdjacency"));
        Assert.Equal(kind != WiringKind.Chain, Launches("AggregationBackwardFusedGroups") > 0);
        Assert.True(Launches("AggregationForwardRegisters") >= Launches("AggregationBackwardFusedGroups"));
    }

    [Theory]
    [InlineData("resnet18")]
    [InlineData("resnet50")]
    public void DryRun_At224Batch64_EveryWeightGradientFillsTheGpu(string model)
    {
        using var dry = Device.CreateDryRun(GpuProfile.H200);
        var profile = StepProfile.Run(dry, ModelZoo.Get(model, 224), new WiringConfig { Kind = WiringKind.Chain }, 64, GpuProfile.H200, warmup: 2);
        var t = profile.Trace;
        Assert.DoesNotContain(t.Underfilled, l => l.Kernel.StartsWith("Conv2d", StringComparison.Ordinal));
        Assert.Equal(0, t.Allocations); // the partials come from the pool
        int Launches(string kernel) => t.Kernels.SingleOrDefault(k => k.Kernel == kernel)?.Launches ?? 0;
        // every ResNet convolution's weight gradient is a tiled GEMM (one per convolution), finalized where it has slices
        int tiled = Launches("Conv2dBackwardWeightTiled");
        Assert.Equal(Launches("Conv2dForwardTiled"), tiled);
        Assert.InRange(Launches("Conv2dBackwardWeightFinalize"), 1, tiled);
        Assert.Equal(0, Launches("Conv2dBackwardWeightSplit"));
        Assert.Equal(0, Launches("Conv2dBackwardWeight"));
        Assert.Equal(0, Launches("Conv2dForward")); // every ResNet convolution has at least 8 output channels a group: tiled
        Assert.Equal(0, Launches("Conv2dBackwardInput"));
        Assert.True(Launches("Conv2dBackwardInputTiled") > 0);
    }

    [Fact]
    public void HostTransfers_Synchronizations_AndAllocations_AreCounted()
    {
        var d = fx.Device;
        d.TrimPool(); // the logits' buffer is a pool miss
        int allocationsBefore = d.Allocations, syncsBefore = d.Synchronizations;
        var trace = Traced(d, () =>
        {
            using var logits = Tensor.FromArray(d, [1f, 3f, 2f, 0f, 5f, 4f, 7f, 1f, 2f, 3f, 9f, 11f, 13f, 12f, 10f, 8f, 6f], 1, 17);
            using var labels = IntTensor.FromArray(d, [12]);
            Assert.Equal(1, Ops.CountCorrect(logits, labels));
            _ = logits.ToArray();
            d.Synchronize();
        });
        Assert.Equal(5, trace.Allocations);       // the logits, the labels, the count, the per-row hits, the sum's partials (pool misses)
        Assert.Equal(2, trace.HostWrites);        // logits and labels
        Assert.Equal(2, trace.HostReads);         // the count and ToArray
        Assert.Equal(1, trace.SynchronizeCalls);
        Assert.Equal(5, trace.Synchronizations);
        Assert.Equal(allocationsBefore + 5, d.Allocations);
        Assert.Equal(syncsBefore + 5, d.Synchronizations);
        Assert.Equal(["CorrectRows", "SumChunks", "SumChunks"], trace.Launches.Select(l => l.Kernel));
    }

    [Fact]
    public void SynchronizedTiming_MeasuresEveryLaunch_AndEventsNeedCuda()
    {
        var d = fx.Device;
        using var x = Tensor.FromArray(d, Seeded.Uniform<float>(999, 4), 999);
        var trace = Traced(d, () =>
        {
            using var tape = new Tape(d);
            tape.Sigmoid(tape.Relu(x));
        }, LaunchTiming.Synchronized);
        Assert.Equal(["ReluForward", "SigmoidForward"], trace.Launches.Select(l => l.Kernel));
        Assert.All(trace.Launches, l => Assert.True(l.MeasuredUs > 0));
        var summary = trace.Summarize(GpuProfile.H100);
        Assert.All(summary.Kernels, k => Assert.NotNull(k.MeasuredOverFloor));
        Assert.Equal(0, summary.Synchronizations); // the timing's own waits are not the step's
        Assert.Throws<ArgumentException>(() => d.Timing = LaunchTiming.Events);
    }

    [Fact]
    public void CustomKernels_AreTraced_AndNotRunOnADryRun()
    {
        var d = fx.Device;
        using var x = Tensor.FromArray(d, [1f, 2f, -3f], 3);
        float[] cube = [];
        var trace = Traced(d, () =>
        {
            using var tape = new Tape(d);
            cube = CubeOp.Cube(tape, x).ToArray();
        });
        Assert.Equal([1f, 8f, -27f], cube);
        var launch = Assert.Single(trace.Launches);
        Assert.Equal("CubeOp.CubeForward", launch.Kernel);
        Assert.Null(launch.Cost);
        Assert.Equal(3, launch.WorkItems);

        using var dry = Device.CreateDryRun(GpuProfile.H100);
        var recorded = Traced(dry, () =>
        {
            using var tape = new Tape(dry);
            using var y = Tensor.Empty(dry, 1 << 20);
            CubeOp.Cube(tape, y);
        });
        var skipped = Assert.Single(recorded.Launches);
        Assert.Equal("CubeOp.CubeForward", skipped.Kernel);
        Assert.Equal(Device.GpuGroupSize, skipped.GroupSize);
    }

    [Fact]
    public void GpuProfiles_AreNamed_AndUnknownNamesAreErrors()
    {
        Assert.Same(GpuProfile.H200, GpuProfile.Get("H200"));
        Assert.Equal(4.3e12, GpuProfile.H200.Bandwidth);
        Assert.Equal("nominal", GpuProfile.H100.BandwidthSource);
        Assert.Equal(264, GpuProfile.H100.FillGroups);
        Assert.Same(GpuProfile.H100, GpuProfile.ForCardName("NVIDIA H100 80GB HBM3"));
        var e = Assert.Throws<ArgumentException>(() => GpuProfile.Get("a100"));
        Assert.Contains("a100", e.Message);
    }
}
