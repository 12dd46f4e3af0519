namespace IlgpuDdw.Training;

/// <summary>
/// Stochastic gradient descent with optional momentum, Nesterov momentum and weight decay, after PyTorch's
/// <c>torch.optim.SGD</c> (dampening 0): per element,
/// <c>g = grad + wd·p</c> (coupled L2 decay, the default), <c>buf = μ·buf + g</c>, step along
/// <c>buf</c> or, with Nesterov, <c>g + μ·buf</c>; <c>p −= lr·step</c>. With
/// <see cref="DecoupledWeightDecay"/> the decay is applied to the weights instead (<c>p −= lr·wd·p</c>, as in
/// SGDW) and not added to the gradient, by the fused kernel <see cref="Kernels.OptimizerKernels.SgdStep"/>.
/// The optimizer lays its parameters out in one buffer (each stays the same tensor, now a view of its slice), their
/// gradients in another and the momentum buffers in a third, so that a step is one launch and zeroing the gradients
/// one fill; parameters that share storage with other tensors keep theirs, and the step then takes one launch per
/// parameter. Parameters with no gradient yet are skipped. Owns its momentum buffers (zero-initialised when
/// momentum ≠ 0) and the gradient buffer; dispose it to free them.
/// </summary>
public sealed class Sgd : IDisposable
{
    private readonly Tensor[] _parameters;
    private readonly Tensor?[] _buffers;
    private readonly Tensor? _flatParameters; // the parameters' storage when Pack succeeded
    private readonly Tensor? _flatGradients; // the gradients' slots
    private readonly Tensor? _flatMomentum;
    private readonly Tensor?[] _gradients; // scratch for Gradients()
    private readonly Tensor _noGuard; // a guard that is always 0, for steps without one
    private float _learningRate;
    private bool _disposed;

    /// <summary>Creates the optimizer over <paramref name="parameters"/> (distinct, not disposed).</summary>
    /// <exception cref="ArgumentException">No parameters, a parameter listed twice, a negative or non-finite
    /// hyper-parameter, or Nesterov without momentum.</exception>
    public Sgd(IEnumerable<Tensor> parameters, float lr, float momentum = 0f, bool nesterov = false,
        float weightDecay = 0f, bool decoupledWeightDecay = false)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        _parameters = parameters.ToArray();
        if (_parameters.Length == 0)
            throw new ArgumentException("Sgd: the parameter list is empty.", nameof(parameters));
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < _parameters.Length; i++)
        {
            var p = _parameters[i] ?? throw new ArgumentException($"Sgd: parameter {i} is null.", nameof(parameters));
            p.ThrowIfDisposed();
            if (!seen.Add(p))
                throw new ArgumentException($"Sgd: parameter {i} ({p}) appears more than once.", nameof(parameters));
        }
        RequireNonNegative(lr, nameof(lr));
        RequireNonNegative(momentum, nameof(momentum));
        RequireNonNegative(weightDecay, nameof(weightDecay));
        if (nesterov && momentum == 0f)
            throw new ArgumentException("Sgd: Nesterov momentum needs momentum > 0.", nameof(nesterov));

        _learningRate = lr;
        Momentum = momentum;
        Nesterov = nesterov;
        WeightDecay = weightDecay;
        DecoupledWeightDecay = decoupledWeightDecay;
        _buffers = new Tensor?[_parameters.Length];
        _gradients = new Tensor?[_parameters.Length];
        var device = _parameters[0].Device;
        _noGuard = Tensor.Zeros(device, 1);
        _noGuard.Name = "sgd guard (always 0)";
        _flatParameters = Tensor.Pack(device, _parameters);
        if (_flatParameters is not null)
        {
            _flatParameters.Name = "flat parameters";
            if (_parameters.All(p => p.GradOrNull is null))
            {
                _flatGradients = Tensor.Zeros(device, _flatParameters.Length);
                _flatGradients.Name = "flat gradients";
            }
            if (momentum != 0f)
            {
                _flatMomentum = Tensor.Zeros(device, _flatParameters.Length);
                _flatMomentum.Name = "flat momentum buffers";
            }
        }
        for (int i = 0, offset = 0; i < _parameters.Length; offset += _parameters[i].Length, i++)
        {
            var p = _parameters[i];
            if (_flatGradients is not null) p.BindGrad(_flatGradients, offset);
            if (momentum != 0f)
                _buffers[i] = _flatMomentum?.Slice(offset, [.. p.Shape]) ?? Tensor.Zeros(p.Device, [.. p.Shape]);
        }
    }

    /// <summary>The parameters, in the order given (their index is their key in <see cref="StateDict"/>).</summary>
    public IReadOnlyList<Tensor> Parameters => _parameters;

    /// <summary>The learning rate used by the next <see cref="Step()"/> (settable, e.g. by a schedule).</summary>
    /// <exception cref="ArgumentException">The value is negative or not finite.</exception>
    public float LearningRate
    {
        get => _learningRate;
        set { RequireNonNegative(value, nameof(LearningRate)); _learningRate = value; }
    }

    /// <summary>Momentum factor μ (0 = plain SGD).</summary>
    public float Momentum { get; }

    /// <summary>Whether Nesterov momentum is used.</summary>
    public bool Nesterov { get; }

    /// <summary>Weight-decay factor.</summary>
    public float WeightDecay { get; }

    /// <summary>True: decay the weights directly (SGDW); false: add <c>wd·p</c> to the gradient (L2, PyTorch's default).</summary>
    public bool DecoupledWeightDecay { get; }

    /// <summary>The state-dictionary key of parameter <paramref name="index"/>'s momentum buffer.</summary>
    public static string MomentumBufferKey(int index) => $"momentum_buffer.{index}";

    /// <summary>Updates every parameter that has a gradient, in place (asynchronously on the device stream).</summary>
    public void Step() => Step(null);

    /// <summary>
    /// <see cref="Step()"/>, skipped on the device when <c>guard[0] ≠ 0</c> (a divergence guard computed there, see
    /// <see cref="Kernels.OptimizerKernels.StepGuard"/>; null: no guard), so the host need not wait for the step's status.
    /// </summary>
    public void Step(ArrayView<float>? guard)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var skip = guard ?? _noGuard.View;
        if (FlatViews() is var (parameters, gradients, momentumBuffers))
        {
            var d = _parameters[0].Device;
            int n = (int)parameters.Length;
            int ext = d.Extent(n);
            d.Kernels.SgdStep(d.Stream, ext, n, ext, _learningRate, Momentum, WeightDecay,
                Nesterov ? 1 : 0, DecoupledWeightDecay ? 1 : 0, parameters, gradients, momentumBuffers ?? gradients, skip);
            return;
        }
        for (int i = 0; i < _parameters.Length; i++)
        {
            var p = _parameters[i];
            var grad = p.GradOrNull;
            if (grad is null) continue;
            var d = p.Device;
            int n = p.Length;
            int ext = d.Extent(n);
            d.Kernels.SgdStep(d.Stream, ext, n, ext, _learningRate, Momentum, WeightDecay,
                Nesterov ? 1 : 0, DecoupledWeightDecay ? 1 : 0, p.View, grad.View, (_buffers[i] ?? grad).View, skip);
        }
    }

    /// <summary>Zeros every parameter's gradient (those allocated).</summary>
    public void ZeroGrad()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (Gradients() is { } all)
        {
            var d = _parameters[0].Device;
            int n = (int)all.Length;
            int ext = d.Extent(n);
            d.Kernels.Fill(d.Stream, ext, n, ext, 0f, all);
            return;
        }
        foreach (var p in _parameters) p.ZeroGrad();
    }

    /// <summary>
    /// Every parameter's gradient as one view, in parameter order, when each has a gradient and they lie one after
    /// another in one buffer (the optimizer's, or one bound by <see cref="Tensor.BindGrad"/>); else null.
    /// </summary>
    internal ArrayView<float>? Gradients()
    {
        for (int i = 0; i < _parameters.Length; i++) _gradients[i] = _parameters[i].GradOrNull;
        return Tensor.Span(_gradients);
    }

    private (ArrayView<float> Parameters, ArrayView<float> Gradients, ArrayView<float>? Momentum)? FlatViews()
    {
        if (_flatParameters is null || Gradients() is not { } gradients) return null;
        ArrayView<float>? momentum = null;
        if (Momentum != 0f)
        {
            if (_flatMomentum is null) return null;
            momentum = _flatMomentum.View;
        }
        return (_flatParameters.View, gradients, momentum);
    }

    /// <summary>
    /// The optimizer state for a checkpoint: each momentum buffer as a float array under
    /// <see cref="MomentumBufferKey"/>(parameter index). Empty when momentum is 0. Hyper-parameters are not
    /// included (they come from the configuration).
    /// </summary>
    public IReadOnlyDictionary<string, float[]> StateDict()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var state = new Dictionary<string, float[]>(StringComparer.Ordinal);
        for (int i = 0; i < _buffers.Length; i++)
            if (_buffers[i] is { } b) state[MomentumBufferKey(i)] = b.ToArray();
        return state;
    }

    /// <summary>Restores state written by <see cref="StateDict"/> for the same parameter list.</summary>
    /// <exception cref="ArgumentException">A key is missing or unexpected, or a buffer's length differs from
    /// its parameter's; nothing is changed then.</exception>
    public void LoadStateDict(IReadOnlyDictionary<string, float[]> state)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(state);
        var expected = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < _buffers.Length; i++)
        {
            if (_buffers[i] is null) continue;
            string key = MomentumBufferKey(i);
            expected.Add(key);
            if (!state.TryGetValue(key, out var values))
                throw new ArgumentException($"Sgd state: missing '{key}' for parameter {i} ({_parameters[i]}).", nameof(state));
            if (values.Length != _parameters[i].Length)
                throw new ArgumentException(
                    $"Sgd state: '{key}' has {values.Length} elements but parameter {i} ({_parameters[i]}) has {_parameters[i].Length}.", nameof(state));
        }
        var unexpected = state.Keys.Where(k => !expected.Contains(k)).ToArray();
        if (unexpected.Length > 0)
            throw new ArgumentException(
                $"Sgd state: unexpected key(s) {string.Join(", ", unexpected.Select(k => $"'{k}'"))} (momentum {Momentum}, {_parameters.Length} parameters).", nameof(state));
        for (int i = 0; i < _buffers.Length; i++)
            _buffers[i]?.CopyFrom(state[MomentumBufferKey(i)]);
    }

    /// <summary>Frees the momentum buffers. Safe to call twice.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var b in _buffers) b?.Dispose();
        _flatMomentum?.Dispose();
        if (_flatGradients is not null)
            foreach (var p in _parameters)
                if (!p.IsDisposed) p.UnbindGrad(_flatGradients);
        _flatGradients?.Dispose();
        _flatParameters?.Dispose();
        _noGuard.Dispose();
    }

    private static void RequireNonNegative(float value, string name)
    {
        if (!(value >= 0f) || float.IsInfinity(value))
            throw new ArgumentException($"Sgd: {name} must be finite and ≥ 0; got {value}.", name);
    }
}
