using IlgpuDdw.Autograd;
using IlgpuDdw.Runtime;
using C = IlgpuDdw.Kernels.Reference.LossReference;

namespace IlgpuDdw.Verification;

/// <summary>Verification of softmax cross-entropy (with and without label smoothing) and the row argmax.</summary>
public sealed class LossVerifySuite : IVerifySuite
{
    /// <inheritdoc/>
    public string Name => "Loss";

    /// <inheritdoc/>
    public IEnumerable<VerifyResult> Run(Device device)
    {
        foreach (var (batch, classes, smoothing) in new[] { (1, 1, 0f), (1, 10, 0f), (7, 3, 0.1f), (33, 10, 0f), (5, 17, 0.25f) })
        {
            string shape = $"B{batch} K{classes} eps{smoothing}";
            var logits = Verifier.Uniform(batch * classes, 31, -4f, 4f);
            var rng = new Random(32);
            var labels = Enumerable.Range(0, batch).Select(_ => rng.Next(classes)).ToArray();
            const float upstream = 0.75f;
            using var tl = Tensor.FromArray(device, logits, batch, classes); tl.RequiresGrad = true;
            using var tlabels = IntTensor.FromArray(device, labels);
            using var tape = new Tape(device);
            var loss = tape.CrossEntropy(tl, tlabels, smoothing);
            tape.Backward(loss, [upstream]);

            yield return VerifyResult.Compare("CrossEntropy.Forward", shape, [C.CrossEntropy<float>(logits, labels, smoothing)], loss.ToArray(),
                Verifier.ForwardAtol, Verifier.ForwardRtol);
            var dl = new float[logits.Length];
            C.CrossEntropyBackward<float>(logits, labels, smoothing, upstream, dl);
            yield return VerifyResult.Compare("CrossEntropy.Backward", shape, dl, tl.GradToArray(), Verifier.BackwardAtol, Verifier.BackwardRtol);
            var argmax = Array.ConvertAll(Ops.Argmax(tl), v => (float)v);
            var expected = Array.ConvertAll(C.ArgmaxRows<float>(logits, classes), v => (float)v);
            yield return VerifyResult.Compare("ArgmaxRows", shape, expected, argmax, 0, 0);
        }
    }
}
