using IlgpuDdw.Autograd;
using IlgpuDdw.Kernels;
using IlgpuDdw.Runtime;
using R = IlgpuDdw.Kernels.Reference.PoolingReference;

namespace IlgpuDdw.Verification;

/// <summary>
/// Verification of GlobalAvgPool2d, MaxPool2d and AvgPool2d (both divisor modes), forward and backward, at odd
/// non-square shapes, batch 1 and &gt; 1, with the ResNet stem window (3×3 s2 p1), 2×2 s2 and 3×3 s1 p1.
/// </summary>
public sealed class PoolingVerifySuite : IVerifySuite
{
    /// <inheritdoc/>
    public string Name => "Pooling";

    /// <inheritdoc/>
    public IEnumerable<VerifyResult> Run(Device device)
    {
        int[][] shapes = [[1, 3, 7, 5], [3, 2, 5, 7], [2, 8, 33, 31]];
        foreach (var shape in shapes)
        {
            foreach (var r in GlobalAvgPool(device, shape)) yield return r;
            foreach (var (k, s, p) in new[] { (3, 2, 1), (2, 2, 0), (3, 1, 1) })
            {
                var geo = new Pool2dGeometry(shape[0] * shape[1], shape[2], shape[3], k, s, p);
                string desc = $"{Tensor.Format(shape)} k{k} s{s} p{p}";
                foreach (var r in MaxPool(device, shape, geo, desc)) yield return r;
                foreach (bool includePad in new[] { true, false })
                    foreach (var r in AvgPool(device, shape, geo, includePad, $"{desc}{(includePad ? "" : " excl-pad")}")) yield return r;
            }
        }
    }

    private static IEnumerable<VerifyResult> GlobalAvgPool(Device device, int[] shape)
    {
        int planes = shape[0] * shape[1], spatial = shape[2] * shape[3];
        var x = Verifier.Uniform(planes * spatial, 1); var g = Verifier.Uniform(planes, 2);
        using var tx = Tensor.FromArray(device, x, shape); tx.RequiresGrad = true;
        using var tape = new Tape(device);
        var y = tape.GlobalAvgPool2d(tx);
        tape.Backward(y, g);
        var ey = new float[planes]; var dx = new float[x.Length];
        R.GlobalAvgPoolForward<float>(x, spatial, ey);
        R.GlobalAvgPoolBackward<float>(g, spatial, dx);
        string desc = Tensor.Format(shape);
        yield return VerifyResult.Compare("GlobalAvgPool2d.Forward", desc, ey, y.ToArray(), Verifier.ForwardAtol, Verifier.ForwardRtol);
        yield return VerifyResult.Compare("GlobalAvgPool2d.Backward", desc, dx, tx.GradToArray(), Verifier.BackwardAtol, Verifier.BackwardRtol);
    }

    private static IEnumerable<VerifyResult> MaxPool(Device device, int[] shape, Pool2dGeometry geo, string desc)
    {
        var x = Verifier.Uniform(geo.InputLength, 3); var g = Verifier.Uniform(geo.OutputLength, 4);
        using var tx = Tensor.FromArray(device, x, shape); tx.RequiresGrad = true;
        using var tape = new Tape(device);
        var y = tape.MaxPool2d(tx, geo.Kernel, geo.Stride, geo.Padding);
        tape.Backward(y, g);
        var ey = new float[geo.OutputLength]; var argmax = new int[geo.OutputLength]; var dx = new float[x.Length];
        R.MaxPoolForward<float>(x, geo, ey, argmax);
        R.MaxPoolBackward<float>(argmax, g, geo, dx);
        yield return VerifyResult.Compare("MaxPool2d.Forward", desc, ey, y.ToArray(), Verifier.ForwardAtol, Verifier.ForwardRtol);
        yield return VerifyResult.Compare("MaxPool2d.Backward", desc, dx, tx.GradToArray(), Verifier.BackwardAtol, Verifier.BackwardRtol);
    }

    private static IEnumerable<VerifyResult> AvgPool(Device device, int[] shape, Pool2dGeometry geo, bool includePad, string desc)
    {
        var x = Verifier.Uniform(geo.InputLength, 5); var g = Verifier.Uniform(geo.OutputLength, 6);
        using var tx = Tensor.FromArray(device, x, shape); tx.RequiresGrad = true;
        using var tape = new Tape(device);
        var y = tape.AvgPool2d(tx, geo.Kernel, geo.Stride, geo.Padding, includePad);
        tape.Backward(y, g);
        var ey = new float[geo.OutputLength]; var dx = new float[x.Length];
        R.AvgPoolForward<float>(x, geo, includePad, ey);
        R.AvgPoolBackward<float>(g, geo, includePad, dx);
        yield return VerifyResult.Compare("AvgPool2d.Forward", desc, ey, y.ToArray(), Verifier.ForwardAtol, Verifier.ForwardRtol);
        yield return VerifyResult.Compare("AvgPool2d.Backward", desc, dx, tx.GradToArray(), Verifier.BackwardAtol, Verifier.BackwardRtol);
    }
}
