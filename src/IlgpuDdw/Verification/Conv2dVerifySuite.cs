using IlgpuDdw.Autograd;
using IlgpuDdw.Kernels;
using IlgpuDdw.Runtime;
using R = IlgpuDdw.Kernels.Reference.Conv2dReference;

namespace IlgpuDdw.Verification;

/// <summary>
/// Verification of Conv2d (forward, input, weight and bias gradients) through the tape at odd, non-square
/// shapes: dense, strided, grouped, depthwise, 1×1 and 7×7 kernels, with and without bias.
/// </summary>
public sealed class Conv2dVerifySuite : IVerifySuite
{
    private static readonly (Conv2dGeometry Geometry, bool Bias)[] Cases =
    [
        (new(2, 3, 7, 5, 4, 3, 1, 1, 1), true),
        (new(1, 4, 9, 6, 6, 5, 2, 2, 2), true),
        (new(3, 6, 8, 7, 6, 3, 2, 1, 6), false),
        (new(2, 8, 6, 5, 4, 1, 1, 0, 1), true),
        (new(1, 2, 4, 5, 3, 7, 1, 3, 1), true),
        (new(2, 16, 7, 9, 16, 3, 1, 1, 8), true),
    ];

    /// <inheritdoc/>
    public string Name => "Conv2d";

    /// <inheritdoc/>
    public IEnumerable<VerifyResult> Run(Device device)
    {
        foreach (var (g, hasBias) in Cases)
        {
            string shape = $"x [{g.Batch}, {g.InChannels}, {g.Height}, {g.Width}] w [{g.OutChannels}, {g.InPerGroup}, {g.KernelSize}, {g.KernelSize}] " +
                $"s={g.Stride} p={g.Padding} groups={g.Groups}{(hasBias ? " +bias" : "")}";
            var x = Verifier.Uniform(g.InputLength, 1);
            var w = Verifier.Uniform(g.WeightLength, 2);
            var b = Verifier.Uniform(g.OutChannels, 3);
            var dy = Verifier.Uniform(g.OutputLength, 4);
            using var tx = Tensor.FromArray(device, x, g.Batch, g.InChannels, g.Height, g.Width); tx.RequiresGrad = true;
            using var tw = Tensor.FromArray(device, w, g.OutChannels, g.InPerGroup, g.KernelSize, g.KernelSize); tw.RequiresGrad = true;
            using var tb = Tensor.FromArray(device, b, g.OutChannels); tb.RequiresGrad = true;
            using var tape = new Tape(device);
            var y = tape.Conv2d(tx, tw, hasBias ? tb : null, g.Stride, g.Padding, g.Groups);
            tape.Backward(y, dy);

            var ey = new float[g.OutputLength];
            R.Forward<float>(g, x, w, hasBias ? b : [], ey);
            yield return VerifyResult.Compare("Conv2d.Forward", shape, ey, y.ToArray(), Verifier.ForwardAtol, Verifier.ForwardRtol);
            var edx = new float[x.Length];
            R.BackwardInput<float>(g, dy, w, edx);
            yield return VerifyResult.Compare("Conv2d.BackwardInput", shape, edx, tx.GradToArray(), Verifier.BackwardAtol, Verifier.BackwardRtol);
            var edw = new float[w.Length];
            R.BackwardWeight<float>(g, dy, x, edw);
            yield return VerifyResult.Compare("Conv2d.BackwardWeight", shape, edw, tw.GradToArray(), Verifier.BackwardAtol, Verifier.BackwardRtol);
            if (hasBias)
            {
                var edb = new float[b.Length];
                R.BackwardBias<float>(g, dy, edb);
                yield return VerifyResult.Compare("Conv2d.BackwardBias", shape, edb, tb.GradToArray(), Verifier.BackwardAtol, Verifier.BackwardRtol);
            }
        }
    }
}
