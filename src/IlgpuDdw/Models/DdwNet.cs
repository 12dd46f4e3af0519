using IlgpuDdw.Nn;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Models;

/// <summary>
/// A CNN from a <see cref="ModelSpec"/> whose stages are <see cref="DdwStage"/>s: stem → stages → head (convs,
/// global average pool, linear classifier). One <see cref="WiringConfig"/> turns the published chain backbone
/// into a dense DAG or a dynamic (DDW) network.
/// </summary>
public sealed class DdwNet : Module
{
    private readonly Sequential _stem;
    private readonly ModuleList<DdwStage> _stages;
    private readonly Sequential _head;

    /// <summary>Builds the network; every parameter is initialised from <paramref name="seed"/>.</summary>
    public DdwNet(Device device, ModelSpec spec, WiringConfig wiring, int seed = 0) : base(device)
    {
        Spec = spec ?? throw new ArgumentNullException(nameof(spec));
        Wiring = wiring ?? throw new ArgumentNullException(nameof(wiring));
        wiring.Validate();
        Seed = seed;
        var seeds = new SeedSequence(seed);
        _stem = RegisterModule("stem", LayerFactory.Sequence(device, spec.Stem, seeds));
        _stages = RegisterModule("stages", new ModuleList<DdwStage>(device, spec.Stages.Select(s => new DdwStage(device, s, wiring, seeds))));
        _head = RegisterModule("head", LayerFactory.Sequence(device, spec.Head, seeds));
    }

    /// <summary>Builds a named configuration (see <see cref="ModelZoo"/>), optionally at another input size.</summary>
    public static DdwNet Create(Device device, string model, WiringConfig wiring, int seed = 0, int? inputSize = null)
    {
        var spec = inputSize is int s ? ModelZoo.Get(model, s) : ModelZoo.Get(model);
        return new DdwNet(device, spec, wiring, seed);
    }

    public ModelSpec Spec { get; }

    /// <summary>The wiring settings.</summary>
    public WiringConfig Wiring { get; }

    /// <summary>The initialisation seed.</summary>
    public int Seed { get; }

    public IReadOnlyList<DdwStage> Stages => _stages;

    /// <summary>Sets the gate threshold τ of every wired stage (e.g. for a τ warm-up).</summary>
    public void SetTau(float tau)
    {
        WiringConfig.ValidateTau(tau);
        foreach (var s in _stages)
            if (s.Wiring is not null) s.Wiring.Tau = tau;
    }

    /// <summary>
    /// Sets the stochastic gate's noise of every wired stage for the next training step: the stream's counter
    /// (<see cref="StageWiring.NoiseStep"/>) and whether noise is drawn at all (e.g. off for the end of training).
    /// </summary>
    public void SetGateNoise(int step, bool enabled)
    {
        foreach (var s in _stages)
            if (s.Wiring is not null)
            {
                s.Wiring.NoiseStep = step;
                s.Wiring.GateNoise = enabled;
            }
    }

    /// <summary>Turns dead-node skipping at evaluation on or off for every stage.</summary>
    public void SetSkipDeadNodes(bool skip)
    {
        foreach (var s in _stages) s.SkipDeadNodes = skip;
    }

    /// <summary>Router outputs of the last forward pass over all stages (dynamic wiring).</summary>
    public IEnumerable<Tensor> LastRouterOutputs() => _stages.SelectMany(s => s.LastRouterOutputs);

    /// <summary>
    /// Logits [B, classes] for images [B, C, H, W] of the spec's channel count and input size.
    /// </summary>
    /// <exception cref="ArgumentException">The input's shape does not fit the model.</exception>
    public override Tensor Forward(Tape tape, Tensor input)
    {
        ArgumentNullException.ThrowIfNull(tape);
        ArgumentNullException.ThrowIfNull(input);
        if (input.Rank != 4 || input.Dim(1) != Spec.InputChannels || input.Dim(2) != Spec.InputSize || input.Dim(3) != Spec.InputSize)
            throw new ArgumentException(
                $"{Spec.Name} expects input [B, {Spec.InputChannels}, {Spec.InputSize}, {Spec.InputSize}]; got {input.ShapeString}.", nameof(input));
        using var scope = tape.Scope();
        var x = _stem.Forward(tape, input);
        foreach (var s in _stages) x = scope.FreeExcept(s.Forward(tape, x));
        return scope.Keep(_head.Forward(tape, x));
    }
}
