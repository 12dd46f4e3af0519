using IlgpuDdw.Training.Experiments;
using ScottPlot;

namespace IlgpuDdw.Cli.Reports;

/// <summary>Tables and figures of measured wiring diversity and of a sweep.</summary>
internal static class DiversityReport
{
    private static readonly CultureInfo Ci = CultureInfo.InvariantCulture;

    /// <summary>
    /// Prints one row per (run, stage): keep rate, distinct wirings, their effective number, input-dependent edges and
    /// per-class deviation against the label-shuffle null; then per run the effective MACs under both dead-node rules
    /// and the measured skipping speed-up.
    /// </summary>
    public static void PrintDiversity(IReadOnlyList<(string Label, WiringDiversity Diversity, double? SkipSpeedup)> runs)
    {
        if (runs.Count == 0) return;
        var stages = new Table().Title("wiring diversity over the test set").AddColumns("run", "stage", "keep rate", "distinct wirings", "effective wirings exp(H)",
            "input-dependent edges (5-95%)", "class keep deviation", "label-shuffle null");
        foreach (var (label, d, _) in runs)
            foreach (var s in d.Stages)
                stages.AddRow(Markup.Escape(label), Markup.Escape(s.Stage), $"{100 * s.KeepRate:F1}%", s.DistinctWirings.ToString(Ci), s.EffectiveWirings.ToString("F2", Ci),
                    $"{100 * s.InputDependentEdges:F0}%", s.ClassKeepDeviation.ToString("F3", Ci), s.ClassKeepDeviationNull.ToString("F3", Ci));
        AnsiConsole.Write(stages);
        var macs = new Table().AddColumns("run", "MACs / sample, every node", "skipping input-cut nodes", "no path to output (oracle)", "eval speed-up of skipping (measured)");
        foreach (var (label, d, speedup) in runs)
            macs.AddRow(Markup.Escape(label), d.FullMacs.ToString("N0", Ci), d.EffectiveMacs.ToString("N0", Ci), d.EffectiveMacsNoPath.ToString("N0", Ci),
                speedup is double x ? $"{x:F2}×" : "-");
        AnsiConsole.Write(macs);
    }

    /// <summary>One row per arm and target: keep rate, cost, accuracy (mean ± std over seeds), diversity and speed-up.</summary>
    public static void PrintSweep(SweepResult result)
    {
        var table = new Table().AddColumns("run", "ρ", "keep rate", "MACs effective / sample", "test accuracy", "distinct wirings (min stage)",
            "input-dependent edges", "eval speed-up of skipping");
        foreach (var s in result.Summary)
        {
            var points = result.Points.Where(p => p.Run.Arm == s.Arm && p.Run.Target == s.Target).ToArray();
            var speedups = points.Where(p => p.SkipSpeedup is not null).Select(p => p.SkipSpeedup!.Value).ToArray();
            table.AddRow(Name(s.Arm), s.Target is float t ? SweepExperiment.TargetName(t) : "-", $"{100 * s.KeepRateMean:F1}%",
                s.EffectiveMacsMean.ToString("N0", Ci), result.Seeds == 1 ? $"{100 * s.TestAccuracyMean:F2}%" : $"{100 * s.TestAccuracyMean:F2} ± {100 * s.TestAccuracyStd:F2}%",
                double.IsNaN(s.DistinctWiringsMean) ? "-" : s.DistinctWiringsMean.ToString("F1", Ci),
                double.IsNaN(s.InputDependentEdgesMean) ? "-" : $"{100 * s.InputDependentEdgesMean:F0}%",
                speedups.Length == 0 ? "-" : $"{speedups.Average():F2}×");
        }
        Console.WriteLine($"{result.Model} on Fashion-MNIST, {result.Device}, budget {result.Budget}, gate {Name(result.Gate)}" +
            (result.Seeds > 1 ? $", mean ± std over {result.Seeds} seeds" : ""));
        AnsiConsole.Write(table);
    }

    /// <summary>
    /// Test accuracy against effective MACs per sample: dynamic wiring over its targets and the pruned-dense baseline at
    /// the same keep rates as lines, chain and dense as single points; error bars = standard deviation over seeds.
    /// </summary>
    public static void SweepPlot(string path, SweepResult result)
    {
        var plot = new Plot();
        var colors = new Dictionary<SweepArm, ScottPlot.Color>
        {
            [SweepArm.Chain] = Colors.Black, [SweepArm.Dense] = Colors.Gray, [SweepArm.Dynamic] = Colors.C0, [SweepArm.Pruned] = Colors.C1,
        };
        var labels = new Dictionary<SweepArm, string>
        {
            [SweepArm.Chain] = "chain", [SweepArm.Dense] = "dense", [SweepArm.Dynamic] = $"dynamic ({Name(result.Gate)} gate, target keep rate ρ)",
            [SweepArm.Pruned] = "dense pruned to the same keep rate (static)",
        };
        foreach (var arm in new[] { SweepArm.Dynamic, SweepArm.Pruned, SweepArm.Dense, SweepArm.Chain })
        {
            var rows = result.Summary.Where(s => s.Arm == arm).OrderBy(s => s.EffectiveMacsMean).ToArray();
            if (rows.Length == 0) continue;
            double[] xs = rows.Select(s => s.EffectiveMacsMean / 1e6).ToArray(), ys = rows.Select(s => 100 * s.TestAccuracyMean).ToArray();
            var scatter = plot.Add.Scatter(xs, ys);
            scatter.Color = colors[arm];
            scatter.LegendText = labels[arm];
            scatter.MarkerSize = 9;
            scatter.MarkerShape = arm is SweepArm.Chain or SweepArm.Dense ? MarkerShape.FilledSquare : MarkerShape.FilledCircle;
            scatter.LineWidth = rows.Length > 1 ? 2 : 0;
            if (result.Seeds > 1)
            {
                var bars = plot.Add.ErrorBar(xs, ys, rows.Select(s => 100 * s.TestAccuracyStd).ToArray());
                bars.XErrorPositive = bars.XErrorNegative = rows.Select(s => s.EffectiveMacsStd / 1e6).ToArray();
                bars.Color = colors[arm];
            }
            if (arm is SweepArm.Dynamic or SweepArm.Pruned)
                foreach (var s in rows)
                {
                    var text = plot.Add.Text($"ρ={SweepExperiment.TargetName(s.Target!.Value)}", s.EffectiveMacsMean / 1e6, 100 * s.TestAccuracyMean);
                    text.LabelFontColor = colors[arm];
                    text.LabelFontSize = 12;
                    text.OffsetY = arm == SweepArm.Dynamic ? -18 : 6;
                }
        }
        plot.Title($"{result.Model}: test accuracy vs cost ({result.Budget} budget, {result.TrainImages} training images, {result.Seeds} {(result.Seeds == 1 ? "seed" : "seeds")})");
        plot.XLabel("effective MACs per sample (millions, dead nodes skipped)");
        plot.YLabel("test accuracy (%)");
        plot.ShowLegend(Edge.Bottom);
        plot.Axes.Margins(0.12, 0.15);
        plot.SavePng(path, 900, 650);
    }

    private static string Name<T>(T value) where T : struct, Enum => value.ToString().ToLowerInvariant();
}
