using System.Text;
using ScottPlot;

namespace IlgpuDdw.Cli.Reports;

/// <summary>One stage's wiring for one sample: its adjacency and which nodes ran.</summary>
/// <param name="Stage">Stage name.</param>
/// <param name="Nodes">n (node n is the stage output).</param>
/// <param name="Matrix">A[i, j], (n+1)×(n+1); &gt; 0 = kept.</param>
/// <param name="Computed">Per node (n+1): computed (node 0, the output, and every node with a kept in-edge; what skipping runs).</param>
/// <param name="Used">Per node (n+1): a path of kept edges leads from it to the output.</param>
internal sealed record SampleStageWiring(string Stage, int Nodes, float[,] Matrix, bool[] Computed, bool[] Used)
{
    /// <summary>The wiring of one stage from a sample's adjacency.</summary>
    public static SampleStageWiring From(string stage, int nodes, float[,] matrix)
    {
        int m = nodes + 1;
        var flat = new float[m * m];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < m; j++) flat[i * m + j] = matrix[i, j];
        var computed = new bool[m];
        var used = new bool[m];
        CostModel.ComputedNodes(flat, nodes, computed);
        CostModel.LiveNodes(flat, nodes, used);
        return new SampleStageWiring(stage, nodes, matrix, computed, used);
    }

    /// <summary>"on", "off" (no kept in-edge: skipped) or "unused" (computed, but no kept path to the output).</summary>
    public string State(int node) => !Computed[node] ? "off" : Used[node] ? "on" : "unused";
}

/// <summary>Figures of one sample's wiring: a graph PNG (ScottPlot) and Graphviz DOT.</summary>
internal static class SampleWiring
{
    private static readonly CultureInfo Ci = CultureInfo.InvariantCulture;

    /// <summary>
    /// One panel per stage: nodes on a line (input side left, output right), kept edges as arcs with their weight,
    /// cut edges faint; filled node = computed, hollow grey = off (skipped), orange = computed but unused.
    /// </summary>
    public static void GraphPng(string path, string title, IReadOnlyList<SampleStageWiring> stages)
    {
        var multi = new Multiplot();
        multi.AddPlots(stages.Count);
        for (int s = 0; s < stages.Count; s++)
        {
            var st = stages[s];
            var plot = multi.GetPlot(s);
            int n = st.Nodes;
            for (int i = 0; i < n; i++)
                for (int j = i + 1; j <= n; j++)
                {
                    float w = st.Matrix[i, j];
                    bool kept = w > 0;
                    double h = 0.28 * (j - i);
                    var xs = new double[25];
                    var ys = new double[25];
                    for (int k = 0; k < xs.Length; k++)
                    {
                        double t = Math.PI * k / (xs.Length - 1);
                        xs[k] = (i + j) / 2.0 - (j - i) / 2.0 * Math.Cos(t);
                        ys[k] = h * Math.Sin(t);
                    }
                    var arc = plot.Add.Scatter(xs, ys);
                    arc.MarkerSize = 0;
                    arc.LineWidth = kept ? 1.5f + 3f * w : 1f;
                    arc.Color = kept ? Colors.C0 : Colors.LightGray;
                    arc.LinePattern = kept ? LinePattern.Solid : LinePattern.Dashed;
                    if (kept)
                    {
                        var label = plot.Add.Text(w.ToString("F2", Ci), (i + j) / 2.0, h);
                        label.LabelFontSize = 11;
                        label.LabelFontColor = Colors.C0;
                        label.LabelAlignment = Alignment.LowerCenter;
                    }
                }
            for (int k = 0; k <= n; k++)
            {
                string state = st.State(k);
                var color = state switch { "on" => Colors.C0, "unused" => Colors.C1, _ => Colors.Gray };
                plot.Add.Marker(k, 0, state == "off" ? MarkerShape.OpenCircle : MarkerShape.FilledCircle, 24, color);
                var label = plot.Add.Text(k == n ? "out" : k.ToString(Ci), k, -0.12);
                label.LabelAlignment = Alignment.UpperCenter;
                label.LabelFontSize = 12;
            }
            var key = plot.Add.Text("blue: on · orange: on, unused · hollow: off (skipped) · dashed: cut", n / 2.0, -0.32);
            key.LabelAlignment = Alignment.UpperCenter;
            key.LabelFontSize = 10;
            key.LabelFontColor = Colors.Gray;
            plot.Axes.SetLimits(-0.5, n + 0.5, -0.5, 0.32 * n + 0.2);
            plot.Axes.Frameless();
            plot.HideGrid();
            int on = Enumerable.Range(1, n - 1).Count(k => st.Computed[k]);
            plot.Title($"{(s == 0 ? title + " · " : "")}{st.Stage}: {on}/{n - 1} inner nodes run");
        }
        multi.Layout = new ScottPlot.MultiplotLayouts.Columns();
        multi.SavePng(path, 460 * stages.Count, 360);
    }

    /// <summary>DOT of one sample's wiring: one cluster per stage; off nodes dashed, unused nodes orange; cut edges dotted grey.</summary>
    public static string Dot(string title, IReadOnlyList<SampleStageWiring> stages)
    {
        var sb = new StringBuilder();
        sb.AppendLine("digraph wiring {");
        sb.AppendLine("  rankdir=LR; node [shape=box, style=\"rounded,filled\", fillcolor=lightblue];");
        sb.AppendLine(Ci, $"  label=\"{Escape(title)}\"; labelloc=t;");
        for (int s = 0; s < stages.Count; s++)
        {
            var st = stages[s];
            int n = st.Nodes;
            sb.AppendLine(Ci, $"  subgraph cluster_{s} {{");
            sb.AppendLine(Ci, $"    label=\"{Escape(st.Stage)}\";");
            sb.AppendLine(Ci, $"    s{s}_in [label=\"input\", shape=plaintext, style=\"\"];");
            for (int k = 0; k <= n; k++)
            {
                string name = k == n ? "output" : $"node {k}";
                string style = st.State(k) switch
                {
                    "off" => "style=\"rounded,dashed\", fontcolor=grey50, color=grey50",
                    "unused" => "fillcolor=orange",
                    _ => "",
                };
                sb.AppendLine(Ci, $"    s{s}_{k} [label=\"{name} ({st.State(k)})\"{(k == n ? ", shape=ellipse" : "")}{(style.Length > 0 ? ", " + style : "")}];");
            }
            sb.AppendLine(Ci, $"    s{s}_in -> s{s}_0;");
            for (int i = 0; i < n; i++)
                for (int j = i + 1; j <= n; j++)
                {
                    float w = st.Matrix[i, j];
                    string edge = w > 0
                        ? $"    s{s}_{i} -> s{s}_{j} [label=\"{w.ToString("F2", Ci)}\", penwidth={(0.5 + 3 * w).ToString("F2", Ci)}];"
                        : $"    s{s}_{i} -> s{s}_{j} [style=dotted, color=grey70, arrowhead=none];";
                    sb.AppendLine(edge);
                }
            sb.AppendLine("  }");
            if (s + 1 < stages.Count) sb.AppendLine(Ci, $"  s{s}_{n} -> s{s + 1}_in [style=dotted];");
        }
        sb.AppendLine("}");
        return sb.ToString();
    }

    /// <summary>
    /// Per stage, a class × edge heatmap of the fraction of each class's test images keeping the edge, for the edges
    /// whose keep rate differs between classes by at least <paramref name="minSpread"/>; returns the stages drawn (none: no figure).
    /// </summary>
    public static IReadOnlyList<string> ClassFigure(string path, string title, IReadOnlyList<Training.StageDiversity> stages, IReadOnlyList<string> classNames,
        double minSpread = 0.05)
    {
        var panels = new List<(Training.StageDiversity Stage, int[] Edges)>();
        foreach (var st in stages)
        {
            var classes = st.ClassEdgeKeep;
            var differing = Enumerable.Range(0, st.EdgeKeep.Length)
                .Where(e => classes.Max(c => c[e]) - classes.Min(c => c[e]) >= minSpread).ToArray();
            if (differing.Length > 0) panels.Add((st, differing));
        }
        if (panels.Count == 0) return [];
        var multi = new Multiplot();
        multi.AddPlots(panels.Count);
        for (int p = 0; p < panels.Count; p++)
        {
            var (st, edges) = panels[p];
            var names = EdgeNames(st.Nodes);
            int classes = st.ClassEdgeKeep.Length;
            var data = new double[classes, edges.Length];
            for (int c = 0; c < classes; c++)
                for (int e = 0; e < edges.Length; e++) data[c, e] = st.ClassEdgeKeep[c][edges[e]];
            var plot = multi.GetPlot(p);
            var heat = plot.Add.Heatmap(data);
            heat.Colormap = new ScottPlot.Colormaps.Viridis();
            heat.ManualRange = new ScottPlot.Range(0, 1);
            if (p == panels.Count - 1) plot.Add.ColorBar(heat);
            plot.Axes.Bottom.SetTicks(Enumerable.Range(0, edges.Length).Select(e => (double)e).ToArray(), edges.Select(e => names[e]).ToArray());
            plot.Axes.Left.SetTicks(Enumerable.Range(0, classes).Select(c => (double)c).ToArray(),
                Enumerable.Range(0, classes).Select(c => classNames.Count > classes - 1 - c ? classNames[classes - 1 - c] : (classes - 1 - c).ToString(Ci)).ToArray());
            plot.Title($"{st.Stage}: {title}");
            plot.XLabel("edge");
        }
        multi.Layout = new ScottPlot.MultiplotLayouts.Columns();
        multi.SavePng(path, panels.Sum(p => Math.Max(520, 70 * p.Edges.Length + 260)), 480);
        return panels.Select(p => p.Stage.Stage).ToArray();
    }

    /// <summary>Edge names in <see cref="Wiring.Adjacency.EdgeIndex"/> order ("0→1", …, "2→out").</summary>
    public static string[] EdgeNames(int nodes)
    {
        var names = new List<string>();
        for (int i = 0; i < nodes; i++)
            for (int j = i + 1; j <= nodes; j++) names.Add(j == nodes ? $"{i}→out" : $"{i}→{j}");
        return names.ToArray();
    }

    private static string Escape(string s) => s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal);
}
