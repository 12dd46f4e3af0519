using ILGPU;
using ILGPU.Runtime;
using IlgpuDdw.Kernels;

namespace IlgpuDdw.Runtime;

public sealed partial class KernelSet
{
    // ---- Optimizer ------------------------------------------------------------------------------------

    /// <summary><see cref="OptimizerKernels.SgdStep"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, float, float, float, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>> SgdStep =>
        Load<Action<AcceleratorStream, Index1D, int, int, float, float, float, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>>>(OptimizerKernels.SgdStep);
}
