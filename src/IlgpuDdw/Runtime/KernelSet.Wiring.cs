using ILGPU;
using ILGPU.Runtime;
using IlgpuDdw.Kernels;

namespace IlgpuDdw.Runtime;

public sealed partial class KernelSet
{
    // ---- Gate / adjacency writers -----------------------------------------------------------------------

    /// <summary><see cref="GateKernels.Forward"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, int, int, float, ArrayView<float>, ArrayView<float>> GateForward =>
        Load<Action<AcceleratorStream, Index1D, int, int, int, int, float, ArrayView<float>, ArrayView<float>>>(GateKernels.Forward);

    /// <summary><see cref="GateKernels.Backward"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, int, int, float, int, ArrayView<float>, ArrayView<float>, ArrayView<float>> GateBackward =>
        Load<Action<AcceleratorStream, Index1D, int, int, int, int, float, int, ArrayView<float>, ArrayView<float>, ArrayView<float>>>(GateKernels.Backward);

    /// <summary><see cref="GateKernels.DenseForward"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, int, ArrayView<float>, ArrayView<float>> DenseEdgesForward =>
        Load<Action<AcceleratorStream, Index1D, int, int, int, ArrayView<float>, ArrayView<float>>>(GateKernels.DenseForward);

    /// <summary><see cref="GateKernels.DenseBackward"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>> DenseEdgesBackward =>
        Load<Action<AcceleratorStream, Index1D, int, int, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>>>(GateKernels.DenseBackward);

    /// <summary><see cref="GateKernels.ChainFill"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, int, ArrayView<float>> ChainFill =>
        Load<Action<AcceleratorStream, Index1D, int, int, int, ArrayView<float>>>(GateKernels.ChainFill);

    // ---- Aggregation ------------------------------------------------------------------------------------

    /// <summary><see cref="AggregationKernels.Forward"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, AggregationShape, int, ArrayView<float>, NodeViews, ArrayView<float>> AggregationForward =>
        Load<Action<AcceleratorStream, Index1D, int, int, AggregationShape, int, ArrayView<float>, NodeViews, ArrayView<float>>>(AggregationKernels.Forward);

    /// <summary><see cref="AggregationKernels.BackwardSources"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, AggregationShape, int, ArrayView<float>, ArrayView<float>, NodeViews> AggregationBackwardSources =>
        Load<Action<AcceleratorStream, Index1D, int, int, AggregationShape, int, ArrayView<float>, ArrayView<float>, NodeViews>>(AggregationKernels.BackwardSources);

    /// <summary><see cref="AggregationKernels.BackwardAdjacency"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, AggregationShape, int, ArrayView<float>, NodeViews, ArrayView<float>, ArrayView<float>, ArrayView<float>> AggregationBackwardAdjacency =>
        Load<Action<AcceleratorStream, Index1D, int, int, AggregationShape, int, ArrayView<float>, NodeViews, ArrayView<float>, ArrayView<float>, ArrayView<float>>>(AggregationKernels.BackwardAdjacency);

    /// <summary><see cref="AggregationKernels.ReduceAdjacencyGradient"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, AggregationShape, ArrayView<float>, ArrayView<float>> AggregationReduceAdjacencyGradient =>
        Load<Action<AcceleratorStream, Index1D, int, int, AggregationShape, ArrayView<float>, ArrayView<float>>>(AggregationKernels.ReduceAdjacencyGradient);
}
