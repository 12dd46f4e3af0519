namespace IlgpuDdw.Verification;

/// <summary>
/// Checks of the backward kernels' <c>accumulate</c> flag (<see cref="Kernels.ElementwiseKernels.Prior"/>): with
/// accumulate = 0 a kernel overwrites every element of its gradient, ignoring what the buffer held, and gives bitwise
/// what accumulate = 1 gives on a zeroed buffer.
/// </summary>
internal static class Overwrite
{
    /// <summary>What the buffers hold before an overwrite: NaN (any read or unwritten element shows) and 1e30 (a read swamps the sum).</summary>
    internal static readonly float[] Garbage = [float.NaN, 1e30f];

    /// <summary>
    /// Rows of a kernel launched directly: <paramref name="launch"/>(accumulate) writes <paramref name="gradient"/>;
    /// once with accumulate = 1 onto zeros, then with accumulate = 0 over each <see cref="Garbage"/> value. Each
    /// overwrite row compares with <paramref name="expected"/> (the reference, overwriting) and requires the result
    /// to equal the accumulation onto zeros bit for bit.
    /// </summary>
    public static IEnumerable<VerifyResult> Rows(string op, string shape, float[] expected, Tensor gradient, Action<int> launch, Tolerance tolerance)
    {
        gradient.Fill(0f);
        launch(1);
        var accumulated = gradient.ToArray();
        foreach (float garbage in Garbage)
        {
            gradient.Fill(garbage);
            launch(0);
            var written = gradient.ToArray();
            yield return VerifyResult.Compare($"{op} overwrite", $"{shape}, over {garbage:R}", expected, written, tolerance)
                .Require(BitEqual(accumulated, written), ": the overwrite differs bitwise from accumulating onto zeros");
        }
    }

    /// <summary>The reference's result when it overwrites a buffer holding NaN (<paramref name="reference"/> writes its argument).</summary>
    public static float[] Reference(int length, Action<float[]> reference)
    {
        var result = new float[length];
        Array.Fill(result, float.NaN);
        reference(result);
        return result;
    }

    /// <summary>Runs <paramref name="backward"/> with every gradient allocated for an overwrite filled with NaN first (<see cref="Tensor.PoisonNewGradients"/>).</summary>
    public static void Poisoned(Action backward)
    {
        var previous = Tensor.PoisonNewGradients;
        Tensor.PoisonNewGradients = float.NaN;
        try
        {
            backward();
        }
        finally
        {
            Tensor.PoisonNewGradients = previous;
        }
    }

    /// <summary>
    /// Rows of a second backward pass of a one-op tape (<paramref name="backward"/>): its backward kernels now find the
    /// gradients of the first pass (each <paramref name="gradients"/> entry: the leaf and its first-pass gradient, read from the device) and accumulate, so each must be
    /// exactly twice the first (v + v is exact; the first pass wrote 0 + v over garbage).
    /// </summary>
    public static IEnumerable<VerifyResult> SecondPass(string shape, Action backward, params (string Op, Tensor Leaf, float[] First)[] gradients)
    {
        backward();
        foreach (var (op, leaf, first) in gradients)
        {
            var second = leaf.GradToArray();
            var doubled = Array.ConvertAll(first, v => v + v);
            yield return VerifyResult.Compare($"{op} accumulate", shape, doubled, second, Tolerance.Exact)
                .Require(BitEqual(doubled, second), ": a second backward pass does not add exactly its contribution again");
        }
    }

    /// <summary>Whether two arrays hold the same bits (NaN equal to NaN, −0 not equal to +0).</summary>
    public static bool BitEqual(float[] a, float[] b)
    {
        if (a.Length != b.Length) return false;
        for (int i = 0; i < a.Length; i++)
            if (BitConverter.SingleToInt32Bits(a[i]) != BitConverter.SingleToInt32Bits(b[i])) return false;
        return true;
    }
}
