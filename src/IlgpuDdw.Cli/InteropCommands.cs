namespace IlgpuDdw.Cli;

/// <summary><c>ddw export</c> and <c>ddw import</c>: weights with torchvision's state-dict names.</summary>
internal static class InteropCommands
{
    public static IEnumerable<Command> Build()
    {
        yield return Export();
        yield return Import();
    }

    private static Command Export()
    {
        var checkpoint = CommonOptions.Checkpoint();
        var format = new Option<string>("--format") { Description = "torchvision: the model's weights under torchvision's state-dict names, wiring tensors under ddw.*, num_batches_tracked for every batch norm.", DefaultValueFactory = _ => "torchvision" };
        var output = CommonOptions.Out("Output file [default: the checkpoint's path with .torchvision.safetensors].");
        var cmd = new Command("export", "Write a checkpoint's model weights (no optimizer state) as a safetensors file PyTorch loads into the torchvision model.")
            .With([checkpoint, format, output]);
        cmd.SetAction(parse =>
        {
            string path = parse.GetValue(checkpoint)!;
            if (!string.Equals(parse.GetValue(format)!.Trim(), "torchvision", StringComparison.OrdinalIgnoreCase))
                throw new ArgumentException($"--format {parse.GetValue(format)}: the only format is torchvision.");
            var info = Checkpoint.ReadInfo(path);
            string full = Path.GetFullPath(path);
            string target = Path.GetFullPath(parse.GetValue(output) ?? Path.Combine(Path.GetDirectoryName(full)!, Path.GetFileNameWithoutExtension(full) + ".torchvision.safetensors"));
            if (target == full) throw new ArgumentException($"--out {target} is the checkpoint itself; choose another file.");
            using var device = Runtime.Device.Create("cpu");
            using var model = Checkpoint.LoadModel(device, path);
            RunFiles.Write("export", target, () => model.SaveTorchvision(target, info.Step));
            Console.WriteLine($"wrote {target}: {model.StateDict().Entries.Count} tensors of {info.Model} ({CommonOptions.Name(info.Wiring.Kind)} wiring) with torchvision names, num_batches_tracked = {info.Step.ToString(CultureInfo.InvariantCulture)}");
            return 0;
        });
        return cmd;
    }

    private static Command Import()
    {
        var source = new Option<string>("--torchvision") { Description = "Safetensors file with torchvision state-dict names (e.g. a pretrained model saved with safetensors.torch.save_file).", Required = true };
        var model = CommonOptions.Model();
        var wiring = CommonOptions.Wiring("dynamic");
        var size = new Option<int?>("--input-size") { Description = "Input side [default: 28, raised to the model's minimum (e.g. 32 for resnet18)]." };
        var channels = new Option<int>("--channels") { Description = "Image channels (a 3-channel stem is summed to 1).", DefaultValueFactory = _ => 1 };
        var classes = new Option<int>("--classes") { Description = "Classes (a classifier of another count is left as initialised).", DefaultValueFactory = _ => 10 };
        var seed = new Option<int>("--seed") { Description = "Seed of the tensors the file does not hold (wiring, classifier).", DefaultValueFactory = _ => 0 };
        var gate = new GateOptionBlock();
        var output = new Option<string>("--out", "-o") { Description = "The checkpoint to write (model only: eval, wiring and export read it).", Required = true };
        var cmd = new Command("import", "Build a model of any wiring with its backbone from a torchvision-named safetensors file and save it as a checkpoint.")
            .With([source, model, wiring, size, channels, classes, seed, .. gate.Options, output]);
        cmd.SetAction(parse =>
        {
            var native = ModelZoo.Get(parse.GetValue(model)!).WithData(parse.GetValue(channels), parse.GetValue(classes));
            var spec = ModelZoo.Get(native.Name, parse.GetValue(size) ?? Math.Max(28, native.MinimumInputSize), native.InputChannels, native.NumClasses);
            var w = gate.Bind(parse) with { Kind = CommonOptions.ParseWiring(parse.GetValue(wiring)!) };
            string from = Path.GetFullPath(parse.GetValue(source)!);
            using var device = Runtime.Device.Create("cpu");
            using var net = new DdwNet(device, spec, w, parse.GetValue(seed));
            var result = RunFiles.Read("torchvision weights", from, () => net.LoadTorchvision(from));
            string target = Path.GetFullPath(parse.GetValue(output)!);
            Checkpoint.Save(target, net);
            Print(result);
            Console.WriteLine($"wrote {target}: {spec.Name} ({CommonOptions.Name(w.Kind)} wiring, {spec.InputChannels}×{spec.InputSize}×{spec.InputSize}, {spec.NumClasses} classes)");
            return 0;
        });
        return cmd;
    }

    /// <summary>What an import loaded, adapted and left as initialised.</summary>
    public static void Print(TorchvisionImport result)
    {
        ArgumentNullException.ThrowIfNull(result);
        Console.WriteLine($"loaded {result.Loaded} tensors from torchvision names");
        foreach (var a in result.Adapted) Console.WriteLine($"  adapted: {a}");
        int wiring = result.KeptInitial.Count(k => k.StartsWith(TorchvisionNames.WiringPrefix, StringComparison.Ordinal));
        if (wiring > 0) Console.WriteLine($"  left as initialised: {wiring} wiring tensors (the file has no {TorchvisionNames.WiringPrefix}* names)");
        foreach (var k in result.KeptInitial.Where(k => !k.StartsWith(TorchvisionNames.WiringPrefix, StringComparison.Ordinal))) Console.WriteLine($"  left as initialised: {k}");
        if (result.Unused.Count > 0) Console.WriteLine($"  not used: {string.Join(", ", result.Unused.Take(8))}{(result.Unused.Count > 8 ? $", ... ({result.Unused.Count})" : "")}");
    }
}
