using System.Reflection;

namespace IlgpuDdw.Cli;

/// <summary><c>ddw info</c>: devices and versions, or a model's parameters and MACs per stage.</summary>
internal static class InfoCommand
{
    public static Command Build()
    {
        var model = CommonOptions.OptionalModel();
        var wiring = CommonOptions.Wiring("chain");
        var size = CommonOptions.InputSize();
        var reduction = CommonOptions.RouterReduction();
        var json = CommonOptions.Json();
        var channels = new Option<int?>("--channels") { Description = "Image channels the stem takes [default: the model's, 1 for the *_mini models, 3 for the others]." };
        var classes = new Option<int?>("--classes") { Description = "Classes of the classifier [default: the model's, 10 for the *_mini models, 1000 for the others]." };
        var batch = new Option<int?>("--batch", "-b")
        {
            Description = "Also estimate the peak device memory of a training step at this batch, and the largest batch that fits in the free memory of --device [default: none].",
        };
        var cmd = new Command("info", "Print the available devices and versions, or with --model a model's parameters and MACs per stage.")
            .With([model, wiring, size, channels, classes, reduction, batch, json]);
        cmd.SetAction(parse =>
        {
            if (parse.GetValue(model) is { } name)
            {
                var native = ModelZoo.Get(name);
                var spec = ModelZoo.Get(name, parse.GetValue(size), parse.GetValue(channels) ?? native.InputChannels, parse.GetValue(classes) ?? native.NumClasses);
                return ModelInfo(parse, spec, CommonOptions.ParseWiring(parse.GetValue(wiring)!), parse.GetValue(reduction), parse.GetValue(batch), parse.GetValue(json));
            }
            var table = new Table().AddColumns("device", "name", "memory", "warp size", "multiprocessors");
            foreach (var d in Device.ListDevices())
                table.AddRow(d.Spec, Markup.Escape(d.Name), d.MemoryBytes >= 1L << 50 ? "host memory" : $"{d.MemoryBytes / (1024.0 * 1024 * 1024):F1} GiB",
                    d.WarpSize.ToString(), d.Multiprocessors.ToString());
            AnsiConsole.Write(table);
            if (parse.GetValue(CliApp.DeviceOption) is { } requested)
            {
                using var selected = Device.Create(requested);
                Console.WriteLine($"selected: {selected} (grid-stride launch: up to {selected.MaxThreads} threads)");
            }
            string ilgpu = typeof(ILGPU.Context).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
                ?? typeof(ILGPU.Context).Assembly.GetName().Version?.ToString() ?? "?";
            Console.WriteLine($"ILGPU {ilgpu.Split('+')[0]}, .NET {Environment.Version}, IlgpuDdw {typeof(Device).Assembly.GetName().Version}");
            string? env = Environment.GetEnvironmentVariable(Device.EnvironmentVariable);
            Console.WriteLine($"{Device.EnvironmentVariable}={(string.IsNullOrEmpty(env) ? "(unset)" : env)}");
            return 0;
        });
        return cmd;
    }

    private static int ModelInfo(ParseResult parse, ModelSpec spec, WiringKind wiring, int reduction, int? batch, bool json)
    {
        WiringConfig.ValidateReduction(reduction);
        var cost = CostModel.Compute(spec, wiring, reduction);
        StepMemoryReport? memory = null;
        if (batch is int b)
        {
            if (b < 1) throw new ArgumentException($"--batch must be at least 1; got {b}.");
            var estimate = StepMemory.Estimate(spec, new WiringConfig { Kind = wiring, Reduction = reduction }, b);
            using var device = CliApp.OpenDevice(parse);
            long free = StepMemory.FreeBytes(device);
            memory = new StepMemoryReport(b, estimate.PeakBytes, estimate.FixedBytes, estimate.BytesPerSample, device.ToString(), free, estimate.LargestBatch(free));
        }
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(ModelInfoReport.From(spec, CommonOptions.Name(wiring), reduction, cost) with { StepMemory = memory },
                CliJsonContext.Default.ModelInfoReport));
            return 0;
        }
        var table = new Table().AddColumns("stage", "nodes", "width", "resolution", "params", "MACs", "edge params", "router params", "router MACs", "aggregation MACs");
        static string N(long v) => v.ToString("N0", CultureInfo.InvariantCulture);
        table.AddRow("stem", "", "", "", N(cost.StemParameters), N(cost.StemMacs), "", "", "", "");
        foreach (var x in cost.Stages)
            table.AddRow(x.Name, x.Nodes.ToString(), x.Width.ToString(), $"{x.Resolution}×{x.Resolution}", N(x.Parameters), N(x.Macs),
                N(x.EdgeParameters), N(x.RouterParameters), N(x.RouterMacs), N(x.AggregationMacs));
        table.AddRow("head", "", "", "", N(cost.HeadParameters), N(cost.HeadMacs), "", "", "", "");
        table.AddRow("[bold]total[/]", cost.Stages.Sum(x => x.Nodes).ToString(), "", "", $"[bold]{N(cost.TotalParameters)}[/]", $"[bold]{N(cost.TotalMacs)}[/]",
            N(cost.EdgeParameters), N(cost.RouterParameters), N(cost.Stages.Sum(x => x.RouterMacs)), N(cost.Stages.Sum(x => x.AggregationMacs)));
        Console.WriteLine($"{spec.Name}, {CommonOptions.Name(wiring)} wiring, input {spec.InputChannels}×{spec.InputSize}×{spec.InputSize}, {spec.NumClasses} classes (MACs per sample; router r = {reduction})");
        AnsiConsole.Write(table);
        if (memory is { } m)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"training step at batch {m.Batch}: about {StepMemory.Format(m.PeakBytes)} peak device memory (estimate: {StepMemory.Format(m.FixedBytes)} + {StepMemory.Format(m.BytesPerSample)} per sample); {m.Device} has {StepMemory.Format(m.FreeBytes)} free: the largest batch that fits is about {m.LargestBatch:N0}"));
        return 0;
    }
}
