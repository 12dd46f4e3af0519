using IlgpuDdw.Autograd;
using IlgpuDdw.Runtime;
using L = IlgpuDdw.Kernels.Reference.LinearReference;

namespace IlgpuDdw.Verification;

/// <summary>Verification of Linear: forward, and backward with respect to input, weight and bias.</summary>
public sealed class LinearVerifySuite : IVerifySuite
{
    /// <inheritdoc/>
    public string Name => "Linear";

    /// <inheritdoc/>
    public IEnumerable<VerifyResult> Run(Device device)
    {
        foreach (var (batch, inF, outF, hasBias) in new[] { (1, 1, 1, true), (3, 7, 5, true), (5, 13, 6, false), (2, 64, 10, true) })
        {
            string shape = $"B{batch} In{inF} Out{outF}{(hasBias ? "" : " no bias")}";
            var x = Verifier.Uniform(batch * inF, 21);
            var w = Verifier.Uniform(outF * inF, 22);
            var bias = hasBias ? Verifier.Uniform(outF, 23) : [];
            var g = Verifier.Uniform(batch * outF, 24);
            using var tx = Tensor.FromArray(device, x, batch, inF); tx.RequiresGrad = true;
            using var tw = Tensor.FromArray(device, w, outF, inF); tw.RequiresGrad = true;
            using var tb = hasBias ? Tensor.FromArray(device, bias, outF) : null;
            if (tb is not null) tb.RequiresGrad = true;
            using var tape = new Tape(device);
            var y = tape.Linear(tx, tw, tb);
            tape.Backward(y, g);

            var ey = new float[batch * outF];
            L.Forward<float>(x, w, bias, batch, inF, outF, ey);
            yield return VerifyResult.Compare("Linear.Forward", shape, ey, y.ToArray(), Verifier.ForwardAtol, Verifier.ForwardRtol);
            var dx = new float[x.Length];
            L.BackwardInput<float>(g, w, batch, inF, outF, dx);
            yield return VerifyResult.Compare("Linear.BackwardInput", shape, dx, tx.GradToArray(), Verifier.BackwardAtol, Verifier.BackwardRtol);
            var dw = new float[w.Length];
            L.BackwardWeight<float>(g, x, batch, inF, outF, dw);
            yield return VerifyResult.Compare("Linear.BackwardWeight", shape, dw, tw.GradToArray(), Verifier.BackwardAtol, Verifier.BackwardRtol);
            if (tb is not null)
            {
                var db = new float[outF];
                L.BackwardBias<float>(g, batch, outF, db);
                yield return VerifyResult.Compare("Linear.BackwardBias", shape, db, tb.GradToArray(), Verifier.BackwardAtol, Verifier.BackwardRtol);
            }
        }
    }
}
