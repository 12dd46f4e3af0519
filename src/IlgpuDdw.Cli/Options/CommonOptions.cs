namespace IlgpuDdw.Cli.Options;

/// <summary>Options several commands take, each declared here once (a new instance per command).</summary>
internal static class CommonOptions
{
    private static string ModelList => $"Model: {string.Join(", ", ModelZoo.Names)}.";

    /// <summary><c>--model</c> with default resnet_mini.</summary>
    public static Option<string> Model(string? description = null) =>
        new("--model", "-m") { Description = description ?? ModelList, DefaultValueFactory = _ => "resnet_mini" };

    /// <summary><c>--model</c> without a default (absent = no model).</summary>
    public static Option<string?> OptionalModel() => new("--model", "-m") { Description = ModelList + " [default: none, list the devices]" };

    /// <summary><c>--wiring</c>: chain | dense | dynamic.</summary>
    public static Option<string> Wiring(string defaultWiring) =>
        new("--wiring", "-w") { Description = "chain | dense | dynamic", DefaultValueFactory = _ => defaultWiring };

    /// <summary><c>--router-reduction</c> r.</summary>
    public static Option<int> RouterReduction() => new("--router-reduction") { Description = "Router reduction r.", DefaultValueFactory = _ => 4 };

    /// <summary><c>--input-size</c>.</summary>
    public static Option<int?> InputSize() => new("--input-size") { Description = "Input resolution [default: the model's, 28 for the *_mini models, 224 for the others]." };

    /// <summary>Help of <see cref="Tf32"/>.</summary>
    public const string Tf32Help =
        "Run the convolutions' GEMMs (forward, input and weight gradients) on TF32 tensor cores (operands rounded to 10 mantissa bits, FP32 sums; " +
        "PyTorch's default for convolutions on Ampere and later); depthwise convolutions and every other op stay FP32. On the CPU accelerator " +
        "the TF32 kernels run their exact emulation, far slower than FP32 [default: off, FP32 throughout].";

    /// <summary><c>--tf32</c>: the convolutions' GEMMs on TF32 tensor cores (<see cref="Runtime.Device.Tf32"/>).</summary>
    public static Option<bool> Tf32(string description = Tf32Help) => new("--tf32") { Description = description };

    /// <summary><c>--json</c>.</summary>
    public static Option<bool> Json(string description = "Print one JSON object.") => new("--json") { Description = description };

    /// <summary><c>--repetitions</c>.</summary>
    public static Option<int> Repetitions(string description, int defaultValue) =>
        new("--repetitions") { Description = description, DefaultValueFactory = _ => defaultValue };

    /// <summary><c>--checkpoint</c> (required).</summary>
    public static Option<string> Checkpoint() => new("--checkpoint", "-c") { Description = "Checkpoint file.", Required = true };

    /// <summary><c>--out</c>.</summary>
    public static Option<string?> Out(string description = "Output directory.") => new("--out", "-o") { Description = description };

    /// <summary><c>--test-images</c>; <paramref name="defaultText"/> says what is used without it.</summary>
    public static Option<int?> TestImages(string defaultText = "all") =>
        new("--test-images") { Description = $"Use the first N test images (0 = all) [default: {defaultText}]." };

    /// <summary>Adds <paramref name="options"/> to <paramref name="command"/> in order; returns the command.</summary>
    public static Command With(this Command command, IEnumerable<Option> options)
    {
        foreach (var o in options) command.Options.Add(o);
        return command;
    }

    /// <summary>Parses chain | dense | dynamic.</summary>
    public static WiringKind ParseWiring(string value) => value.Trim().ToLowerInvariant() switch
    {
        "chain" => WiringKind.Chain,
        "dense" => WiringKind.Dense,
        "dynamic" or "ddw" => WiringKind.Dynamic,
        _ => throw new ArgumentException($"Unknown wiring '{value}'. Use chain, dense or dynamic."),
    };

    /// <summary>The lower-case name of a wiring kind.</summary>
    public static string Name(WiringKind kind) => kind.ToString().ToLowerInvariant();
}
