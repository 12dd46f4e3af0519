using ILGPU;

namespace IlgpuDdw.Kernels;

/// <summary>
/// Softmax cross-entropy over logits [B, K] with integer labels [B], label smoothing ε (PyTorch semantics:
/// target = (1 − ε)·onehot(label) + ε/K), mean over the batch; plus a row argmax for evaluation.
/// <para>
/// The forward is fused: one thread per sample computes a numerically stable log-sum-exp
/// (lse = m + log Σ e^(l − m), m = max l), writes the sample's loss
/// <c>(1 − ε)·(lse − l[label]) + ε·(lse − mean_k l)</c> and the gradient of the batch mean with respect
/// to its logits, <c>(softmax − target) / B</c>, into a saved tensor. The mean loss is a deterministic
/// reduction of the per-sample losses (<see cref="ReductionKernels.SumChunks"/>); the backward only scales the
/// saved gradient by the upstream dLoss.
/// </para>
/// </summary>
public static class LossKernels
{
    /// <summary>
    /// For each sample b &lt; batch (grid-stride): <c>loss[b]</c> = the sample's smoothed cross-entropy and
    /// <c>saved[b, k] = (softmax(l[b])[k] − target[b, k]) · invBatch</c>. Overwrites both. Labels must be in
    /// [0, classes) (validated on the host).
    /// </summary>
    [Kernel]
    public static void CrossEntropyForward(Index1D index, int batch, int stride, int classes, float smoothing, float invBatch,
        ArrayView<float> logits, ArrayView<int> labels, ArrayView<float> loss, ArrayView<float> saved)
    {
        float offTarget = smoothing / classes;
        for (int b = index; b < batch; b += stride)
        {
            int row = b * classes;
            float m = logits[row];
            for (int k = 1; k < classes; k++)
                m = MathF.Max(m, logits[row + k]);
            float sumExp = 0f, sumLogits = 0f;
            for (int k = 0; k < classes; k++)
            {
                float l = logits[row + k];
                sumExp += MathF.Exp(l - m);
                sumLogits += l;
            }
            float lse = m + MathF.Log(sumExp);
            int label = labels[b];
            loss[b] = (1f - smoothing) * (lse - logits[row + label]) + smoothing * (lse - sumLogits / classes);
            float invSum = 1f / sumExp;
            for (int k = 0; k < classes; k++)
            {
                float target = k == label ? 1f - smoothing + offTarget : offTarget;
                saved[row + k] = (MathF.Exp(logits[row + k] - m) * invSum - target) * invBatch;
            }
        }
    }

    /// <summary>
    /// <c>dLogits[i] += dLoss[0] · saved[i]</c> for i &lt; n = B·K, with <c>saved</c> the forward's gradient.
    /// Accumulates when <paramref name="accumulate"/> ≠ 0, else overwrites (<see cref="ElementwiseKernels.Prior"/>).
    /// </summary>
    [Kernel]
    public static void CrossEntropyBackward(Index1D index, int n, int stride, int accumulate, ArrayView<float> dLoss, ArrayView<float> saved,
        ArrayView<float> dLogits)
    {
        float g = dLoss[0];
        for (int i = index; i < n; i += stride)
            dLogits[i] = ElementwiseKernels.Prior(accumulate, dLogits, i) + g * saved[i];
    }

    /// <summary>
    /// <c>result[r] = argmax_k x[r, k]</c> for each row r &lt; rows of x [rows, columns]: the first index of the
    /// maximum on ties (comparisons with NaN are false, so a NaN never replaces an earlier value). Grid-stride
    /// over rows. Overwrites result.
    /// </summary>
    [Kernel]
    public static void ArgmaxRows(Index1D index, int rows, int stride, int columns, ArrayView<float> x, ArrayView<int> result)
    {
        for (int r = index; r < rows; r += stride)
            result[r] = RowArgmax(x, r * columns, columns);
    }

    /// <summary>
    /// <c>correct[r] = 1</c> when <c>argmax_k x[r, k]</c> (as <see cref="ArgmaxRows"/>) equals <c>labels[r]</c>, else 0, for
    /// each row r &lt; rows: the per-sample hits a sum turns into the batch's correct count on the device. Grid-stride
    /// over rows. Overwrites correct.
    /// </summary>
    [Kernel]
    public static void CorrectRows(Index1D index, int rows, int stride, int columns, ArrayView<float> x, ArrayView<int> labels,
        ArrayView<float> correct)
    {
        for (int r = index; r < rows; r += stride)
            correct[r] = RowArgmax(x, r * columns, columns) == labels[r] ? 1f : 0f;
    }

    private static int RowArgmax(ArrayView<float> x, int row, int columns)
    {
        int best = 0;
        float bestValue = x[row];
        for (int k = 1; k < columns; k++)
        {
            float v = x[row + k];
            if (v > bestValue)
            {
                bestValue = v;
                best = k;
            }
        }
        return best;
    }
}
