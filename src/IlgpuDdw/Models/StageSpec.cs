namespace IlgpuDdw.Models;

/// <summary>
/// One DDW stage: a run of nodes (blocks) of one kind at one resolution and one width. Node 0 maps
/// InChannels → OutChannels at <see cref="Stride"/>; every other node maps OutChannels → OutChannels at stride 1.
/// Under chain wiring the nodes run in sequence (the published backbone). A stage may have a single node; it then has
/// no edges to learn and runs as a chain under every wiring. Equality compares the name and the nodes.
/// </summary>
public sealed record StageSpec
{
    /// <summary>Creates and validates a stage.</summary>
    /// <exception cref="ArgumentException">Empty name or node list, mixed block kinds, or a node after the first that
    /// changes width or stride.</exception>
    public StageSpec(string name, IEnumerable<BlockSpec> nodes)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        if (string.IsNullOrWhiteSpace(name)) throw new ArgumentException("A stage needs a name.", nameof(name));
        var list = nodes.ToArray();
        if (list.Length == 0) throw new ArgumentException($"Stage '{name}' has no nodes.", nameof(nodes));
        if (Array.IndexOf(list, null) >= 0) throw new ArgumentException($"Stage '{name}' has a null node.", nameof(nodes));
        var first = list[0];
        for (int k = 1; k < list.Length; k++)
        {
            var node = list[k];
            if (node.Kind != first.Kind)
                throw new ArgumentException($"Stage '{name}': node {k} is {node.Kind} but node 0 is {first.Kind}.", nameof(nodes));
            if (node.InChannels != first.OutChannels || node.OutChannels != first.OutChannels || node.Stride != 1)
                throw new ArgumentException(
                    $"Stage '{name}': node {k} must map {first.OutChannels} → {first.OutChannels} channels at stride 1, "
                    + $"got {node.InChannels} → {node.OutChannels} at stride {node.Stride}.", nameof(nodes));
        }
        Name = name;
        Nodes = Array.AsReadOnly(list);
    }

    /// <summary>
    /// A stage of <paramref name="count"/> nodes built by <paramref name="block"/>(in, out, stride): node 0 gets
    /// (inChannels, outChannels, stride), the others (outChannels, outChannels, 1).
    /// </summary>
    public static StageSpec Repeat(string name, int count, int inChannels, int outChannels, int stride, Func<int, int, int, BlockSpec> block)
    {
        ArgumentNullException.ThrowIfNull(block);
        if (count < 1) throw new ArgumentException($"Stage '{name}' needs at least 1 node, got {count}.", nameof(count));
        return new StageSpec(name, Enumerable.Range(0, count)
            .Select(k => k == 0 ? block(inChannels, outChannels, stride) : block(outChannels, outChannels, 1)));
    }

    /// <summary>Stage name (torchvision's where it has one, e.g. <c>layer1</c>).</summary>
    public string Name { get; }

    /// <summary>The nodes in order (n = Nodes.Count; the output node has index n in the adjacency).</summary>
    public IReadOnlyList<BlockSpec> Nodes { get; }

    /// <summary>Block family of every node.</summary>
    public BlockKind Kind => Nodes[0].Kind;

    /// <summary>Input channels (node 0's).</summary>
    public int InChannels => Nodes[0].InChannels;

    /// <summary>Output channels: the width of every node and of the stage output.</summary>
    public int OutChannels => Nodes[0].OutChannels;

    /// <summary>The stage's stride (node 0's).</summary>
    public int Stride => Nodes[0].Stride;

    /// <summary>Parameters of all nodes (chain wiring).</summary>
    public long ParameterCount => Nodes.Sum(n => n.ParameterCount);

    /// <summary>Output side for input side <paramref name="inputSize"/>.</summary>
    public int OutputSize(int inputSize) => Nodes[0].OutputSize(inputSize);

    /// <inheritdoc/>
    public bool Equals(StageSpec? other) => other is not null && Name == other.Name && Nodes.SequenceEqual(other.Nodes);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Name, Nodes.Count, Nodes[0]);

    /// <summary>Compact representation.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Name}: {Nodes.Count} × {Kind}, {InChannels}→{OutChannels}, stride {Stride}");
}
