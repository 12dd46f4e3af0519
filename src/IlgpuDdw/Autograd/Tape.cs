using IlgpuDdw.Distributed;

namespace IlgpuDdw.Autograd;

/// <summary>Receives the progress of a tape's passes (<see cref="Tape.Observer"/>).</summary>
public interface IBackwardObserver
{
    /// <summary>Forward: the op about to be recorded at <paramref name="entry"/> reads <paramref name="input"/> (which requires a gradient).</summary>
    void OnRead(Tensor input, int entry);

    /// <summary>Backward: the backwards of every op recorded at <paramref name="entry"/> or later have run.</summary>
    void OnBackwardDone(int entry);
}

/// <summary>
/// The one autograd tape. Ops (see <see cref="Ops"/>) run their forward kernel at once, allocate their outputs
/// through <see cref="NewTensor"/> (the tape owns them), and, while recording, append their backward to the
/// tape. <see cref="Backward(Tensor)"/> seeds the loss gradient with 1 and runs the recorded backwards in reverse
/// order; every backward kernel accumulates into its inputs' gradients (the first to reach a new intermediate gradient
/// overwrites it instead of adding onto zeros, see <see cref="Tensor.GradForWrite"/>), so a tensor read by several ops
/// (fan-out) receives the sum. <see cref="Clear"/> disposes every intermediate the tape owns; a
/// <see cref="Scope"/> disposes the ones made inside it earlier, when no recorded backward can read them.
/// </summary>
public sealed class Tape : IDisposable
{
    private readonly record struct Entry(string Name, Tensor? Output, Action Backward);

    private readonly List<Entry> _entries = new();
    private readonly HashSet<Tensor> _owned = new(ReferenceEqualityComparer.Instance);
    private readonly List<TapeScope> _scopes = new();
    private int _noGradDepth;

    /// <summary>Creates a tape for ops on <paramref name="device"/>.</summary>
    public Tape(Device device) => Device = device ?? throw new ArgumentNullException(nameof(device));

    /// <summary>The device the ops run on.</summary>
    public Device Device { get; }

    /// <summary>False inside a <see cref="NoGrad"/> scope: ops then record nothing and produce no gradients.</summary>
    public bool IsRecording => _noGradDepth == 0;

    /// <summary>Number of recorded backward steps.</summary>
    public int Count => _entries.Count;

    /// <summary>Names of the recorded ops, in forward order.</summary>
    public IReadOnlyList<string> OpNames => _entries.Select(e => e.Name).ToArray();

    /// <summary>Number of intermediates the tape currently owns.</summary>
    public int OwnedCount => _owned.Count;

    /// <summary>A scope in which ops record nothing (inference). Dispose it to resume recording.</summary>
    public IDisposable NoGrad()
    {
        _noGradDepth++;
        return new NoGradScope(this);
    }

    private sealed class NoGradScope(Tape tape) : IDisposable
    {
        private bool _done;
        public void Dispose()
        {
            if (_done) return;
            _done = true;
            tape._noGradDepth--;
        }
    }

    /// <summary>
    /// Opens a scope over part of a forward pass: the intermediates the tape makes until it ends
    /// (<see cref="NewTensor"/>, <see cref="Own"/>) belong to it, and it disposes them when it ends, except those it
    /// keeps (<see cref="TapeScope.Keep"/>, handed to the enclosing scope). While recording, a scope during which a
    /// backward was recorded frees nothing (that backward may read its tensors; they stay until <see cref="Clear"/>
    /// or the eager freeing of <see cref="Backward(Tensor)"/>). Typical use:
    /// <code>
    /// using var s = tape.Scope();
    /// var h = s.FreeExcept(Layer1(tape, x));   // frees what Layer1 made besides h
    /// return s.Keep(Layer2(tape, h));          // h is freed when the scope ends
    /// </code>
    /// Scopes nest and must end in reverse order of opening.
    /// </summary>
    public TapeScope Scope()
    {
        var scope = new TapeScope(this, _scopes.Count > 0 ? _scopes[^1] : null);
        _scopes.Add(scope);
        return scope;
    }

    internal void EndScope(TapeScope scope)
    {
        if (_scopes.Count == 0 || !ReferenceEquals(_scopes[^1], scope))
            throw new InvalidOperationException("Tape scopes must end in reverse order of opening.");
        _scopes.RemoveAt(_scopes.Count - 1);
    }

    /// <summary>Disposes <paramref name="tensor"/> if the tape owns it (a scope's unkept intermediate).</summary>
    internal void Free(Tensor tensor)
    {
        if (_owned.Remove(tensor)) tensor.Dispose();
    }

    /// <summary>Allocates an intermediate owned by the tape (disposed by <see cref="Clear"/> or the current <see cref="Scope"/>).</summary>
    public Tensor NewTensor(params int[] shape) => Own(Tensor.Empty(Device, shape));

    /// <summary>Hands ownership of <paramref name="tensor"/> to the tape (and to the current <see cref="Scope"/>); returns it.</summary>
    public Tensor Own(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (_owned.Add(tensor) && _scopes.Count > 0) _scopes[^1].Add(tensor);
        return tensor;
    }

    /// <summary>
    /// Takes <paramref name="tensor"/> out of every open <see cref="Scope"/>: the tape still owns it, and it stays
    /// readable until <see cref="Clear"/> (for results a module exposes after its forward pass, such as a stage's
    /// adjacency). Returns it.
    /// </summary>
    public Tensor Retain(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        foreach (var s in _scopes) s.Remove(tensor);
        return tensor;
    }

    /// <summary>The number of backwards recorded so far (a scope frees nothing once it changed).</summary>
    internal int RecordedCount => _entries.Count;

    /// <summary>
    /// Drops the storage of <paramref name="tensor"/>, an activation whose readers in the forward pass have all run,
    /// and rebuilds it in the backward pass: while recording, its buffer returns to the device now and, in
    /// <see cref="Backward(Tensor)"/>, just before the backwards recorded so far run (those that read it), the
    /// tensor gets a fresh buffer and <paramref name="rebuild"/> refills it. For activations that are cheap to
    /// recompute from tensors kept anyway (a DDW stage's aggregates). Does nothing while not recording.
    /// </summary>
    public void Recompute(Tensor tensor, Action<Tensor> rebuild)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        ArgumentNullException.ThrowIfNull(rebuild);
        tensor.ThrowIfDisposed();
        if (!IsRecording) return;
        var dropped = tensor.SwapBuffer(null);
        if (dropped is null) throw new InvalidOperationException($"Tensor {tensor.Describe()} is already dropped for recomputation.");
        Device.Return(dropped);
        _entries.Add(new Entry("Recompute", null, () =>
        {
            // A second backward pass of this tape finds the buffer from the first one.
            tensor.SwapBuffer(tensor.SwapBuffer(null) ?? Device.Rent(tensor.Length));
            rebuild(tensor);
        }));
    }

    /// <summary>
    /// Whether an op reading <paramref name="inputs"/> must record a backward: the tape is recording and at
    /// least one input requires a gradient.
    /// </summary>
    public bool NeedsGrad(params Tensor[] inputs)
    {
        if (!IsRecording) return false;
        if (Observer is { } observer)
        {
            bool any = false;
            foreach (var t in inputs)
                if (t.RequiresGrad) { any = true; observer.OnRead(t, _entries.Count); }
            return any;
        }
        foreach (var t in inputs) if (t.RequiresGrad) return true;
        return false;
    }

    /// <summary>
    /// Watches the pass (data-parallel gradient buckets): told which tensors requiring a gradient each op reads and,
    /// in <see cref="Backward(Tensor)"/>, when the backwards of the ops recorded from an index on have all run.
    /// </summary>
    public IBackwardObserver? Observer { get; set; }

    /// <summary>
    /// The ranks whose batch-norm statistics and backward sums are combined in training mode (synchronised batch
    /// norm over the global batch); null or a group of one: each process uses its own batch.
    /// </summary>
    public Communicator? BatchNormGroup { get; set; }

    /// <summary>
    /// Samples per gradient group (0, the default: the whole batch at once). With g &gt; 0 the parameter gradients of
    /// convolution, linear and router ops are summed over each group of g samples of the batch (the last may be short)
    /// and the group sums added pairwise bottom-up (<see cref="Kernels.ReductionKernels.GroupSums"/>), so the summation
    /// order of a parameter gradient depends on g alone, not on how the batch is split between ranks: ranks whose batches
    /// are each the same power-of-two number of groups (one group each: any rank count), their gradients added pairwise,
    /// reproduce one process bit for bit. Costs a partials buffer and one extra launch per parameter and group.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A negative value.</exception>
    public int GradientGroupSize
    {
        get => _gradientGroupSize;
        set => _gradientGroupSize = value >= 0 ? value
            : throw new ArgumentOutOfRangeException(nameof(value), value, "the gradient group size must be 0 (the whole batch) or a positive number of samples");
    }

    private int _gradientGroupSize;

    /// <summary>
    /// Records an op's backward. Call it after the op's forward, with the output the backward reads the
    /// gradient of (<c>output.Grad</c>); the output is marked as requiring a gradient. The backward must
    /// accumulate into each input's <c>Grad</c> only when that input's <see cref="Tensor.RequiresGrad"/>
    /// is set. Nothing is recorded outside recording mode. This is the public extension point for custom ops.
    /// </summary>
    public void Record(string name, Tensor output, Action backward)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(backward);
        if (!IsRecording) return;
        output.RequiresGrad = true;
        _entries.Add(new Entry(name, output, backward));
        _producers[output] = _producers.GetValueOrDefault(output) + 1;
    }

    /// <summary>
    /// Runs the recorded backwards in reverse order, starting from <c>d loss = 1</c>. The loss must have one
    /// element. Gradients accumulate into existing ones (zero parameter gradients between steps).
    /// </summary>
    public void Backward(Tensor loss)
    {
        ArgumentNullException.ThrowIfNull(loss);
        loss.ThrowIfDisposed();
        if (loss.Length != 1)
            throw new ArgumentException($"Backward needs a loss with one element; got shape {loss.ShapeString}.", nameof(loss));
        if (!loss.RequiresGrad)
            throw new InvalidOperationException("The loss does not depend on any tensor that requires a gradient, or it was computed under NoGrad.");
        loss.GradForWrite(out _); // allocated unzeroed: the fill below writes every element
        loss.Grad.Fill(1f);
        _keep = loss;
        RunBackward();
    }

    /// <summary>
    /// Runs the recorded backwards in reverse order starting from a given upstream gradient of
    /// <paramref name="output"/> (any shape), like PyTorch's <c>output.backward(gradient)</c>.
    /// </summary>
    public void Backward(Tensor output, ReadOnlySpan<float> gradOutput)
    {
        ArgumentNullException.ThrowIfNull(output);
        output.ThrowIfDisposed();
        if (gradOutput.Length != output.Length)
            throw new ArgumentException($"Upstream gradient has {gradOutput.Length} elements; output {output.ShapeString} has {output.Length}.", nameof(gradOutput));
        if (!output.RequiresGrad)
            throw new InvalidOperationException("The output does not depend on any tensor that requires a gradient, or it was computed under NoGrad.");
        output.GradForWrite(out _); // allocated unzeroed: the copy writes every element
        output.Grad.CopyFrom(gradOutput);
        _keep = output;
        RunBackward();
    }

    private void RunBackward()
    {
        for (int i = _entries.Count - 1; i >= 0; i--)
        {
            var e = _entries[i];
            if (e.Output is null)
            {
                e.Backward(); // a recomputation always runs
                continue;
            }
            if (e.Output.GradOrNull is null) { Observer?.OnBackwardDone(i); continue; } // no gradient reached this op
            e.Backward();
            Observer?.OnBackwardDone(i);
            // An output with several producers (a stage's adjacency, written row by row by its gates) keeps its
            // gradient until the backward of the earliest-recorded producer has run: every reader of the output was
            // recorded after that producer, so only then is its gradient complete and consumed.
            if (--_producers[e.Output] != 0) continue;
            if (FreeGradsEagerly && _owned.Contains(e.Output)) e.Output.DropGrad();
            if (FreeActivationsEagerly && !ReferenceEquals(e.Output, _keep))
                Free(e.Output); // its readers (recorded later) and its producers have all run: nothing reads it any more
        }
    }

    /// <summary>
    /// When true, <see cref="Backward(Tensor)"/> disposes each intermediate as soon as every op that produced or
    /// read it has run its backward, so activations are returned during the backward pass instead of at
    /// <see cref="Clear"/> (training loops; with <see cref="FreeGradsEagerly"/> this keeps peak memory near the
    /// forward pass's). Only the loss (or the tensor backward started from) stays readable afterwards: read
    /// logits and other outputs before calling Backward. Default false.
    /// </summary>
    public bool FreeActivationsEagerly { get; set; }

    private readonly Dictionary<Tensor, int> _producers = new(ReferenceEqualityComparer.Instance);
    private Tensor? _keep;

    /// <summary>
    /// When true, <see cref="Backward(Tensor)"/> frees each intermediate's gradient as soon as the op that
    /// produced it has run its backward (lower peak memory in training; intermediates' gradients are then not
    /// readable afterwards). Leaves (parameters, inputs not owned by the tape) always keep their gradients.
    /// Default false.
    /// </summary>
    public bool FreeGradsEagerly { get; set; }

    /// <summary>Forgets the recorded ops and disposes every intermediate the tape owns (and their gradients).</summary>
    public void Clear()
    {
        _entries.Clear();
        _producers.Clear();
        _keep = null;
        foreach (var t in _owned) t.Dispose();
        _owned.Clear();
        foreach (var scope in _scopes) scope.Clear();
    }

    /// <summary>Same as <see cref="Clear"/>.</summary>
    public void Dispose() => Clear();
}
