using IlgpuDdw.Nn;

namespace IlgpuDdw.Wiring;

/// <summary>
/// The router of one node, <c>a = sigmoid(fc2(ReLU(fc1(GAP(y)))))</c>: two <see cref="Linear"/> layers,
/// <c>fc1 [Hidden, Channels]</c> with the ReLU fused and <c>fc2 [OutDegree, Hidden]</c> with the sigmoid fused,
/// Hidden = <see cref="HiddenSize"/>. Its outputs weigh the node's out-edges for each sample. For the stochastic gate
/// a second head <c>gate [OutDegree, Hidden]</c> (no activation) reads the same hidden activations and gives each
/// edge a gate logit z (<see cref="ForwardHeads"/>); fc1 and fc2 keep their names and initial values.
/// </summary>
public sealed class Router : Module
{
    /// <summary>
    /// Initial value of every entry of fc2's bias (the router's last bias): 3, so an edge starts at
    /// <c>a = sigmoid(3 + W2 · h) ≈ 0.95</c>, kept at the default τ = 0.5. With W2 ~ U(±1/√Hidden) the term
    /// <c>W2 · h</c> has a standard deviation of about <c>rms(h)/√3</c>, so an edge would start cut only when
    /// the hidden activations' rms exceeds ≈ 5 (far above what normalised feature maps give). Larger values
    /// keep edges more surely but shrink the sigmoid slope (0.045 at 3), slowing the routers' first steps.
    /// </summary>
    public const float DefaultOutputBias = 3f;

    /// <summary>
    /// Creates a router for a node with <paramref name="channels"/> channels and <paramref name="outDegree"/>
    /// out-edges. Both layers draw PyTorch's <c>Linear</c> default, U(±1/√In), in turn from one generator seeded by
    /// <paramref name="seeds"/> (fc1's weight and bias, then fc2's weight); fc2's bias is then set to
    /// <paramref name="outputBias"/> (see <see cref="DefaultOutputBias"/>).
    /// </summary>
    /// <param name="device">Device of the parameters.</param>
    /// <param name="channels">Channels C of the node output.</param>
    /// <param name="outDegree">Out-edges of the node.</param>
    /// <param name="reduction">Router reduction r.</param>
    /// <param name="seeds">Seed of the initial values.</param>
    /// <param name="outputBias">Initial fc2 bias (and gate head bias).</param>
    /// <param name="gateHead">Whether to add the gate head (stochastic gate), drawn from the same generator after fc2's
    /// weight and bias, its bias then set to <paramref name="outputBias"/> (every edge starts kept with probability
    /// sigmoid(outputBias)).</param>
    /// <exception cref="ArgumentException">Channels or out-degree below 1, an invalid reduction, or a non-finite bias.</exception>
    public Router(Device device, int channels, int outDegree, int reduction, SeedSequence seeds, float outputBias = DefaultOutputBias, bool gateHead = false)
        : base(device)
    {
        ArgumentNullException.ThrowIfNull(seeds);
        if (channels < 1) throw new ArgumentException($"Router channels {channels} must be at least 1.", nameof(channels));
        if (outDegree < 1) throw new ArgumentException($"Router out-degree {outDegree} must be at least 1.", nameof(outDegree));
        WiringConfig.ValidateReduction(reduction);
        if (!float.IsFinite(outputBias)) throw new ArgumentException($"Router output bias {outputBias} must be finite.", nameof(outputBias));
        int hidden = HiddenSize(channels, reduction);
        var generator = new Random(seeds.Next());
        Fc1 = RegisterModule("fc1", new Linear(device, new LinearSpec(channels, hidden), generator, LinearActivation.Relu));
        Fc2 = RegisterModule("fc2", new Linear(device, new LinearSpec(hidden, outDegree), generator, LinearActivation.Sigmoid));
        Init.Constant(Fc2.Bias!, outputBias);
        if (gateHead)
        {
            GateHead = RegisterModule("gate", new Linear(device, new LinearSpec(hidden, outDegree), generator));
            Init.Constant(GateHead.Bias!, outputBias);
        }
    }

    /// <summary>Hidden width of a router: <c>max(channels / reduction, 4)</c> (integer division).</summary>
    public static int HiddenSize(int channels, int reduction) => Math.Max(channels / reduction, 4);

    /// <summary>First layer, Channels → Hidden, ReLU fused.</summary>
    public Linear Fc1 { get; }

    /// <summary>Second layer, Hidden → OutDegree, sigmoid fused.</summary>
    public Linear Fc2 { get; }

    /// <summary>Gate head, Hidden → OutDegree, no activation (stochastic gate), else null.</summary>
    public Linear? GateHead { get; }

    /// <summary>Input channels C.</summary>
    public int Channels => Fc1.Spec.InFeatures;

    /// <summary>Hidden width h.</summary>
    public int Hidden => Fc1.Spec.OutFeatures;

    /// <summary>Out-degree of the node (router outputs per sample).</summary>
    public int OutDegree => Fc2.Spec.OutFeatures;

    /// <summary>
    /// The router outputs <c>a [B, OutDegree]</c> for a node output <c>y [B, C, H, W]</c>: global average pooling,
    /// then the two layers, in one fused op (<see cref="Ops.RouterFused"/>) when there is no gate head and the device and
    /// sizes suit it (<see cref="Ops.RouterFusedFor"/>), else op by op. The pooled features <c>[B, C]</c> and hidden
    /// activations <c>[B, Hidden]</c> are freed at
    /// once in no-grad mode.
    /// </summary>
    /// <exception cref="ArgumentException">y is not 4-D, or its channel count is not the router's.</exception>
    public override Tensor Forward(Tape tape, Tensor input) => ForwardHeads(tape, input).Weights;

    /// <summary>
    /// The edge weights <c>a [B, OutDegree]</c> (see <see cref="Forward"/>) and, with a gate head, the gate logits
    /// <c>z [B, OutDegree]</c> from the same hidden activations (else null).
    /// </summary>
    /// <exception cref="ArgumentException">y is not 4-D, or its channel count is not the router's.</exception>
    public (Tensor Weights, Tensor? GateLogits) ForwardHeads(Tape tape, Tensor input)
    {
        ArgumentNullException.ThrowIfNull(tape);
        ArgumentNullException.ThrowIfNull(input);
        Ops.RequireSameDevice("Router", tape, [input, .. Parameters()]);
        if (input.Rank != 4 || input.Dim(1) != Channels)
            throw new ArgumentException($"Router: node output {input.Describe()} must be [B, {Channels}, H, W] for a router with {Channels} input channels.", nameof(input));
        using var scope = tape.Scope();
        if (GateHead is null && Ops.RouterFusedFor(input.Device.Kind, Channels, Hidden, OutDegree))
            return (scope.Keep(tape.RouterFused(input, Fc1.Weight, Fc1.Bias!, Fc2.Weight, Fc2.Bias!)), null);
        var hidden = scope.FreeExcept(Fc1.Forward(tape, tape.GlobalAvgPool2d(input)));
        var weights = scope.Keep(Fc2.Forward(tape, hidden));
        return (weights, GateHead is null ? null : scope.Keep(GateHead.Forward(tape, hidden)));
    }
}
