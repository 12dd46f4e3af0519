using System.Text;
using IlgpuDdw.Training.Experiments;

namespace IlgpuDdw.Cli.Reports;

/// <summary>
/// Graphviz DOT of a model's learned wiring: one cluster per stage, nodes numbered 0..n−1 and "output", edge width and
/// label = mean weight (and keep %); an edge every test sample cut is dashed grey ("cut"); pairs that cannot be edges are absent.
/// </summary>
internal static class WiringDot
{
    /// <param name="title">Graph label.</param>
    /// <param name="stages">Per stage: the mean adjacency over the test set and the fraction of test samples keeping each
    /// edge (null when every edge is always on).</param>
    public static string Build(string title, IReadOnlyList<StageAdjacency> stages)
    {
        var sb = new StringBuilder();
        var ci = CultureInfo.InvariantCulture;
        sb.AppendLine("digraph wiring {");
        sb.AppendLine("  rankdir=LR; node [shape=box, style=rounded];");
        sb.AppendLine(ci, $"  label=\"{Escape(title)}\"; labelloc=t;");
        for (int s = 0; s < stages.Count; s++)
        {
            var (name, n, _, mean, keep) = stages[s];
            int m = n + 1;
            sb.AppendLine(ci, $"  subgraph cluster_{s} {{");
            sb.AppendLine(ci, $"    label=\"{Escape(name)}\";");
            sb.AppendLine(ci, $"    s{s}_in [label=\"input\", shape=plaintext];");
            for (int i = 0; i < n; i++) sb.AppendLine(ci, $"    s{s}_{i} [label=\"node {i}\"];");
            sb.AppendLine(ci, $"    s{s}_{n} [label=\"output\", shape=ellipse];");
            sb.AppendLine(ci, $"    s{s}_in -> s{s}_0;");
            for (int i = 0; i < n; i++)
                for (int j = i + 1; j <= n; j++)
                {
                    double w = mean[i * m + j];
                    double k = keep?[i * m + j] ?? (w > 0 ? 1 : 0);
                    if (k <= 0)
                    {
                        // A possible edge no test sample kept (dense, dynamic): drawn, unlike pairs that cannot be edges.
                        if (keep is not null) sb.AppendLine(ci, $"    s{s}_{i} -> s{s}_{j} [style=dashed, color=gray60, fontcolor=gray40, label=\"cut\", penwidth=0.5, constraint=false];");
                        continue;
                    }
                    string label = keep is null ? w.ToString("F2", ci) : $"{w.ToString("F2", ci)} ({(100 * k).ToString("F0", ci)}%)";
                    sb.AppendLine(ci, $"    s{s}_{i} -> s{s}_{j} [label=\"{label}\", penwidth={(0.5 + 3 * w).ToString("F2", ci)}];");
                }
            sb.AppendLine("  }");
            if (s + 1 < stages.Count) sb.AppendLine(ci, $"  s{s}_{n} -> s{s + 1}_in [style=dotted];");
        }
        sb.AppendLine("}");
        return sb.ToString();
    }

    private static string Escape(string s) => s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal);
}
