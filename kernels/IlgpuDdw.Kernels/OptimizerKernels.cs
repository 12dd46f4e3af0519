using ILGPU;

namespace IlgpuDdw.Kernels;

/// <summary>
/// Optimizer updates, one fused grid-stride kernel per parameter tensor (or one over flat buffers), and the
/// divergence guard that decides on the device whether a step may update. Parameters and momentum buffers are
/// updated in place; gradients are only read.
/// </summary>
public static class OptimizerKernels
{
    /// <summary>
    /// One SGD step on n elements (PyTorch <c>torch.optim.SGD</c> semantics, dampening 0):
    /// <code>
    /// g = grad + (decoupled ? 0 : weightDecay · p)          // coupled L2 decay (PyTorch default)
    /// if momentum ≠ 0: buf = momentum · buf + g;  g = nesterov ? g + momentum · buf : buf
    /// p = (decoupled ? p · (1 − lr · weightDecay) : p) − lr · g   // decoupled decay as in SGDW
    /// </code>
    /// A zero-initialised buffer gives PyTorch's first step (buf = g). When momentum is 0,
    /// <c>momentumBuffer</c> is never read or written (pass any view). Overwrites param and momentumBuffer.
    /// Nothing changes when <c>guard[0] ≠ 0</c> (a step <see cref="StepGuard"/> stopped: the update is skipped on the
    /// device, so the host need not read the step's status before queueing it).
    /// </summary>
    [Kernel]
    public static void SgdStep(Index1D index, int n, int stride, float learningRate, float momentum, float weightDecay,
        int nesterov, int decoupled, ArrayView<float> param, ArrayView<float> grad, ArrayView<float> momentumBuffer, ArrayView<float> guard)
    {
        if (guard[0] != 0f) return;
        for (int i = index; i < n; i += stride)
        {
            float p = param[i];
            float g = grad[i];
            if (decoupled != 0)
                p *= 1f - learningRate * weightDecay;
            else
                g += weightDecay * p;
            if (momentum != 0f)
            {
                float buf = momentum * momentumBuffer[i] + g;
                momentumBuffer[i] = buf;
                g = nesterov != 0 ? g + momentum * buf : buf;
            }
            param[i] = p - learningRate * g;
        }
    }

    /// <summary>
    /// The divergence guard of one training step, on the device. <c>status[0]</c> is the guard: 0 while every step
    /// so far may update, else 1 + the slot of the first step that stopped training (later steps leave it, and
    /// <see cref="SgdStep"/> skips while it is set). The step's record is <c>status[1 + slot·recordLength ..]</c>:
    /// its <paramref name="termCount"/> objective terms, its correct count, its Σ grad². The step stops training
    /// when the terms' sum (in float, in order) is NaN or infinite or above <paramref name="maxLoss"/> (&gt; 0), the
    /// first term is above <paramref name="lossLimit"/> (&gt; 0), or the gradient norm √Σ grad² is NaN or infinite
    /// or above <paramref name="maxGradNorm"/> (&gt; 0). One work item does it (n = 1).
    /// </summary>
    [Kernel]
    public static void StepGuard(Index1D index, int n, int stride, int termCount, int slot, int recordLength,
        float maxLoss, float lossLimit, float maxGradNorm, ArrayView<float> status)
    {
        if (index != 0) return;
        int at = 1 + slot * recordLength;
        float total = 0f;
        for (int t = 0; t < termCount; t++) total += status[at + t];
        float norm = MathF.Sqrt(status[at + termCount + 1]);
        bool bad = !IsFinite(total) || (maxLoss > 0f && total > maxLoss) || (lossLimit > 0f && status[at] > lossLimit)
            || !IsFinite(norm) || (maxGradNorm > 0f && norm > maxGradNorm);
        if (bad && status[0] == 0f) status[0] = slot + 1;
    }

    /// <summary>Neither NaN nor infinite.</summary>
    private static bool IsFinite(float x) => !float.IsNaN(x) && !float.IsInfinity(x);
}
