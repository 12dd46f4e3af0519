using System.CommandLine;
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
        root.Subcommands.Add(InfoCommand.Build());
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
}
