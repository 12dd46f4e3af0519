using IlgpuDdw.Runtime;

namespace IlgpuDdw.Autograd;

/// <summary>
/// The one autograd tape. Ops (see <see cref="Ops"/>) run their forward kernel at once, allocate their outputs
/// through <see cref="NewTensor"/> (the tape owns them), and, while recording, append their backward to the
/// tape. <see cref="Backward(Tensor)"/> seeds the loss gradient with 1 and runs the recorded backwards in reverse
/// order; every backward kernel accumulates into its inputs' gradients, so a tensor read by several ops
/// (fan-out) receives the sum. <see cref="Clear"/> disposes every intermediate the tape owns.
/// </summary>
public sealed class Tape : IDisposable
{
    private readonly record struct Entry(string Name, Tensor? Output, Action Backward);

    private readonly List<Entry> _entries = new();
    private readonly List<Tensor> _owned = new();
    private readonly HashSet<Tensor> _ownedSet = new(ReferenceEqualityComparer.Instance);
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
        return new Scope(this);
    }

    private sealed class Scope(Tape tape) : IDisposable
    {
        private bool _done;
        public void Dispose()
        {
            if (_done) return;
            _done = true;
            tape._noGradDepth--;
        }
    }

    /// <summary>Allocates an intermediate owned by the tape (disposed by <see cref="Clear"/>).</summary>
    public Tensor NewTensor(params int[] shape) => Own(Tensor.Empty(Device, shape));

    /// <summary>Hands ownership of <paramref name="tensor"/> to the tape; returns it.</summary>
    public Tensor Own(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        _owned.Add(tensor);
        _ownedSet.Add(tensor);
        return tensor;
    }

    /// <summary>
    /// Disposes an intermediate the tape owns before <see cref="Clear"/>, when nothing recorded needs it
    /// (e.g. in no-grad inference once the next layer has consumed it). Does nothing while recording.
    /// </summary>
    public void Release(Tensor tensor)
    {
        if (IsRecording) return;
        if (_ownedSet.Remove(tensor))
        {
            _owned.Remove(tensor);
            tensor.Dispose();
        }
    }

    /// <summary>
    /// Whether an op reading <paramref name="inputs"/> must record a backward: the tape is recording and at
    /// least one input requires a gradient.
    /// </summary>
    public bool NeedsGrad(params Tensor[] inputs)
    {
        if (!IsRecording) return false;
        foreach (var t in inputs) if (t.RequiresGrad) return true;
        return false;
    }

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
                e.Backward(); // an action recorded with RecordAction always runs
                continue;
            }
            if (e.Output.GradOrNull is null) continue; // no gradient reached this op
            e.Backward();
            // Every reader of this output was recorded later, so its gradient is complete and now consumed.
            if (FreeGradsEagerly && _ownedSet.Contains(e.Output)) e.Output.DropGrad();
            if (FreeActivationsEagerly && --_producers[e.Output] == 0 && _ownedSet.Contains(e.Output) && !ReferenceEquals(e.Output, _keep))
            {
                // Its readers (recorded later) and its producers have all run: nothing reads it any more.
                _ownedSet.Remove(e.Output);
                e.Output.Dispose();
            }
        }
        if (FreeActivationsEagerly) _owned.RemoveAll(t => t.IsDisposed);
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

    /// <summary>
    /// Records a step that runs during the backward pass at this point of the reverse order whatever gradients
    /// exist (e.g. recomputing a released activation just before the backwards that read it).
    /// </summary>
    public void RecordAction(string name, Action action)
    {
        ArgumentNullException.ThrowIfNull(action);
        if (!IsRecording) return;
        _entries.Add(new Entry(name, null, action));
    }

    /// <summary>Forgets the recorded ops and disposes every intermediate the tape owns (and their gradients).</summary>
    public void Clear()
    {
        _entries.Clear();
        _producers.Clear();
        _keep = null;
        foreach (var t in _owned) t.Dispose();
        _owned.Clear();
        _ownedSet.Clear();
    }

    /// <summary>Same as <see cref="Clear"/>.</summary>
    public void Dispose() => Clear();
}
