namespace IlgpuDdw.Autograd;

public static partial class Ops
{
    /// <summary><c>y = max(x, 0)</c>. Saves x; the gradient is 0 at x = 0.</summary>
    public static Tensor Relu(this Tape tape, Tensor x) =>
        Pointwise(tape, x, "Relu", tape.Device.Kernels.ReluForward, tape.Device.Kernels.ReluBackward, savesOutput: false);

    /// <summary><c>y = min(max(x, 0), 6)</c>. Saves x; the gradient is 1 on the open interval (0, 6) only.</summary>
    public static Tensor Relu6(this Tape tape, Tensor x) =>
        Pointwise(tape, x, "Relu6", tape.Device.Kernels.Relu6Forward, tape.Device.Kernels.Relu6Backward, savesOutput: false);

    /// <summary><c>y = 1 / (1 + e^(−x))</c>. Saves its output y; the backward uses <c>y·(1 − y)</c>.</summary>
    public static Tensor Sigmoid(this Tape tape, Tensor x) =>
        Pointwise(tape, x, "Sigmoid", tape.Device.Kernels.SigmoidForward, tape.Device.Kernels.SigmoidBackward, savesOutput: true);

    /// <summary>
    /// A pointwise op whose backward kernel reads one saved tensor (the input x, or the output y when
    /// <paramref name="savesOutput"/>) and the output gradient, and accumulates into x's gradient (overwrites the
    /// gradient it is the first to write).
    /// </summary>
    private static Tensor Pointwise(Tape tape, Tensor x, string name,
        Action<AcceleratorStream, Index1D, int, int, ArrayView<float>, ArrayView<float>> forward,
        Action<AcceleratorStream, Index1D, int, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>> backward,
        bool savesOutput)
    {
        RequireSameDevice(name, tape, x);
        var d = tape.Device;
        var y = tape.NewTensor([.. x.Shape]);
        int n = y.Length;
        int ext = d.Extent(n);
        forward(d.Stream, ext, n, ext, x.View, y.View);
        if (tape.NeedsGrad(x))
            tape.Record(name, y, () =>
            {
                var dx = x.GradForWrite(out int accumulate);
                backward(d.Stream, ext, n, ext, accumulate, (savesOutput ? y : x).View, y.Grad.View, dx);
            });
        return y;
    }
}
