using IlgpuDdw.Kernels.Reference;

namespace IlgpuDdw.Verification;

/// <summary>
/// The fused router (<see cref="Ops.RouterFused"/>, <see cref="RouterKernels"/>) against
/// <see cref="RouterReference"/> at odd shapes: batch 1 to 3, 1 to 17 channels, 1×1 to 3×5 maps, hidden 4 to 7, 1 to
/// 9 out-edges, with every operand requiring a gradient and with the input or the parameters frozen, each backward
/// accumulating onto non-zero gradients. The stage wiring cases run the same op through <c>StageWiring</c>.
/// </summary>
internal static class RouterCases
{
    private static readonly (int Batch, int Channels, int Height, int Width, int Hidden, int OutDegree)[] Shapes =
    [
        (1, 1, 1, 1, 4, 1),
        (2, 5, 3, 2, 4, 3),
        (3, 17, 3, 5, 5, 9),
        (3, 7, 1, 3, 7, 2),
    ];

    private static readonly string[] Passes = ["Router.Forward", "Router.BackwardInput", "Router.BackwardParameters"];

    public static IEnumerable<VerifyCase> All()
    {
        foreach (var s in Shapes)
            foreach (var (frozenInput, frozenParameters) in new[] { (false, false), (true, false), (false, true) })
            {
                string name = $"router fused, y [{s.Batch}, {s.Channels}, {s.Height}, {s.Width}] hidden {s.Hidden} out {s.OutDegree}" +
                    (frozenInput ? ", input frozen" : "") + (frozenParameters ? ", parameters frozen" : "");
                yield return new("Wiring", name, Passes, d => Run(d, s, frozenInput, frozenParameters, name));
            }
        // parameter gradients in gradient groups (Tape.GradientGroupSize): 3 groups of 1, and groups of 2 and 1
        foreach (int groupSize in new[] { 1, 2 })
        {
            var s = Shapes[2];
            string name = $"router fused, y [{s.Batch}, {s.Channels}, {s.Height}, {s.Width}] hidden {s.Hidden} out {s.OutDegree}, gradient groups of {groupSize}";
            yield return new("Wiring", name, Passes, d => Run(d, s, false, false, name, groupSize));
        }
    }

    private static IEnumerable<VerifyResult> Run(Device d, (int Batch, int Channels, int Height, int Width, int Hidden, int OutDegree) s,
        bool frozenInput, bool frozenParameters, string name, int groupSize = 0)
    {
        int spatial = s.Height * s.Width, n = s.Batch * s.Channels * spatial;
        var y = Seeded.Uniform<float>(n, 1, -1, 2);
        var p = new RouterWeights<float>(s.Channels, s.Hidden, s.OutDegree, Seeded.Uniform<float>(s.Hidden * s.Channels, 2),
            Seeded.Uniform<float>(s.Hidden, 3), Seeded.Uniform<float>(s.OutDegree * s.Hidden, 4), Seeded.Uniform<float>(s.OutDegree, 5));
        var dA = Seeded.Uniform<float>(s.Batch * s.OutDegree, 6);
        var r = RouterReference.Forward<float>(y, s.Batch, p, spatial);
        // the op accumulates onto the gradients already there: start them at seeded values
        var dY = Seeded.Uniform<float>(n, 7);
        var dP = new RouterWeights<float>(s.Channels, s.Hidden, s.OutDegree, Seeded.Uniform<float>(p.W1.Length, 8),
            Seeded.Uniform<float>(p.B1.Length, 9), Seeded.Uniform<float>(p.W2.Length, 10), Seeded.Uniform<float>(p.B2.Length, 11));
        var start = (Y: dY.ToArray(), W1: dP.W1.ToArray(), B1: dP.B1.ToArray(), W2: dP.W2.ToArray(), B2: dP.B2.ToArray());
        RouterReference.Backward<float>(r, dA, s.Batch, p, spatial, dY, dP);

        using var tape = new Tape(d) { GradientGroupSize = groupSize };
        using var ty = Tensor.FromArray(d, y, s.Batch, s.Channels, s.Height, s.Width);
        using var w1 = Tensor.FromArray(d, p.W1, s.Hidden, s.Channels);
        using var b1 = Tensor.FromArray(d, p.B1, s.Hidden);
        using var w2 = Tensor.FromArray(d, p.W2, s.OutDegree, s.Hidden);
        using var b2 = Tensor.FromArray(d, p.B2, s.OutDegree);
        Tensor[] parameters = [w1, b1, w2, b2];
        float[][] starts = [start.W1, start.B1, start.W2, start.B2];
        ty.RequiresGrad = !frozenInput;
        if (!frozenInput) ty.Grad.CopyFrom(start.Y);
        for (int i = 0; i < parameters.Length; i++)
        {
            parameters[i].RequiresGrad = !frozenParameters;
            if (!frozenParameters) parameters[i].Grad.CopyFrom(starts[i]);
        }
        var a = tape.RouterFused(ty, w1, b1, w2, b2);
        yield return VerifyResult.Compare("Router.Forward", name, r.Output, a.ToArray(), Tolerance.Forward)
            .RequireShape(a.Shape, [s.Batch, s.OutDegree]);
        Overwrite.Poisoned(() => tape.Backward(a, dA));
        yield return frozenInput
            ? VerifyResult.Condition("Router.BackwardInput frozen", name, ty.GradOrNull is null, ": a frozen input got a gradient")
            : VerifyResult.Compare("Router.BackwardInput", name, dY, ty.GradToArray(), Tolerance.Backward);
        if (frozenParameters)
        {
            yield return VerifyResult.Condition("Router.BackwardParameters frozen", name, parameters.All(t => t.GradOrNull is null),
                ": a frozen parameter got a gradient");
            yield break;
        }
        float[][] expected = [dP.W1, dP.B1, dP.W2, dP.B2];
        string[] names = ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"];
        for (int i = 0; i < parameters.Length; i++)
            yield return VerifyResult.Compare($"Router.BackwardParameters {names[i]}", name, expected[i], parameters[i].GradToArray(), Tolerance.Backward);
    }
}
