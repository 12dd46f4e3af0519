using IlgpuDdw.IO;
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
    /// Writes the weights (parameters and batch-norm statistics, no optimizer state) to a safetensors file under
    /// torchvision's state-dict names (<see cref="TorchvisionNames"/>), wiring tensors under <c>ddw.*</c>, and a
    /// <c>num_batches_tracked</c> (int64 scalar, <paramref name="batchesTracked"/>) for every batch norm, so that
    /// <c>model.load_state_dict(safetensors.torch.load_file(path), strict=False)</c> fills a torchvision model of the
    /// same configuration (strict once the <c>ddw.*</c> keys are dropped).
    /// </summary>
    public void SaveTorchvision(string path, long batchesTracked = 0)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var tensors = new List<KeyValuePair<string, SafeTensor>>();
        foreach (var e in StateDict().Entries)
        {
            string name = TorchvisionNames.Map(Spec, e.Name);
            tensors.Add(new(name, SafeTensor.FromFloat32(e.Shape, e.Data)));
            if (!TorchvisionNames.IsWiring(e.Name) && name.EndsWith(".running_var", StringComparison.Ordinal))
                tensors.Add(new(name[..^"running_var".Length] + "num_batches_tracked", SafeTensor.FromInt64([], [batchesTracked])));
        }
        SafeTensors.Save(path, tensors, new Dictionary<string, string>
        {
            ["format"] = "pt", ["ddw_model"] = Spec.Name, ["ddw_wiring"] = Wiring.Kind.ToString().ToLowerInvariant(),
            ["ddw_input_size"] = Spec.InputSize.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
    }

    /// <summary>
    /// Initialises the backbone (any wiring) from a safetensors file with torchvision's names, e.g. a pretrained
    /// torchvision model saved with <c>safetensors.torch.save_file(m.state_dict(), path)</c>. Every backbone tensor
    /// must be there with the model's shape, except: a stem convolution with more input channels than the model's
    /// single one is summed over them (RGB weights for grey images); a classifier of another class count is left as
    /// initialised. Wiring tensors are read from <c>ddw.*</c> names when present, else left as initialised.
    /// <c>num_batches_tracked</c> and other extra tensors are ignored.
    /// </summary>
    /// <exception cref="InvalidDataException">A backbone tensor is missing, not F32, or has another shape (all are listed).</exception>
    public TorchvisionImport LoadTorchvision(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var file = SafeTensors.Load(path);
        var state = new StateDict();
        var problems = new List<string>();
        var adapted = new List<string>();
        var kept = new List<string>();
        var used = new HashSet<string>(StringComparer.Ordinal);
        string stemWeight = TorchvisionNames.Map(Spec, "stem.0.weight");
        foreach (var e in StateDict().Entries)
        {
            string name = TorchvisionNames.Map(Spec, e.Name);
            bool wiring = TorchvisionNames.IsWiring(e.Name);
            bool classifier = e.Name.StartsWith($"head.{Spec.Head.Count - 1}.", StringComparison.Ordinal);
            if (!file.Tensors.TryGetValue(name, out var t))
            {
                if (wiring) kept.Add(name);
                else problems.Add($"missing '{name}' {Tensor.Format(e.Shape)}");
                continue;
            }
            used.Add(name);
            if (t.DType != SafeTensorDType.Float32)
            {
                problems.Add($"'{name}' is {SafeTensors.DTypeName(t.DType)}, not F32");
                continue;
            }
            var shape = t.Shape.ToArray();
            if (shape.AsSpan().SequenceEqual(e.Shape)) state.Add(new StateEntry(e.Name, e.Shape, t.ToFloat32()));
            else if (name == stemWeight && e.Shape[1] == 1 && shape.Length == 4 && shape[0] == e.Shape[0] && shape[2] == e.Shape[2] && shape[3] == e.Shape[3])
            {
                var w = t.ToFloat32();
                var summed = new float[e.Data.Length];
                int plane = shape[2] * shape[3];
                for (int o = 0; o < shape[0]; o++)
                    for (int c = 0; c < shape[1]; c++)
                        for (int k = 0; k < plane; k++) summed[o * plane + k] += w[(o * shape[1] + c) * plane + k];
                state.Add(new StateEntry(e.Name, e.Shape, summed));
                adapted.Add($"{name} {Tensor.Format(shape)} summed over its {shape[1]} input channels");
            }
            else if (classifier) kept.Add($"{name} {Tensor.Format(shape)} (the model has {Tensor.Format(e.Shape)})");
            else problems.Add($"'{name}' has shape {Tensor.Format(shape)} but the model expects {Tensor.Format(e.Shape)}");
        }
        if (problems.Count > 0)
            throw new InvalidDataException($"{path}: not a torchvision {Spec.Name} for {Spec.InputChannels}-channel input: {string.Join("; ", problems)}.");
        LoadStateDict(state, strict: false);
        var unused = file.Tensors.Keys.Where(k => !used.Contains(k) && !k.EndsWith(".num_batches_tracked", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToArray();
        return new TorchvisionImport(state.Entries.Count, adapted, kept, unused);
    }

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

/// <summary>What <see cref="DdwNet.LoadTorchvision"/> did.</summary>
/// <param name="Loaded">Tensors loaded.</param>
/// <param name="Adapted">Tensors loaded after an adaptation (the stem summed over input channels), with how.</param>
/// <param name="KeptInitial">Tensors left as initialised: wiring tensors the file lacks, a classifier of another class count.</param>
/// <param name="Unused">Tensors of the file that the model has no place for (num_batches_tracked not counted).</param>
public sealed record TorchvisionImport(int Loaded, IReadOnlyList<string> Adapted, IReadOnlyList<string> KeptInitial, IReadOnlyList<string> Unused);
