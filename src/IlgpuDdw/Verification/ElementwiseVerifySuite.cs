using IlgpuDdw.Autograd;
using IlgpuDdw.Runtime;
using A = IlgpuDdw.Kernels.Reference.ActivationReference;
using R = IlgpuDdw.Kernels.Reference.ElementwiseReference;

namespace IlgpuDdw.Verification;

/// <summary>Verification of add, multiply, ReLU, sum and mean.</summary>
public sealed class ElementwiseVerifySuite : IVerifySuite
{
    /// <inheritdoc/>
    public string Name => "Elementwise";

    /// <inheritdoc/>
    public IEnumerable<VerifyResult> Run(Device device)
    {
        foreach (int n in new[] { 1, 37, 4099 })
        {
            string shape = $"[{n}]";
            var a = Verifier.AwayFromZero(n, 1); var b = Verifier.Uniform(n, 2); var g = Verifier.Uniform(n, 3);
            using var ta = Tensor.FromArray(device, a, n); ta.RequiresGrad = true;
            using var tb = Tensor.FromArray(device, b, n); tb.RequiresGrad = true;
            using var tape = new Tape(device);
            var add = tape.Add(ta, tb);
            var mul = tape.Multiply(ta, tb);
            var relu = tape.Relu(ta);
            var sum = tape.Sum(ta);
            var mean = tape.Mean(tb);
            var ey = new float[n];
            R.AddForward<float>(a, b, ey);
            yield return VerifyResult.Compare("Add.Forward", shape, ey, add.ToArray(), Verifier.ForwardAtol, Verifier.ForwardRtol);
            R.MultiplyForward<float>(a, b, ey);
            yield return VerifyResult.Compare("Multiply.Forward", shape, ey, mul.ToArray(), Verifier.ForwardAtol, Verifier.ForwardRtol);
            A.ReluForward<float>(a, ey);
            yield return VerifyResult.Compare("Relu.Forward", shape, ey, relu.ToArray(), Verifier.ForwardAtol, Verifier.ForwardRtol);
            yield return VerifyResult.Compare("Sum.Forward", shape, [R.Sum<float>(a)], sum.ToArray(), 1e-5 * Math.Sqrt(n), Verifier.ForwardRtol);
            yield return VerifyResult.Compare("Mean.Forward", shape, [R.Mean<float>(b)], mean.ToArray(), Verifier.ForwardAtol, Verifier.ForwardRtol);

            // backward: loss = <g, a*b> + <g, relu(a)>
            tape.Backward(tape.Add(mul, relu), g);
            var da = new float[n]; var db = new float[n];
            R.MultiplyBackward<float>(a, b, g, da, db);
            A.ReluBackward<float>(a, g, da);
            yield return VerifyResult.Compare("Multiply+Relu.Backward dA", shape, da, ta.GradToArray(), Verifier.BackwardAtol, Verifier.BackwardRtol);
            yield return VerifyResult.Compare("Multiply.Backward dB", shape, db, tb.GradToArray(), Verifier.BackwardAtol, Verifier.BackwardRtol);
        }
    }
}
