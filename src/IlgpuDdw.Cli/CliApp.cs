namespace IlgpuDdw.Cli;

/// <summary>The <c>ddw</c> command line.</summary>
public static class CliApp
{
    /// <summary>The global <c>--device</c> option (cpu, cuda, cuda:N, auto; default: DDW_DEVICE, then auto).</summary>
    public static readonly Option<string?> DeviceOption = new("--device", "-d")
    {
        Description = "Device: cpu | cuda | cuda:N | auto [default: the DDW_DEVICE environment variable, else auto].",
        Recursive = true,
    };

    /// <summary>The global <c>--verbose</c> option: print the stack trace of an error.</summary>
    public static readonly Option<bool> VerboseOption = new("--verbose")
    {
        Description = "On an error, print its stack trace after the one-line message.",
        Recursive = true,
    };

    /// <summary>Builds the root command.</summary>
    public static RootCommand Build()
    {
        var root = new RootCommand("IlgpuDdw: Differentiable Dynamic Wirings on ILGPU kernels. Exit codes: 0 success; 1 a failure " +
            "(I/O, data, divergence, or an unexpected error: one line, --verbose for the stack trace); 2 invalid arguments.");
        root.Options.Add(DeviceOption);
        root.Options.Add(VerboseOption);
        root.Subcommands.Add(InfoCommand.Build());
        root.Subcommands.Add(VerifyCommand());
        root.Subcommands.Add(BenchCommands.Build());
        root.Subcommands.Add(ProfileCommand.Build());
        root.Subcommands.Add(DistributedCommands.Build());
        foreach (var c in TrainCommands.Build()) root.Subcommands.Add(c);
        foreach (var c in InteropCommands.Build()) root.Subcommands.Add(c);
        return root;
    }

    /// <summary>
    /// Parses and runs; returns the exit code. Every error prints one line to standard error (with
    /// <c>--verbose</c>, then its stack trace): invalid arguments return 2; anticipated failures (files that
    /// cannot be read or written, bad data or checkpoints, divergence) return 1; an unexpected exception returns 1
    /// with its type and a pointer to <c>--verbose</c>.
    /// </summary>
    public static int Run(string[] args) => Run(args, Build());

    /// <summary><see cref="Run(string[])"/> with another root command (tests add commands that fail on purpose).</summary>
    internal static int Run(string[] args, RootCommand root)
    {
        // Bind Spectre.Console to the current standard output (callers may redirect it between runs).
        AnsiConsole.Console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) });
        // tables keep their rows in logs and files; under an MPI launcher standard output is a pseudo-terminal of 80
        // columns that the launcher forwards, so the same width applies there
        if (Console.IsOutputRedirected || Distributed.Launcher.Announced() is { Size: > 1 }) AnsiConsole.Profile.Width = 200;
        var parse = root.Parse(args);
        bool verbose = parse.GetValue(VerboseOption);
        try
        {
            return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (ArgumentException e)
        {
            return Fail(2, Message(e), e, verbose);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            return Fail(1, Message(e), e, verbose);
        }
        catch (Exception e)
        {
            return Fail(1, $"unexpected {e.GetType().Name}: {Message(e)}" + (verbose ? "" : " (run with --verbose for the stack trace)"), e, verbose);
        }
    }

    private static int Fail(int code, string message, Exception e, bool verbose)
    {
        Console.Error.WriteLine($"error: {MpiRun.RankPrefix}{message}");
        if (verbose) Console.Error.WriteLine(e.ToString());
        return code;
    }

    /// <summary>An exception's message on one line, without the "(Parameter 'x')" suffix of argument exceptions.</summary>
    private static string Message(Exception e)
    {
        string m = e.Message;
        if (e is ArgumentException { ParamName: { } name }) m = m.Replace($" (Parameter '{name}')", "", StringComparison.Ordinal);
        return m.ReplaceLineEndings(" ").Trim();
    }

    /// <summary>Opens the device named by <c>--device</c>, <c>DDW_DEVICE</c>, or auto.</summary>
    public static Device OpenDevice(ParseResult parse) => Device.Create(parse.GetValue(DeviceOption));

    /// <summary><see cref="OpenDevice(ParseResult)"/> with <see cref="Device.Tf32"/> as <paramref name="tf32"/> (<c>--tf32</c>) says.</summary>
    public static Device OpenDevice(ParseResult parse, Option<bool> tf32)
    {
        var device = OpenDevice(parse);
        device.Tf32 = parse.GetValue(tf32);
        return device;
    }

    /// <summary>The device's numerics for a header line: <c>", convolutions on TF32 tensor cores"</c> when <see cref="Device.Tf32"/> is on, else empty.</summary>
    public static string Numerics(Device device) =>
        device.Tf32 ? device.Kind == DeviceKind.Cpu ? ", convolutions on TF32 (CPU emulation)" : ", convolutions on TF32 tensor cores" : "";

    private static Command VerifyCommand()
    {
        var filter = new Option<string?>("--op") { Description = "Only ops or passes whose name contains this text, any case (e.g. Relu, Conv2d.BackwardWeight, Pooling) [default: all]." };
        var tf32 = CommonOptions.Tf32("Also verify the optional TF32 tensor-core convolutions, at their own looser tolerance against the FP32 reference " +
            "(and, on the CPU accelerator, their emulation tightly against a double reference on the same TF32-rounded operands) [default: off, FP32 kernels only].");
        var cmd = new Command("verify", "Run every kernel on the device against its CPU reference at several shapes; exit code 0 only if all pass.");
        cmd.Options.Add(filter);
        cmd.Options.Add(tf32);
        cmd.SetAction(parse =>
        {
            string? op = parse.GetValue(filter);
            bool withTf32 = parse.GetValue(tf32);
            if (Verification.VerificationCases.Matching(op, withTf32).Count == 0)
            {
                Console.Error.WriteLine($"No op matches --op {op}; ops: {string.Join(", ", Verification.VerificationCases.OpNames)}.");
                return 1;
            }
            using var device = OpenDevice(parse);
            Console.WriteLine($"device: {device}");
            var table = new Table().AddColumns("op", "shape", "max abs error", "max rel error", "pass");
            int total = 0, failed = 0;
            var results = new List<Verification.VerifyResult>();
            foreach (var r in Verification.VerificationCases.Run(device, op, withTf32))
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
