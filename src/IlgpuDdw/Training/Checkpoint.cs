using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
using IlgpuDdw.Data;
using IlgpuDdw.IO;
using IlgpuDdw.Models;
using IlgpuDdw.Nn;
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
public sealed record CheckpointInfo(string Model, int InputSize, WiringConfig Wiring, int Seed, string LibraryVersion, int Epoch, int Step)
{
    /// <summary>Image channels the model takes (null in checkpoints written before this was recorded: the model's own).</summary>
    public int? InputChannels { get; init; }

    /// <summary>Classes the model predicts (null in checkpoints written before this was recorded: the model's own).</summary>
    public int? NumClasses { get; init; }

    /// <summary>The model's spec as the checkpoint describes it (zoo models only).</summary>
    /// <exception cref="ArgumentException">Not a zoo model, or an input size the model does not accept.</exception>
    public ModelSpec Spec()
    {
        var native = ModelZoo.Get(Model);
        return ModelZoo.Get(Model, InputSize, InputChannels ?? native.InputChannels, NumClasses ?? native.NumClasses);
    }

    /// <summary>The training options of the run (null for a model-only checkpoint).</summary>
    public TrainerOptions? Options { get; init; }

    /// <summary>The data the run trained on (null for a model-only checkpoint or one written by an older version).</summary>
    public DataSource? Data { get; init; }

    /// <summary>Whether the run has trained all its epochs (false for a model-only checkpoint).</summary>
    public bool IsComplete => Options is { } o && Epoch >= o.Epochs;
}

/// <summary>
/// The data a run trained on, recorded in its checkpoints (<see cref="Trainer.Data"/>) so that a resume restores
/// and checks it.
/// </summary>
public sealed record DataSource
{
    /// <summary>The folder the data was read from (full path), when it came from files.</summary>
    public string? Directory { get; init; }

    /// <summary>The name of the training budget the run was started with (e.g. smoke, default, full), if any.</summary>
    public string? Budget { get; init; }

    /// <summary>Training images used (the first N of the training split).</summary>
    public int TrainImages { get; init; }

    /// <summary>Test images used (the first N of the test split).</summary>
    public int TestImages { get; init; }

    /// <summary>SHA-256 (lower-case hex) of each data file's decompressed bytes, by file name.</summary>
    public IReadOnlyDictionary<string, string> Sha256 { get; init; } = new Dictionary<string, string>();
}

/// <summary>
/// Checkpoints in the safetensors format: every model parameter and buffer under its dotted name, the optimizer's
/// momentum buffers under <c>optimizer.*</c>, and string metadata: format, library version, model, input size, input channels, classes,
/// wiring (its kind, τ, router reduction, gate gradient, initial edge logit, gate and its settings as keys of their own, and the whole
/// <see cref="WiringConfig"/> as JSON under <c>wiring_config</c>), seed, epoch, step and, for a training run, the
/// whole <see cref="TrainerOptions"/> (<c>options</c>), the <see cref="DataSource"/> (<c>data</c>), the history and
/// the step losses as JSON. Written atomically (temporary file, then rename): a failed save never replaces an
/// existing checkpoint, and the next save removes temporary files an interrupted one left. Only finite states are
/// written, so an existing checkpoint is always a good one; loading refuses non-finite tensors.
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
        if (trainer.Data is { } data) extra["data"] = JsonSerializer.Serialize(data, CheckpointJsonContext.Default.DataSource);
        var tensors = new List<KeyValuePair<string, SafeTensor>>();
        foreach (var (key, value) in trainer.Optimizer.StateDict())
            tensors.Add(new("optimizer." + key, SafeTensor.FromFloat32([value.Length], value)));
        Save(path, model, extra, tensors);
    }

    /// <summary>Saves a model (parameters and buffers) with optional extra metadata and tensors.</summary>
    /// <exception cref="TrainingDivergedException">A tensor holds NaN or ±∞ (nothing is written).</exception>
    /// <exception cref="RunFileException">The file cannot be written (an existing checkpoint is left untouched).</exception>
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
            ["input_channels"] = model.Spec.InputChannels.ToString(CultureInfo.InvariantCulture),
            ["num_classes"] = model.Spec.NumClasses.ToString(CultureInfo.InvariantCulture),
            ["wiring"] = w.Kind.ToString().ToLowerInvariant(),
            ["tau"] = w.Tau.ToString("R", CultureInfo.InvariantCulture),
            ["router_reduction"] = w.Reduction.ToString(CultureInfo.InvariantCulture),
            ["gate_gradient"] = w.Gradient.ToString(),
            ["initial_edge_logit"] = w.InitialEdgeLogit.ToString("R", CultureInfo.InvariantCulture),
            ["wiring_config"] = JsonSerializer.Serialize(w, CheckpointJsonContext.Default.WiringConfig),
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
        string full = Path.GetFullPath(path);
        foreach (var (name, tensor) in tensors)
            if (tensor.DType == SafeTensorDType.Float32 && FirstNonFinite(tensor.ToFloat32()) is { } bad)
                throw new TrainingDivergedException(
                    $"{full} was not written: tensor '{name}' holds {bad.Value} at index {bad.Index}. Only finite states are saved, so a checkpoint already there is the last good one.");
        RunFiles.Write("checkpoint", full, () =>
        {
            if (Directory.Exists(full)) throw new RunFileException($"cannot write checkpoint {full}: it is a folder, not a file");
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            RunFiles.RemoveStaleTemporaries(full);
            SafeTensors.Save(full, tensors, metadata, FileFaults.WrapperFor(full));
        });
    }

    /// <summary>
    /// Writes <paramref name="destination"/>: the checkpoint <paramref name="source"/> (its metadata, optimizer state and
    /// training progress) with <paramref name="model"/>'s parameters and buffers (e.g. recalibrated batch-norm running
    /// statistics, <see cref="BatchNormRecalibration"/>), and <paramref name="extraMetadata"/> added.
    /// </summary>
    /// <exception cref="InvalidDataException">The source is not a valid checkpoint.</exception>
    /// <exception cref="RunFileException">A file cannot be read or written.</exception>
    public static void SaveFrom(string source, string destination, DdwNet model, IReadOnlyDictionary<string, string> extraMetadata)
    {
        ArgumentNullException.ThrowIfNull(extraMetadata);
        var file = Read(source);
        Info(source, file);
        var metadata = new Dictionary<string, string>(file.Metadata);
        foreach (var (k, v) in extraMetadata) metadata[k] = v;
        var extra = file.Tensors.Where(t => t.Key.StartsWith("optimizer.", StringComparison.Ordinal))
            .Select(t => new KeyValuePair<string, SafeTensor>(t.Key, t.Value)).ToArray();
        Save(destination, model, metadata, extra);
    }

    /// <summary>The first NaN or ±∞ of <paramref name="values"/>, if any.</summary>
    internal static (int Index, float Value)? FirstNonFinite(ReadOnlySpan<float> values)
    {
        for (int i = 0; i < values.Length; i++)
            if (!float.IsFinite(values[i])) return (i, values[i]);
        return null;
    }

    /// <summary>Reads a checkpoint file, with one-line errors for a folder, a missing file or an unreadable one.</summary>
    private static SafeTensorsFile Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Directory.Exists(path))
            throw new RunFileException($"cannot read checkpoint {Path.GetFullPath(path)}: it is a folder, not a checkpoint file");
        if (!File.Exists(path))
            throw new FileNotFoundException($"checkpoint {Path.GetFullPath(path)} does not exist.", path);
        return RunFiles.Read("checkpoint", path, () => SafeTensors.Load(path));
    }

    /// <summary>Reads a checkpoint's metadata (validating the file).</summary>
    /// <exception cref="InvalidDataException">Not a valid checkpoint (names the file and the problem).</exception>
    /// <exception cref="FileNotFoundException">There is no such file.</exception>
    /// <exception cref="RunFileException">The path is a folder or cannot be read.</exception>
    public static CheckpointInfo ReadInfo(string path) => Info(path, Read(path));

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
        try
        {
            // The whole record when present (it carries every gate setting); the keys above for older files.
            if (m.TryGetValue("wiring_config", out var json)) wiring = WithDefaults(json, new WiringConfig(), CheckpointJsonContext.Default.WiringConfig);
            wiring.Validate();
            return new CheckpointInfo(Get("model"), Int("input_size"), wiring, Int("seed"), Get("library_version"), Int("epoch"), Int("step"))
            {
                InputChannels = m.ContainsKey("input_channels") ? Int("input_channels") : null,
                NumClasses = m.ContainsKey("num_classes") ? Int("num_classes") : null,
                Options = m.TryGetValue("options", out var o) ? WithDefaults(o, new TrainerOptions(), CheckpointJsonContext.Default.TrainerOptions) : null,
                Data = m.TryGetValue("data", out var d) ? WithDefaults(d, new DataSource(), CheckpointJsonContext.Default.DataSource) : null,
            };
        }
        catch (Exception e) when (e is ArgumentException or JsonException)
        {
            throw new InvalidDataException($"{path}: {RunFiles.OneLine(e.Message)}", e);
        }
    }

    /// <summary>
    /// Reads a record from <paramref name="json"/>, taking the fields it lacks (written by an older version) from
    /// <paramref name="defaults"/> rather than from default(T). Older versions wrote C# property names: they are read
    /// as their camelCase names.
    /// </summary>
    private static T WithDefaults<T>(string json, T defaults, JsonTypeInfo<T> type)
    {
        var stored = JsonNode.Parse(json) as JsonObject ?? throw new JsonException($"expected a JSON object for {typeof(T).Name}");
        var merged = JsonSerializer.SerializeToNode(defaults, type)!.AsObject();
        foreach (var (name, value) in stored) merged[JsonNamingPolicy.CamelCase.ConvertName(name)] = value?.DeepClone();
        return merged.Deserialize(type) ?? throw new JsonException($"empty {typeof(T).Name}");
    }

    /// <summary>
    /// A checkpoint's history: camelCase with 1-based epochs, or as older checkpoints hold it (C# property names,
    /// 0-based epochs).
    /// </summary>
    internal static List<EpochResult> ReadHistory(string json)
    {
        var array = JsonNode.Parse(json) as JsonArray ?? throw new JsonException("the history is not a JSON array");
        foreach (var item in array.OfType<JsonObject>())
        {
            if (!item.ContainsKey("Epoch")) continue;
            foreach (var (name, value) in item.ToArray())
            {
                item.Remove(name);
                item[JsonNamingPolicy.CamelCase.ConvertName(name)] = value;
            }
            item["epoch"] = item["epoch"]!.GetValue<int>() + 1;
        }
        return array.Deserialize(CheckpointJsonContext.Default.ListEpochResult) ?? [];
    }

    /// <summary>Builds the model a checkpoint describes and loads its weights (strict).</summary>
    /// <exception cref="InvalidDataException">The file is not a valid checkpoint, its tensors do not fit the model,
    /// or a tensor holds NaN or ±∞ (the message names the first).</exception>
    /// <exception cref="FileNotFoundException">There is no such file.</exception>
    /// <exception cref="RunFileException">The path is a folder or cannot be read.</exception>
    public static DdwNet LoadModel(Device device, string path) => LoadModel(device, path, out _, out _);

    private static DdwNet LoadModel(Device device, string path, out SafeTensorsFile file, out CheckpointInfo info)
    {
        file = Read(path);
        info = Info(path, file);
        foreach (var (name, t) in file.Tensors)
            if (t.DType == SafeTensorDType.Float32 && FirstNonFinite(t.ToFloat32()) is { } bad)
                throw new InvalidDataException(
                    $"{path}: tensor '{name}' holds {bad.Value} at index {bad.Index}; a checkpoint with non-finite values cannot be evaluated or resumed.");
        DdwNet model;
        try { model = new DdwNet(device, info.Spec(), info.Wiring, info.Seed); }
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
    /// <param name="epochs">When set, the run's new total epoch count: the learning-rate and τ schedules are
    /// recomputed for it (from the resumed step on, they follow the curves of the new total).</param>
    /// <param name="terms">The objective, when the run used other terms than its options describe.</param>
    /// <param name="options">When set, replaces the saved options (the caller keeps them compatible: only fields
    /// that do not change the arithmetic of training, such as <see cref="TrainerOptions.EvalBatchSize"/> and the
    /// divergence limits, may differ for an exact continuation).</param>
    /// <exception cref="InvalidDataException">Not a training checkpoint, a tensor is not finite, the data do not fit
    /// the model, or the checkpoint records a data source whose image counts differ from <paramref name="train"/> or
    /// <paramref name="test"/>.</exception>
    public static Trainer Resume(Device device, string path, ImageDataset train, ImageDataset test, int? epochs = null,
        IEnumerable<IObjectiveTerm>? terms = null, TrainerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(test);
        var model = LoadModel(device, path, out var file, out var info);
        Trainer? trainer = null;
        try
        {
            var m = file.Metadata;
            options ??= info.Options ?? throw new InvalidDataException($"{path}: a model-only checkpoint cannot be resumed (no training options).");
            if (epochs is int e) options = options with { Epochs = e };
            if (info.Data is { } data && (data.TrainImages != train.Count || data.TestImages != test.Count))
                throw new InvalidDataException(
                    $"{path} was trained on {data.TrainImages} training and {data.TestImages} test images; got {train.Count} and {test.Count} (an exact continuation needs the same data).");
            trainer = new Trainer(model, train, test, options, terms) { Data = info.Data };
            var optimizerState = file.Tensors.Where(t => t.Key.StartsWith("optimizer.", StringComparison.Ordinal))
                .ToDictionary(t => t.Key["optimizer.".Length..], t => t.Value.ToFloat32());
            trainer.Optimizer.LoadStateDict(optimizerState);
            var history = ReadHistory(m.GetValueOrDefault("history", "[]"));
            var losses = JsonSerializer.Deserialize(m.GetValueOrDefault("step_losses", "[]"), CheckpointJsonContext.Default.ListSingle) ?? [];
            trainer.Restore(info.Epoch, info.Step, history, losses);
            return trainer;
        }
        catch (Exception e) when (e is JsonException or ArgumentException)
        {
            trainer?.Dispose();
            model.Dispose();
            throw new InvalidDataException($"{path}: {RunFiles.OneLine(e.Message)}", e);
        }
        catch
        {
            trainer?.Dispose();
            model.Dispose();
            throw;
        }
    }
}
