namespace IlgpuDdw.Nn;

/// <summary>One named tensor of a <see cref="StateDict"/>: shape and row-major float data on the host.</summary>
/// <param name="Name">Dotted name, e.g. <c>stages.1.nodes.2.conv1.weight</c>.</param>
/// <param name="Shape">The tensor's shape.</param>
/// <param name="Data">Row-major float data.</param>
public sealed record StateEntry(string Name, int[] Shape, float[] Data);

/// <summary>A module's parameters and buffers on the host, in registration order (PyTorch's state_dict).</summary>
public sealed class StateDict
{
    private readonly Dictionary<string, StateEntry> _byName = new(StringComparer.Ordinal);
    private readonly List<StateEntry> _entries = new();

    /// <summary>The entries in order.</summary>
    public IReadOnlyList<StateEntry> Entries => _entries;

    /// <summary>Number of entries.</summary>
    public int Count => _entries.Count;

    /// <summary>Adds an entry (names must be unique).</summary>
    public void Add(StateEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        if (!_byName.TryAdd(entry.Name, entry))
            throw new ArgumentException($"State dict already has an entry named '{entry.Name}'.", nameof(entry));
        _entries.Add(entry);
    }

    /// <summary>Looks an entry up by name.</summary>
    public bool TryGet(string name, out StateEntry entry) => _byName.TryGetValue(name, out entry!);

    /// <summary>Whether an entry has this name.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);
}

/// <summary>
/// Base class of layers and models (PyTorch's nn.Module): registers parameters (tensors that require a gradient),
/// buffers (state such as batch-norm running statistics) and child modules under dotted names, switches between
/// training and evaluation, and saves/loads a <see cref="StateDict"/>. Owns its parameters and buffers and disposes
/// them (and its children) on <see cref="Dispose"/>.
/// </summary>
public abstract class Module : IDisposable
{
    private readonly List<(string Name, Tensor Tensor)> _parameters = new();
    private readonly List<(string Name, Tensor Tensor)> _buffers = new();
    private readonly List<(string Name, Module Module)> _children = new();
    private bool _disposed;

    /// <summary>Creates a module on a device.</summary>
    protected Module(Device device) => Device = device ?? throw new ArgumentNullException(nameof(device));

    /// <summary>The device holding the module's tensors.</summary>
    public Device Device { get; }

    /// <summary>True in training mode (the default), false after <see cref="Eval"/>.</summary>
    public bool Training { get; private set; } = true;

    /// <summary>
    /// Runs the module on <paramref name="input"/>, recording on <paramref name="tape"/>. Containers without a
    /// forward of their own (<see cref="ModuleList{T}"/>, a stage's wiring) throw <see cref="NotSupportedException"/>.
    /// </summary>
    public virtual Tensor Forward(Tape tape, Tensor input) =>
        throw new NotSupportedException($"{GetType().Name} has no forward of its own; call its children.");

    /// <summary>Registers a parameter (marked as requiring a gradient) under <paramref name="name"/>.</summary>
    protected Tensor RegisterParameter(string name, Tensor tensor)
    {
        CheckName(name);
        tensor.RequiresGrad = true;
        _parameters.Add((name, tensor));
        return tensor;
    }

    /// <summary>Registers a buffer (saved in the state dict, no gradient) under <paramref name="name"/>.</summary>
    protected Tensor RegisterBuffer(string name, Tensor tensor)
    {
        CheckName(name);
        tensor.RequiresGrad = false;
        _buffers.Add((name, tensor));
        return tensor;
    }

    /// <summary>Registers a child module under <paramref name="name"/>; returns it.</summary>
    protected T RegisterModule<T>(string name, T module) where T : Module
    {
        CheckName(name);
        _children.Add((name, module));
        return module;
    }

    private void CheckName(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Contains('.'))
            throw new ArgumentException($"Invalid member name '{name}' (non-empty, no dots).", nameof(name));
        if (_parameters.Any(p => p.Name == name) || _buffers.Any(b => b.Name == name) || _children.Any(c => c.Name == name))
            throw new ArgumentException($"{GetType().Name} already has a member named '{name}'.", nameof(name));
    }

    /// <summary>Direct children with their names.</summary>
    public IEnumerable<(string Name, Module Module)> NamedChildren() => _children;

    /// <summary>Every parameter of this module and its descendants with its dotted name, in registration order.</summary>
    public IEnumerable<(string Name, Tensor Tensor)> NamedParameters(string prefix = "")
    {
        foreach (var (n, t) in _parameters) yield return (prefix + n, t);
        foreach (var (n, c) in _children)
            foreach (var p in c.NamedParameters(prefix + n + ".")) yield return p;
    }

    /// <summary>Every buffer of this module and its descendants with its dotted name.</summary>
    public IEnumerable<(string Name, Tensor Tensor)> NamedBuffers(string prefix = "")
    {
        foreach (var (n, t) in _buffers) yield return (prefix + n, t);
        foreach (var (n, c) in _children)
            foreach (var b in c.NamedBuffers(prefix + n + ".")) yield return b;
    }

    /// <summary>Every module in this tree (this one first) with its dotted name.</summary>
    public IEnumerable<(string Name, Module Module)> NamedModules(string prefix = "")
    {
        yield return (prefix.TrimEnd('.'), this);
        foreach (var (n, c) in _children)
            foreach (var m in c.NamedModules(prefix + n + ".")) yield return m;
    }

    /// <summary>Every parameter tensor.</summary>
    public IEnumerable<Tensor> Parameters() => NamedParameters().Select(p => p.Tensor);

    /// <summary>Total number of parameter elements.</summary>
    public long ParameterCount() => Parameters().Sum(p => (long)p.Length);

    /// <summary>Switches this module and every descendant to training (true) or evaluation (false) mode.</summary>
    public Module Train(bool training = true)
    {
        Training = training;
        foreach (var (_, c) in _children) c.Train(training);
        return this;
    }

    /// <summary>Switches to evaluation mode (batch norm uses running statistics; dead-node skipping may apply).</summary>
    public Module Eval() => Train(false);

    /// <summary>Zeros every parameter's gradient.</summary>
    public void ZeroGrad()
    {
        foreach (var p in Parameters()) p.ZeroGrad();
    }

    /// <summary>Copies every parameter and buffer to the host (parameters first, then buffers).</summary>
    public StateDict StateDict()
    {
        var sd = new StateDict();
        foreach (var (n, t) in NamedParameters().Concat(NamedBuffers()))
            sd.Add(new StateEntry(n, [.. t.Shape], t.ToArray()));
        return sd;
    }

    /// <summary>
    /// Loads parameters and buffers from <paramref name="state"/>. Every entry is checked before anything is copied:
    /// a mis-shaped entry is always an error; under <paramref name="strict"/> a missing or unexpected entry is too.
    /// </summary>
    /// <exception cref="ArgumentException">Lists every missing, unexpected and mis-shaped entry.</exception>
    public void LoadStateDict(StateDict state, bool strict = true)
    {
        ArgumentNullException.ThrowIfNull(state);
        var targets = NamedParameters().Concat(NamedBuffers()).ToList();
        var problems = new List<string>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (n, t) in targets)
        {
            names.Add(n);
            if (!state.TryGet(n, out var e))
            {
                if (strict) problems.Add($"missing '{n}' {t.ShapeString}");
            }
            else if (!e.Shape.AsSpan().SequenceEqual([.. t.Shape]) || e.Data.Length != t.Length)
            {
                problems.Add($"'{n}' has shape {Tensor.Format(e.Shape)} ({e.Data.Length} values) but the model expects {t.ShapeString}");
            }
        }
        if (strict)
            foreach (var e in state.Entries)
                if (!names.Contains(e.Name)) problems.Add($"unexpected '{e.Name}' {Tensor.Format(e.Shape)}");
        if (problems.Count > 0)
            throw new ArgumentException($"Cannot load state dict into {GetType().Name}: " + string.Join("; ", problems) + ".", nameof(state));
        foreach (var (n, t) in targets)
            if (state.TryGet(n, out var e)) t.CopyFrom(e.Data);
    }

    /// <summary>Disposes every parameter, buffer and child module.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var (_, t) in _parameters) t.Dispose();
        foreach (var (_, t) in _buffers) t.Dispose();
        foreach (var (_, c) in _children) c.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>Runs child modules in order.</summary>
public sealed class Sequential : Module
{
    private readonly List<Module> _layers = new();

    /// <summary>Creates a sequential container of <paramref name="layers"/> named 0, 1, 2, ...</summary>
    public Sequential(Device device, params Module[] layers) : base(device)
    {
        foreach (var l in layers) Add(l);
    }

    /// <summary>Appends a layer (named by its index).</summary>
    public Sequential Add(Module layer)
    {
        RegisterModule(_layers.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), layer);
        _layers.Add(layer);
        return this;
    }

    public IReadOnlyList<Module> Layers => _layers;

    /// <summary>
    /// Runs the layers in order; each intermediate is freed once the next layer has read it (see <see cref="Tape.Scope"/>).
    /// A <see cref="BatchNorm2d"/> followed by a ReLU <see cref="Activation"/> runs as one fused op
    /// (<see cref="BatchNorm2d.ForwardRelu"/>).
    /// </summary>
    public override Tensor Forward(Tape tape, Tensor input) => Forward(tape, input, fuseLast: false, null);

    /// <summary>Whether the last layer is a <see cref="BatchNorm2d"/> (so <see cref="ForwardAddRelu"/> can end in it).</summary>
    public bool EndsInBatchNorm => _layers.Count > 0 && _layers[^1] is BatchNorm2d;

    /// <summary>
    /// <c>max(0, this(x) + residual)</c> (residual null: <c>max(0, this(x))</c>) with the add and the ReLU fused into the
    /// last layer, a <see cref="BatchNorm2d"/>: the end of a residual block in one elementwise pass.
    /// </summary>
    /// <exception cref="InvalidOperationException">The last layer is not a batch norm.</exception>
    public Tensor ForwardAddRelu(Tape tape, Tensor input, Tensor? residual)
    {
        if (!EndsInBatchNorm) throw new InvalidOperationException("Sequential.ForwardAddRelu: the last layer is not a BatchNorm2d.");
        return Forward(tape, input, fuseLast: true, residual);
    }

    private Tensor Forward(Tape tape, Tensor input, bool fuseLast, Tensor? residual)
    {
        ArgumentNullException.ThrowIfNull(tape);
        using var scope = tape.Scope();
        var x = input;
        for (int i = 0; i < _layers.Count; i++)
        {
            bool last = i == _layers.Count - 1;
            if (_layers[i] is BatchNorm2d bn && (last ? fuseLast : _layers[i + 1] is Activation { Kind: ActivationKind.Relu }))
            {
                x = scope.FreeExcept(bn.ForwardRelu(tape, x, last ? residual : null));
                if (!last) i++;
            }
            else
            {
                x = scope.FreeExcept(_layers[i].Forward(tape, x));
            }
        }
        return scope.Keep(x);
    }
}

/// <summary>Holds child modules in a list, named 0, 1, 2, ... (PyTorch's nn.ModuleList); it has no forward of its own.</summary>
public sealed class ModuleList<T> : Module, IReadOnlyList<T> where T : Module
{
    private readonly List<T> _modules = new();

    /// <summary>Creates a list of <paramref name="modules"/> (none by default).</summary>
    public ModuleList(Device device, IEnumerable<T>? modules = null) : base(device)
    {
        foreach (var m in modules ?? []) Add(m);
    }

    /// <summary>Appends a module (named by its index); returns this list.</summary>
    public ModuleList<T> Add(T module)
    {
        ArgumentNullException.ThrowIfNull(module);
        RegisterModule(_modules.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), module);
        _modules.Add(module);
        return this;
    }

    /// <summary>The module at <paramref name="index"/>.</summary>
    public T this[int index] => _modules[index];

    /// <summary>Number of modules.</summary>
    public int Count => _modules.Count;

    /// <inheritdoc/>
    public IEnumerator<T> GetEnumerator() => _modules.GetEnumerator();

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}
