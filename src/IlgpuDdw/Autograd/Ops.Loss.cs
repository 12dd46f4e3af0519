namespace IlgpuDdw.Autograd;

public static partial class Ops
{
    /// <summary>
    /// Mean softmax cross-entropy of <paramref name="logits"/> [B, K] against integer <paramref name="labels"/>
    /// (length B, each in [0, K)), with optional label smoothing ε in [0, 1) (PyTorch semantics: target =
    /// (1 − ε)·onehot + ε/K). Returns a tensor of shape [1]. One fused kernel writes each sample's loss and its
    /// gradient (softmax − target)/B, saved for the backward; the mean is a deterministic reduction.
    /// </summary>
    /// <exception cref="ArgumentException">Shapes, a label or ε are invalid; the message names the values.</exception>
    public static Tensor CrossEntropy(this Tape tape, Tensor logits, IntTensor labels, float labelSmoothing = 0f)
    {
        RequireSameDevice("CrossEntropy", tape, logits);
        var (batch, classes) = ValidateClassification("CrossEntropy", tape.Device, logits, labels);
        if (!(labelSmoothing >= 0f && labelSmoothing < 1f))
            throw new ArgumentException($"CrossEntropy: label smoothing must be in [0, 1); got {labelSmoothing}.", nameof(labelSmoothing));

        var d = tape.Device;
        bool needsGrad = tape.NeedsGrad(logits);
        var y = tape.NewTensor(1);
        var saved = needsGrad ? tape.NewTensor(batch, classes) : Tensor.Empty(d, batch, classes);
        using (var perSample = Tensor.Empty(d, batch))
        {
            int ext = d.Extent(batch);
            d.Kernels.CrossEntropyForward(d.Stream, ext, batch, ext, classes, labelSmoothing, 1f / batch,
                logits.View, labels.View, perSample.View, saved.View);
            SumInto(d, perSample.View, batch, 1f / batch, y.View);
        }
        if (!needsGrad)
        {
            saved.Dispose();
            return y;
        }
        tape.Record("CrossEntropy", y, () =>
        {
            int n = saved.Length;
            int ext = d.Extent(n);
            var dLogits = logits.GradForWrite(out int accumulate);
            d.Kernels.CrossEntropyBackward(d.Stream, ext, n, ext, accumulate, y.Grad.View, saved.View, dLogits);
        });
        return y;
    }

    /// <summary>The index of the largest logit of each row of <paramref name="logits"/> [B, K] (first on ties).</summary>
    /// <exception cref="ArgumentException">The logits do not have rank 2.</exception>
    public static int[] Argmax(Tensor logits)
    {
        ArgumentNullException.ThrowIfNull(logits);
        logits.ThrowIfDisposed();
        if (logits.Rank != 2)
            throw new ArgumentException($"Argmax: logits must have rank 2 [batch, classes]; got {logits.ShapeString}.", nameof(logits));
        var d = logits.Device;
        int rows = logits.Dim(0), columns = logits.Dim(1);
        using var result = d.Allocate<int>(rows);
        int ext = d.Extent(rows);
        d.Kernels.ArgmaxRows(d.Stream, ext, rows, ext, columns, logits.View, result.View);
        var host = new int[rows];
        d.Download(result.View, host.AsSpan());
        return host;
    }

    /// <summary>
    /// How many rows of <paramref name="logits"/> [B, K] have their largest logit at the row's label
    /// (accuracy = count / B).
    /// </summary>
    /// <exception cref="ArgumentException">Shapes or a label are invalid.</exception>
    public static int CountCorrect(Tensor logits, IntTensor labels)
    {
        ArgumentNullException.ThrowIfNull(logits);
        logits.ThrowIfDisposed();
        using var count = Tensor.Empty(logits.Device, 1);
        CountCorrect(logits, labels, count.View);
        return (int)count.ToArray()[0];
    }

    /// <summary>
    /// <see cref="CountCorrect(Tensor, IntTensor)"/> left on the device: writes the count (exact as a float up to 2²⁴
    /// rows) to <paramref name="count"/>[0] with a hit per row (<c>CorrectRows</c>) and a sum, and reads nothing back,
    /// so the trainer gets it with the step's one read of its status values.
    /// </summary>
    /// <exception cref="ArgumentException">Shapes or a label are invalid (checked on the host, before any launch).</exception>
    internal static void CountCorrect(Tensor logits, IntTensor labels, ArrayView<float> count)
    {
        var d = logits.Device;
        var (rows, columns) = ValidateClassification("CountCorrect", d, logits, labels);
        using var hits = Tensor.Empty(d, rows);
        int ext = d.Extent(rows);
        d.Kernels.CorrectRows(d.Stream, ext, rows, ext, columns, logits.View, labels.View, hits.View);
        SumInto(d, hits.View, rows, 1f, count.SubView(0, 1));
    }

    /// <summary>Checks logits [B, K] against labels (length B, each in [0, K)) on the host; returns (B, K).</summary>
    private static (int Batch, int Classes) ValidateClassification(string op, Device device, Tensor logits, IntTensor labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        if (labels.IsDisposed)
            throw new ObjectDisposedException(nameof(IntTensor), $"{op}: the labels were used after they were disposed.");
        if (!ReferenceEquals(labels.Device, device))
            throw new ArgumentException($"{op}: labels live on {labels.Device}, the logits on {device}.", nameof(labels));
        if (logits.Rank != 2)
            throw new ArgumentException($"{op}: logits must have rank 2 [batch, classes]; got {logits.ShapeString}.", nameof(logits));
        int batch = logits.Dim(0), classes = logits.Dim(1);
        if (labels.Length != batch)
            throw new ArgumentException($"{op}: logits {logits.ShapeString} have batch {batch} but labels have {labels.Length} elements.", nameof(labels));
        var values = labels.Values;
        for (int i = 0; i < values.Length; i++)
            if ((uint)values[i] >= (uint)classes)
                throw new ArgumentException($"{op}: label {values[i]} at index {i} is outside [0, {classes}) for logits {logits.ShapeString}.", nameof(labels));
        return (batch, classes);
    }
}
