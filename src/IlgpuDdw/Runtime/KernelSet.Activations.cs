using ILGPU;
using ILGPU.Runtime;
using IlgpuDdw.Kernels;

namespace IlgpuDdw.Runtime;

public sealed partial class KernelSet
{
    // ---- Activations ----------------------------------------------------------------------------------

    /// <summary><see cref="ActivationKernels.ReluForward"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, ArrayView<float>, ArrayView<float>> ReluForward =>
        Load<Action<AcceleratorStream, Index1D, int, int, ArrayView<float>, ArrayView<float>>>(ActivationKernels.ReluForward);

    /// <summary><see cref="ActivationKernels.ReluBackward"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>> ReluBackward =>
        Load<Action<AcceleratorStream, Index1D, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>>>(ActivationKernels.ReluBackward);

    /// <summary><see cref="ActivationKernels.Relu6Forward"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, ArrayView<float>, ArrayView<float>> Relu6Forward =>
        Load<Action<AcceleratorStream, Index1D, int, int, ArrayView<float>, ArrayView<float>>>(ActivationKernels.Relu6Forward);

    /// <summary><see cref="ActivationKernels.Relu6Backward"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>> Relu6Backward =>
        Load<Action<AcceleratorStream, Index1D, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>>>(ActivationKernels.Relu6Backward);

    /// <summary><see cref="ActivationKernels.SigmoidForward"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, ArrayView<float>, ArrayView<float>> SigmoidForward =>
        Load<Action<AcceleratorStream, Index1D, int, int, ArrayView<float>, ArrayView<float>>>(ActivationKernels.SigmoidForward);

    /// <summary><see cref="ActivationKernels.SigmoidBackward"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>> SigmoidBackward =>
        Load<Action<AcceleratorStream, Index1D, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>>>(ActivationKernels.SigmoidBackward);
}
