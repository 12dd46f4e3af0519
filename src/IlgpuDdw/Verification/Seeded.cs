using System.Numerics;

namespace IlgpuDdw.Verification;

/// <summary>Seeded test data for the verification cases and the tests (the same seed gives the same values).</summary>
public static class Seeded
{
    /// <summary>Uniform values in [lo, hi), computed in <typeparamref name="T"/>.</summary>
    public static T[] Uniform<T>(int n, int seed, double lo = -1, double hi = 1) where T : IFloatingPointIeee754<T>
    {
        var r = new Random(seed);
        T l = T.CreateChecked(lo), h = T.CreateChecked(hi);
        var a = new T[n];
        for (int i = 0; i < n; i++) a[i] = l + (h - l) * T.CreateChecked(r.NextDouble());
        return a;
    }

    /// <summary>Values in ±[gap, 1), random sign: kept away from 0 (the ReLU kink).</summary>
    public static T[] AwayFromZero<T>(int n, int seed, double gap = 0.05) where T : IFloatingPointIeee754<T>
    {
        var r = new Random(seed);
        T g = T.CreateChecked(gap);
        var a = new T[n];
        for (int i = 0; i < n; i++)
        {
            T sign = r.Next(2) == 0 ? -T.One : T.One;
            a[i] = sign * (g + (T.One - g) * T.CreateChecked(r.NextDouble()));
        }
        return a;
    }
}
