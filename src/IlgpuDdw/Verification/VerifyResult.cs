using System.Numerics;

namespace IlgpuDdw.Verification;

/// <summary>One row of <c>ddw verify</c>: a kernel's result on a device against its CPU reference.</summary>
/// <param name="Op">Op and pass, then an optional detail after a space, e.g. <c>Conv2d.BackwardWeight</c> or <c>Aggregate.Forward x2</c>.</param>
/// <param name="Shape">The case's shape description.</param>
/// <param name="MaxAbsError">Largest |device − reference|.</param>
/// <param name="MaxRelError">Largest |device − reference| / max(|reference|, 1e-6).</param>
/// <param name="Pass">Whether every element is within atol + rtol·|reference| (and every other condition of the row holds).</param>
/// <param name="Failure">What failed first, e.g. <c>[12]: got 0.5, expected 0.25 (…)</c>; null when the row passes.</param>
public sealed record VerifyResult(string Op, string Shape, double MaxAbsError, double MaxRelError, bool Pass, string? Failure = null)
{
    /// <summary>The op and pass: <see cref="Op"/> up to its first space.</summary>
    public string PassName => Op.IndexOf(' ') is var i and >= 0 ? Op[..i] : Op;

    /// <summary>Compares a device result to a reference: fails on a length mismatch, a NaN, or an element outside <paramref name="tolerance"/>.</summary>
    public static VerifyResult Compare(string op, string shape, ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, Tolerance tolerance) =>
        CompareCore(op, shape, expected, actual, tolerance);

    /// <inheritdoc cref="Compare(string, string, ReadOnlySpan{float}, ReadOnlySpan{float}, Tolerance)"/>
    public static VerifyResult Compare(string op, string shape, ReadOnlySpan<double> expected, ReadOnlySpan<double> actual, Tolerance tolerance) =>
        CompareCore(op, shape, expected, actual, tolerance);

    /// <summary>A row that checks a condition other than closeness (zero errors; fails with <paramref name="failure"/> unless <paramref name="ok"/>).</summary>
    public static VerifyResult Condition(string op, string shape, bool ok, string failure) => new(op, shape, 0, 0, ok, ok ? null : failure);

    /// <summary>This row, failed with <paramref name="failure"/> unless <paramref name="ok"/> (an earlier failure is kept).</summary>
    public VerifyResult Require(bool ok, string failure) => ok || !Pass ? this : this with { Pass = false, Failure = failure };

    /// <summary>This row, failed unless the device result's shape is <paramref name="expected"/>.</summary>
    public VerifyResult RequireShape(IReadOnlyList<int> actual, IReadOnlyList<int> expected) =>
        Require(actual.SequenceEqual(expected), $": shape {Tensor.Format(actual)}, expected {Tensor.Format(expected)}");

    /// <summary>Op, shape, and the failure or the largest errors, e.g. <c>Relu.Forward ([7])[3]: got 0, expected 0.5 (…)</c>.</summary>
    public override string ToString() => $"{Op} ({Shape})" + (Pass ? $": max abs {MaxAbsError:E2}, max rel {MaxRelError:E2}" : Failure);

    private static VerifyResult CompareCore<T>(string op, string shape, ReadOnlySpan<T> expected, ReadOnlySpan<T> actual, Tolerance tolerance)
        where T : IFloatingPointIeee754<T>
    {
        if (expected.Length != actual.Length)
            return new VerifyResult(op, shape, double.PositiveInfinity, double.PositiveInfinity, false, $": length {actual.Length}, expected {expected.Length}");
        double maxAbs = 0, maxRel = 0;
        string? failure = null;
        for (int i = 0; i < expected.Length; i++)
        {
            double e = double.CreateChecked(expected[i]), a = double.CreateChecked(actual[i]);
            double abs = e == a ? 0 : Math.Abs(e - a); // equal infinities match
            bool bad = double.IsNaN(abs) || abs > tolerance.Atol + tolerance.Rtol * Math.Abs(e);
            if (bad && failure is null)
                failure = $"[{i}]: got {actual[i]:R}, expected {expected[i]:R} (|diff| {abs:E3} > {tolerance.Atol} + {tolerance.Rtol}·|expected|)";
            if (double.IsNaN(abs)) { maxAbs = double.NaN; continue; }
            maxAbs = Math.Max(maxAbs, abs);
            maxRel = Math.Max(maxRel, abs / Math.Max(Math.Abs(e), 1e-6));
        }
        return new VerifyResult(op, shape, maxAbs, maxRel, failure is null, failure);
    }
}
