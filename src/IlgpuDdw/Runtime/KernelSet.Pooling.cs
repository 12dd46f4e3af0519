using ILGPU;
using ILGPU.Runtime;
using IlgpuDdw.Kernels;

namespace IlgpuDdw.Runtime;

public sealed partial class KernelSet
{
    // ---- Pooling --------------------------------------------------------------------------------------

    /// <summary><see cref="PoolingKernels.GlobalAvgPoolBackward"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, int, float, ArrayView<float>, ArrayView<float>> GlobalAvgPoolBackward =>
        Load<Action<AcceleratorStream, Index1D, int, int, int, float, ArrayView<float>, ArrayView<float>>>(PoolingKernels.GlobalAvgPoolBackward);

    /// <summary><see cref="PoolingKernels.MaxPoolForward"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, Pool2dGeometry, ArrayView<float>, ArrayView<float>, ArrayView<float>> MaxPoolForward =>
        Load<Action<AcceleratorStream, Index1D, int, int, Pool2dGeometry, ArrayView<float>, ArrayView<float>, ArrayView<float>>>(PoolingKernels.MaxPoolForward);

    /// <summary><see cref="PoolingKernels.MaxPoolBackward"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, Pool2dGeometry, ArrayView<float>, ArrayView<float>, ArrayView<float>> MaxPoolBackward =>
        Load<Action<AcceleratorStream, Index1D, int, int, Pool2dGeometry, ArrayView<float>, ArrayView<float>, ArrayView<float>>>(PoolingKernels.MaxPoolBackward);

    /// <summary><see cref="PoolingKernels.AvgPoolForward"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, Pool2dGeometry, int, ArrayView<float>, ArrayView<float>> AvgPoolForward =>
        Load<Action<AcceleratorStream, Index1D, int, int, Pool2dGeometry, int, ArrayView<float>, ArrayView<float>>>(PoolingKernels.AvgPoolForward);

    /// <summary><see cref="PoolingKernels.AvgPoolBackward"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, Pool2dGeometry, int, ArrayView<float>, ArrayView<float>> AvgPoolBackward =>
        Load<Action<AcceleratorStream, Index1D, int, int, Pool2dGeometry, int, ArrayView<float>, ArrayView<float>>>(PoolingKernels.AvgPoolBackward);
}
