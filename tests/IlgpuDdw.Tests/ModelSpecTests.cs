using System.Text.Json;
using IlgpuDdw.Models;
using IlgpuDdw.Nn;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Tests;

/// <summary>Model specs, the zoo and the cost model (host only, no device).</summary>
public sealed class ModelSpecTests
{
    // ---- zoo against torchvision ---------------------------------------------------------------------------

    /// <summary>torchvision's parameter counts (sum of p.numel() over model.parameters()).</summary>
    [Theory]
    [InlineData("resnet18", 11_689_512L)]
    [InlineData("resnet34", 21_797_672L)]
    [InlineData("resnet50", 25_557_032L)]
    [InlineData("resnext50_32x4d", 25_028_904L)]
    [InlineData("mobilenet_v2", 3_504_872L)]
    [InlineData("regnet_x_400mf", 5_495_976L)]
    [InlineData("regnet_x_800mf", 7_259_656L)]
    public void ChainParameters_MatchTorchvision(string name, long expected)
    {
        var spec = ModelZoo.Get(name);
        Assert.Equal((3, 224, 1000), (spec.InputChannels, spec.InputSize, spec.NumClasses));
        var cost = CostModel.Compute(spec);
        Assert.Equal(expected, cost.TotalParameters);
        Assert.Equal(expected, cost.BackboneParameters);
        Assert.Equal(expected, cost.Layers.Sum(l => l.Parameters));
    }

    /// <summary>
    /// Exact conv + linear MACs at 224, checked against the published GFLOPS (torchvision's model tables, which count
    /// MACs) to the published precision; resnet50's 4,089,184,256 is the well-known exact value, mobilenet_v2's ≈ 300.8M.
    /// </summary>
    [Theory]
    [InlineData("resnet18", 1_814_073_344L, 1.81)]
    [InlineData("resnet34", 3_663_761_408L, 3.66)]
    [InlineData("resnet50", 4_089_184_256L, 4.09)]
    [InlineData("resnext50_32x4d", 4_230_479_872L, 4.23)]
    [InlineData("mobilenet_v2", 300_774_272L, 0.30)]
    [InlineData("regnet_x_400mf", 413_812_608L, 0.41)]
    [InlineData("regnet_x_800mf", 799_699_712L, 0.80)]
    public void ChainMacs_MatchPublished(string name, long exact, double publishedGMacs)
    {
        var cost = CostModel.Compute(ModelZoo.Get(name));
        Assert.Equal(publishedGMacs, Math.Round(cost.BackboneMacs / 1e9, 2));
        Assert.Equal(exact, cost.BackboneMacs);
        Assert.Equal(exact, cost.TotalMacs);
        Assert.Equal(exact, cost.Layers.Sum(l => l.Macs));
        if (name == "mobilenet_v2") Assert.Equal(300.8, Math.Round(exact / 1e6, 1));
    }

    [Fact]
    public void MiniConfigs_SizedForFashionMnist()
    {
        var resnet = ModelZoo.Get("resnet_mini");
        var mobile = ModelZoo.Get("mobilenet_mini");
        foreach (var spec in new[] { resnet, mobile })
        {
            Assert.Equal((1, 28, 10), (spec.InputChannels, spec.InputSize, spec.NumClasses));
            Assert.All(spec.Stages, s => Assert.True(s.Nodes.Count >= 2, $"{spec.Name}.{s.Name} has {s.Nodes.Count} node(s)"));
        }
        Assert.All(resnet.Stages, s => Assert.Equal(BlockKind.Basic, s.Kind));
        Assert.Equal([16, 32, 64], resnet.Stages.Select(s => s.OutChannels));
        Assert.Equal([1, 2, 2], resnet.Stages.Select(s => s.Stride));
        Assert.DoesNotContain(resnet.Stem, l => l is MaxPoolSpec);
        Assert.All(mobile.Stages, s => Assert.Equal(BlockKind.InvertedResidual, s.Kind));

        var rc = CostModel.Compute(resnet);
        Assert.InRange(rc.TotalParameters, 200_000, 600_000);
        Assert.InRange(rc.TotalMacs, 20_000_000, 60_000_000);
        Assert.Equal(272_186, rc.TotalParameters);
        Assert.Equal(31_021_952, rc.TotalMacs);
        var mc = CostModel.Compute(mobile);
        Assert.Equal(122_362, mc.TotalParameters);
        Assert.Equal(15_974_992, mc.TotalMacs);
    }

    // ---- structure -----------------------------------------------------------------------------------------

    [Fact]
    public void ResNet_Structure_MatchesTorchvision()
    {
        var r18 = ModelZoo.Get("resnet18");
        Assert.Equal(
            new LayerSpec[] { new ConvSpec(3, 64, 7, 2, 3), new BatchNormSpec(64), new ActivationSpec(ActivationKind.Relu), new MaxPoolSpec(3, 2, 1) },
            r18.Stem);
        Assert.Equal(["layer1", "layer2", "layer3", "layer4"], r18.Stages.Select(s => s.Name));
        Assert.Equal([56, 28, 14, 7], r18.StageOutputSizes);
        Assert.Equal(56, r18.StemOutputSize);
        Assert.Equal(ShortcutKind.Identity, r18.Stages[0].Nodes[0].Shortcut);
        var down = r18.Stages[1].Nodes[0];
        Assert.Equal(ShortcutKind.Projection, down.Shortcut);
        Assert.Equal(new ConvSpec(64, 128, 1, 2, 0), down.ProjectionConv);
        Assert.Equal([new ConvSpec(64, 128, 3, 2, 1), new ConvSpec(128, 128, 3, 1, 1)], down.Convs());
        Assert.Equal(ActivationKind.Relu, down.OutputActivation);
        Assert.Equal(new LinearSpec(512, 1000, bias: true), r18.Classifier);

        // resnet50 layer1: 64 → 256 at stride 1 still projects; stride on the 3×3 (v1.5).
        var r50 = ModelZoo.Get("resnet50");
        var first = r50.Stages[0].Nodes[0];
        Assert.Equal(ShortcutKind.Projection, first.Shortcut);
        Assert.Equal(new ConvSpec(64, 256, 1, 1, 0), first.ProjectionConv);
        var l2 = r50.Stages[1].Nodes[0];
        Assert.Equal([ConvSpec.Conv1x1(256, 128), ConvSpec.Conv3x3(128, 128, 2), ConvSpec.Conv1x1(128, 512)], l2.Convs());
        Assert.Equal(8, l2.Layers.Count);
        Assert.Equal(ShortcutKind.Identity, r50.Stages[1].Nodes[1].Shortcut);

        // resnext50_32x4d: width = planes · 4/64 · 32 = 2·planes, grouped 3×3.
        var x50 = ModelZoo.Get("resnext50_32x4d").Stages[0].Nodes[1];
        Assert.Equal(BlockKind.ResNeXtBottleneck, x50.Kind);
        Assert.Equal([ConvSpec.Conv1x1(256, 128), ConvSpec.Conv3x3(128, 128, 1, 32), ConvSpec.Conv1x1(128, 256)], x50.Convs());
    }

    [Fact]
    public void MobileNetV2_Structure_MatchesTorchvision()
    {
        var spec = ModelZoo.Get("mobilenet_v2");
        Assert.Equal([1, 2, 3, 4, 3, 3, 1], spec.Stages.Select(s => s.Nodes.Count));
        Assert.Equal([16, 24, 32, 64, 96, 160, 320], spec.Stages.Select(s => s.OutChannels));
        Assert.Equal([112, 56, 28, 14, 14, 7, 7], spec.StageOutputSizes);
        Assert.Equal(new LayerSpec[] { ConvSpec.Conv3x3(3, 32, 2), new BatchNormSpec(32), new ActivationSpec(ActivationKind.Relu6) }, spec.Stem);

        // t = 1: no expansion; 32 → 16 so no residual; no final activation.
        var b0 = spec.Stages[0].Nodes[0];
        Assert.Equal([new ConvSpec(32, 32, 3, 1, 1, 32), ConvSpec.Conv1x1(32, 16)], b0.Convs());
        Assert.Equal(ShortcutKind.None, b0.Shortcut);
        Assert.Equal(ActivationKind.None, b0.OutputActivation);
        Assert.Empty(b0.ShortcutLayers);

        var s2 = spec.Stages[1];
        Assert.Equal([ConvSpec.Conv1x1(16, 96), new ConvSpec(96, 96, 3, 2, 1, 96), ConvSpec.Conv1x1(96, 24)], s2.Nodes[0].Convs());
        Assert.Equal(ShortcutKind.None, s2.Nodes[0].Shortcut);
        Assert.Equal(ShortcutKind.Identity, s2.Nodes[1].Shortcut);
        Assert.Equal(144, s2.Nodes[1].MidChannels);
        Assert.All(s2.Nodes[1].Layers.OfType<ActivationSpec>(), a => Assert.Equal(ActivationKind.Relu6, a.Kind));
        // stage5 (96, stride 1) begins 64 → 96: no residual although stride is 1.
        Assert.Equal(ShortcutKind.None, spec.Stages[4].Nodes[0].Shortcut);

        Assert.Equal(
            new LayerSpec[] { ConvSpec.Conv1x1(320, 1280), new BatchNormSpec(1280), new ActivationSpec(ActivationKind.Relu6), new GlobalAvgPoolSpec(), new LinearSpec(1280, 1000) },
            spec.Head);
    }

    [Fact]
    public void RegNetX_Structure_MatchesTorchvision()
    {
        var spec = ModelZoo.Get("regnet_x_400mf");
        Assert.Equal([1, 2, 7, 12], spec.Stages.Select(s => s.Nodes.Count));
        Assert.Equal([32, 64, 160, 400], spec.Stages.Select(s => s.OutChannels));
        Assert.Equal(new LayerSpec[] { ConvSpec.Conv3x3(3, 32, 2), new BatchNormSpec(32), new ActivationSpec(ActivationKind.Relu) }, spec.Stem);
        Assert.Equal([56, 28, 14, 7], spec.StageOutputSizes);

        // block1: 32 → 32 at stride 2 projects (stride ≠ 1); group width 16 → 2 groups.
        var b = spec.Stages[0].Nodes[0];
        Assert.Equal(BlockKind.RegNetX, b.Kind);
        Assert.Equal(ShortcutKind.Projection, b.Shortcut);
        Assert.Equal(ConvSpec.Conv1x1(32, 32, 2), b.ProjectionConv);
        Assert.Equal([ConvSpec.Conv1x1(32, 32), ConvSpec.Conv3x3(32, 32, 2, 2), ConvSpec.Conv1x1(32, 32)], b.Convs());
        Assert.Equal(25, spec.Stages[3].Nodes[5].Groups);

        var s800 = ModelZoo.Get("regnet_x_800mf");
        Assert.Equal([1, 3, 7, 5], s800.Stages.Select(s => s.Nodes.Count));
        Assert.Equal([64, 128, 288, 672], s800.Stages.Select(s => s.OutChannels));
        Assert.Equal([4, 8, 18, 42], s800.Stages.Select(s => s.Nodes[0].Groups));
    }

    [Theory]
    [MemberData(nameof(AllNames))]
    public void EveryStage_FirstNodeChangesShape_OthersKeepIt(string name)
    {
        var spec = ModelZoo.Get(name);
        int channels = spec.Stem.Aggregate(spec.InputChannels, (c, l) => l.OutputChannels(c));
        foreach (var stage in spec.Stages)
        {
            Assert.Equal(channels, stage.InChannels);
            Assert.All(stage.Nodes.Skip(1), n => Assert.Equal((stage.OutChannels, stage.OutChannels, 1), (n.InChannels, n.OutChannels, n.Stride)));
            Assert.All(stage.Nodes.SelectMany(n => n.AllLayers()).OfType<ConvSpec>(), c =>
            {
                Assert.False(c.Bias);
                Assert.Equal(c.Kernel / 2, c.Padding);
            });
            channels = stage.OutChannels;
        }
        Assert.Equal(spec, ModelZoo.Get(name));
        Assert.Equal(spec, spec.WithInput(spec.InputSize));
    }

    public static TheoryData<string> AllNames => new(ModelZoo.Names);

    // ---- validation ----------------------------------------------------------------------------------------

    [Fact]
    public void UnknownName_ListsKnownNames()
    {
        var ex = Assert.Throws<ArgumentException>(() => ModelZoo.Get("resnet1000"));
        Assert.Contains("resnet1000", ex.Message);
        Assert.All(ModelZoo.Names, n => Assert.Contains(n, ex.Message));
        Assert.Equal("resnet18", ModelZoo.Get("ResNet18").Name);
    }

    [Fact]
    public void WithInput_ResizesAndRejectsTooSmall()
    {
        var r18 = ModelZoo.Get("resnet18");
        Assert.Equal(32, r18.TotalStride);
        Assert.Equal(32, r18.MinimumInputSize);
        var small = r18.WithInput(64);
        Assert.Equal([16, 8, 4, 2], small.StageOutputSizes);
        Assert.Equal([8, 4, 2, 1], r18.WithInput(32).StageOutputSizes);
        Assert.Equal(r18.Stages, small.Stages);
        Assert.Equal(CostModel.Compute(r18).TotalParameters, CostModel.Compute(small).TotalParameters);
        Assert.Equal(37_523_456, CostModel.Compute(ModelZoo.Get("resnet18", 32)).TotalMacs);

        var ex = Assert.Throws<ArgumentException>(() => r18.WithInput(31));
        Assert.Contains("31", ex.Message);
        Assert.Contains("minimum is 32", ex.Message);
        Assert.Throws<ArgumentException>(() => r18.WithInput(0));
        var mini = ModelZoo.Get("resnet_mini");
        Assert.Equal(4, mini.MinimumInputSize);
        Assert.Contains("minimum is 4", Assert.Throws<ArgumentException>(() => mini.WithInput(3)).Message);
        Assert.Equal([4, 2, 1], mini.WithInput(4).StageOutputSizes);
    }

    [Fact]
    public void InvalidSpecs_Throw()
    {
        Assert.Contains("groups = 3", Assert.Throws<ArgumentException>(() => new ConvSpec(8, 8, 3, groups: 3)).Message);
        Assert.Contains("got 0", Assert.Throws<ArgumentException>(() => new ConvSpec(8, 8, 0)).Message);
        Assert.Contains("padding = 2 must be at most half the kernel (3)", Assert.Throws<ArgumentException>(() => new MaxPoolSpec(3, 2, 2)).Message);
        Assert.Contains("got None", Assert.Throws<ArgumentException>(() => new ActivationSpec(ActivationKind.None)).Message);
        Assert.Contains("midChannels = 8, outChannels = 16", Assert.Throws<ArgumentException>(() => new BlockSpec(BlockKind.Basic, 8, 16, 1, 8, 1)).Message);
        Assert.Throws<ArgumentException>(() => new BlockSpec(BlockKind.InvertedResidual, 8, 16, 1, 48, 1));
        Assert.Contains("groupWidth = 16 must be positive and divide the bottleneck width 40", Assert.Throws<ArgumentException>(() => BlockSpec.RegNetX(16, 40, 2, 16)).Message);
        var wrongStride = Assert.Throws<ArgumentException>(() => new StageSpec("s", [BlockSpec.Basic(8, 16, 2), BlockSpec.Basic(16, 16, 2)]));
        Assert.Contains("stride 2", wrongStride.Message);
        Assert.Contains("node 1 is Bottleneck but node 0 is Basic", Assert.Throws<ArgumentException>(() => new StageSpec("s", [BlockSpec.Basic(8, 16, 2), BlockSpec.Bottleneck(16, 16, 1, 4)])).Message);
        Assert.Contains("'s' has no nodes", Assert.Throws<ArgumentException>(() => new StageSpec("s", Array.Empty<BlockSpec>())).Message);

        LayerSpec[] stem = [ConvSpec.Conv3x3(1, 8)];
        StageSpec[] stages = [StageSpec.Repeat("s", 2, 8, 16, 2, BlockSpec.Basic)];
        LayerSpec[] head = [new GlobalAvgPoolSpec(), new LinearSpec(16, 10)];
        Assert.Equal(2, new ModelSpec("m", 1, 8, 10, stem, stages, head).MinimumInputSize);
        var channels = Assert.Throws<ArgumentException>(() => new ModelSpec("m", 3, 8, 10, stem, stages, head));
        Assert.Contains("expects 1 input channels but receives 3", channels.Message);
        Assert.Contains("expects 8 input channels but receives 4", Assert.Throws<ArgumentException>(() => new ModelSpec("m", 1, 8, 10, [ConvSpec.Conv3x3(1, 4)], stages, head)).Message);
        Assert.Contains("10 outputs but numClasses is 5", Assert.Throws<ArgumentException>(() => new ModelSpec("m", 1, 8, 5, stem, stages, head)).Message);
        Assert.Contains("the head must be", Assert.Throws<ArgumentException>(() => new ModelSpec("m", 1, 8, 10, stem, stages, [new LinearSpec(16, 10)])).Message);
    }

    // ---- wiring costs --------------------------------------------------------------------------------------

    [Theory]
    [MemberData(nameof(AllNames))]
    public void DenseAndDynamic_AddExactlyEdgeAndRouterParameters(string name)
    {
        var spec = ModelZoo.Get(name);
        var chain = CostModel.Compute(spec);
        var dense = CostModel.Compute(spec, WiringKind.Dense);
        const int r = 4;
        var dynamic = CostModel.Compute(spec, WiringKind.Dynamic, r);
        for (int s = 0; s < spec.Stages.Count; s++)
        {
            var (c, d, y) = (chain.Stages[s], dense.Stages[s], dynamic.Stages[s]);
            long n = c.Nodes, channels = c.Width, elements = channels * c.Resolution * c.Resolution;
            long edges = n >= 2 ? n * (n + 1) / 2 : 0;
            long h = Math.Max(channels / r, 4);
            long routerParams = 0, routerMacs = 0;
            for (long i = 0; n >= 2 && i < n; i++)
            {
                routerParams += channels * h + h + h * (n - i) + (n - i);
                routerMacs += channels * h + h * (n - i);
            }
            Assert.Equal((0L, 0L, 0L, 0L), (c.EdgeParameters, c.AggregationMacs, c.RouterParameters, c.RouterMacs));
            Assert.Equal((edges, edges * elements, 0L, 0L), (d.EdgeParameters, d.AggregationMacs, d.RouterParameters, d.RouterMacs));
            Assert.Equal((0L, edges * elements, routerParams, routerMacs), (y.EdgeParameters, y.AggregationMacs, y.RouterParameters, y.RouterMacs));
            Assert.Equal(n >= 2 ? n * elements : 0, y.RouterPoolAdds);
            Assert.Equal((c.Parameters, c.Macs), (d.Parameters, d.Macs));
            Assert.Equal((c.Parameters, c.Macs), (y.Parameters, y.Macs));
        }
        Assert.Equal(chain.TotalParameters + dense.Stages.Sum(s => s.EdgeParameters), dense.TotalParameters);
        Assert.Equal(chain.TotalParameters + dynamic.Stages.Sum(s => s.RouterParameters), dynamic.TotalParameters);
        Assert.Equal(chain.TotalMacs + dynamic.AggregationMacs + dynamic.RouterMacs, dynamic.TotalMacs);
    }

    [Fact]
    public void RouterFormulas_HandComputed()
    {
        Assert.Equal(4, CostModel.RouterHiddenWidth(8));
        Assert.Equal(4, CostModel.RouterHiddenWidth(17));
        Assert.Equal(16, CostModel.RouterHiddenWidth(64));
        Assert.Equal(8, CostModel.RouterHiddenWidth(64, 8));
        Assert.Equal(0, CostModel.EdgeCount(1));
        Assert.Equal(3, CostModel.EdgeCount(2));
        Assert.Equal(78, CostModel.EdgeCount(12));
        // C = 16, h = 4, n = 3: node 0 out-degree 3, node 2 out-degree 1.
        Assert.Equal(16 * 4 + 4 + 4 * 3 + 3, CostModel.RouterParameterCount(16, 3, 0));
        Assert.Equal(16 * 4 + 4 * 1, CostModel.RouterMacCount(16, 3, 2));
        Assert.Contains("[0, 3), got 3", Assert.Throws<ArgumentException>(() => CostModel.RouterMacCount(16, 3, 3)).Message);
        Assert.Equal(234, CostModel.Compute(ModelZoo.Get("resnet_mini"), WiringKind.Dynamic).Stages[0].RouterParameters);
    }

    // ---- effective MACs ------------------------------------------------------------------------------------

    /// <summary>B samples of a stage of n nodes with every edge (i &lt; j) kept at weight 0.9 (and junk below the diagonal).</summary>
    private static float[] AllKept(int n, int batch = 1)
    {
        int m = n + 1;
        var a = new float[batch * m * m];
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < m; i++)
                for (int j = 0; j < m; j++)
                    a[(b * m + i) * m + j] = j > i ? 0.9f : 7f;
        return a;
    }

    private static void Cut(float[] a, int n, int sample, params (int I, int J)[] edges)
    {
        int m = n + 1;
        foreach (var (i, j) in edges) a[(sample * m + i) * m + j] = 0f;
    }

    private static (ModelSpec Spec, ModelCost Static) Mini(WiringKind wiring)
    {
        var spec = ModelZoo.Get("resnet_mini");
        return (spec, CostModel.Compute(spec, wiring));
    }

    [Theory]
    [InlineData(WiringKind.Dense)]
    [InlineData(WiringKind.Dynamic)]
    public void Effective_AllKept_EqualsStatic(WiringKind wiring)
    {
        var (spec, st) = Mini(wiring);
        var eff = CostModel.Effective(spec, wiring, spec.Stages.Select(s => (float[]?)AllKept(s.Nodes.Count, 3)).ToArray());
        Assert.Equal(3, eff.Batch);
        Assert.Equal(st.TotalMacs, eff.TotalMacs);
        Assert.Equal(1.0, eff.Ratio);
        for (int s = 0; s < 3; s++)
        {
            Assert.Equal(st.Stages[s].TotalMacs, eff.Stages[s].TotalMacs);
            Assert.Equal(st.Stages[s].RouterPoolAdds, eff.Stages[s].RouterPoolAdds);
            Assert.Equal(1.0, eff.Stages[s].EdgeKeepRate);
            Assert.Equal(3.0, eff.Stages[s].MeanComputedNodes);
        }
        var chain = CostModel.Effective(spec, WiringKind.Chain, null);
        Assert.Equal(CostModel.Compute(spec).TotalMacs, chain.TotalMacs);
        Assert.Equal(0, chain.Batch);
    }

    [Fact]
    public void Effective_DeadNodes_AreRemoved()
    {
        const int n = 3;
        var (spec, st) = Mini(WiringKind.Dynamic);
        var s0 = st.Stages[0];
        long elements = (long)s0.Width * s0.Resolution * s0.Resolution;
        long Router(int i) => CostModel.RouterMacCount(s0.Width, n, i);
        var rest = new[] { AllKept(n), AllKept(n) };
        StageEffectiveCost Run(float[] a) =>
            CostModel.Effective(spec, WiringKind.Dynamic, [a, .. rest], rule: DeadNodeRule.NoPathToOutput).Stages[0];

        // node 1 has no out-edges: its MACs, its router and the aggregation into it (edge 0→1) go.
        var cut1 = AllKept(n);
        Cut(cut1, n, 0, (1, 2), (1, 3));
        var e = Run(cut1);
        Assert.Equal(s0.Macs - s0.NodeMacs[1], e.Macs);
        Assert.Equal(3 * elements, e.AggregationMacs); // kept into live targets: 0→2, 0→3, 2→3
        Assert.Equal(s0.RouterMacs - Router(1), e.RouterMacs);
        Assert.Equal(2.0, e.MeanComputedNodes);
        Assert.Equal(4.0 / 6, e.EdgeKeepRate, 12);

        // transitive: node 1 reaches only node 2, node 2 reaches nothing → both dead.
        var chainDead = AllKept(n);
        Cut(chainDead, n, 0, (1, 3), (2, 3));
        e = Run(chainDead);
        Assert.Equal(s0.NodeMacs[0], e.Macs);
        Assert.Equal(1 * elements, e.AggregationMacs); // only 0→3
        Assert.Equal(Router(0), e.RouterMacs);
        Assert.Equal(elements, e.RouterPoolAdds);
        Assert.Equal(1.0, e.MeanComputedNodes);

        // node 0 dead is still computed (it is the stage's entry); nothing else changes except its edges.
        var dead0 = AllKept(n);
        Cut(dead0, n, 0, (0, 1), (0, 2), (0, 3));
        e = Run(dead0);
        Assert.Equal(s0.Macs, e.Macs);
        Assert.Equal(3 * elements, e.AggregationMacs);
        Assert.Equal(s0.RouterMacs, e.RouterMacs);

        // mean over a batch of two: all kept, and node 1 dead.
        var two = AllKept(n, 2);
        Cut(two, n, 1, (1, 2), (1, 3));
        var rest2 = new[] { AllKept(n, 2), AllKept(n, 2) };
        var eff = CostModel.Effective(spec, WiringKind.Dynamic, [two, .. rest2], rule: DeadNodeRule.NoPathToOutput);
        Assert.Equal(2, eff.Batch);
        Assert.Equal(s0.Macs - s0.NodeMacs[1] / 2.0, eff.Stages[0].Macs);
        Assert.Equal(4.5 * elements, eff.Stages[0].AggregationMacs);
        Assert.Equal(st.TotalMacs - (s0.NodeMacs[1] + 3 * elements + Router(1)) / 2.0, eff.TotalMacs);
        Assert.True(eff.Ratio < 1);
    }

    [Fact]
    public void Effective_InputCut_SkipsNodesWithoutKeptInEdges()
    {
        const int n = 3;
        var (spec, st) = Mini(WiringKind.Dynamic);
        var s0 = st.Stages[0];
        long elements = (long)s0.Width * s0.Resolution * s0.Resolution;
        var rest = new[] { AllKept(n), AllKept(n) };
        // node 1's only in-edge (0→1) cut: node 1 is skipped; node 2 still has 0→2 and runs.
        var a = AllKept(n);
        Cut(a, n, 0, (0, 1));
        var e = CostModel.Effective(spec, WiringKind.Dynamic, [a, .. rest]).Stages[0];
        Assert.Equal(s0.Macs - s0.NodeMacs[1], e.Macs);
        Assert.Equal(2.0, e.MeanComputedNodes);
        Assert.Equal(s0.RouterMacs, e.RouterMacs); // every node's router runs
        Assert.Equal(5 * elements, e.AggregationMacs); // kept edges into computed nodes and the output: all but 0→1
        // node 1 with no out-edges is still computed under InputCut (its own router decided that after it ran).
        var b = AllKept(n);
        Cut(b, n, 0, (1, 2), (1, 3));
        Assert.Equal(s0.Macs, CostModel.Effective(spec, WiringKind.Dynamic, [b, .. rest]).Stages[0].Macs);
        var computed = new bool[4];
        CostModel.ComputedNodes(a, n, computed);
        Assert.Equal([true, false, true, true], computed);
    }

    [Fact]
    public void LiveNodes_FollowsKeptPathsToTheOutput()
    {
        var live = new bool[5];
        var a = new float[25];
        void Keep(int i, int j) => a[i * 5 + j] = 0.6f;
        Keep(0, 1); Keep(1, 3); Keep(3, 4); Keep(2, 3); Keep(0, 2);
        CostModel.LiveNodes(a, 4, live);
        Assert.Equal([true, true, true, true, true], live);
        a[3 * 5 + 4] = -1f; // 3 → out cut: 3, and every node that reached the output only through 3, die
        CostModel.LiveNodes(a, 4, live);
        Assert.Equal([false, false, false, false, true], live);
        a[2 * 5 + 4] = float.NaN; // NaN is not kept
        CostModel.LiveNodes(a, 4, live);
        Assert.False(live[2]);
        Assert.Contains("(25 entries), got 24", Assert.Throws<ArgumentException>(() => CostModel.LiveNodes(new float[24], 4, live)).Message);
    }

    [Fact]
    public void Effective_BadAdjacency_Throws()
    {
        var (spec, _) = Mini(WiringKind.Dense);
        float[]?[] ok = [AllKept(3), AllKept(3), AllKept(3)];
        Assert.Contains("3 stages but 2 adjacencies", Assert.Throws<ArgumentException>(() => CostModel.Effective(spec, WiringKind.Dense, ok[..2])).Message);
        Assert.Contains("got 15", Assert.Throws<ArgumentException>(() =>
            CostModel.Effective(spec, WiringKind.Dense, [ok[0], new float[15], ok[2]])).Message);
        Assert.Contains("needs an adjacency", Assert.Throws<ArgumentException>(() => CostModel.Effective(spec, WiringKind.Dense, [ok[0], null, ok[2]])).Message);
        Assert.Contains("for 2 samples", Assert.Throws<ArgumentException>(() => CostModel.Effective(spec, WiringKind.Dense, [ok[0], AllKept(3, 2), ok[2]])).Message);

        // single-node stages need no adjacency.
        var mb = ModelZoo.Get("mobilenet_v2", 64);
        var adj = mb.Stages.Select(s => s.Nodes.Count < 2 ? null : (float[]?)AllKept(s.Nodes.Count)).ToArray();
        Assert.Equal(CostModel.Compute(mb, WiringKind.Dynamic).TotalMacs, CostModel.Effective(mb, WiringKind.Dynamic, adj).TotalMacs);
    }

    // ---- reports -------------------------------------------------------------------------------------------

    [Fact]
    public void Reports_FormatAsTableAndJson()
    {
        var cost = CostModel.Compute(ModelZoo.Get("resnet_mini"), WiringKind.Dynamic);
        var table = cost.FormatTable();
        Assert.Contains("layer3", table);
        Assert.Contains("276,488", table);
        using var doc = JsonDocument.Parse(cost.ToJson());
        Assert.Equal("Dynamic", doc.RootElement.GetProperty("Wiring").GetString());
        Assert.Equal(276_488, doc.RootElement.GetProperty("TotalParameters").GetInt64());
        Assert.Equal(3, doc.RootElement.GetProperty("Stages").GetArrayLength());
        Assert.Equal("stem.0", cost.Layers[0].Path);
        Assert.Contains(cost.Layers, l => l.Path == "layer2.0.shortcut.0" && l.Layer.StartsWith("Conv2d(16, 32, kernel_size=1, stride=2"));
        var eff = CostModel.Effective(ModelZoo.Get("resnet_mini"), WiringKind.Dense, [AllKept(3), AllKept(3), AllKept(3)]);
        using var effDoc = JsonDocument.Parse(eff.ToJson(indented: false));
        Assert.Equal(1.0, effDoc.RootElement.GetProperty("Ratio").GetDouble());
    }
}
