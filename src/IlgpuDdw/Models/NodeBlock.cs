using IlgpuDdw.Nn;

namespace IlgpuDdw.Models;

/// <summary>
/// A node's transform f_j built from a <see cref="BlockSpec"/>: <c>y = act(main(x) + shortcut(x))</c>, where the
/// main path is the spec's conv/BN/activation list and the shortcut is identity, a 1×1 projection + BN, or absent
/// (MobileNetV2 blocks that change stride or width). ResNet basic/bottleneck, ResNeXt, MobileNetV2 inverted
/// residual and RegNet X blocks are all this shape.
/// </summary>
public sealed class NodeBlock : Module
{
    private readonly Sequential _main;
    private readonly Sequential? _shortcut;
    private readonly BatchNorm2d[] _batchNorms;

    /// <summary>Builds the block's layers; parameters are initialised from <paramref name="seeds"/>.</summary>
    public NodeBlock(Device device, BlockSpec spec, SeedSequence seeds) : base(device)
    {
        Spec = spec ?? throw new ArgumentNullException(nameof(spec));
        _main = RegisterModule("main", LayerFactory.Sequence(device, spec.Layers, seeds));
        if (spec.Shortcut == ShortcutKind.Projection)
            _shortcut = RegisterModule("shortcut", LayerFactory.Sequence(device, spec.ShortcutLayers, seeds));
        // Zero-init of the last BN's gamma is not applied (torchvision's default zero_init_residual = False).
        _batchNorms = NamedModules().Select(m => m.Module).OfType<BatchNorm2d>().ToArray();
    }

    /// <summary>The block's definition.</summary>
    public BlockSpec Spec { get; }

    /// <summary>
    /// The block on a batch in which only the samples with <paramref name="live"/>[b] ≠ 0 are on (null: all): every
    /// batch norm runs over the live samples only and writes 0 for the others, so an off sample, whose input is 0,
    /// gets output 0 and passes no gradient back (every main path and projection ends in a batch norm, the identity
    /// shortcut adds the 0 input, and an identity block without an output activation masks its output).
    /// </summary>
    public Tensor Forward(Tape tape, Tensor input, Tensor? live)
    {
        if (live is null) return Forward(tape, input);
        foreach (var bn in _batchNorms) bn.LiveMask = live;
        try
        {
            var y = Forward(tape, input);
            // An identity shortcut without an output activation would pass an off sample's gradient on (ReLU and
            // ReLU6 stop it at 0): zero it so that an off sample's output is constant in its input.
            return Spec.Shortcut == ShortcutKind.Identity && Spec.OutputActivation == ActivationKind.None ? tape.MaskSamples(y, live) : y;
        }
        finally
        {
            foreach (var bn in _batchNorms) bn.LiveMask = null;
        }
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tape tape, Tensor input)
    {
        using var scope = tape.Scope();
        if (Spec.OutputActivation == ActivationKind.Relu && _main.EndsInBatchNorm)
        {
            // the shortcut first, then the main path with its last batch norm, the add and the ReLU as one op
            var residual = Spec.Shortcut switch
            {
                ShortcutKind.Identity => input,
                ShortcutKind.Projection => _shortcut!.Forward(tape, input),
                _ => null,
            };
            return scope.Keep(_main.ForwardAddRelu(tape, input, residual));
        }
        var main = _main.Forward(tape, input);
        var sum = scope.FreeExcept(Spec.Shortcut switch
        {
            ShortcutKind.Identity => tape.Add(main, input),
            ShortcutKind.Projection => tape.Add(main, _shortcut!.Forward(tape, input)),
            _ => main,
        });
        return scope.Keep(Spec.OutputActivation switch
        {
            ActivationKind.Relu => tape.Relu(sum),
            ActivationKind.Relu6 => tape.Relu6(sum),
            _ => sum,
        });
    }
}
