using System.Text.Json.Serialization;

namespace IlgpuDdw.Cli;

/// <summary>
/// <c>ddw profile</c>: the launch trace of one training step per kernel against a GPU's roofline, with launches,
/// host synchronisations and device allocations per step; <c>--dry-run</c> records the Cuda path's launches without
/// executing anything.
/// </summary>
internal static class ProfileCommand
{
    public static Command Build()
    {
        var model = CommonOptions.Model();
        var batch = new Option<int>("--batch", "-b") { Description = "Batch size.", DefaultValueFactory = _ => 32 };
        var size = CommonOptions.InputSize();
        var wiring = CommonOptions.Wiring("dynamic");
        var gpu = new Option<string?>("--gpu") { Description = "Roofline (and dry-run launch geometry) of: h200 | h100 [default: the Cuda card when it is one, else h200]." };
        var dryRun = new Option<bool>("--dry-run") { Description = "Record the launches the Cuda path would make on --gpu without executing them (no device memory, --device unused; seconds for resnet50 at 224)." };
        var measure = new Option<bool>("--measure") { Description = "On the CPU accelerator: time every launch with a synchronisation before and after it (changes the step's timing). Cuda runs are always timed with CUDA events." };
        var warmup = new Option<int>("--warmup") { Description = "Untraced steps before the traced one (two reach the steady state: the first creates the parameter gradients and momentum buffers the second keeps alive).", DefaultValueFactory = _ => 2 };
        var json = CommonOptions.Json();
        var tf32 = CommonOptions.Tf32(CommonOptions.Tf32Help.Replace(" [default:", "; the TF32 kernels' floors take the card's TF32 peak [default:", StringComparison.Ordinal));
        var cmd = new Command("profile", "Trace one training step (forward, loss, backward, SGD): per kernel launches, work items, FLOPs, bytes and roofline floor; per step launches, synchronisations and allocations.")
            .With([model, batch, size, wiring, gpu, dryRun, measure, warmup, json, tf32]);
        cmd.SetAction(parse =>
        {
            int b = parse.GetValue(batch);
            if (b < 1) throw new ArgumentException($"--batch must be at least 1; got {b}.");
            var spec = parse.GetValue(size) is int s ? ModelZoo.Get(parse.GetValue(model)!, s) : ModelZoo.Get(parse.GetValue(model)!);
            var config = new WiringConfig { Kind = CommonOptions.ParseWiring(parse.GetValue(wiring)!) };
            bool dry = parse.GetValue(dryRun);
            if (dry && parse.GetValue(measure)) throw new ArgumentException("--measure has nothing to time on a --dry-run (nothing is executed).");
            var named = parse.GetValue(gpu) is { } g ? GpuProfile.Get(g) : null;
            using var device = dry ? Device.CreateDryRun(named ?? GpuProfile.H200) : CliApp.OpenDevice(parse);
            device.Tf32 = parse.GetValue(tf32);
            var roofline = named ?? GpuProfile.ForCardName(device.Name) ?? GpuProfile.H200;
            var timing = dry ? LaunchTiming.None
                : device.Kind == DeviceKind.Cuda ? LaunchTiming.Events
                : parse.GetValue(measure) ? LaunchTiming.Synchronized : LaunchTiming.None;
            var result = StepProfile.Run(device, spec, config, b, roofline, parse.GetValue(warmup), timing);
            if (parse.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(ProfileReport.From(result), ProfileJsonContext.Default.ProfileReport));
            else
                Render(result);
            return 0;
        });
        return cmd;
    }

    /// <summary>What the numbers are: a model of the GPU, or a measurement and how it was taken.</summary>
    internal static string Label(StepProfileResult r) => r.DryRun ? "trace/model, not a GPU timing" : r.Timing switch
    {
        LaunchTiming.Events => "measured: CUDA events around each launch, no synchronisation inside the step",
        LaunchTiming.Synchronized => "measured: a synchronisation before and after every launch (changes the step's timing; CPU-accelerator times say nothing about GPU speed)",
        _ => "trace/model, launches not timed (--measure times them)",
    };

    private static void Render(StepProfileResult r)
    {
        var t = r.Trace;
        Console.WriteLine(Label(r) + (r.DryRun ? ": the launches the Cuda path would make, recorded without executing them" : ""));
        Console.WriteLine($"device: {r.Device}{(r.Tf32 ? ", convolutions on TF32" : "")}; model {r.Model} at {r.InputSize}×{r.InputSize}, {CommonOptions.Name(r.Wiring)} wiring, batch {r.Batch}; one training step (zero-grad, forward, loss, backward, SGD) after warm-up");
        Console.WriteLine($"roofline: {t.Gpu.Describe()}; floor = max(FLOPs / peak, bytes / bandwidth) with the TF32 peak for TF32 kernels, bytes = each input read once, each output written once");
        var table = new Table().AddColumns("kernel", "launches", "work items", "GFLOP", "MB", "floor µs", "max launch floor µs", "min groups", "threads/group", "measured µs", "measured/floor");
        foreach (var k in t.Kernels)
            table.AddRow(Markup.Escape(k.Kernel + (k.HasCost ? "" : " (no cost formula)")), k.Launches.ToString(), k.WorkItems.ToString("N0"),
                $"{k.Flops / 1e9:F3}", $"{k.Bytes / 1e6:F2}", $"{k.FloorSumUs:F1}", $"{k.FloorUs:F1}", k.Groups.ToString(), k.ThreadsPerGroup.ToString(),
                k.MeasuredUs is { } m ? $"{m:F1}" : "—", k.MeasuredOverFloor is { } q ? $"{q:F1}" : "—");
        AnsiConsole.Write(table);
        Console.WriteLine($"step: {t.Launches} launches, {t.Synchronizations} host synchronisations ({t.SynchronizeCalls} Synchronize, {t.HostReads} host reads, {t.HostWrites} host writes), " +
            $"{t.Allocations} device allocations ({t.AllocatedBytes / (1024.0 * 1024):F1} MiB), floor {t.FloorUs:F1} µs" +
            (t.MeasuredUs is { } mu ? $", measured {mu:F1} µs (×{mu / t.FloorUs:F1} the floor)" : "") +
            (r.WallUs is { } w ? $", wall {w / 1000:F2} ms" : "") + $", peak tensor memory {r.PeakBytes / (1024.0 * 1024):F1} MiB");
        Console.WriteLine($"launches with a floor above {LaunchTrace.UnderfillFloorUs} µs and fewer than {t.Gpu.FillGroups} groups of at least {LaunchTrace.UnderfillMinThreads} threads: {t.Underfilled.Count}");
        if (t.Underfilled.Count == 0) return;
        var under = new Table().AddColumns("kernel", "groups", "threads/group", "work items", "floor µs", "shape");
        foreach (var l in t.Underfilled)
            under.AddRow(Markup.Escape(l.Kernel), l.Groups.ToString(), l.ThreadsPerGroup.ToString(), l.WorkItems.ToString("N0"), $"{l.FloorUs(t.Gpu):F1}",
                Markup.Escape(l.Cost?.Shape ?? ""));
        AnsiConsole.Write(under);
    }
}

/// <summary><c>profile --json</c>.</summary>
internal sealed record ProfileReport(string Label, string Device, string Model, int InputSize, string Wiring, int Batch, bool DryRun, string Timing,
    ProfileGpu Gpu, ProfileStep Step, IReadOnlyList<ProfileKernel> Kernels, IReadOnlyList<ProfileLaunch> Underfilled, bool Tf32)
{
    public static ProfileReport From(StepProfileResult r)
    {
        var t = r.Trace;
        var g = t.Gpu;
        return new ProfileReport(ProfileCommand.Label(r), r.Device, r.Model, r.InputSize, CommonOptions.Name(r.Wiring), r.Batch, r.DryRun, r.Timing.ToString().ToLowerInvariant(),
            new ProfileGpu(g.Name, g.Card, g.PeakFlops / 1e12, g.PeakFlopsSource, g.Bandwidth / 1e12, g.BandwidthSource, g.Multiprocessors,
                g.Tf32PeakFlops / 1e12, g.Tf32PeakFlopsSource),
            new ProfileStep(t.Launches, t.Synchronizations, t.SynchronizeCalls, t.HostReads, t.HostWrites, t.Allocations, t.AllocatedBytes, t.FloorUs,
                t.MeasuredUs, r.WallUs, r.PeakBytes),
            t.Kernels.Select(k => new ProfileKernel(k.Kernel, k.Family, k.Launches, k.WorkItems, k.Groups, k.ThreadsPerGroup, k.Flops, k.Bytes, k.FloorUs,
                k.FloorSumUs, k.MeasuredUs, k.MeasuredOverFloor, k.HasCost)).ToArray(),
            t.Underfilled.Select(l => new ProfileLaunch(l.Kernel, l.Groups, l.ThreadsPerGroup, l.WorkItems, l.FloorUs(g), l.Cost?.Shape)).ToArray(), r.Tf32);
    }
}

/// <summary>The roofline of <see cref="ProfileReport"/> (<c>tf32PeakTflops</c>: the dense TF32 tensor-core peak of the TF32 kernels' floors).</summary>
internal sealed record ProfileGpu(string Name, string Card, double PeakTflops, string PeakSource, double BandwidthTBs, string BandwidthSource, int Multiprocessors,
    double Tf32PeakTflops, string Tf32PeakSource);

/// <summary>The per-step totals of <see cref="ProfileReport"/>: syncs = Synchronize calls + host reads + host writes.</summary>
internal sealed record ProfileStep(int Launches, int Syncs, int SynchronizeCalls, int HostReads, int HostWrites, int Allocations, long AllocatedBytes,
    double FloorUs, double? MeasuredUs, double? WallUs, long PeakBytes);

/// <summary>One kernel of <see cref="ProfileReport"/>: <c>groups</c> is the smallest grid of its launches, <c>floorUs</c> its largest single-launch floor.</summary>
internal sealed record ProfileKernel(string Kernel, string Family, int Launches, long WorkItems, long Groups, int ThreadsPerGroup, double Flops, double Bytes,
    double FloorUs, double FloorSumUs, double? MeasuredUs, double? MeasuredOverFloor, bool HasCost);

/// <summary>A launch breaking the launch-shape rule.</summary>
internal sealed record ProfileLaunch(string Kernel, long Groups, int ThreadsPerGroup, long WorkItems, double FloorUs, string? Shape);

/// <summary>JSON of <c>profile</c>: compact, camelCase, null measurements written as null.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(ProfileReport))]
internal sealed partial class ProfileJsonContext : JsonSerializerContext;
