namespace IlgpuDdw.Autograd;

/// <summary>
/// A part of a forward pass that frees its intermediates when it ends (see <see cref="Tape.Scope"/>): it holds the
/// tensors the tape made while it was the innermost open scope, minus those it keeps. It frees only while no
/// backward has been recorded since it opened (in no-grad mode, or when nothing needed a gradient).
/// </summary>
public sealed class TapeScope : IDisposable
{
    private readonly Tape _tape;
    private readonly TapeScope? _parent;
    private readonly int _recordedAtOpen;
    private readonly HashSet<Tensor> _made = new(ReferenceEqualityComparer.Instance);
    private readonly HashSet<Tensor> _kept = new(ReferenceEqualityComparer.Instance);
    private bool _ended;

    internal TapeScope(Tape tape, TapeScope? parent)
    {
        _tape = tape;
        _parent = parent;
        _recordedAtOpen = tape.RecordedCount;
    }

    /// <summary>Whether no backward was recorded since the scope opened, so none can read what it made.</summary>
    private bool CanFree => _tape.RecordedCount == _recordedAtOpen;

    internal void Add(Tensor tensor) => _made.Add(tensor);

    internal void Remove(Tensor tensor)
    {
        _made.Remove(tensor);
        _kept.Remove(tensor);
    }

    internal void Clear()
    {
        _made.Clear();
        _kept.Clear();
    }

    /// <summary>
    /// Keeps <paramref name="tensor"/> past the end of this scope (it then belongs to the enclosing scope, or to the
    /// tape alone) and returns it. A tensor this scope did not make (e.g. the scope's input) is returned as it is.
    /// </summary>
    public Tensor Keep(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        ThrowIfEnded();
        if (_made.Remove(tensor)) _kept.Add(tensor);
        return tensor;
    }

    /// <summary>
    /// Frees what the scope has made so far, except <paramref name="tensor"/> (which stays in the scope) and the kept
    /// tensors, and returns <paramref name="tensor"/>: the step of a chain, <c>x = s.FreeExcept(layer(x))</c>, which
    /// frees the previous x once the next layer has read it. Frees nothing once a backward was recorded in the scope.
    /// </summary>
    public Tensor FreeExcept(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        ThrowIfEnded();
        if (!CanFree) return tensor;
        bool mine = _made.Remove(tensor);
        foreach (var t in _made) _tape.Free(t);
        _made.Clear();
        if (mine) _made.Add(tensor);
        return tensor;
    }

    /// <summary>
    /// Ends the scope: frees the tensors it made and did not keep (unless a backward was recorded since it opened)
    /// and hands the kept ones to the enclosing scope.
    /// </summary>
    /// <exception cref="InvalidOperationException">A scope opened after this one is still open.</exception>
    public void Dispose()
    {
        if (_ended) return;
        _tape.EndScope(this);
        _ended = true;
        if (CanFree)
            foreach (var t in _made) _tape.Free(t);
        if (_parent is not null)
            foreach (var t in _kept) _parent.Add(t);
        Clear();
    }

    private void ThrowIfEnded()
    {
        if (_ended) throw new InvalidOperationException("This tape scope has ended.");
    }
}
