namespace IlgpuDdw.Tests;

/// <summary>Numeric assertions and the finite-difference gradient check of the correctness policy.</summary>
public static class Check
{
    /// <summary>Tolerances of DESIGN.md §4; looser per-op values are listed (with the reason) in <see cref="Tolerances"/>.</summary>
    public const double ForwardAtol = 1e-5, ForwardRtol = 1e-4, BackwardAtol = 1e-4, BackwardRtol = 1e-3;

    public static void Close(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double atol, double rtol, string what)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: length {actual.Length}, expected {expected.Length}");
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i], a = actual[i];
            Assert.False(double.IsNaN(e), $"{what}[{i}]: the expected value is NaN");
            Assert.False(double.IsNaN(a), $"{what}[{i}] is NaN");
            if (Math.Abs(e - a) > atol + rtol * Math.Abs(e))
                Assert.Fail($"{what}[{i}]: got {a:R}, expected {e:R} (|diff| {Math.Abs(e - a):E3} > {atol} + {rtol}·|expected|)");
        }
    }

    public static void Close(ReadOnlySpan<double> expected, ReadOnlySpan<double> actual, double atol, double rtol, string what)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: length {actual.Length}, expected {expected.Length}");
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i], a = actual[i];
            if (double.IsNaN(e) || double.IsNaN(a) || Math.Abs(e - a) > atol + rtol * Math.Abs(e))
                Assert.Fail($"{what}[{i}]: got {a:R}, expected {e:R}");
        }
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

    /// <summary>Seeded uniform values in [lo, hi).</summary>
    public static double[] Uniform(int n, int seed, double lo = -1, double hi = 1)
    {
        var r = new Random(seed);
        var a = new double[n];
        for (int i = 0; i < n; i++) a[i] = lo + (hi - lo) * r.NextDouble();
        return a;
    }

    /// <summary>Seeded values in ±[gap, 1): kept away from 0 (the ReLU kink).</summary>
    public static double[] AwayFromZero(int n, int seed, double gap = 0.05)
    {
        var r = new Random(seed);
        var a = new double[n];
        for (int i = 0; i < n; i++) a[i] = (r.Next(2) == 0 ? -1 : 1) * (gap + (1 - gap) * r.NextDouble());
        return a;
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
