namespace IlgpuDdw.Cli;

/// <summary><c>ddw wiring</c>: the wiring a checkpoint chose for given test images, and how it differs between classes.</summary>
internal static class WiringCommand
{
    /// <summary>Default number of test images behind the per-class figure.</summary>
    public const int DefaultClassImages = 1000;

    public static Command Build()
    {
        var data = new DataOptionBlock();
        var checkpoint = CommonOptions.Checkpoint();
        var images = new Option<string[]>("--images", "--index", "-i")
        {
            Description = "Test image indices: comma-separated and/or repeated (e.g. --images 0,7,42).",
            DefaultValueFactory = _ => ["0"],
            AllowMultipleArgumentsPerToken = true,
        };
        var classImages = new Option<int>("--class-images")
        {
            Description = $"Test images evaluated for the per-class figure (0 = none; default {DefaultClassImages}).",
            DefaultValueFactory = _ => DefaultClassImages,
        };
        var outDir = CommonOptions.Out("Directory for the PNGs and DOT files [default: the checkpoint's folder].");
        var cmd = new Command("wiring", "Show which edges and nodes were on for given test images (table, PNG graph and heatmap, DOT), and a per-class " +
            "figure of the edges whose keep rate differs between classes.").With([checkpoint, images, classImages, .. data.Options, outDir]);
        cmd.SetAction(parse =>
        {
            string path = parse.GetValue(checkpoint)!;
            var indices = ParseIndices(parse.GetValue(images) ?? ["0"]);
            int perClass = parse.GetValue(classImages);
            if (perClass < 0) throw new ArgumentException($"--class-images must be ≥ 0; got {perClass}.");
            Checkpoint.ReadInfo(path);
            var test = data.LoadTest(parse, null);
            foreach (int i in indices)
                if (i < 0 || i >= test.Count) throw new ArgumentException($"--images {i} is outside the test set (0..{test.Count - 1}).");
            if (perClass > test.Count) throw new ArgumentException($"--class-images {perClass} exceeds the {test.Count} test images.");
            using var device = CliApp.OpenDevice(parse);
            using var model = Checkpoint.LoadModel(device, path);
            test = test.Resize(model.Spec.InputSize);
            model.Eval();
            string dir = Path.GetFullPath(parse.GetValue(outDir) ?? Path.GetDirectoryName(Path.GetFullPath(path))!);
            RunFiles.CheckWritable(dir);
            using var tape = new Tape(device);
            foreach (int i in indices)
            {
                string label = FashionMnist.ClassNames[test.Labels[i]];
                var stages = new List<SampleStageWiring>();
                using (tape.NoGrad())
                {
                    var x = tape.Own(Tensor.FromArray(device, test.Image(i), 1, test.Channels, test.Height, test.Width));
                    var logits = model.Forward(tape, x);
                    int predicted = Ops.Argmax(logits)[0];
                    Console.WriteLine($"test image {i}: label {label}, predicted {FashionMnist.ClassNames[predicted]}");
                    foreach (var st in model.Stages)
                    {
                        int n = st.Nodes.Count, m = n + 1;
                        var a = new float[m, m];
                        if (st.LastAdjacency is { } adj)
                        {
                            var r = adj.Read();
                            for (int p = 0; p < m; p++) for (int q = 0; q < m; q++) a[p, q] = r[0, p, q];
                        }
                        else
                        {
                            for (int p = 0; p < n; p++) a[p, p + 1] = 1;
                        }
                        stages.Add(SampleStageWiring.From(st.Spec.Name, n, a));
                    }
                }
                tape.Clear();
                for (int s = 0; s < stages.Count; s++) PrintStage(stages[s], CommonOptions.Name(model.Stages[s].Kind));
                string title = $"image {i} ({label})";
                string heat = Path.Combine(dir, $"wiring-{i}.png"), graph = Path.Combine(dir, $"wiring-{i}-graph.png"), dot = Path.Combine(dir, $"wiring-{i}.dot");
                RunFiles.Write("plot", heat, () => Plots.SampleAdjacency(heat, title, stages.Select(s => (s.Stage, s.Nodes, s.Matrix)).ToList()));
                RunFiles.Write("plot", graph, () => SampleWiring.GraphPng(graph, title, stages));
                RunFiles.WriteAllText("wiring graph", dot, SampleWiring.Dot($"{model.Spec.Name} {CommonOptions.Name(model.Wiring.Kind)} wiring of test {title}", stages));
                Console.WriteLine($"wrote {heat}, {graph}, {dot}");
            }
            if (perClass > 0 && model.Wiring.Kind != WiringKind.Chain)
            {
                var d = Evaluator.Evaluate(model, test.Subset(perClass)).Diversity!;
                DiversityReport.PrintDiversity([(CommonOptions.Name(model.Wiring.Kind), d, null)]);
                string png = Path.Combine(dir, "wiring-classes.png");
                IReadOnlyList<string> drawn = [];
                RunFiles.Write("plot", png, () => drawn = SampleWiring.ClassFigure(png, $"keep rate per class ({perClass} images)", d.Stages, FashionMnist.ClassNames));
                Console.WriteLine(drawn.Count == 0
                    ? $"the classes do not differ: every edge's keep rate is within 5 points across classes over the first {perClass} test images (no per-class figure)"
                    : $"wrote {png} (stages where classes differ: {string.Join(", ", drawn)})");
            }
            return 0;
        });
        return cmd;
    }

    /// <summary>Indices from tokens such as "0,7" "42".</summary>
    /// <exception cref="ArgumentException">A part that is not an integer.</exception>
    internal static int[] ParseIndices(IEnumerable<string> tokens)
    {
        var result = new List<int>();
        foreach (string token in tokens)
            foreach (string part in token.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                result.Add(int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v
                    : throw new ArgumentException($"--images '{part}' is not an image index."));
        if (result.Count == 0) throw new ArgumentException("--images needs at least one index.");
        return result.ToArray();
    }

    private static void PrintStage(SampleStageWiring st, string kind)
    {
        int n = st.Nodes, m = n + 1;
        var table = new Table().Title($"{Markup.Escape(st.Stage)} ({kind})").AddColumn("from \\ to");
        for (int q = 1; q < m; q++) table.AddColumn(q == n ? "out" : q.ToString(CultureInfo.InvariantCulture));
        table.AddColumn("node");
        for (int p = 0; p < n; p++)
            table.AddRow([p.ToString(CultureInfo.InvariantCulture), .. Enumerable.Range(1, n).Select(q => q <= p ? "" : st.Matrix[p, q] == 0 ? "[grey]cut[/]"
                : st.Matrix[p, q].ToString("F3", CultureInfo.InvariantCulture)), st.State(p)]);
        AnsiConsole.Write(table);
    }
}
