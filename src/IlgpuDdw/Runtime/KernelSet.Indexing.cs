using ILGPU;
using ILGPU.Runtime;
using IlgpuDdw.Kernels;

namespace IlgpuDdw.Runtime;

public sealed partial class KernelSet
{
    /// <summary><see cref="IndexingKernels.CopyRows"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, int, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>> CopyRows =>
        Load<Action<AcceleratorStream, Index1D, int, int, int, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>>>(IndexingKernels.CopyRows);
}
