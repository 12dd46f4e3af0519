using IlgpuDdw.Autograd;
using IlgpuDdw.Kernels;
using IlgpuDdw.Kernels.Reference;
using IlgpuDdw.Models;
using IlgpuDdw.Nn;
using IlgpuDdw.Wiring;
using Xunit.Abstractions;

namespace IlgpuDdw.Tests;

/// <summary>
/// End-to-end check of a tiny <see cref="DdwNet"/> (stem conv + BN + ReLU, a 3-node stage of width 3, a 2-node
/// stage of width 4 at stride 2 with a projection shortcut, GAP + Linear to 3 classes) in training mode under
/// chain, dense and dynamic wiring (all edges kept, and some edges cut per sample): the double reference
/// (<see cref="ReferenceNet"/>) of the mean cross-entropy over a batch of 3 against central finite differences
/// for every parameter tensor, and the net on the CPU accelerator against that reference.
/// </summary>
[Collection("cpu")]
public sealed class EndToEndGradientTests(DeviceFixture fx, ITestOutputHelper output)
{
    /// <summary>The wirings under test.</summary>
    public enum Case
    {
        /// <summary>The backbone as published.</summary>
        Chain,
        /// <summary>Learned static edges; the edge logits are spread over [−2, 2].</summary>
        Dense,
        /// <summary>Routers with τ = 0.05 below every router output: every edge kept.</summary>
        DynamicAllKept,
        /// <summary>τ = 0.5 and router output biases set so that some edges are cut (some for only some samples).</summary>
        DynamicSomeCut,
        /// <summary><see cref="Dense"/> with in-edge normalisation (<see cref="WiringConfig.NormalizeInEdges"/>).</summary>
        DenseNormalized,
        /// <summary><see cref="DynamicSomeCut"/> with in-edge normalisation.</summary>
        DynamicSomeCutNormalized,
    }

    // Seeds (fixed; change them here to rerun with others).
    private const int NetSeed = 7, PerturbSeed = 11, ImageSeed = 13, FiniteDifferenceSeed = 17;
    private const int Batch = 3;
    private static readonly int[] Labels = [0, 2, 1];

    /// <summary>Indices checked by finite differences per parameter tensor (a seeded subset; all for small tensors).</summary>
    private const int ChecksPerTensor = 10;

    /// <summary>Preconditions of the finite-difference check: distance of every ReLU input from 0 and of every router output from τ.</summary>
    private const double MinKinkDistance = 1e-4, MinGateMargin = 1e-2;

    /// <summary>Router outputs are placed this far from τ (in sigmoid units) when an edge is kept or cut for every sample.</summary>
    private const double GatePlacement = 0.25;

    /// <summary>Factor on every router's W2 in the cut case, so that samples' router logits differ enough to split an edge.</summary>
    private const float RouterSpread = 10f;

    /// <summary>The tiny model: 1×7×7 input, every parameter group of a ResNet-style DDW net, 3 classes.</summary>
    public static ModelSpec TinySpec() => new("e2e_tiny", 1, 7, 3,
        [ConvSpec.Conv3x3(1, 3), new BatchNormSpec(3), new ActivationSpec(ActivationKind.Relu)],
        [StageSpec.Repeat("a", 3, 3, 3, 1, BlockSpec.Basic), StageSpec.Repeat("b", 2, 3, 4, 2, BlockSpec.Basic)],
        [new GlobalAvgPoolSpec(), new LinearSpec(4, 3)]);

    public static TheoryData<Case> Cases() => new(Enum.GetValues<Case>());

    [Theory, MemberData(nameof(Cases))]
    public void Reference_GradientOfEveryParameter_MatchesCentralFiniteDifferences(Case c)
    {
        using var net = Build(c, out var wiring, out var images);
        var reference = new ReferenceNet(net.Spec, wiring, ReferenceNet.ParametersOf(net));
        var (loss, gradients) = reference.LossAndGradients(images, Labels);
        CheckPreconditions(net, wiring, reference);
        output.WriteLine($"{c}: loss {loss:R}, {reference.Parameters.Count} parameter tensors, kink distance {reference.KinkDistance:E2}");
        int k = 0;
        foreach (var (name, values) in reference.Parameters)
        {
            Assert.True(gradients[name].Any(v => v != 0), $"{c}: the gradient of {name} is zero; the check would prove nothing.");
            Check.FiniteDifference(() => reference.Loss(images, Labels), values, gradients[name], $"{c}: {name}",
                maxChecks: ChecksPerTensor, seed: FiniteDifferenceSeed + k++);
        }
    }

    [Theory, MemberData(nameof(Cases))]
    public void CpuAccelerator_LossAndEveryGradient_MatchTheDoubleReference(Case c)
    {
        var d = fx.Device;
        using var net = Build(c, out var wiring, out var images);
        var reference = new ReferenceNet(net.Spec, wiring, ReferenceNet.ParametersOf(net));
        var (expectedLoss, gradients) = reference.LossAndGradients(images, Labels);
        CheckPreconditions(net, wiring, reference);

        var spec = net.Spec;
        using var x = Tensor.FromArray(d, Check.ToFloat(images), Batch, spec.InputChannels, spec.InputSize, spec.InputSize);
        using var labels = IntTensor.FromArray(d, Labels);
        using var tape = new Tape(d);
        var logits = net.Forward(tape, x);
        Check.Close(Check.ToFloat(reference.Logits), logits.ToArray(), Tolerance.Forward, $"{c}: logits");
        for (int s = 0; s < net.Stages.Count; s++)
        {
            var adjacency = net.Stages[s].LastAdjacency;
            if (adjacency is null) continue;
            var expected = reference.Adjacencies[s]!;
            var actual = adjacency.Tensor.ToArray();
            Check.Close(Check.ToFloat(expected), actual, Tolerance.Forward, $"{c}: adjacency of stage {s}");
            for (int e = 0; e < expected.Length; e++)
                Assert.True((expected[e] == 0) == (actual[e] == 0), $"{c}: stage {s} adjacency entry {e} is {actual[e]} on the device, {expected[e]} in the reference.");
        }
        var loss = tape.CrossEntropy(logits, labels);
        tape.Backward(loss);

        double actualLoss = loss.ToArray()[0];
        Assert.True(Math.Abs(actualLoss - expectedLoss) <= 1e-4 * Math.Abs(expectedLoss), $"{c}: loss {actualLoss:R}, reference {expectedLoss:R}");
        double worst = 0;
        foreach (var (name, p) in net.NamedParameters())
        {
            var actual = p.GradToArray();
            Check.Close(Check.ToFloat(gradients[name]), actual, Tolerance.Backward, $"{c}: d loss / d {name}");
            for (int i = 0; i < actual.Length; i++)
                worst = Math.Max(worst, Math.Abs(actual[i] - gradients[name][i]) / (Tolerance.Backward.Atol + Tolerance.Backward.Rtol * Math.Abs(gradients[name][i])));
        }
        output.WriteLine($"{c}: loss {actualLoss:R} (reference {expectedLoss:R}); worst gradient error {worst:F3} of the tolerance");
        tape.Clear();
        d.TrimPool();
    }

    /// <summary>
    /// The net of <paramref name="c"/> with its initial weights, except that BN affine parameters, dense edge
    /// logits and (dynamic) router output biases are spread so that a swapped or mis-indexed parameter shows.
    /// </summary>
    private DdwNet Build(Case c, out WiringConfig wiring, out double[] images)
    {
        wiring = c switch
        {
            Case.Chain => new WiringConfig { Kind = WiringKind.Chain },
            Case.Dense => new WiringConfig { Kind = WiringKind.Dense },
            Case.DynamicAllKept => new WiringConfig { Kind = WiringKind.Dynamic, Tau = 0.05f },
            Case.DenseNormalized => new WiringConfig { Kind = WiringKind.Dense, NormalizeInEdges = true },
            Case.DynamicSomeCutNormalized => new WiringConfig { Kind = WiringKind.Dynamic, Tau = 0.5f, NormalizeInEdges = true },
            _ => new WiringConfig { Kind = WiringKind.Dynamic, Tau = 0.5f },
        };
        var spec = TinySpec();
        var net = new DdwNet(fx.Device, spec, wiring, NetSeed);
        images = Check.ToDouble(Check.ToFloat(Seeded.Uniform<double>(Batch * spec.InputChannels * spec.InputSize * spec.InputSize, ImageSeed)));
        int seed = PerturbSeed;
        foreach (var (_, m) in net.NamedModules())
            if (m is BatchNorm2d bn)
            {
                bn.Weight.CopyFrom(Check.ToFloat(Seeded.Uniform<double>(bn.Weight.Length, seed++, 0.6, 1.4)));
                bn.Bias.CopyFrom(Check.ToFloat(Seeded.Uniform<double>(bn.Bias.Length, seed++, -0.3, 0.3)));
            }
        foreach (var stage in net.Stages)
        {
            if (stage.Wiring?.EdgeLogits is { } logits)
                logits.CopyFrom(Check.ToFloat(Seeded.Uniform<double>(logits.Length, seed++, -2, 2)));
            foreach (var r in stage.Wiring?.Routers ?? [])
            {
                if (c == Case.DynamicAllKept)
                    r.Fc2.Bias!.CopyFrom(Check.ToFloat(Seeded.Uniform<double>(r.Fc2.Bias!.Length, seed++, 0, 3)));
                else // spread W2·h across samples (at initialisation it differs by only ~0.01–0.1) so edges can split
                    r.Fc2.Weight.CopyFrom(r.Fc2.Weight.ToArray().Select(v => v * RouterSpread).ToArray());
            }
        }
        if (c is Case.DynamicSomeCut or Case.DynamicSomeCutNormalized) PlaceRouterOutputs(net, wiring, images);
        return net;
    }

    /// <summary>
    /// Sets each router's output biases b2, node by node (b2 of router i moves only the edges out of node i, which
    /// later nodes read), so that with τ = 0.5 every router output lies well away from τ and: the chain edge
    /// i → i+1 is kept for every sample; any other edge whose pre-bias logits <c>W2·h</c> leave a wide enough gap
    /// between two samples is kept for the samples above the gap and cut for those below; the remaining edges are
    /// cut for every sample.
    /// </summary>
    private void PlaceRouterOutputs(DdwNet net, WiringConfig wiring, double[] images)
    {
        double tau = wiring.Tau;
        // Placing τ mid-gap puts a sample σ′(logit τ)·gap/2 = τ(1 − τ)·gap/2 from τ: ask for twice the minimum margin.
        double splitGap = 4 * MinGateMargin / (tau * (1 - tau));
        for (int s = 0; s < net.Stages.Count; s++)
        {
            var routers = net.Stages[s].Wiring!.Routers;
            for (int i = 0; i < routers.Count; i++)
            {
                var reference = new ReferenceNet(net.Spec, wiring, ReferenceNet.ParametersOf(net));
                reference.Loss(images, Labels);
                var state = reference.RouterStates[s]![i];
                var p = routers[i];
                int degree = p.OutDegree;
                var z = new double[Batch * degree];
                LinearReference.Forward<double>(state.Hidden, Check.ToDouble(p.Fc2.Weight.ToArray()), [], Batch, p.Hidden, degree, LinearActivation.None, z);
                var b2 = new float[degree];
                for (int o = 0; o < degree; o++)
                {
                    var logits = Enumerable.Range(0, Batch).Select(b => z[b * degree + o]).Order().ToArray();
                    int gapAt = Enumerable.Range(0, Batch - 1).MaxBy(k => logits[k + 1] - logits[k]);
                    double gap = logits[gapAt + 1] - logits[gapAt];
                    double bias = o == 0 ? Logit(tau + GatePlacement) - logits[0]
                        : gap >= splitGap ? Logit(tau) - (logits[gapAt] + logits[gapAt + 1]) / 2
                        : Logit(tau - GatePlacement) - logits[^1];
                    b2[o] = (float)bias;
                }
                p.Fc2.Bias!.CopyFrom(b2);
                output.WriteLine($"stage {s} router {i}: W2·h = [{string.Join(", ", z.Select(v => v.ToString("F3")))}], b2 = [{string.Join(", ", b2)}]");
            }
        }
    }

    private static double Logit(double p) => Math.Log(p / (1 - p));

    /// <summary>
    /// The reference reads every parameter of the net, no ReLU input lies within <see cref="MinKinkDistance"/> of
    /// its kink, and every router output lies at least <see cref="MinGateMargin"/> from τ (so a finite-difference
    /// step cannot flip a kept edge to cut, and the kept-only gradient is the true derivative). For the cut case,
    /// some edges are cut and some kept.
    /// </summary>
    private void CheckPreconditions(DdwNet net, WiringConfig wiring, ReferenceNet reference)
    {
        Assert.Equal(net.NamedParameters().Select(p => p.Name).Order(StringComparer.Ordinal), reference.UsedParameters.Order(StringComparer.Ordinal));
        Assert.True(reference.KinkDistance >= MinKinkDistance,
            $"A ReLU input lies {reference.KinkDistance:E2} from its kink (< {MinKinkDistance}); pick other seeds.");
        if (wiring.NormalizeInEdges)
        {
            // the normalisation must scale some columns and leave others, none at its kink S = 1
            var sums = reference.InEdgeSums.ToArray();
            Assert.Contains(sums, v => v > 1);
            Assert.Contains(sums, v => v < 1);
            double kink = sums.Min(v => Math.Abs(v - 1));
            Assert.True(kink >= MinKinkDistance, $"An in-edge sum lies {kink:E2} from 1 (< {MinKinkDistance}); pick other seeds.");
        }
        if (wiring.Kind != WiringKind.Dynamic) return;
        var outputs = reference.RouterStates.Where(r => r is not null).SelectMany(r => r!).SelectMany(r => r.Output).ToArray();
        double margin = outputs.Min(a => Math.Abs(a - wiring.Tau));
        Assert.True(margin >= MinGateMargin, $"A router output lies {margin:E2} from tau = {wiring.Tau} (< {MinGateMargin}).");
        int cut = outputs.Count(a => a <= wiring.Tau);
        output.WriteLine($"router outputs: {outputs.Length}, cut {cut}, gate margin {margin:E2}");
        if (wiring.Tau < 0.1f)
        {
            Assert.Equal(0, cut);
            return;
        }
        Assert.True(cut > 0 && cut < outputs.Length, $"{cut} of {outputs.Length} router outputs are cut; expected some but not all.");
        Assert.True(EdgesKeptForSomeSamplesOnly(net, reference) > 0, "No edge is kept for some samples and cut for others.");
    }

    /// <summary>Edges (i → j) of any stage that are kept for some samples of the batch and cut for others.</summary>
    private static int EdgesKeptForSomeSamplesOnly(DdwNet net, ReferenceNet reference)
    {
        int mixed = 0;
        for (int s = 0; s < net.Stages.Count; s++)
        {
            if (reference.Adjacencies[s] is not { } a) continue;
            int n = net.Stages[s].Nodes.Count;
            for (int i = 0; i < n; i++)
                for (int j = i + 1; j <= n; j++)
                {
                    int kept = Enumerable.Range(0, Batch).Count(b => a[GateReference.Index(n, b, i, j)] != 0);
                    if (kept > 0 && kept < Batch) mixed++;
                }
        }
        return mixed;
    }
}
