namespace IlgpuDdw.Wiring;

/// <summary>
/// The parameters of one node's router, <c>a = sigmoid(W2 · ReLU(W1 · GAP(y) + b1) + b2)</c>:
/// <c>W1 [Hidden, Channels]</c>, <c>b1 [Hidden]</c>, <c>W2 [OutDegree, Hidden]</c>, <c>b2 [OutDegree]</c>
/// (PyTorch <c>Linear</c> layout), Hidden = <c>max(Channels / r, 4)</c>. Owns its tensors.
/// </summary>
public sealed class RouterParameters : IDisposable
{
    /// <summary>
    /// Initial value of every entry of b2 (the router's last bias): 3, so an edge starts at
    /// <c>a = sigmoid(3 + W2 · h) ≈ 0.95</c>, kept at the default τ = 0.5. With W2 ~ U(±1/√Hidden) the term
    /// <c>W2 · h</c> has a standard deviation of about <c>rms(h)/√3</c>, so an edge would start cut only when
    /// the hidden activations' rms exceeds ≈ 5 (far above what normalised feature maps give). Larger values
    /// keep edges more surely but shrink the sigmoid slope (0.045 at 3), slowing the routers' first steps.
    /// </summary>
    public const float DefaultOutputBias = 3f;

    /// <summary>Wraps existing tensors; throws <see cref="ArgumentException"/> naming the shapes when they do not fit.</summary>
    public RouterParameters(Tensor w1, Tensor b1, Tensor w2, Tensor b2)
    {
        ArgumentNullException.ThrowIfNull(w1);
        ArgumentNullException.ThrowIfNull(b1);
        ArgumentNullException.ThrowIfNull(w2);
        ArgumentNullException.ThrowIfNull(b2);
        foreach (var t in new[] { w1, b1, w2, b2 })
        {
            t.ThrowIfDisposed();
            if (!ReferenceEquals(t.Device, w1.Device))
                throw new ArgumentException($"Router tensor {t.Describe()} lives on {t.Device}, W1 on {w1.Device}.");
        }
        if (w1.Rank != 2 || b1.Rank != 1 || w2.Rank != 2 || b2.Rank != 1
            || b1.Dim(0) != w1.Dim(0) || w2.Dim(1) != w1.Dim(0) || b2.Dim(0) != w2.Dim(0))
            throw new ArgumentException(
                $"Router weights must be W1 [h, C], b1 [h], W2 [out, h], b2 [out]; got W1 {w1.ShapeString}, b1 {b1.ShapeString}, W2 {w2.ShapeString}, b2 {b2.ShapeString}.");
        W1 = w1;
        B1 = b1;
        W2 = w2;
        B2 = b2;
    }

    /// <summary>
    /// Creates a router for a node with <paramref name="channels"/> channels and <paramref name="outDegree"/>
    /// out-edges, initialised from <paramref name="seed"/>: W1, b1 ~ U(±1/√C), W2 ~ U(±1/√Hidden) (PyTorch's
    /// <c>Linear</c> default), b2 = <paramref name="outputBias"/> (see <see cref="DefaultOutputBias"/>). Every
    /// tensor requires a gradient and is named <c>{name}.fc1.weight</c> etc.
    /// </summary>
    public static RouterParameters Create(Runtime.Device device, int channels, int outDegree, int reduction = 4, int seed = 0,
        float outputBias = DefaultOutputBias, string name = "router")
    {
        ArgumentNullException.ThrowIfNull(device);
        if (channels < 1) throw new ArgumentException($"Router channels {channels} must be at least 1.", nameof(channels));
        if (outDegree < 1) throw new ArgumentException($"Router out-degree {outDegree} must be at least 1.", nameof(outDegree));
        WiringConfig.ValidateReduction(reduction);
        if (!float.IsFinite(outputBias)) throw new ArgumentException($"Router output bias {outputBias} must be finite.", nameof(outputBias));
        int hidden = HiddenSize(channels, reduction);
        var rng = new Random(seed);
        float[] Uniform(int n, double bound)
        {
            var a = new float[n];
            for (int i = 0; i < n; i++) a[i] = (float)((rng.NextDouble() * 2 - 1) * bound);
            return a;
        }
        double b1Bound = 1 / Math.Sqrt(channels), b2Bound = 1 / Math.Sqrt(hidden);
        var w1 = Tensor.FromArray(device, Uniform(hidden * channels, b1Bound), hidden, channels);
        var b1 = Tensor.FromArray(device, Uniform(hidden, b1Bound), hidden);
        var w2 = Tensor.FromArray(device, Uniform(outDegree * hidden, b2Bound), outDegree, hidden);
        var b2 = Tensor.FromArray(device, Enumerable.Repeat(outputBias, outDegree).ToArray(), outDegree);
        (w1.Name, b1.Name, w2.Name, b2.Name) = ($"{name}.fc1.weight", $"{name}.fc1.bias", $"{name}.fc2.weight", $"{name}.fc2.bias");
        var p = new RouterParameters(w1, b1, w2, b2);
        foreach (var t in p.Parameters) t.RequiresGrad = true;
        return p;
    }

    /// <summary>Hidden width of a router: <c>max(channels / reduction, 4)</c> (integer division).</summary>
    public static int HiddenSize(int channels, int reduction) => Math.Max(channels / reduction, 4);

    /// <summary>First layer weight <c>[Hidden, Channels]</c>.</summary>
    public Tensor W1 { get; }
    /// <summary>First layer bias <c>[Hidden]</c>.</summary>
    public Tensor B1 { get; }
    /// <summary>Second layer weight <c>[OutDegree, Hidden]</c>.</summary>
    public Tensor W2 { get; }
    /// <summary>Second layer bias <c>[OutDegree]</c>.</summary>
    public Tensor B2 { get; }

    /// <summary>Input channels C.</summary>
    public int Channels => W1.Dim(1);
    /// <summary>Hidden width h.</summary>
    public int Hidden => W1.Dim(0);
    /// <summary>Out-degree of the node (router outputs per sample).</summary>
    public int OutDegree => W2.Dim(0);

    /// <summary>W1, b1, W2, b2.</summary>
    public IReadOnlyList<Tensor> Parameters => [W1, B1, W2, B2];

    /// <summary>Disposes the four tensors.</summary>
    public void Dispose()
    {
        foreach (var t in Parameters) t.Dispose();
    }
}
