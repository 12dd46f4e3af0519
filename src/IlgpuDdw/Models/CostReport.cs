using System.Text;
using System.Text.Json.Serialization.Metadata;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Models;

/// <summary>Cost of one layer that has parameters or MACs (convolution, batch norm, linear), per sample.</summary>
/// <param name="Path">Dotted position: <c>stem.0</c>, <c>layer2.0.3</c> (stage, node, main-path index),
/// <c>layer2.0.shortcut.0</c>, <c>head.4</c>.</param>
/// <param name="Layer">PyTorch-like description of the layer.</param>
/// <param name="InputSize">Input side.</param>
/// <param name="OutputSize">Output side.</param>
/// <param name="Parameters">Learned parameters.</param>
/// <param name="Macs">Multiply-accumulates per sample.</param>
public sealed record LayerCost(string Path, string Layer, int InputSize, int OutputSize, long Parameters, long Macs);

/// <summary>Static cost of one stage under a wiring, per sample.</summary>
/// <param name="Name">Stage name.</param>
/// <param name="Nodes">Node count n.</param>
/// <param name="Width">Channels of every node (the stage's output channels).</param>
/// <param name="InputResolution">Side of the stage input.</param>
/// <param name="Resolution">Side of every node's output.</param>
/// <param name="Parameters">Backbone parameters of all nodes.</param>
/// <param name="Macs">Backbone MACs of all nodes.</param>
/// <param name="NodeMacs">Backbone MACs of each node.</param>
/// <param name="EdgeParameters">Dense only: one scalar per edge, n(n+1)/2 when n ≥ 2.</param>
/// <param name="AggregationMacs">Dense and dynamic: edges × Width·Resolution² (one multiply-add per element per edge).</param>
/// <param name="RouterParameters">Dynamic only: Σ_i C·h + h + h·(n−i) + (n−i).</param>
/// <param name="RouterMacs">Dynamic only: Σ_i C·h + h·(n−i) (the two fully connected layers).</param>
/// <param name="RouterPoolAdds">Dynamic only: the routers' global average pools, n·Width·Resolution² additions;
/// reported apart and not part of any MAC total.</param>
public sealed record StageCost(string Name, int Nodes, int Width, int InputResolution, int Resolution, long Parameters, long Macs,
    IReadOnlyList<long> NodeMacs, long EdgeParameters, long AggregationMacs, long RouterParameters, long RouterMacs, long RouterPoolAdds)
{
    /// <summary>Backbone, edge and router parameters.</summary>
    public long TotalParameters => Parameters + EdgeParameters + RouterParameters;

    /// <summary>Backbone, aggregation and router MACs.</summary>
    public long TotalMacs => Macs + AggregationMacs + RouterMacs;
}

/// <summary>Static cost of a model under a wiring at the spec's input size, per sample.</summary>
/// <param name="Model">Model name.</param>
/// <param name="Wiring">Wiring kind.</param>
/// <param name="InputSize">Input side.</param>
/// <param name="RouterReduction">Router reduction r (used by dynamic wiring only).</param>
/// <param name="StemParameters">Stem parameters.</param>
/// <param name="StemMacs">Stem MACs.</param>
/// <param name="Stages">Per-stage rows.</param>
/// <param name="HeadParameters">Head parameters (head convolutions, batch norms and the classifier).</param>
/// <param name="HeadMacs">Head MACs.</param>
/// <param name="Layers">Every layer with parameters or MACs, in execution order.</param>
public sealed record ModelCost(string Model, WiringKind Wiring, int InputSize, int RouterReduction, long StemParameters, long StemMacs,
    IReadOnlyList<StageCost> Stages, long HeadParameters, long HeadMacs, IReadOnlyList<LayerCost> Layers)
{
    /// <summary>Parameters of the backbone (stem, nodes, head): the chain-wired model's count.</summary>
    public long BackboneParameters => StemParameters + Stages.Sum(s => s.Parameters) + HeadParameters;

    /// <summary>Dense edge parameters.</summary>
    public long EdgeParameters => Stages.Sum(s => s.EdgeParameters);

    public long RouterParameters => Stages.Sum(s => s.RouterParameters);

    public long TotalParameters => BackboneParameters + EdgeParameters + RouterParameters;

    /// <summary>Convolution and linear MACs of the backbone.</summary>
    public long BackboneMacs => StemMacs + Stages.Sum(s => s.Macs) + HeadMacs;

    /// <summary>Aggregation MACs.</summary>
    public long AggregationMacs => Stages.Sum(s => s.AggregationMacs);

    /// <summary>Router MACs (fully connected layers only).</summary>
    public long RouterMacs => Stages.Sum(s => s.RouterMacs);

    /// <summary>Router pooling additions (not in <see cref="TotalMacs"/>).</summary>
    public long RouterPoolAdds => Stages.Sum(s => s.RouterPoolAdds);

    /// <summary>Backbone, aggregation and router MACs.</summary>
    public long TotalMacs => BackboneMacs + AggregationMacs + RouterMacs;

    /// <summary>A fixed-width text table: stem, one row per stage, head, total.</summary>
    public string FormatTable()
    {
        var rows = new List<string[]> { new[] { "stage", "nodes", "width", "res", "params", "MACs", "edge params", "agg MACs", "router params", "router MACs" } };
        rows.Add(["stem", "", "", "", N(StemParameters), N(StemMacs), "", "", "", ""]);
        foreach (var s in Stages)
            rows.Add([s.Name, N(s.Nodes), N(s.Width), N(s.Resolution), N(s.Parameters), N(s.Macs), N(s.EdgeParameters),
                N(s.AggregationMacs), N(s.RouterParameters), N(s.RouterMacs)]);
        rows.Add(["head", "", "", "", N(HeadParameters), N(HeadMacs), "", "", "", ""]);
        rows.Add(["total", N(Stages.Sum(s => s.Nodes)), "", "", N(BackboneParameters), N(BackboneMacs), N(EdgeParameters),
            N(AggregationMacs), N(RouterParameters), N(RouterMacs)]);
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture,
            $"{Model} at {InputSize}×{InputSize}, {Wiring} wiring: {N(TotalParameters)} parameters, {N(TotalMacs)} MACs per sample");
        if (Wiring == WiringKind.Dynamic)
            sb.Append(CultureInfo.InvariantCulture, $" (router r = {RouterReduction}; router pooling adds {N(RouterPoolAdds)} not included)");
        sb.AppendLine();
        sb.Append(CostFormat.Table(rows));
        return sb.ToString();
    }

    /// <summary>The cost as JSON (integers as numbers, the wiring as a string).</summary>
    public string ToJson(bool indented = true) => CostFormat.Json(this, indented, CostJsonContext.Default.ModelCost);

    private static string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);
}

/// <summary>Mean effective cost of one stage over the samples of a batch, per sample.</summary>
/// <param name="Name">Stage name.</param>
/// <param name="Nodes">Node count n.</param>
/// <param name="MeanComputedNodes">Mean number of computed (live, or node 0) nodes.</param>
/// <param name="EdgeKeepRate">Kept edges over all edges (i, j), 0 ≤ i &lt; j ≤ n, over the batch (1 for stages without edges).</param>
/// <param name="Macs">Mean backbone MACs of the computed nodes.</param>
/// <param name="AggregationMacs">Mean aggregation MACs of the kept edges into computed nodes and the output node.</param>
/// <param name="RouterMacs">Mean router MACs of the computed nodes (dynamic only).</param>
/// <param name="RouterPoolAdds">Mean router pooling additions of the computed nodes (dynamic only; not in <see cref="TotalMacs"/>).</param>
public sealed record StageEffectiveCost(string Name, int Nodes, double MeanComputedNodes, double EdgeKeepRate, double Macs,
    double AggregationMacs, double RouterMacs, double RouterPoolAdds)
{
    /// <summary>Backbone, aggregation and router MACs.</summary>
    public double TotalMacs => Macs + AggregationMacs + RouterMacs;
}

/// <summary>Mean effective cost of a model over a batch, per sample, given each stage's adjacency.</summary>
/// <param name="Model">Model name.</param>
/// <param name="Wiring">Wiring kind.</param>
/// <param name="Batch">Samples averaged over (0 under chain wiring, which has no adjacency).</param>
/// <param name="StemMacs">Stem MACs (always computed).</param>
/// <param name="Stages">Per-stage rows.</param>
/// <param name="HeadMacs">Head MACs (always computed).</param>
/// <param name="StaticTotalMacs">The static total (<see cref="ModelCost.TotalMacs"/>) of the same model and wiring.</param>
public sealed record EffectiveCost(string Model, WiringKind Wiring, int Batch, long StemMacs, IReadOnlyList<StageEffectiveCost> Stages,
    long HeadMacs, long StaticTotalMacs)
{
    /// <summary>Mean MACs per sample: stem, stage totals, head.</summary>
    public double TotalMacs => StemMacs + Stages.Sum(s => s.TotalMacs) + HeadMacs;

    /// <summary><see cref="TotalMacs"/> / <see cref="StaticTotalMacs"/>.</summary>
    public double Ratio => TotalMacs / StaticTotalMacs;

    /// <summary>The cost as JSON.</summary>
    public string ToJson(bool indented = true) => CostFormat.Json(this, indented, CostJsonContext.Default.EffectiveCost);
}

/// <summary>Text and JSON formatting shared by the cost reports.</summary>
internal static class CostFormat
{
    private static readonly JsonSerializerOptions Compact = new(CostJsonContext.Default.Options) { WriteIndented = false };

    /// <summary>Serializes <paramref name="value"/> (enums as strings), indented as <paramref name="info"/> or compact.</summary>
    public static string Json<T>(T value, bool indented, JsonTypeInfo<T> info) =>
        indented ? JsonSerializer.Serialize(value, info) : JsonSerializer.Serialize(value, (JsonTypeInfo<T>)Compact.GetTypeInfo(typeof(T)));

    /// <summary>Right-aligned columns (the first left-aligned), a rule under the header row.</summary>
    public static string Table(IReadOnlyList<string[]> rows)
    {
        int columns = rows[0].Length;
        var widths = Enumerable.Range(0, columns).Select(c => rows.Max(r => r[c].Length)).ToArray();
        var sb = new StringBuilder();
        for (int r = 0; r < rows.Count; r++)
        {
            var cells = rows[r].Select((cell, c) => c == 0 ? cell.PadRight(widths[c]) : cell.PadLeft(widths[c]));
            sb.AppendLine(string.Join("  ", cells).TrimEnd());
            if (r == 0) sb.AppendLine(new string('-', widths.Sum() + 2 * (columns - 1)));
        }
        return sb.ToString();
    }
}

/// <summary>JSON of the cost reports: indented, C# property names, enums as strings.</summary>
[JsonSourceGenerationOptions(WriteIndented = true, UseStringEnumConverter = true)]
[JsonSerializable(typeof(ModelCost))]
[JsonSerializable(typeof(EffectiveCost))]
internal sealed partial class CostJsonContext : JsonSerializerContext;
