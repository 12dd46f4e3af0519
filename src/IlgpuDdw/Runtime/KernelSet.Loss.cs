using ILGPU;
using ILGPU.Runtime;
using IlgpuDdw.Kernels;

namespace IlgpuDdw.Runtime;

public sealed partial class KernelSet
{
    // ---- Loss -----------------------------------------------------------------------------------------

    /// <summary><see cref="LossKernels.CrossEntropyForward"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, int, float, float, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>> CrossEntropyForward =>
        Load<Action<AcceleratorStream, Index1D, int, int, int, float, float, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>>>(LossKernels.CrossEntropyForward);

    /// <summary><see cref="LossKernels.CrossEntropyBackward"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>> CrossEntropyBackward =>
        Load<Action<AcceleratorStream, Index1D, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>>>(LossKernels.CrossEntropyBackward);

    /// <summary><see cref="LossKernels.ArgmaxRows"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, int, ArrayView<float>, ArrayView<int>> ArgmaxRows =>
        Load<Action<AcceleratorStream, Index1D, int, int, int, ArrayView<float>, ArrayView<int>>>(LossKernels.ArgmaxRows);
}
