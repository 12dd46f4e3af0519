using ILGPU;
using ILGPU.Runtime;
using IlgpuDdw.Autograd;

namespace IlgpuDdw.Tests;

/// <summary>The custom-op example of the README, kept compiling and tested.</summary>
public static class CubeOp
{
    public static void CubeForward(Index1D i, int n, int stride, ArrayView<float> x, ArrayView<float> y)
    {
        for (int k = i; k < n; k += stride) y[k] = x[k] * x[k] * x[k];
    }

    public static void CubeBackward(Index1D i, int n, int stride, ArrayView<float> x, ArrayView<float> dY, ArrayView<float> dX)
    {
        for (int k = i; k < n; k += stride) dX[k] += 3f * x[k] * x[k] * dY[k];
    }

    public static Tensor Cube(Tape tape, Tensor x)
    {
        var d = tape.Device;
        var fwd = d.Kernels.Load<Action<AcceleratorStream, Index1D, int, int, ArrayView<float>, ArrayView<float>>>(CubeForward);
        var bwd = d.Kernels.Load<Action<AcceleratorStream, Index1D, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>>>(CubeBackward);
        var y = tape.NewTensor([.. x.Shape]);
        int ext = d.Extent(x.Length);
        fwd(d.Stream, ext, x.Length, ext, x.View, y.View);
        if (tape.NeedsGrad(x))
            tape.Record("Cube", y, () => bwd(d.Stream, ext, x.Length, ext, x.View, y.Grad.View, x.Grad.View));
        return y;
    }
}
