global using IlgpuDdw.Verification;

namespace IlgpuDdw.Tests;

/// <summary>
/// Numeric assertions (over the shared <see cref="VerifyResult.Compare(string, string, ReadOnlySpan{float}, ReadOnlySpan{float}, Tolerance)"/>)
/// and the finite-difference gradient check of the correctness policy. Tolerances: <see cref="Tolerance"/>; seeded
/// data: <see cref="Seeded"/>.
/// </summary>
public static class Check
{
    public static void Close(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, Tolerance tolerance, string what) =>
        Pass(VerifyResult.Compare(what, "", expected, actual, tolerance));

    public static void Close(ReadOnlySpan<double> expected, ReadOnlySpan<double> actual, Tolerance tolerance, string what) =>
        Pass(VerifyResult.Compare(what, "", expected, actual, tolerance));

    public static void Close(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double atol, double rtol, string what) =>
        Close(expected, actual, new Tolerance(atol, rtol), what);

    public static void Close(ReadOnlySpan<double> expected, ReadOnlySpan<double> actual, double atol, double rtol, string what) =>
        Close(expected, actual, new Tolerance(atol, rtol), what);

    private static void Pass(VerifyResult r)
    {
        if (!r.Pass) Assert.Fail(r.Op + r.Failure);
    }

    /// <summary>
    /// Central finite differences in double: for each checked index k of <paramref name="input"/>,
    /// (f(x + eps·e_k) − f(x − eps·e_k)) / 2eps must match <paramref name="analytic"/>[k]. For inputs longer than
    /// <paramref name="maxChecks"/> a seeded subset of indices is checked.
    /// </summary>
    public static void FiniteDifference(Func<double> f, double[] input, ReadOnlySpan<double> analytic, string what,
        double eps = 1e-6, double atol = 1e-5, double rtol = 1e-3, int maxChecks = 64, int seed = 1234)
    {
        Assert.Equal(input.Length, analytic.Length);
        IEnumerable<int> indices = input.Length <= maxChecks
            ? Enumerable.Range(0, input.Length)
            : Enumerable.Range(0, input.Length).OrderBy(_ => new Random(seed + _).Next()).Take(maxChecks);
        foreach (int k in indices)
        {
            double saved = input[k];
            input[k] = saved + eps;
            double plus = f();
            input[k] = saved - eps;
            double minus = f();
            input[k] = saved;
            double numeric = (plus - minus) / (2 * eps);
            if (Math.Abs(numeric - analytic[k]) > atol + rtol * Math.Abs(numeric))
                Assert.Fail($"{what}: d/dx[{k}] analytic {analytic[k]:R}, finite difference {numeric:R}");
        }
    }

    public static float[] ToFloat(double[] a) => Array.ConvertAll(a, v => (float)v);

    public static double[] ToDouble(float[] a) => Array.ConvertAll(a, v => (double)v);

    public static double Dot(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }
}
