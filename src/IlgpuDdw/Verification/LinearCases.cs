using L = IlgpuDdw.Kernels.Reference.LinearReference;

namespace IlgpuDdw.Verification;

/// <summary>
/// Linear: forward, and backward with respect to input, weight and bias, without an activation and with the
/// fused ReLU and sigmoid, with and without bias; the second group's backward accumulates onto existing gradients.
/// </summary>
internal static class LinearCases
{
    public static IEnumerable<VerifyCase> All()
    {
        const LinearActivation none = LinearActivation.None, relu = LinearActivation.Relu, sigmoid = LinearActivation.Sigmoid;
        (int Batch, int In, int Out, bool Bias, LinearActivation Activation)[] fresh =
        [
            (1, 1, 1, true, none), (3, 7, 5, true, none), (5, 13, 6, false, none), (2, 64, 10, true, none),
            (3, 7, 5, true, relu), (1, 9, 6, false, relu), (4, 6, 3, true, sigmoid), (1, 33, 2, true, sigmoid),
        ];
        (int Batch, int In, int Out, bool Bias, LinearActivation Activation)[] accumulating =
        [
            (1, 1, 1, true, none), (1, 5, 3, true, none), (3, 7, 5, true, none), (4, 6, 9, false, none),
            (2, 13, 2, true, none), (5, 3, 8, true, none), (2, 33, 10, false, none), (7, 4, 4, true, none),
            (1, 1, 1, true, relu), (3, 7, 5, true, relu), (4, 6, 9, false, relu), (5, 13, 2, true, relu),
            (1, 1, 1, true, sigmoid), (3, 7, 5, true, sigmoid), (4, 6, 9, false, sigmoid), (2, 33, 3, true, sigmoid),
        ];
        foreach (var (accumulate, list) in new[] { (false, fresh), (true, accumulating) })
            foreach (var (batch, inF, outF, bias, activation) in list)
            {
                string shape = $"B{batch} In{inF} Out{outF}{(bias ? "" : " no bias")}{(activation == none ? "" : $" {activation}")}" +
                    (accumulate ? " accumulate" : "");
                string[] passes = ["Linear.Forward", "Linear.BackwardInput", "Linear.BackwardWeight", .. bias ? new[] { "Linear.BackwardBias" } : []];
                yield return new("Linear", shape, passes, d => Run(d, batch, inF, outF, bias, activation, accumulate, shape));
            }
        // weight and bias gradients in gradient groups (Tape.GradientGroupSize; the last group short), onto existing gradients
        foreach (var (batch, inF, outF, activation, groupSize) in new[] { (5, 7, 4, none, 2), (7, 13, 6, relu, 3), (4, 6, 3, sigmoid, 1), (3, 33, 10, none, 8) })
        {
            string shape = $"B{batch} In{inF} Out{outF}{(activation == none ? "" : $" {activation}")} accumulate, gradient groups of {groupSize}";
            yield return new("Linear", shape, ["Linear.Forward", "Linear.BackwardInput", "Linear.BackwardWeight", "Linear.BackwardBias"],
                d => Run(d, batch, inF, outF, true, activation, true, shape, groupSize));
        }
    }

    private static IEnumerable<VerifyResult> Run(Device device, int batch, int inF, int outF, bool hasBias, LinearActivation activation,
        bool accumulate, string shape, int groupSize = 0)
    {
        var x = Seeded.Uniform<float>(batch * inF, 21);
        var w = Seeded.Uniform<float>(outF * inF, 22);
        var bias = hasBias ? Seeded.Uniform<float>(outF, 23) : [];
        var g = Seeded.Uniform<float>(batch * outF, 24);
        using var tx = Tensor.FromArray(device, x, batch, inF); tx.RequiresGrad = true;
        using var tw = Tensor.FromArray(device, w, outF, inF); tw.RequiresGrad = true;
        using var tb = hasBias ? Tensor.FromArray(device, bias, outF) : null;
        if (tb is not null) tb.RequiresGrad = true;
        if (accumulate)
        {
            // existing gradients: the backward adds onto them
            tx.Grad.CopyFrom(Seeded.Uniform<float>(x.Length, 25));
            tw.Grad.CopyFrom(Seeded.Uniform<float>(w.Length, 26));
            tb?.Grad.CopyFrom(Seeded.Uniform<float>(outF, 27));
        }
        var dx = accumulate ? tx.GradToArray() : Overwrite.Reference(x.Length, _ => { }); // NaN: the reference overwrites it
        var dw = accumulate ? tw.GradToArray() : new float[w.Length];
        var db = tb is not null && accumulate ? tb.GradToArray() : new float[outF];
        using var tape = new Tape(device) { GradientGroupSize = groupSize };
        var y = tape.Linear(tx, tw, tb, activation);
        Overwrite.Poisoned(() => tape.Backward(y, g));

        var ey = new float[batch * outF];
        L.Forward<float>(x, w, bias, batch, inF, outF, activation, ey);
        yield return VerifyResult.Compare("Linear.Forward", shape, ey, y.ToArray(), Tolerance.Forward).RequireShape(y.Shape, [batch, outF]);
        L.BackwardInput<float>(g, ey, w, batch, inF, outF, activation, dx, accumulate);
        yield return VerifyResult.Compare("Linear.BackwardInput", shape, dx, tx.GradToArray(), Tolerance.Backward);
        L.BackwardWeight<float>(g, ey, x, batch, inF, outF, activation, dw);
        yield return VerifyResult.Compare("Linear.BackwardWeight", shape, dw, tw.GradToArray(), Tolerance.Backward);
        if (tb is not null)
        {
            L.BackwardBias<float>(g, ey, batch, outF, activation, db);
            yield return VerifyResult.Compare("Linear.BackwardBias", shape, db, tb.GradToArray(), Tolerance.Backward);
        }
    }
}
