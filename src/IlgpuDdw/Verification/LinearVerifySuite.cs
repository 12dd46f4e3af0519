using IlgpuDdw.Autograd;
using IlgpuDdw.Kernels;
using IlgpuDdw.Runtime;
using L = IlgpuDdw.Kernels.Reference.LinearReference;

namespace IlgpuDdw.Verification;

/// <summary>
/// Verification of Linear: forward, and backward with respect to input, weight and bias, without an activation
/// and with the fused ReLU and sigmoid.
/// </summary>
public sealed class LinearVerifySuite : IVerifySuite
{
    /// <inheritdoc/>
    public string Name => "Linear";

    /// <inheritdoc/>
    public IEnumerable<VerifyResult> Run(Device device)
    {
        var cases = new[]
        {
            (1, 1, 1, true, LinearActivation.None), (3, 7, 5, true, LinearActivation.None), (5, 13, 6, false, LinearActivation.None),
            (2, 64, 10, true, LinearActivation.None), (3, 7, 5, true, LinearActivation.Relu), (1, 9, 6, false, LinearActivation.Relu),
            (4, 6, 3, true, LinearActivation.Sigmoid), (1, 33, 2, true, LinearActivation.Sigmoid),
        };
        foreach (var (batch, inF, outF, hasBias, activation) in cases)
        {
            string shape = $"B{batch} In{inF} Out{outF}{(hasBias ? "" : " no bias")}{(activation == LinearActivation.None ? "" : $" {activation}")}";
            var x = Verifier.Uniform(batch * inF, 21);
            var w = Verifier.Uniform(outF * inF, 22);
            var bias = hasBias ? Verifier.Uniform(outF, 23) : [];
            var g = Verifier.Uniform(batch * outF, 24);
            using var tx = Tensor.FromArray(device, x, batch, inF); tx.RequiresGrad = true;
            using var tw = Tensor.FromArray(device, w, outF, inF); tw.RequiresGrad = true;
            using var tb = hasBias ? Tensor.FromArray(device, bias, outF) : null;
            if (tb is not null) tb.RequiresGrad = true;
            using var tape = new Tape(device);
            var y = tape.Linear(tx, tw, tb, activation);
            tape.Backward(y, g);

            var ey = new float[batch * outF];
            L.Forward<float>(x, w, bias, batch, inF, outF, activation, ey);
            yield return VerifyResult.Compare("Linear.Forward", shape, ey, y.ToArray(), Verifier.ForwardAtol, Verifier.ForwardRtol);
            var dx = new float[x.Length];
            L.BackwardInput<float>(g, ey, w, batch, inF, outF, activation, dx);
            yield return VerifyResult.Compare("Linear.BackwardInput", shape, dx, tx.GradToArray(), Verifier.BackwardAtol, Verifier.BackwardRtol);
            var dw = new float[w.Length];
            L.BackwardWeight<float>(g, ey, x, batch, inF, outF, activation, dw);
            yield return VerifyResult.Compare("Linear.BackwardWeight", shape, dw, tw.GradToArray(), Verifier.BackwardAtol, Verifier.BackwardRtol);
            if (tb is not null)
            {
                var db = new float[outF];
                L.BackwardBias<float>(g, ey, batch, outF, activation, db);
                yield return VerifyResult.Compare("Linear.BackwardBias", shape, db, tb.GradToArray(), Verifier.BackwardAtol, Verifier.BackwardRtol);
            }
        }
    }
}
