using IlgpuDdw.Autograd;
using IlgpuDdw.Runtime;
using A = IlgpuDdw.Kernels.Reference.ActivationReference;

namespace IlgpuDdw.Verification;

/// <summary>Verification of ReLU6 and sigmoid, forward and backward (ReLU is in the elementwise suite).</summary>
public sealed class ActivationVerifySuite : IVerifySuite
{
    /// <inheritdoc/>
    public string Name => "Activation";

    /// <inheritdoc/>
    public IEnumerable<VerifyResult> Run(Device device)
    {
        foreach (int n in new[] { 1, 37, 4099 })
        {
            string shape = $"[{n}]";
            // inputs in ±[0.05, 8): covers both ReLU6 kinks' sides and sigmoid's saturation
            var x = Verifier.AwayFromZero(n, 11);
            for (int i = 0; i < n; i++) x[i] *= 8f;
            for (int i = 0; i < n; i++) if (MathF.Abs(x[i] - 6f) < 0.05f) x[i] = 5.9f;
            var g = Verifier.Uniform(n, 12);
            using var tx = Tensor.FromArray(device, x, n); tx.RequiresGrad = true;
            using var tape = new Tape(device);
            var relu6 = tape.Relu6(tx);
            var sigmoid = tape.Sigmoid(tx);
            var ey = new float[n];
            A.Relu6Forward<float>(x, ey);
            yield return VerifyResult.Compare("Relu6.Forward", shape, ey, relu6.ToArray(), Verifier.ForwardAtol, Verifier.ForwardRtol);
            A.SigmoidForward<float>(x, ey);
            yield return VerifyResult.Compare("Sigmoid.Forward", shape, ey, sigmoid.ToArray(), Verifier.ForwardAtol, Verifier.ForwardRtol);

            tape.Backward(relu6, g);
            var dx = new float[n];
            A.Relu6Backward<float>(x, g, dx);
            yield return VerifyResult.Compare("Relu6.Backward", shape, dx, tx.GradToArray(), Verifier.BackwardAtol, Verifier.BackwardRtol);
            tx.ZeroGrad();
            tape.Clear();
            var s = tape.Sigmoid(tx);
            tape.Backward(s, g);
            Array.Clear(dx);
            A.SigmoidBackward<float>(ey, g, dx);
            yield return VerifyResult.Compare("Sigmoid.Backward", shape, dx, tx.GradToArray(), Verifier.BackwardAtol, Verifier.BackwardRtol);
        }
    }
}
