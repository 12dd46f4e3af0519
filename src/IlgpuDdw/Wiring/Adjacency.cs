namespace IlgpuDdw.Wiring;

/// <summary>
/// A stage's per-sample adjacency matrix <c>A [Batch, N, N]</c>, N = <see cref="Nodes"/> + 1: indices
/// 0..n−1 are the stage's nodes, index n the stage output node; row i holds the edges out of node i,
/// <c>A[b, i, j]</c> (i &lt; j) weighs node i's output in node j's input for sample b, entries with i ≥ j are 0.
/// Written row by row in the forward pass (the gate of node i writes row i for every sample; dense and chain
/// wirings write every row at once), read by the aggregations and, through the tape, by their backward
/// kernels. After a forward pass <see cref="Read"/> copies it (B·N² floats, no activation) to the host.
/// The edges are numbered row by row (<see cref="EdgeIndex"/>); a cut edge holds exactly 0.
/// </summary>
public sealed class Adjacency : IDisposable
{
    private readonly bool[] _rowWritten;
    private readonly bool[] _cutEdgeGradient;
    private readonly bool[] _fallbackStored;
    private readonly Tape? _tape;
    private Tensor? _fallback;

    /// <summary>
    /// A zeroed adjacency owned by <paramref name="tape"/> and outside its scopes (disposed by <see cref="Tape.Clear"/>,
    /// so the backward can read it and users can read it until then).
    /// </summary>
    /// <exception cref="ArgumentException">nodes &lt; 2 or batch &lt; 1.</exception>
    public Adjacency(Tape tape, int nodes, int batch)
        : this(Validate(tape?.Device ?? throw new ArgumentNullException(nameof(tape)), nodes, batch), nodes, batch, tape)
    {
    }

    /// <summary>A zeroed adjacency owned by the caller (dispose it), e.g. to recompute aggregates outside a tape.</summary>
    /// <exception cref="ArgumentException">nodes &lt; 2 or batch &lt; 1.</exception>
    public Adjacency(Device device, int nodes, int batch)
        : this(Validate(device, nodes, batch), nodes, batch, null)
    {
    }

    private Adjacency(Device device, int nodes, int batch, Tape? tape)
    {
        Nodes = nodes;
        Batch = batch;
        var t = Tensor.Zeros(device, batch, nodes + 1, nodes + 1);
        t.Name = "adjacency";
        Tensor = tape is null ? t : tape.Retain(tape.Own(t));
        _rowWritten = new bool[nodes];
        _cutEdgeGradient = new bool[nodes];
        _fallbackStored = new bool[nodes];
        _tape = tape;
    }

    private static Device Validate(Device? device, int nodes, int batch)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (nodes < 2) throw new ArgumentException($"A stage needs at least 2 nodes; got {nodes}.", nameof(nodes));
        if (batch < 1) throw new ArgumentException($"Batch {batch} must be at least 1.", nameof(batch));
        return device;
    }

    /// <summary>Nodes n of the stage (the output node has index n).</summary>
    public int Nodes { get; }

    /// <summary>Matrix side N = n + 1.</summary>
    public int Size => Nodes + 1;

    public int Batch { get; }

    /// <summary>Edges per sample, E = n(n+1)/2.</summary>
    public int EdgeCount => EdgeCountOf(Nodes);

    /// <summary>The device tensor <c>[Batch, N, N]</c>.</summary>
    public Tensor Tensor { get; }

    public Device Device => Tensor.Device;

    /// <summary>Edges of a stage with <paramref name="nodes"/> nodes: n(n+1)/2.</summary>
    public static int EdgeCountOf(int nodes) => nodes * (nodes + 1) / 2;

    /// <summary>Out-degree of node i: n − i (targets i+1..n).</summary>
    public int OutDegree(int node) => Nodes - node;

    /// <summary>Number of edge (i → j), 0 ≤ i &lt; j ≤ n, in the row-by-row order (edge o of row i is target i + 1 + o).</summary>
    public static int EdgeIndex(int nodes, int i, int j)
    {
        if (i < 0 || j <= i || j > nodes)
            throw new ArgumentException($"({i} → {j}) is not an edge of a {nodes}-node stage (need 0 ≤ i < j ≤ {nodes}).");
        return i * nodes - i * (i - 1) / 2 + (j - i - 1);
    }

    /// <summary>Copies the matrix to the host as <c>[b, i, j]</c> (synchronises).</summary>
    public float[,,] Read()
    {
        var flat = Tensor.ToArray();
        var a = new float[Batch, Size, Size];
        Buffer.BlockCopy(flat, 0, a, 0, flat.Length * sizeof(float));
        return a;
    }

    /// <summary>
    /// Sets the whole matrix from the host (e.g. a fixed or hand-made wiring). Every row counts as written.
    /// </summary>
    /// <exception cref="ArgumentException">Wrong dimensions, a non-finite value, or a non-zero entry with i ≥ j.</exception>
    public void Write(float[,,] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.GetLength(0) != Batch || values.GetLength(1) != Size || values.GetLength(2) != Size)
            throw new ArgumentException(
                $"Adjacency values are [{values.GetLength(0)}, {values.GetLength(1)}, {values.GetLength(2)}]; this adjacency is [{Batch}, {Size}, {Size}].", nameof(values));
        for (int b = 0; b < Batch; b++)
            for (int i = 0; i < Size; i++)
                for (int j = 0; j < Size; j++)
                {
                    float v = values[b, i, j];
                    if (!float.IsFinite(v) || (j <= i && v != 0f))
                        throw new ArgumentException($"Adjacency value A[{b}, {i}, {j}] = {v} is not allowed (finite, and 0 unless i < j).", nameof(values));
                }
        var flat = new float[values.Length];
        Buffer.BlockCopy(values, 0, flat, 0, flat.Length * sizeof(float));
        Tensor.CopyFrom(flat);
        Array.Fill(_rowWritten, true);
    }

    /// <summary>Writes the chain wiring: <c>A[b, j − 1, j] = 1</c> for j = 1..n, every other entry 0.</summary>
    public void FillChain()
    {
        var d = Device;
        Tensor.Fill(0f);
        int n = Batch * Nodes, ext = d.Extent(n);
        d.Kernels.ChainFill(d.Stream, ext, n, ext, Nodes, Tensor.View);
        Array.Fill(_rowWritten, true);
    }

    /// <summary>Fraction of the B·E edges that are kept (non-zero), read from the device.</summary>
    public double KeepRate() => KeepRate(Read());

    /// <summary>Fraction of the edges (i &lt; j) of a host copy <c>[b, i, j]</c> that are non-zero.</summary>
    public static double KeepRate(float[,,] a)
    {
        ArgumentNullException.ThrowIfNull(a);
        int size = a.GetLength(1);
        long kept = 0, total = 0;
        for (int b = 0; b < a.GetLength(0); b++)
            for (int i = 0; i < size; i++)
                for (int j = i + 1; j < size; j++)
                {
                    total++;
                    if (a[b, i, j] != 0f) kept++;
                }
        return total == 0 ? 0 : (double)kept / total;
    }

    /// <summary>
    /// Recomputes the aggregate <c>x_target = Σ_{i &lt; target} A[b, i, target] · y_i</c> into
    /// <paramref name="destination"/> without recording anything: a model that does not keep the aggregate for
    /// its backward can rebuild it from A and the node outputs.
    /// </summary>
    public void AggregateInto(int target, IReadOnlyList<Tensor> nodeOutputs, Tensor destination)
    {
        var sources = AggregationLaunch.Sources("AggregateInto", this, target, nodeOutputs);
        ArgumentNullException.ThrowIfNull(destination);
        destination.ThrowIfDisposed();
        if (!destination.SameShape(sources[0]) || !ReferenceEquals(destination.Device, Device))
            throw new ArgumentException($"AggregateInto: destination {destination.ShapeString} on {destination.Device} must match the node outputs {sources[0].ShapeString} on {Device}.", nameof(destination));
        AggregationLaunch.Forward(this, target, sources, destination);
    }

    internal bool IsRowWritten(int row) => _rowWritten[row];

    internal void MarkRowWritten(int row) => _rowWritten[row] = true;

    internal void MarkAllRowsWritten() => Array.Fill(_rowWritten, true);

    /// <summary>Whether the writer of row i needs the adjacency gradient of its cut (zero) edges too.</summary>
    internal bool NeedsCutEdgeGradient(int row) => _cutEdgeGradient[row];

    internal void SetCutEdgeGradient(int row, bool value) => _cutEdgeGradient[row] = value;

    /// <summary>
    /// The weight each node's edge into the output node would carry if forced on, <c>[Batch, n]</c> (see
    /// <see cref="WiringOps.ForceOutputEdge"/>); allocated on first use, owned like the matrix.
    /// </summary>
    internal Tensor OutputFallback
    {
        get
        {
            if (_fallback is null)
            {
                var t = Tensor.Zeros(Device, Batch, Nodes);
                t.Name = "output_fallback";
                _fallback = _tape is null ? t : _tape.Retain(_tape.Own(t));
            }
            return _fallback;
        }
    }

    internal bool IsFallbackStored(int row) => _fallbackStored[row];

    internal void MarkFallbackStored(int row) => _fallbackStored[row] = true;

    /// <summary>Disposes the tensor (also safe for a tape-owned adjacency: the tape's later dispose is a no-op).</summary>
    public void Dispose()
    {
        Tensor.Dispose();
        _fallback?.Dispose();
    }
}
