using System.Globalization;
using ScottPlot;

namespace IlgpuDdw.Cli.Reports;

/// <summary>PNG figures of a run (ScottPlot).</summary>
internal static class Plots
{
    /// <summary>One training-loss curve per run (smoothed per step) and test accuracy per epoch, side by side.</summary>
    public static void Curves(string path, IReadOnlyList<(string Label, IReadOnlyList<float> StepLosses, IReadOnlyList<double> TestAccuracy)> runs)
    {
        var loss = new Plot();
        var acc = new Plot();
        foreach (var (label, losses, accuracy) in runs)
        {
            if (losses.Count > 0)
            {
                var ys = Smooth(losses, Math.Max(1, losses.Count / 50));
                var s = loss.Add.Scatter(Enumerable.Range(1, ys.Length).Select(i => (double)i).ToArray(), ys);
                s.LegendText = label;
                s.MarkerSize = 0;
            }
            if (accuracy.Count > 0)
            {
                var a = acc.Add.Scatter(Enumerable.Range(1, accuracy.Count).Select(i => (double)i).ToArray(), accuracy.Select(v => 100 * v).ToArray());
                a.LegendText = label;
            }
        }
        loss.Title("Training loss (moving average)");
        loss.XLabel("step");
        loss.YLabel("cross-entropy");
        loss.ShowLegend();
        acc.Title("Test accuracy");
        acc.XLabel("epoch");
        acc.YLabel("%");
        acc.ShowLegend();
        string dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        string stem = Path.GetFileNameWithoutExtension(path);
        loss.SavePng(Path.Combine(dir, stem + "-loss.png"), 800, 500);
        acc.SavePng(Path.Combine(dir, stem + "-accuracy.png"), 800, 500);
    }

    private static double[] Smooth(IReadOnlyList<float> v, int window)
    {
        var r = new double[v.Count];
        double sum = 0;
        for (int i = 0; i < v.Count; i++)
        {
            sum += v[i];
            if (i >= window) sum -= v[i - window];
            r[i] = sum / Math.Min(i + 1, window);
        }
        return r;
    }

    /// <summary>
    /// A class × edge heatmap of one stage's mean adjacency: row c = the mean edge weights the model gave test images of
    /// class c, column = edge i→j (node n is the stage output).
    /// </summary>
    public static void AdjacencyHeatmap(string path, string title, int nodes, IReadOnlyList<double[]> perClass, IReadOnlyList<string> classNames)
    {
        int m = nodes + 1;
        var edges = new List<(int I, int J)>();
        for (int i = 0; i < nodes; i++)
            for (int j = i + 1; j <= nodes; j++) edges.Add((i, j));
        var data = new double[perClass.Count, edges.Count];
        for (int c = 0; c < perClass.Count; c++)
            for (int e = 0; e < edges.Count; e++)
                data[c, e] = perClass[c][edges[e].I * m + edges[e].J]; // row 0 is drawn at the top
        var plot = new Plot();
        var heat = plot.Add.Heatmap(data);
        heat.Colormap = new ScottPlot.Colormaps.Viridis();
        heat.ManualRange = new ScottPlot.Range(0, 1);
        plot.Add.ColorBar(heat);
        plot.Axes.Bottom.SetTicks(Enumerable.Range(0, edges.Count).Select(e => (double)e).ToArray(),
            edges.Select(e => e.J == nodes ? $"{e.I}→out" : $"{e.I}→{e.J}").ToArray());
        plot.Axes.Left.SetTicks(Enumerable.Range(0, perClass.Count).Select(c => (double)c).ToArray(),
            Enumerable.Range(0, perClass.Count).Select(c => classNames.Count > perClass.Count - 1 - c ? classNames[perClass.Count - 1 - c] : (perClass.Count - 1 - c).ToString(CultureInfo.InvariantCulture)).ToArray());
        plot.Title(title);
        plot.XLabel("edge");
        plot.SavePng(path, Math.Max(600, 60 * edges.Count + 250), 520);
    }

    /// <summary>One sample's adjacency matrices (one heatmap per stage, rows = source node, columns = target).</summary>
    public static void SampleAdjacency(string path, string title, IReadOnlyList<(string Stage, int Nodes, float[,] Matrix)> stages)
    {
        var multi = new Multiplot();
        multi.AddPlots(stages.Count);
        for (int s = 0; s < stages.Count; s++)
        {
            var (name, nodes, a) = stages[s];
            int m = nodes + 1;
            var data = new double[m, m];
            for (int i = 0; i < m; i++)
                for (int j = 0; j < m; j++) data[i, j] = a[i, j]; // row 0 is drawn at the top
            var plot = multi.GetPlot(s);
            var heat = plot.Add.Heatmap(data);
            heat.Colormap = new ScottPlot.Colormaps.Viridis();
            heat.ManualRange = new ScottPlot.Range(0, 1);
            var labels = Enumerable.Range(0, m).Select(k => k == nodes ? "out" : k.ToString(CultureInfo.InvariantCulture)).ToArray();
            plot.Axes.Bottom.SetTicks(Enumerable.Range(0, m).Select(k => (double)k).ToArray(), labels);
            plot.Axes.Left.SetTicks(Enumerable.Range(0, m).Select(k => (double)k).ToArray(), labels.Reverse().ToArray());
            plot.Title(s == 0 ? $"{title}: {name}" : name);
        }
        multi.Layout = new ScottPlot.MultiplotLayouts.Columns();
        multi.SavePng(path, 360 * stages.Count, 380);
    }
}
