using System.Numerics;

namespace IlgpuDdw.Kernels.Reference;

/// <summary>
/// CPU references of the activation kernels (ReLU, ReLU6, sigmoid), generic over float and double. Backward
/// references accumulate (+=) like the kernels, or overwrite with <c>accumulate: false</c> (the kernels' flag: the result
/// is what accumulating onto zeros gives, whatever the buffer held).
/// </summary>
public static class ActivationReference
{
    /// <summary><c>y = max(x, 0)</c>.</summary>
    public static void ReluForward<T>(ReadOnlySpan<T> x, Span<T> y) where T : IFloatingPointIeee754<T>
    {
        for (int i = 0; i < y.Length; i++) y[i] = x[i] > T.Zero ? x[i] : T.Zero;
    }

    /// <summary><c>dInput += x &gt; 0 ? dOutput : 0</c>.</summary>
    public static void ReluBackward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> dOutput, Span<T> dInput, bool accumulate = true) where T : IFloatingPointIeee754<T>
    {
        if (!accumulate) dInput.Clear();
        for (int i = 0; i < x.Length; i++) if (x[i] > T.Zero) dInput[i] += dOutput[i];
    }

    /// <summary><c>y = min(max(x, 0), 6)</c>.</summary>
    public static void Relu6Forward<T>(ReadOnlySpan<T> x, Span<T> y) where T : IFloatingPointIeee754<T>
    {
        T six = T.CreateChecked(6);
        for (int i = 0; i < y.Length; i++) y[i] = T.Clamp(x[i], T.Zero, six);
    }

    /// <summary><c>dInput += (0 &lt; x &lt; 6) ? dOutput : 0</c>.</summary>
    public static void Relu6Backward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> dOutput, Span<T> dInput, bool accumulate = true) where T : IFloatingPointIeee754<T>
    {
        if (!accumulate) dInput.Clear();
        T six = T.CreateChecked(6);
        for (int i = 0; i < x.Length; i++) if (x[i] > T.Zero && x[i] < six) dInput[i] += dOutput[i];
    }

    /// <summary><c>y = 1 / (1 + e^(−x))</c>.</summary>
    public static void SigmoidForward<T>(ReadOnlySpan<T> x, Span<T> y) where T : IFloatingPointIeee754<T>
    {
        for (int i = 0; i < y.Length; i++) y[i] = Sigmoid(x[i]);
    }

    /// <summary><c>dInput += dOutput · y · (1 − y)</c> where y is the forward output.</summary>
    public static void SigmoidBackward<T>(ReadOnlySpan<T> y, ReadOnlySpan<T> dOutput, Span<T> dInput, bool accumulate = true) where T : IFloatingPointIeee754<T>
    {
        if (!accumulate) dInput.Clear();
        for (int i = 0; i < y.Length; i++) dInput[i] += dOutput[i] * y[i] * (T.One - y[i]);
    }

    /// <summary>The logistic function of one value, without overflow for large |x|.</summary>
    public static T Sigmoid<T>(T x) where T : IFloatingPointIeee754<T>
    {
        if (x >= T.Zero) return T.One / (T.One + T.Exp(-x));
        T e = T.Exp(x);
        return e / (T.One + e);
    }
}
