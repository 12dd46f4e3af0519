using C = IlgpuDdw.Kernels.Reference.LossReference;

namespace IlgpuDdw.Verification;

/// <summary>
/// Softmax cross-entropy (with and without label smoothing), the row argmax and the correct count: one class, batch 1 and larger
/// batches, the second group's backward accumulating onto an existing gradient; and logits of ±1000 (the loss and
/// its gradient stay finite) against the double reference.
/// </summary>
internal static class LossCases
{
    private const string Family = "Loss";

    private static readonly string[] Passes = ["CrossEntropy.Forward", "CrossEntropy.Backward", "ArgmaxRows", "CorrectRows", "CountCorrect"];

    public static IEnumerable<VerifyCase> All()
    {
        (int Batch, int Classes, float Smoothing)[] fresh = [(1, 1, 0f), (1, 10, 0f), (7, 3, 0.1f), (33, 10, 0f), (5, 17, 0.25f)];
        (int Batch, int Classes, float Smoothing)[] accumulating = [(1, 1, 0f), (1, 10, 0f), (3, 5, 0.1f), (8, 3, 0f), (17, 10, 0.2f), (4, 33, 0.05f)];
        foreach (var (accumulate, list) in new[] { (false, fresh), (true, accumulating) })
            foreach (var (batch, classes, smoothing) in list)
            {
                string shape = $"B{batch} K{classes} eps{smoothing}{(accumulate ? " accumulate" : "")}";
                yield return new(Family, shape, Passes, d => Run(d, batch, classes, smoothing, accumulate, shape));
            }
        yield return new(Family, LargeLogitsShape, Passes[..2], LargeLogits);
    }

    private static IEnumerable<VerifyResult> Run(Device device, int batch, int classes, float smoothing, bool accumulate, string shape)
    {
        var logits = Seeded.Uniform<float>(batch * classes, 31, -4, 4);
        var labels = Labels(batch, classes, 32);
        const float upstream = 0.75f;
        using var tl = Tensor.FromArray(device, logits, batch, classes); tl.RequiresGrad = true;
        if (accumulate) tl.Grad.CopyFrom(Seeded.Uniform<float>(logits.Length, 33)); // the backward adds onto this
        var dl = accumulate ? tl.GradToArray() : Overwrite.Reference(logits.Length, _ => { }); // NaN: the reference overwrites it
        using var tlabels = IntTensor.FromArray(device, labels);
        using var tape = new Tape(device);
        var loss = tape.CrossEntropy(tl, tlabels, smoothing);
        Overwrite.Poisoned(() => tape.Backward(loss, [upstream]));

        yield return VerifyResult.Compare("CrossEntropy.Forward", shape, [C.CrossEntropy<float>(logits, labels, smoothing)], loss.ToArray(), Tolerance.Forward)
            .RequireShape(loss.Shape, [1]);
        C.CrossEntropyBackward<float>(logits, labels, smoothing, upstream, dl, accumulate);
        yield return VerifyResult.Compare("CrossEntropy.Backward", shape, dl, tl.GradToArray(), Tolerance.Backward);
        var argmax = Array.ConvertAll(Ops.Argmax(tl), v => (float)v);
        var expected = Array.ConvertAll(C.ArgmaxRows<float>(logits, classes), v => (float)v);
        yield return VerifyResult.Compare("ArgmaxRows", shape, expected, argmax, Tolerance.Exact);
        using var hits = Tensor.Empty(device, batch);
        int ext = device.Extent(batch);
        device.Kernels.CorrectRows(device.Stream, ext, batch, ext, classes, tl.View, tlabels.View, hits.View);
        var expectedHits = C.CorrectRows<float>(logits, classes, labels);
        yield return VerifyResult.Compare("CorrectRows", shape, expectedHits, hits.ToArray(), Tolerance.Exact);
        yield return VerifyResult.Compare("CountCorrect", shape, [expectedHits.Sum()], [Ops.CountCorrect(tl, tlabels)], Tolerance.Exact);
    }

    /// <summary>Seeded labels in [0, classes).</summary>
    internal static int[] Labels(int batch, int classes, int seed)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, batch).Select(_ => r.Next(classes)).ToArray();
    }

    private const string LargeLogitsShape = "B3 K3 eps0.1 logits ±1000";

    private static IEnumerable<VerifyResult> LargeLogits(Device device)
    {
        double[] logits = [1000, -1000, 0, -1000, 1000, 999.5, 88, 89, 90];
        int[] labels = [1, 2, 0];
        using var tl = Tensor.FromArray(device, Array.ConvertAll(logits, v => (float)v), 3, 3); tl.RequiresGrad = true;
        using var tlabels = IntTensor.FromArray(device, labels);
        using var tape = new Tape(device);
        var loss = tape.CrossEntropy(tl, tlabels, 0.1f);
        tape.Backward(loss);
        var dl = new double[logits.Length];
        C.CrossEntropyBackward(logits, labels, 0.1, 1.0, dl);
        yield return VerifyResult.Compare("CrossEntropy.Forward", LargeLogitsShape, [(float)C.CrossEntropy<double>(logits, labels, 0.1)], loss.ToArray(),
            Tolerance.LargeLossForward);
        yield return VerifyResult.Compare("CrossEntropy.Backward", LargeLogitsShape, Array.ConvertAll(dl, v => (float)v), tl.GradToArray(), Tolerance.Backward);
    }
}
