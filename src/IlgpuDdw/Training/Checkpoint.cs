using System.Globalization;
using System.Text.Json;
using IlgpuDdw.Data;
using IlgpuDdw.IO;
using IlgpuDdw.Models;
using IlgpuDdw.Nn;
using IlgpuDdw.Runtime;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Training;

/// <summary>What a checkpoint's metadata says about the model it holds.</summary>
/// <param name="Model">Model name (see <see cref="ModelZoo"/>).</param>
/// <param name="InputSize">Input resolution.</param>
/// <param name="Wiring">Wiring settings.</param>
/// <param name="Seed">Model initialisation seed.</param>
/// <param name="LibraryVersion">IlgpuDdw version that wrote it.</param>
/// <param name="Epoch">Completed epochs.</param>
/// <param name="Step">Completed steps.</param>
public sealed record CheckpointInfo(string Model, int InputSize, WiringConfig Wiring, int Seed, string LibraryVersion, int Epoch, int Step);

/// <summary>
/// Checkpoints in the safetensors format: every model parameter and buffer under its dotted name, the optimizer's
/// momentum buffers under <c>optimizer.*</c>, and string metadata (format, library version, model, input size,
/// wiring, τ, router reduction, gate gradient, gate and its settings, seed, epoch, step, training options and history
/// as JSON). Written
/// atomically (temporary file, then rename): a failed save never replaces an existing checkpoint.
/// </summary>
public static class Checkpoint
{
    /// <summary>The value of the <c>format</c> metadata key.</summary>
    public const string Format = "ilgpuddw-checkpoint-1";

    /// <summary>The library version written into checkpoints.</summary>
    public static string LibraryVersion => typeof(Checkpoint).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";

    /// <summary>Saves a trainer's model, optimizer and progress.</summary>
    /// <exception cref="InvalidOperationException">The trainer's model is not a <see cref="DdwNet"/>.</exception>
    public static void Save(string path, Trainer trainer)
    {
        ArgumentNullException.ThrowIfNull(trainer);
        var model = trainer.Model as DdwNet
            ?? throw new InvalidOperationException($"Checkpoints hold DdwNet models; the trainer's model is a {trainer.Model.GetType().Name}.");
        var extra = new Dictionary<string, string>
        {
            ["epoch"] = trainer.Epoch.ToString(CultureInfo.InvariantCulture),
            ["step"] = trainer.Step.ToString(CultureInfo.InvariantCulture),
            ["options"] = JsonSerializer.Serialize(trainer.Options, CheckpointJsonContext.Default.TrainerOptions),
            ["history"] = JsonSerializer.Serialize(trainer.History, CheckpointJsonContext.Default.IReadOnlyListEpochResult),
            ["step_losses"] = JsonSerializer.Serialize(trainer.StepLosses, CheckpointJsonContext.Default.ListSingle),
        };
        var tensors = new List<KeyValuePair<string, SafeTensor>>();
        foreach (var (key, value) in trainer.Optimizer.StateDict())
            tensors.Add(new("optimizer." + key, SafeTensor.FromFloat32([value.Length], value)));
        Save(path, model, extra, tensors);
    }

    /// <summary>Saves a model (parameters and buffers) with optional extra metadata and tensors.</summary>
    public static void Save(string path, DdwNet model, IReadOnlyDictionary<string, string>? extraMetadata = null,
        IEnumerable<KeyValuePair<string, SafeTensor>>? extraTensors = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(model);
        var w = model.Wiring;
        var metadata = new Dictionary<string, string>
        {
            ["format"] = Format,
            ["library_version"] = LibraryVersion,
            ["model"] = model.Spec.Name,
            ["input_size"] = model.Spec.InputSize.ToString(CultureInfo.InvariantCulture),
            ["wiring"] = w.Kind.ToString().ToLowerInvariant(),
            ["tau"] = w.Tau.ToString("R", CultureInfo.InvariantCulture),
            ["router_reduction"] = w.Reduction.ToString(CultureInfo.InvariantCulture),
            ["gate_gradient"] = w.Gradient.ToString(),
            ["initial_edge_logit"] = w.InitialEdgeLogit.ToString("R", CultureInfo.InvariantCulture),
            ["gate"] = w.Gate.ToString(),
            ["gate_temperature"] = w.GateTemperature.ToString("R", CultureInfo.InvariantCulture),
            ["top_k_fraction"] = w.TopKFraction.ToString("R", CultureInfo.InvariantCulture),
            ["seed"] = model.Seed.ToString(CultureInfo.InvariantCulture),
            ["epoch"] = "0",
            ["step"] = "0",
        };
        if (w.ForceOutputEdge is bool force) metadata["force_output_edge"] = force ? "true" : "false";
        if (extraMetadata is not null)
            foreach (var (k, v) in extraMetadata) metadata[k] = v;
        var tensors = new List<KeyValuePair<string, SafeTensor>>();
        foreach (var e in model.StateDict().Entries)
            tensors.Add(new(e.Name, SafeTensor.FromFloat32(e.Shape, e.Data)));
        if (extraTensors is not null) tensors.AddRange(extraTensors);
        string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        SafeTensors.Save(path, tensors, metadata);
    }

    /// <summary>Reads a checkpoint's metadata (validating the file).</summary>
    /// <exception cref="InvalidDataException">Not a valid checkpoint (names the file and the problem).</exception>
    public static CheckpointInfo ReadInfo(string path) => Info(path, SafeTensors.Load(path));

    private static CheckpointInfo Info(string path, SafeTensorsFile file)
    {
        var m = file.Metadata;
        string Get(string key) => m.TryGetValue(key, out var v) ? v
            : throw new InvalidDataException($"{path}: checkpoint metadata has no '{key}' (is this an IlgpuDdw checkpoint?).");
        if (Get("format") != Format)
            throw new InvalidDataException($"{path}: unknown checkpoint format '{m["format"]}' (expected {Format}).");
        int Int(string key) => int.TryParse(Get(key), NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v
            : throw new InvalidDataException($"{path}: metadata '{key}' = '{m[key]}' is not an integer.");
        float Float(string key) => float.TryParse(Get(key), NumberStyles.Float, CultureInfo.InvariantCulture, out float v) ? v
            : throw new InvalidDataException($"{path}: metadata '{key}' = '{m[key]}' is not a number.");
        WiringKind kind = Get("wiring") switch
        {
            "chain" => WiringKind.Chain,
            "dense" => WiringKind.Dense,
            "dynamic" => WiringKind.Dynamic,
            var other => throw new InvalidDataException($"{path}: unknown wiring '{other}'."),
        };
        if (!Enum.TryParse<GateGradient>(Get("gate_gradient"), out var gradient))
            throw new InvalidDataException($"{path}: unknown gate gradient '{m["gate_gradient"]}'.");
        // Gate settings: absent from checkpoints written before there was a choice of gate (today's threshold gate).
        var gate = GateKind.Threshold;
        if (m.TryGetValue("gate", out var g) && !Enum.TryParse(g, out gate))
            throw new InvalidDataException($"{path}: unknown gate '{g}'.");
        float Optional(string key, float fallback) => m.ContainsKey(key) ? Float(key) : fallback;
        bool? force = m.TryGetValue("force_output_edge", out var f) ? f switch
        {
            "true" => true,
            "false" => false,
            _ => throw new InvalidDataException($"{path}: metadata 'force_output_edge' = '{f}' is not true or false."),
        } : null;
        var defaults = new WiringConfig();
        var wiring = new WiringConfig
        {
            Kind = kind, Tau = Float("tau"), Reduction = Int("router_reduction"), Gradient = gradient, InitialEdgeLogit = Float("initial_edge_logit"),
            Gate = gate, GateTemperature = Optional("gate_temperature", defaults.GateTemperature), TopKFraction = Optional("top_k_fraction", defaults.TopKFraction),
            ForceOutputEdge = force,
        };
        try { wiring.Validate(); }
        catch (ArgumentException e) { throw new InvalidDataException($"{path}: {e.Message}", e); }
        return new CheckpointInfo(Get("model"), Int("input_size"), wiring, Int("seed"), Get("library_version"), Int("epoch"), Int("step"));
    }

    /// <summary>Builds the model a checkpoint describes and loads its weights (strict).</summary>
    /// <exception cref="InvalidDataException">The file is not a valid checkpoint or its tensors do not fit the model.</exception>
    public static DdwNet LoadModel(Device device, string path) => LoadModel(device, path, out _);

    private static DdwNet LoadModel(Device device, string path, out SafeTensorsFile file)
    {
        file = SafeTensors.Load(path);
        var info = Info(path, file);
        DdwNet model;
        try { model = DdwNet.Create(device, info.Model, info.Wiring, info.Seed, info.InputSize); }
        catch (ArgumentException e) { throw new InvalidDataException($"{path}: {e.Message}", e); }
        var state = new StateDict();
        foreach (var (name, t) in file.Tensors)
        {
            if (name.StartsWith("optimizer.", StringComparison.Ordinal)) continue;
            if (t.DType != SafeTensorDType.Float32)
                throw new InvalidDataException($"{path}: tensor '{name}' has dtype {SafeTensors.DTypeName(t.DType)}; model tensors are F32.");
            state.Add(new StateEntry(name, [.. t.Shape], t.ToFloat32()));
        }
        try { model.LoadStateDict(state, strict: true); }
        catch (ArgumentException e)
        {
            model.Dispose();
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
        return model;
    }

    /// <summary>
    /// Continues a run: rebuilds the model and a trainer with the saved options, restores the optimizer's buffers,
    /// the epoch and step counters and the history. Training then continues exactly as if it had not stopped (the
    /// shuffling, augmentation, learning rate and τ depend only on the seed, the epoch and the step).
    /// </summary>
    /// <param name="device">Device of the rebuilt model.</param>
    /// <param name="path">The checkpoint.</param>
    /// <param name="train">Training data.</param>
    /// <param name="test">Test data.</param>
    /// <param name="epochs">When set, the run's new total epoch count.</param>
    /// <param name="terms">The objective, when the run used other terms than its options describe.</param>
    public static Trainer Resume(Device device, string path, ImageDataset train, ImageDataset test, int? epochs = null,
        IEnumerable<IObjectiveTerm>? terms = null)
    {
        var model = LoadModel(device, path, out var file);
        try
        {
            var m = file.Metadata;
            var options = JsonSerializer.Deserialize(m.TryGetValue("options", out var o) ? o
                : throw new InvalidDataException($"{path}: a model-only checkpoint cannot be resumed (no training options)."), CheckpointJsonContext.Default.TrainerOptions)
                ?? throw new InvalidDataException($"{path}: empty training options.");
            if (epochs is int e) options = options with { Epochs = e };
            var info = Info(path, file);
            var trainer = new Trainer(model, train, test, options, terms);
            var optimizerState = file.Tensors.Where(t => t.Key.StartsWith("optimizer.", StringComparison.Ordinal))
                .ToDictionary(t => t.Key["optimizer.".Length..], t => t.Value.ToFloat32());
            trainer.Optimizer.LoadStateDict(optimizerState);
            var history = JsonSerializer.Deserialize(m.GetValueOrDefault("history", "[]"), CheckpointJsonContext.Default.ListEpochResult) ?? [];
            var losses = JsonSerializer.Deserialize(m.GetValueOrDefault("step_losses", "[]"), CheckpointJsonContext.Default.ListSingle) ?? [];
            trainer.Restore(info.Epoch, info.Step, history, losses);
            return trainer;
        }
        catch (Exception e) when (e is JsonException or ArgumentException)
        {
            model.Dispose();
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }
}
