using ScottPlot;

namespace IlgpuDdw.Cli.Reports;

/// <summary>PNG figures of a run (ScottPlot).</summary>
internal static class Plots
{
    /// <summary>
    /// Training loss per step of every run: the raw values faint, a trailing moving average
    /// (<see cref="SmoothingWindow"/> steps) on top in the same colour; and test accuracy per epoch: one bar per run
    /// when there is one epoch, else lines over whole-number epochs; the accuracy axis runs from 0 to 100%.
    /// </summary>
    public static void Curves(string path, IReadOnlyList<(string Label, IReadOnlyList<float> StepLosses, IReadOnlyList<double> TestAccuracy)> runs)
    {
        var palette = new ScottPlot.Palettes.Category10();
        var loss = new Plot();
        int window = SmoothingWindow(runs.Select(r => r.StepLosses.Count).DefaultIfEmpty(0).Max());
        for (int r = 0; r < runs.Count; r++)
        {
            var (label, losses, _) = runs[r];
            if (losses.Count == 0) continue;
            var color = palette.GetColor(r);
            double[] xs = Enumerable.Range(1, losses.Count).Select(i => (double)i).ToArray();
            var raw = loss.Add.Scatter(xs, losses.Select(v => (double)v).ToArray());
            raw.Color = color.WithAlpha(0.25);
            raw.MarkerSize = 0;
            raw.LineWidth = 1;
            var smooth = loss.Add.Scatter(xs, Smooth(losses, window));
            smooth.Color = color;
            smooth.MarkerSize = 0;
            smooth.LineWidth = 2.5f;
            smooth.LegendText = label;
        }
        loss.Title(window > 1 ? $"Training loss (faint: every step; line: mean of the last {window} steps)" : "Training loss per step");
        loss.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
        loss.XLabel("step");
        loss.YLabel("training loss (cross-entropy)");
        loss.ShowLegend();

        var acc = new Plot();
        int epochs = runs.Select(r => r.TestAccuracy.Count).DefaultIfEmpty(0).Max();
        if (epochs <= 1)
        {
            var bars = new List<Bar>();
            for (int r = 0; r < runs.Count; r++)
                if (runs[r].TestAccuracy.Count == 1)
                {
                    double v = 100 * runs[r].TestAccuracy[0];
                    bars.Add(new Bar { Position = r, Value = v, FillColor = palette.GetColor(r), Label = v.ToString("F1", CultureInfo.InvariantCulture) + "%" });
                }
            var plot = acc.Add.Bars(bars);
            plot.ValueLabelStyle.FontSize = 16;
            acc.Axes.Bottom.SetTicks(Enumerable.Range(0, runs.Count).Select(i => (double)i).ToArray(), runs.Select(r => r.Label).ToArray());
            acc.Title("Test accuracy after the epoch");
            acc.XLabel("wiring");
        }
        else
        {
            for (int r = 0; r < runs.Count; r++)
            {
                var a = runs[r].TestAccuracy;
                if (a.Count == 0) continue;
                var line = acc.Add.Scatter(Enumerable.Range(1, a.Count).Select(i => (double)i).ToArray(), a.Select(v => 100 * v).ToArray());
                line.Color = palette.GetColor(r);
                line.MarkerSize = 7;
                line.LegendText = runs[r].Label;
            }
            acc.Axes.Bottom.SetTicks(Enumerable.Range(1, epochs).Select(i => (double)i).ToArray(),
                Enumerable.Range(1, epochs).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray());
            acc.Axes.SetLimitsX(0.5, epochs + 0.5);
            acc.Title("Test accuracy per epoch");
            acc.XLabel("epoch");
            acc.ShowLegend();
        }
        acc.Axes.SetLimitsY(0, 100);
        acc.YLabel("test accuracy (%)");
        string dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        string stem = Path.GetFileNameWithoutExtension(path);
        loss.SavePng(Path.Combine(dir, stem + "-loss.png"), 900, 520);
        acc.SavePng(Path.Combine(dir, stem + "-accuracy.png"), 800, 500);
    }

    /// <summary>The moving-average window of a loss curve of <paramref name="steps"/> steps: a tenth of them, at least 5 (1 below 10 steps), at most 200.</summary>
    public static int SmoothingWindow(int steps) => steps < 10 ? 1 : Math.Clamp(steps / 10, 5, 200);

    /// <summary>Trailing moving average over <paramref name="window"/> values (fewer at the start).</summary>
    internal static double[] Smooth(IReadOnlyList<float> v, int window)
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

    /// <summary>
    /// One sample's adjacency matrices, one heatmap per stage (rows = source node 0..n−1, columns = target node 1..n,
    /// "out" = the stage output) with a colour bar: a kept edge is coloured by its weight, a cut edge (possible but
    /// weight 0) is marked ×, and pairs that cannot be edges (target not after source) are left blank grey.
    /// </summary>
    public static void SampleAdjacency(string path, string title, IReadOnlyList<(string Stage, int Nodes, float[,] Matrix)> stages)
    {
        var multi = new Multiplot();
        multi.AddPlots(stages.Count);
        for (int s = 0; s < stages.Count; s++)
        {
            var (name, nodes, a) = stages[s];
            var data = new double[nodes, nodes];
            for (int i = 0; i < nodes; i++)
                for (int j = 1; j <= nodes; j++) data[i, j - 1] = j > i ? a[i, j] : double.NaN; // row 0 is drawn at the top
            var plot = multi.GetPlot(s);
            var heat = plot.Add.Heatmap(data);
            heat.Colormap = new ScottPlot.Colormaps.Viridis();
            heat.ManualRange = new ScottPlot.Range(0, 1);
            heat.NaNCellColor = Colors.LightGray.WithAlpha(0.35);
            plot.Add.ColorBar(heat).Label = "edge weight";
            for (int i = 0; i < nodes; i++)
                for (int j = i + 1; j <= nodes; j++)
                    if (a[i, j] == 0)
                    {
                        var cut = plot.Add.Text("×", j - 1, nodes - 1 - i);
                        cut.LabelFontSize = 22;
                        cut.LabelFontColor = Colors.OrangeRed;
                        cut.LabelAlignment = Alignment.MiddleCenter;
                    }
            plot.Axes.Bottom.SetTicks(Enumerable.Range(0, nodes).Select(k => (double)k).ToArray(),
                Enumerable.Range(1, nodes).Select(k => k == nodes ? "out" : k.ToString(CultureInfo.InvariantCulture)).ToArray());
            plot.Axes.Left.SetTicks(Enumerable.Range(0, nodes).Select(k => (double)(nodes - 1 - k)).ToArray(),
                Enumerable.Range(0, nodes).Select(k => k.ToString(CultureInfo.InvariantCulture)).ToArray());
            plot.XLabel("to node");
            plot.YLabel("from node");
            plot.Title(s == 0 ? $"{title}: {name} (× = cut)" : name);
        }
        multi.Layout = new ScottPlot.MultiplotLayouts.Columns();
        multi.SavePng(path, 420 * stages.Count, 400);
    }
}
