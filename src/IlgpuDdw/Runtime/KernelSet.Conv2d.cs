using ILGPU;
using ILGPU.Runtime;
using IlgpuDdw.Kernels;

namespace IlgpuDdw.Runtime;

public sealed partial class KernelSet
{
    // ---- Conv2d ---------------------------------------------------------------------------------------

    /// <summary><see cref="Conv2dKernels.Forward"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, Conv2dGeometry, int, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, ArrayView<float>> Conv2dForward =>
        Load<Action<AcceleratorStream, Index1D, int, int, Conv2dGeometry, int, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, ArrayView<float>>>(Conv2dKernels.Forward);

    /// <summary><see cref="Conv2dKernels.BackwardInput"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, Conv2dGeometry, int, ArrayView<float>, ArrayView<float>, ArrayView<float>> Conv2dBackwardInput =>
        Load<Action<AcceleratorStream, Index1D, int, int, Conv2dGeometry, int, ArrayView<float>, ArrayView<float>, ArrayView<float>>>(Conv2dKernels.BackwardInput);

    /// <summary><see cref="Conv2dKernels.BackwardWeight"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, Conv2dGeometry, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>> Conv2dBackwardWeight =>
        Load<Action<AcceleratorStream, Index1D, int, int, Conv2dGeometry, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>>>(Conv2dKernels.BackwardWeight);

    /// <summary><see cref="Conv2dKernels.BackwardBias"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, Conv2dGeometry, ArrayView<float>, ArrayView<float>> Conv2dBackwardBias =>
        Load<Action<AcceleratorStream, Index1D, int, int, Conv2dGeometry, ArrayView<float>, ArrayView<float>>>(Conv2dKernels.BackwardBias);
}
