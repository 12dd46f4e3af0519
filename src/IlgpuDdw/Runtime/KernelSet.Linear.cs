using ILGPU;
using ILGPU.Runtime;
using IlgpuDdw.Kernels;

namespace IlgpuDdw.Runtime;

public sealed partial class KernelSet
{
    // ---- Linear ---------------------------------------------------------------------------------------

    /// <summary><see cref="LinearKernels.Forward"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, int, int, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> LinearForward =>
        Load<Action<AcceleratorStream, Index1D, int, int, int, int, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>>(LinearKernels.Forward);

    /// <summary><see cref="LinearKernels.BackwardInput"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, int, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> LinearBackwardInput =>
        Load<Action<AcceleratorStream, Index1D, int, int, int, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>>(LinearKernels.BackwardInput);

    /// <summary><see cref="LinearKernels.BackwardWeight"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, int, int, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> LinearBackwardWeight =>
        Load<Action<AcceleratorStream, Index1D, int, int, int, int, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>>(LinearKernels.BackwardWeight);

    /// <summary><see cref="LinearKernels.BackwardBias"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>> LinearBackwardBias =>
        Load<Action<AcceleratorStream, Index1D, int, int, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>>>(LinearKernels.BackwardBias);
}
