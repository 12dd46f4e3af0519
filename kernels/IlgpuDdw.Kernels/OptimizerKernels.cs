using ILGPU;

namespace IlgpuDdw.Kernels;

/// <summary>
/// Optimizer updates, one fused grid-stride kernel per parameter tensor. Parameters and momentum buffers are
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
    /// </summary>
    [Kernel]
    public static void SgdStep(Index1D index, int n, int stride, float learningRate, float momentum, float weightDecay,
        int nesterov, int decoupled, ArrayView<float> param, ArrayView<float> grad, ArrayView<float> momentumBuffer)
    {
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
}
