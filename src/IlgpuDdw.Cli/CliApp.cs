using System.CommandLine;
using System.Reflection;
using IlgpuDdw.Runtime;
using Spectre.Console;

namespace IlgpuDdw.Cli;

/// <summary>The <c>ddw</c> command line.</summary>
public static class CliApp
{
    /// <summary>The global <c>--device</c> option (cpu, cuda, cuda:N, auto; default: DDW_DEVICE, then auto).</summary>
    public static readonly Option<string?> DeviceOption = new("--device", "-d")
    {
        Description = "Device: cpu | cuda | cuda:N | auto (default: the DDW_DEVICE environment variable, else auto).",
        Recursive = true,
    };

    /// <summary>Builds the root command.</summary>
    public static RootCommand Build()
    {
        var root = new RootCommand("IlgpuDdw: Differentiable Dynamic Wirings on ILGPU kernels.");
        root.Options.Add(DeviceOption);
        root.Subcommands.Add(InfoCommand());
        root.Subcommands.Add(VerifyCommand());
        root.Subcommands.Add(BenchCommands.Build());
        foreach (var c in TrainCommands.Build()) root.Subcommands.Add(c);
        return root;
    }

    /// <summary>Parses and runs; returns the exit code. Argument errors print a message and return 2.</summary>
    public static int Run(string[] args)
    {
        // Bind Spectre.Console to the current standard output (callers may redirect it between runs).
        AnsiConsole.Console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) });
        if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 200; // tables keep their rows in logs and files
        try
        {
            return Build().Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
        catch (Exception e) when (e is InvalidDataException or FileNotFoundException or DirectoryNotFoundException or InvalidOperationException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }

    /// <summary>Parses chain | dense | dynamic.</summary>
    public static Wiring.WiringKind ParseWiring(string value) => value.Trim().ToLowerInvariant() switch
    {
        "chain" => Wiring.WiringKind.Chain,
        "dense" => Wiring.WiringKind.Dense,
        "dynamic" or "ddw" => Wiring.WiringKind.Dynamic,
        _ => throw new ArgumentException($"Unknown wiring '{value}'. Use chain, dense or dynamic."),
    };

    private static int ModelInfo(string name, Wiring.WiringKind wiring, int? inputSize, int reduction, bool json)
    {
        Wiring.WiringConfig.ValidateReduction(reduction);
        var spec = inputSize is int s ? Models.ModelZoo.Get(name, s) : Models.ModelZoo.Get(name);
        var cost = Models.CostModel.Compute(spec, wiring, reduction);
        if (json)
        {
            Console.WriteLine(System.Text.Json.JsonSerializer.Serialize(new
            {
                model = spec.Name,
                wiring = wiring.ToString().ToLowerInvariant(),
                inputSize = spec.InputSize,
                inputChannels = spec.InputChannels,
                classes = spec.NumClasses,
                routerReduction = reduction,
                @params = cost.TotalParameters,
                macs = cost.TotalMacs,
                backboneParams = cost.BackboneParameters,
                backboneMacs = cost.BackboneMacs,
                edgeParams = cost.EdgeParameters,
                routerParams = cost.RouterParameters,
                routerMacs = cost.Stages.Sum(x => x.RouterMacs),
                aggregationMacs = cost.Stages.Sum(x => x.AggregationMacs),
                stages = cost.Stages.Select(x => new
                {
                    name = x.Name, nodes = x.Nodes, width = x.Width, resolution = x.Resolution,
                    @params = x.TotalParameters, macs = x.TotalMacs, backboneParams = x.Parameters, backboneMacs = x.Macs,
                    edgeParams = x.EdgeParameters, routerParams = x.RouterParameters, routerMacs = x.RouterMacs, aggregationMacs = x.AggregationMacs,
                }),
            }));
            return 0;
        }
        var table = new Table().AddColumns("stage", "nodes", "width", "resolution", "params", "MACs", "edge params", "router params", "router MACs", "aggregation MACs");
        static string N(long v) => v.ToString("N0", System.Globalization.CultureInfo.InvariantCulture);
        table.AddRow("stem", "", "", "", N(cost.StemParameters), N(cost.StemMacs), "", "", "", "");
        foreach (var x in cost.Stages)
            table.AddRow(x.Name, x.Nodes.ToString(), x.Width.ToString(), $"{x.Resolution}×{x.Resolution}", N(x.Parameters), N(x.Macs),
                N(x.EdgeParameters), N(x.RouterParameters), N(x.RouterMacs), N(x.AggregationMacs));
        table.AddRow("head", "", "", "", N(cost.HeadParameters), N(cost.HeadMacs), "", "", "", "");
        table.AddRow("[bold]total[/]", cost.Stages.Sum(x => x.Nodes).ToString(), "", "", $"[bold]{N(cost.TotalParameters)}[/]", $"[bold]{N(cost.TotalMacs)}[/]",
            N(cost.EdgeParameters), N(cost.RouterParameters), N(cost.Stages.Sum(x => x.RouterMacs)), N(cost.Stages.Sum(x => x.AggregationMacs)));
        Console.WriteLine($"{spec.Name}, {wiring.ToString().ToLowerInvariant()} wiring, input {spec.InputChannels}×{spec.InputSize}×{spec.InputSize}, {spec.NumClasses} classes (MACs per sample; router r = {reduction})");
        AnsiConsole.Write(table);
        return 0;
    }

    /// <summary>Opens the device named by <c>--device</c>, <c>DDW_DEVICE</c>, or auto.</summary>
    public static Device OpenDevice(ParseResult parse) => Device.Create(parse.GetValue(DeviceOption));

    private static Command VerifyCommand()
    {
        var filter = new Option<string?>("--op") { Description = "Only ops or passes whose name contains this text, any case (e.g. Relu, Conv2d.BackwardWeight, Pooling)." };
        var cmd = new Command("verify", "Run every kernel on the device against its CPU reference at several shapes; exit code 0 only if all pass.");
        cmd.Options.Add(filter);
        cmd.SetAction(parse =>
        {
            string? op = parse.GetValue(filter);
            if (Verification.VerificationCases.Matching(op).Count == 0)
            {
                Console.Error.WriteLine($"No op matches --op {op}; ops: {string.Join(", ", Verification.VerificationCases.OpNames)}.");
                return 1;
            }
            using var device = OpenDevice(parse);
            Console.WriteLine($"device: {device}");
            var table = new Table().AddColumns("op", "shape", "max abs error", "max rel error", "pass");
            int total = 0, failed = 0;
            var results = new List<Verification.VerifyResult>();
            foreach (var r in Verification.VerificationCases.Run(device, op))
            {
                total++;
                if (!r.Pass) failed++;
                results.Add(r);
                table.AddRow(Markup.Escape(r.Op), Markup.Escape(r.Shape), r.MaxAbsError.ToString("E2"), r.MaxRelError.ToString("E2"),
                    r.Pass ? "[green]pass[/]" : "[red]FAIL[/]");
            }
            AnsiConsole.Write(table);
            Console.WriteLine($"{total - failed} passed, {failed} failed on {device}");
            return failed == 0 && total > 0 ? 0 : 1;
        });
        return cmd;
    }

    private static Command InfoCommand()
    {
        var cmd = new Command("info", "Print the available devices and versions, or with --model a model's parameters and MACs per stage.");
        var model = new Option<string?>("--model", "-m") { Description = $"Model: {string.Join(", ", Models.ModelZoo.Names)}." };
        var wiring = new Option<string>("--wiring", "-w") { Description = "chain | dense | dynamic", DefaultValueFactory = _ => "chain" };
        var size = new Option<int?>("--input-size") { Description = "Input resolution (default: the model's)." };
        var reduction = new Option<int>("--router-reduction") { Description = "Router reduction r.", DefaultValueFactory = _ => 4 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object." };
        cmd.Options.Add(model);
        cmd.Options.Add(wiring);
        cmd.Options.Add(size);
        cmd.Options.Add(reduction);
        cmd.Options.Add(json);
        cmd.SetAction(parse =>
        {
            if (parse.GetValue(model) is { } name)
                return ModelInfo(name, ParseWiring(parse.GetValue(wiring)!), parse.GetValue(size), parse.GetValue(reduction), parse.GetValue(json));
            var table = new Table().AddColumns("device", "name", "memory", "warp size", "multiprocessors");
            foreach (var d in Device.ListDevices())
                table.AddRow(d.Spec, Markup.Escape(d.Name), d.MemoryBytes >= 1L << 50 ? "host memory" : $"{d.MemoryBytes / (1024.0 * 1024 * 1024):F1} GiB",
                    d.WarpSize.ToString(), d.Multiprocessors.ToString());
            AnsiConsole.Write(table);
            if (parse.GetValue(DeviceOption) is { } requested)
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
}
