using IlgpuDdw.Distributed;
using IlgpuDdw.Models;
using IlgpuDdw.Nn;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Training;

/// <summary>What an objective term sees of one training step.</summary>
/// <param name="Model">The model being trained.</param>
/// <param name="Logits">The model's output for the batch, [B, classes].</param>
/// <param name="Labels">The batch's labels, [B].</param>
/// <param name="Epoch">0-based epoch.</param>
/// <param name="Step">0-based training step of the whole run.</param>
/// <param name="TotalSteps">Steps of the whole run.</param>
public sealed record ObjectiveContext(Module Model, Tensor Logits, IntTensor Labels, int Epoch, int Step, int TotalSteps)
{
    /// <summary>
    /// Data-parallel training: the ranks sharing the global batch (null for one process). The loss gradient of this
    /// rank is seeded with its share B / <see cref="GlobalBatch"/> and summed over the ranks, so a term that is a mean
    /// over the local batch needs nothing more; a term of the whole batch (<see cref="KeepTerm"/>) computes its
    /// value over the global batch and divides its local gradient by that share.
    /// </summary>
    public Communicator? Group { get; init; }

    /// <summary>Samples in the global batch (the local batch's size for one process).</summary>
    public int GlobalBatch { get; init; } = -1;
}

/// <summary>
/// One summand of the training objective. The trainer minimises the sum of its terms; each term's value is reported
/// per step and per epoch under <see cref="Name"/>. A new regulariser is a new class implementing this interface.
/// </summary>
public interface IObjectiveTerm
{
    /// <summary>Short name used in the reported per-term values.</summary>
    string Name { get; }

    /// <summary>The term's value for this step: a scalar ([1]) recorded on <paramref name="tape"/>.</summary>
    Tensor Compute(Tape tape, ObjectiveContext context);
}

/// <summary>The value of one objective term (a step's value, or a mean over an epoch's samples).</summary>
/// <param name="Name">The term's <see cref="IObjectiveTerm.Name"/>.</param>
/// <param name="Value">Its value.</param>
public sealed record TermValue(string Name, double Value);

/// <summary>Mean cross-entropy of the logits against the labels, with optional label smoothing.</summary>
/// <param name="labelSmoothing">Label smoothing ε in [0, 1).</param>
public sealed class CrossEntropyTerm(float labelSmoothing = 0f) : IObjectiveTerm
{
    /// <summary>Label smoothing ε.</summary>
    public float LabelSmoothing { get; } = labelSmoothing is >= 0 and < 1 ? labelSmoothing
        : throw new ArgumentException($"Label smoothing must be in [0, 1); got {labelSmoothing}.", nameof(labelSmoothing));

    /// <inheritdoc/>
    public string Name => "cross_entropy";

    /// <inheritdoc/>
    public Tensor Compute(Tape tape, ObjectiveContext context) => tape.CrossEntropy(context.Logits, context.Labels, LabelSmoothing);
}

/// <summary>
/// Sparsity term of dynamic wiring: λ · mean of every router output of the step (all stages, nodes and samples),
/// which pushes edge weights towards 0 and so towards being cut.
/// </summary>
/// <param name="weight">λ ≥ 0.</param>
public sealed class RouterSparsityTerm(float weight) : IObjectiveTerm
{
    /// <summary>λ.</summary>
    public float Weight { get; } = weight >= 0 && float.IsFinite(weight) ? weight
        : throw new ArgumentException($"Sparsity weight must be ≥ 0; got {weight}.", nameof(weight));

    /// <inheritdoc/>
    public string Name => "sparsity";

    /// <inheritdoc/>
    /// <exception cref="InvalidOperationException">The model is not a <see cref="DdwNet"/> with router outputs.</exception>
    public Tensor Compute(Tape tape, ObjectiveContext context)
    {
        var outputs = (context.Model as DdwNet)?.LastRouterOutputs().ToList() ?? [];
        if (outputs.Count == 0)
            throw new InvalidOperationException($"The sparsity term needs a dynamically wired DdwNet; the {context.Model.GetType().Name} produced no router outputs.");
        int count = outputs.Sum(a => a.Length);
        Tensor? sum = null;
        foreach (var a in outputs)
        {
            var s = tape.Scale(tape.Sum(a), Weight / count);
            sum = sum is null ? s : tape.Add(sum, s);
        }
        return sum!;
    }
}

/// <summary>The objective <see cref="TrainerOptions"/> describe.</summary>
public static class ObjectiveTerms
{
    /// <summary>
    /// Cross-entropy with <see cref="TrainerOptions.LabelSmoothing"/>; for a dynamically wired <see cref="DdwNet"/>
    /// also <see cref="RouterSparsityTerm"/> when <see cref="TrainerOptions.SparsityWeight"/> &gt; 0,
    /// <see cref="KeepRateTerm"/> when <see cref="TrainerOptions.KeepTarget"/> is set and
    /// <see cref="BatchShapingTerm"/> when <see cref="TrainerOptions.BatchShapingWeight"/> &gt; 0, in that order.
    /// </summary>
    public static IReadOnlyList<IObjectiveTerm> FromOptions(TrainerOptions options, Module model)
    {
        ArgumentNullException.ThrowIfNull(options);
        var terms = new List<IObjectiveTerm> { new CrossEntropyTerm(options.LabelSmoothing) };
        if (model is not DdwNet { Wiring.Kind: WiringKind.Dynamic }) return terms;
        if (options.SparsityWeight > 0)
            terms.Add(new RouterSparsityTerm(options.SparsityWeight));
        if (options.KeepTarget is float rho)
            terms.Add(new KeepRateTerm(rho, options.KeepTargetWeight, options.KeepTargetWarmupFraction, options.KeepTemperature));
        if (options.BatchShapingWeight > 0)
            terms.Add(new BatchShapingTerm(options.BatchShapingWeight, options.BatchShapingAlpha, options.BatchShapingBeta, options.KeepTemperature));
        return terms;
    }
}
