namespace IlgpuDdw.Training;

/// <summary>
/// One epoch's numbers. In JSON (results.json, a checkpoint's history) the names are camelCase like every other JSON
/// the library writes, and <c>epoch</c> is 1-based like metrics.jsonl's; in memory <see cref="Epoch"/> is 0-based.
/// </summary>
/// <param name="Epoch">0-based epoch (written 1-based).</param>
/// <param name="TrainLoss">Mean training loss: the first objective term (cross-entropy by default).</param>
/// <param name="TrainAccuracy">Training accuracy (on augmented batches).</param>
/// <param name="TestLoss">Mean test loss.</param>
/// <param name="TestAccuracy">Test accuracy.</param>
/// <param name="TrainImagesPerSecond">Training throughput (forward + backward + step).</param>
/// <param name="EvalImagesPerSecond">Evaluation throughput.</param>
/// <param name="KeepRate">Mean fraction of kept edges at evaluation (1 for chain).</param>
/// <param name="EffectiveMacs">Mean MACs per test sample actually computed (dead nodes skipped).</param>
/// <param name="LearningRate">Learning rate at the end of the epoch.</param>
/// <param name="Tau">Gate threshold at the end of the epoch.</param>
/// <param name="PeakBytes">Peak device bytes held by tensors during the epoch's training steps.</param>
public sealed record EpochResult(
    [property: JsonPropertyName("epoch"), JsonConverter(typeof(OneBasedJsonConverter))] int Epoch,
    [property: JsonPropertyName("trainLoss")] double TrainLoss,
    [property: JsonPropertyName("trainAccuracy")] double TrainAccuracy,
    [property: JsonPropertyName("testLoss")] double TestLoss,
    [property: JsonPropertyName("testAccuracy")] double TestAccuracy,
    [property: JsonPropertyName("trainImagesPerSecond")] double TrainImagesPerSecond,
    [property: JsonPropertyName("evalImagesPerSecond")] double EvalImagesPerSecond,
    [property: JsonPropertyName("keepRate")] double KeepRate,
    [property: JsonPropertyName("effectiveMacs")] double EffectiveMacs,
    [property: JsonPropertyName("learningRate")] float LearningRate,
    [property: JsonPropertyName("tau")] float Tau,
    [property: JsonPropertyName("peakBytes")] long PeakBytes)
{
    /// <summary>Mean of every objective term over the epoch's training samples (not stored in checkpoints).</summary>
    [JsonIgnore]
    public IReadOnlyList<TermValue> Terms { get; init; } = [];
}

/// <summary>Evaluation numbers.</summary>
/// <param name="Loss">Mean loss.</param>
/// <param name="Accuracy">Accuracy.</param>
/// <param name="ImagesPerSecond">Throughput.</param>
/// <param name="KeepRate">Mean fraction of kept edges over the wired stages (1 when none).</param>
/// <param name="EffectiveMacs">Mean MACs per sample actually computed (NaN for a model without a cost model).</param>
/// <param name="MeanAdjacency">Per stage with wiring: mean adjacency per class, [classes][n+1, n+1] flattened, else null.</param>
/// <param name="EdgeKeep">Per stage with wiring: the fraction of samples keeping each edge, [(n+1)²], else null.</param>
/// <param name="ClassCounts">Test samples per class.</param>
public sealed record EvalResult(double Loss, double Accuracy, double ImagesPerSecond, double KeepRate, double EffectiveMacs,
    IReadOnlyList<double[][]?> MeanAdjacency, IReadOnlyList<double[]?> EdgeKeep, IReadOnlyList<long> ClassCounts)
{
    /// <summary>Measured wiring diversity (dense or dynamic <see cref="Models.DdwNet"/>), else null.</summary>
    public WiringDiversity? Diversity { get; init; }
}

/// <summary>Progress of a running epoch (reported after every training batch).</summary>
/// <param name="Epoch">0-based epoch.</param>
/// <param name="Epochs">Epochs in the run.</param>
/// <param name="Batch">Batches done in this epoch.</param>
/// <param name="Batches">Batches per epoch.</param>
/// <param name="Loss">Running mean training loss of the epoch (the first objective term).</param>
/// <param name="Accuracy">Running training accuracy of the epoch.</param>
/// <param name="ImagesPerSecond">Training throughput so far in this epoch.</param>
public sealed record TrainProgress(int Epoch, int Epochs, int Batch, int Batches, double Loss, double Accuracy, double ImagesPerSecond)
{
    /// <summary>Running mean of every objective term over the epoch's samples so far.</summary>
    public IReadOnlyList<TermValue> Terms { get; init; } = [];
}

/// <summary>One line of metrics.jsonl: the run's identity and one epoch's numbers.</summary>
/// <param name="Model">Model name.</param>
/// <param name="Wiring">chain | dense | dynamic (none for a model that is not a <see cref="Models.DdwNet"/>).</param>
/// <param name="Seed">The model's initialisation seed.</param>
/// <param name="Epoch">1-based epoch.</param>
/// <param name="Step">Training steps completed.</param>
/// <param name="TrainLoss">See <see cref="EpochResult.TrainLoss"/>.</param>
/// <param name="TrainAccuracy">See <see cref="EpochResult.TrainAccuracy"/>.</param>
/// <param name="TestLoss">See <see cref="EpochResult.TestLoss"/>.</param>
/// <param name="TestAccuracy">See <see cref="EpochResult.TestAccuracy"/>.</param>
/// <param name="TrainImagesPerSecond">See <see cref="EpochResult.TrainImagesPerSecond"/>.</param>
/// <param name="EvalImagesPerSecond">See <see cref="EpochResult.EvalImagesPerSecond"/>.</param>
/// <param name="KeepRate">See <see cref="EpochResult.KeepRate"/>.</param>
/// <param name="EffectiveMacs">See <see cref="EpochResult.EffectiveMacs"/>.</param>
/// <param name="LearningRate">See <see cref="EpochResult.LearningRate"/>.</param>
/// <param name="Tau">See <see cref="EpochResult.Tau"/>.</param>
/// <param name="PeakBytes">See <see cref="EpochResult.PeakBytes"/>.</param>
public sealed record EpochMetrics(string Model, string Wiring, int Seed, int Epoch, int Step, double TrainLoss, double TrainAccuracy,
    double TestLoss, double TestAccuracy, double TrainImagesPerSecond, double EvalImagesPerSecond, double KeepRate, double EffectiveMacs,
    float LearningRate, float Tau, long PeakBytes)
{
    /// <summary>The line for epoch <paramref name="result"/> of a run.</summary>
    public static EpochMetrics From(string model, string wiring, int seed, int step, EpochResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        return new(model, wiring, seed, result.Epoch + 1, step, result.TrainLoss, result.TrainAccuracy, result.TestLoss, result.TestAccuracy,
            result.TrainImagesPerSecond, result.EvalImagesPerSecond, result.KeepRate, result.EffectiveMacs, result.LearningRate, result.Tau, result.PeakBytes);
    }
}

/// <summary>A 0-based index written and read 1-based (epochs in JSON).</summary>
internal sealed class OneBasedJsonConverter : JsonConverter<int>
{
    /// <inheritdoc/>
    public override int Read(ref System.Text.Json.Utf8JsonReader reader, Type typeToConvert, System.Text.Json.JsonSerializerOptions options) => reader.GetInt32() - 1;

    /// <inheritdoc/>
    public override void Write(System.Text.Json.Utf8JsonWriter writer, int value, System.Text.Json.JsonSerializerOptions options) => writer.WriteNumberValue(value + 1);
}
