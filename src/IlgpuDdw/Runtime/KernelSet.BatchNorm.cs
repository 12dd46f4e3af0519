using ILGPU;
using ILGPU.Runtime;
using IlgpuDdw.Kernels;

namespace IlgpuDdw.Runtime;

public sealed partial class KernelSet
{
    // ---- BatchNorm2d ----------------------------------------------------------------------------------

    /// <summary><see cref="BatchNormKernels.ForwardStatistics"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, int, int, float, float, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> BatchNormForwardStatistics =>
        Load<Action<AcceleratorStream, Index1D, int, int, int, int, float, float, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>>(BatchNormKernels.ForwardStatistics);

    /// <summary><see cref="BatchNormKernels.InferenceStatistics"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, float, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> BatchNormInferenceStatistics =>
        Load<Action<AcceleratorStream, Index1D, int, int, float, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>>(BatchNormKernels.InferenceStatistics);

    /// <summary><see cref="BatchNormKernels.ForwardNormalize"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> BatchNormForwardNormalize =>
        Load<Action<AcceleratorStream, Index1D, int, int, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>>(BatchNormKernels.ForwardNormalize);

    /// <summary><see cref="BatchNormKernels.BackwardChannelSums"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> BatchNormBackwardChannelSums =>
        Load<Action<AcceleratorStream, Index1D, int, int, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>>(BatchNormKernels.BackwardChannelSums);

    /// <summary><see cref="BatchNormKernels.BackwardInput"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, int, int, float, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> BatchNormBackwardInput =>
        Load<Action<AcceleratorStream, Index1D, int, int, int, int, float, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>>(BatchNormKernels.BackwardInput);
}
