using IlgpuDdw.Nn;

namespace IlgpuDdw.Models;

/// <summary>
/// A whole network for square <see cref="InputSize"/>² × <see cref="InputChannels"/> images: <see cref="Stem"/>
/// (convolutions, batch norms, activations, max pools), the DDW <see cref="Stages"/> in order, then <see cref="Head"/>:
/// optional convolution/BN/activation layers, a <see cref="GlobalAvgPoolSpec"/> and a final <see cref="LinearSpec"/>
/// to <see cref="NumClasses"/> logits (dropout is not modelled). Channels and sides are checked on construction.
/// Equality compares every field and list element.
/// </summary>
public sealed record ModelSpec
{
    /// <summary>Creates and validates a model spec.</summary>
    /// <exception cref="ArgumentException">Channels do not chain, the head is not [conv/BN/act]* + pool + linear to
    /// NumClasses, or the input is smaller than <see cref="MinimumInputSize"/>.</exception>
    public ModelSpec(string name, int inputChannels, int inputSize, int numClasses,
        IEnumerable<LayerSpec> stem, IEnumerable<StageSpec> stages, IEnumerable<LayerSpec> head)
    {
        ArgumentNullException.ThrowIfNull(stem);
        ArgumentNullException.ThrowIfNull(stages);
        ArgumentNullException.ThrowIfNull(head);
        if (string.IsNullOrWhiteSpace(name)) throw new ArgumentException("A model needs a name.", nameof(name));
        if (inputChannels < 1) throw new ArgumentException($"inputChannels must be at least 1, got {inputChannels}.", nameof(inputChannels));
        if (numClasses < 1) throw new ArgumentException($"numClasses must be at least 1, got {numClasses}.", nameof(numClasses));
        Name = name;
        InputChannels = inputChannels;
        NumClasses = numClasses;
        Stem = Array.AsReadOnly(stem.ToArray());
        Stages = Array.AsReadOnly(stages.ToArray());
        Head = Array.AsReadOnly(head.ToArray());
        ValidateLayout();
        TotalStride = Stem.Concat(Head).Aggregate(1, (s, l) => s * l.Stride) * Stages.Aggregate(1, (s, st) => s * st.Stride);
        MinimumInputSize = FindMinimumInputSize();
        if (inputSize < MinimumInputSize)
            throw new ArgumentException(
                $"Input size {inputSize} is too small for model '{name}': the minimum is {MinimumInputSize} "
                + $"(the network downsamples by {TotalStride}).", nameof(inputSize));
        InputSize = inputSize;
        var sizes = TraceSizes(inputSize)!;
        StemOutputSize = sizes[0];
        StageInputSizes = Array.AsReadOnly(sizes[..Stages.Count]);
        StageOutputSizes = Array.AsReadOnly(sizes[1..(Stages.Count + 1)]);
    }

    /// <summary>Model name (the zoo's key).</summary>
    public string Name { get; }

    public int InputChannels { get; }

    /// <summary>Image side (square images).</summary>
    public int InputSize { get; }

    /// <summary>Number of classes (logits).</summary>
    public int NumClasses { get; }

    /// <summary>Layers before the first stage.</summary>
    public IReadOnlyList<LayerSpec> Stem { get; }

    /// <summary>The DDW stages.</summary>
    public IReadOnlyList<StageSpec> Stages { get; }

    /// <summary>Layers after the last stage, ending with global average pooling and the classifier.</summary>
    public IReadOnlyList<LayerSpec> Head { get; }

    /// <summary>The classifier (the head's last layer).</summary>
    public LinearSpec Classifier => (LinearSpec)Head[^1];

    /// <summary>Product of every stride in the network.</summary>
    public int TotalStride { get; }

    /// <summary>
    /// The smallest accepted input side: at least <see cref="TotalStride"/> (so the last feature map holds at least
    /// one pixel that is not padding alone) and large enough for every kernel.
    /// </summary>
    public int MinimumInputSize { get; }

    /// <summary>Side of the stem's output (the first stage's input).</summary>
    public int StemOutputSize { get; }

    /// <summary>Input side of each stage.</summary>
    public IReadOnlyList<int> StageInputSizes { get; }

    /// <summary>Output side of each stage (the resolution of all its nodes).</summary>
    public IReadOnlyList<int> StageOutputSizes { get; }

    /// <summary>The same network for <paramref name="size"/>² inputs.</summary>
    /// <exception cref="ArgumentException"><paramref name="size"/> is below <see cref="MinimumInputSize"/>.</exception>
    public ModelSpec WithInput(int size) => new(Name, InputChannels, size, NumClasses, Stem, Stages, Head);

    /// <summary>
    /// The same network for images of <paramref name="channels"/> channels and <paramref name="classes"/> classes:
    /// the stem's first convolution takes the channels, the classifier writes the classes (every other layer is
    /// unchanged). Returns this spec when both already match.
    /// </summary>
    /// <exception cref="ArgumentException">A count below 1, or a stem that does not start with an ungrouped convolution.</exception>
    public ModelSpec WithData(int channels, int classes)
    {
        if (channels == InputChannels && classes == NumClasses) return this;
        if (channels < 1 || classes < 1) throw new ArgumentException($"channels {channels}, classes {classes}: both must be at least 1.");
        var stem = Stem.ToArray();
        if (stem.Length == 0 || stem[0] is not ConvSpec { Groups: 1 } c)
            throw new ArgumentException($"Model '{Name}': the stem does not start with an ungrouped convolution, so it cannot take {channels}-channel images.");
        stem[0] = new ConvSpec(channels, c.OutChannels, c.Kernel, c.Stride, c.Padding, 1, c.Bias);
        var head = Head.ToArray();
        head[^1] = new LinearSpec(Classifier.InFeatures, classes, Classifier.Bias);
        return new ModelSpec(Name, channels, InputSize, classes, stem, Stages, head);
    }

    /// <inheritdoc/>
    public bool Equals(ModelSpec? other) =>
        other is not null && Name == other.Name && InputChannels == other.InputChannels && InputSize == other.InputSize
        && NumClasses == other.NumClasses && Stem.SequenceEqual(other.Stem) && Stages.SequenceEqual(other.Stages)
        && Head.SequenceEqual(other.Head);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Name, InputChannels, InputSize, NumClasses, Stages.Count);

    /// <summary>Compact representation.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Name} ({InputChannels}×{InputSize}×{InputSize} → {NumClasses}, {Stages.Count} stages)");

    private void ValidateLayout()
    {
        if (Stages.Count == 0) throw new ArgumentException($"Model '{Name}' has no stages.", "stages");
        if (Stem.Any(l => l is null) || Head.Any(l => l is null) || Stages.Any(s => s is null))
            throw new ArgumentException($"Model '{Name}' has a null layer or stage.");
        if (Stem.Any(l => l is GlobalAvgPoolSpec or LinearSpec))
            throw new ArgumentException($"Model '{Name}': the stem may hold only convolutions, batch norms, activations and max pools.", "stem");
        int n = Head.Count;
        if (n < 2 || Head[n - 2] is not GlobalAvgPoolSpec || Head[n - 1] is not LinearSpec
            || Head.Take(n - 2).Any(l => l is not (ConvSpec or BatchNormSpec or ActivationSpec)))
            throw new ArgumentException(
                $"Model '{Name}': the head must be convolutions/batch norms/activations, then a global average pool, then a linear layer.", "head");
        if (Classifier.OutFeatures != NumClasses)
            throw new ArgumentException($"Model '{Name}': the classifier has {Classifier.OutFeatures} outputs but numClasses is {NumClasses}.", "head");

        int channels = InputChannels;
        foreach (var layer in Stem) channels = layer.OutputChannels(channels);
        foreach (var stage in Stages)
        {
            if (stage.InChannels != channels)
                throw new ArgumentException($"Model '{Name}': stage '{stage.Name}' expects {stage.InChannels} input channels but receives {channels}.", "stages");
            channels = stage.OutChannels;
        }
        foreach (var layer in Head) channels = layer.OutputChannels(channels);
    }

    /// <summary>Sides [stem output, stage 0 output, ..., last stage output], or null when some layer gets an empty input.</summary>
    private int[]? TraceSizes(int inputSize)
    {
        var sizes = new int[Stages.Count + 1];
        int size = inputSize;
        foreach (var layer in Stem) size = size < 1 ? 0 : layer.OutputSize(size);
        sizes[0] = size;
        for (int s = 0; s < Stages.Count; s++)
            sizes[s + 1] = size = size < 1 ? 0 : Stages[s].OutputSize(size);
        foreach (var layer in Head) size = size < 1 ? 0 : layer.OutputSize(size);
        return size >= 1 && sizes.All(x => x >= 1) ? sizes : null;
    }

    private int FindMinimumInputSize()
    {
        const int limit = 1 << 16;
        for (int size = Math.Max(1, TotalStride); size <= limit; size++)
            if (TraceSizes(size) is not null) return size;
        throw new ArgumentException($"Model '{Name}' accepts no input side up to {limit}.");
    }
}
