using IlgpuDdw.Runtime;
using IlgpuDdw.Training;
using O = IlgpuDdw.Kernels.Reference.OptimizerReference;

namespace IlgpuDdw.Verification;

/// <summary>Verification of the SGD step (plain, momentum, Nesterov, coupled and decoupled weight decay) over three steps.</summary>
public sealed class OptimizerVerifySuite : IVerifySuite
{
    /// <inheritdoc/>
    public string Name => "Optimizer";

    /// <inheritdoc/>
    public IEnumerable<VerifyResult> Run(Device device)
    {
        (float Momentum, bool Nesterov, float Decay, bool Decoupled)[] configs =
        [
            (0f, false, 0f, false),
            (0.9f, false, 1e-2f, false),
            (0.9f, true, 5e-2f, false),
            (0.8f, false, 5e-2f, true),
        ];
        const int steps = 3;
        const float lr = 0.1f;
        foreach (int n in new[] { 1, 37, 1025 })
            foreach (var c in configs)
            {
                string shape = $"[{n}] mu{c.Momentum}{(c.Nesterov ? " nesterov" : "")} wd{c.Decay}{(c.Decoupled ? " decoupled" : "")}";
                var p = Verifier.Uniform(n, 41);
                var buf = new float[n];
                using var tp = Tensor.FromArray(device, p, n);
                using var sgd = new Sgd([tp], lr, c.Momentum, c.Nesterov, c.Decay, c.Decoupled);
                for (int s = 0; s < steps; s++)
                {
                    var g = Verifier.Uniform(n, 42 + s);
                    tp.Grad.CopyFrom(g);
                    sgd.Step();
                    O.SgdStep<float>(p, g, buf, lr, c.Momentum, c.Decay, c.Nesterov, c.Decoupled);
                }
                yield return VerifyResult.Compare("Sgd.Step", shape, p, tp.ToArray(), Verifier.ForwardAtol, Verifier.ForwardRtol);
            }
    }
}
