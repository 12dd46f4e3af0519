using System.Numerics;

namespace IlgpuDdw.Kernels.Reference;

/// <summary>
/// CPU reference of <see cref="LossKernels"/>: mean softmax cross-entropy of logits [B, K] against integer
/// labels with label smoothing ε (target = (1 − ε)·onehot + ε/K), and the row argmax. The backward accumulates.
/// </summary>
public static class LossReference
{
    /// <summary>
    /// <c>(1/B) Σ_b −Σ_k target[b, k] · log softmax(l[b])[k]</c>. Batch B = labels.Length, K = logits.Length / B.
    /// </summary>
    public static T CrossEntropy<T>(ReadOnlySpan<T> logits, ReadOnlySpan<int> labels, T smoothing) where T : IFloatingPointIeee754<T>
    {
        int batch = labels.Length, classes = logits.Length / batch;
        T total = T.Zero;
        for (int b = 0; b < batch; b++)
        {
            var row = logits.Slice(b * classes, classes);
            T lse = LogSumExp(row);
            for (int k = 0; k < classes; k++)
                total -= Target(k, labels[b], classes, smoothing) * (row[k] - lse);
        }
        return total / T.CreateChecked(batch);
    }

    /// <summary><c>dLogits[b, k] += dLoss · (softmax(l[b])[k] − target[b, k]) / B</c> (with <paramref name="accumulate"/> false: overwrites, as accumulating onto zeros; the old contents are not read).</summary>
    public static void CrossEntropyBackward<T>(ReadOnlySpan<T> logits, ReadOnlySpan<int> labels, T smoothing, T dLoss, Span<T> dLogits,
        bool accumulate = true)
        where T : IFloatingPointIeee754<T>
    {
        if (!accumulate) dLogits.Clear();
        int batch = labels.Length, classes = logits.Length / batch;
        T scale = dLoss / T.CreateChecked(batch);
        for (int b = 0; b < batch; b++)
        {
            var row = logits.Slice(b * classes, classes);
            T lse = LogSumExp(row);
            for (int k = 0; k < classes; k++)
                dLogits[b * classes + k] += scale * (T.Exp(row[k] - lse) - Target(k, labels[b], classes, smoothing));
        }
    }

    /// <summary>Index of the first maximum of each row of x [rows, columns].</summary>
    public static int[] ArgmaxRows<T>(ReadOnlySpan<T> x, int columns) where T : IFloatingPointIeee754<T>
    {
        var result = new int[x.Length / columns];
        for (int r = 0; r < result.Length; r++)
        {
            int best = 0;
            for (int k = 1; k < columns; k++)
                if (x[r * columns + k] > x[r * columns + best]) best = k;
            result[r] = best;
        }
        return result;
    }

    /// <summary>1 where the row's first maximum (<see cref="ArgmaxRows"/>) is the row's label, else 0.</summary>
    public static float[] CorrectRows<T>(ReadOnlySpan<T> x, int columns, ReadOnlySpan<int> labels) where T : IFloatingPointIeee754<T>
    {
        var argmax = ArgmaxRows(x, columns);
        var correct = new float[argmax.Length];
        for (int r = 0; r < argmax.Length; r++) correct[r] = argmax[r] == labels[r] ? 1f : 0f;
        return correct;
    }

    /// <summary><c>m + log Σ e^(x − m)</c> with m = max x.</summary>
    public static T LogSumExp<T>(ReadOnlySpan<T> x) where T : IFloatingPointIeee754<T>
    {
        T m = x[0];
        foreach (var v in x) m = T.Max(m, v);
        T s = T.Zero;
        foreach (var v in x) s += T.Exp(v - m);
        return m + T.Log(s);
    }

    private static T Target<T>(int k, int label, int classes, T smoothing) where T : IFloatingPointIeee754<T> =>
        (k == label ? T.One - smoothing : T.Zero) + smoothing / T.CreateChecked(classes);
}
