using System.Reflection;
using IlgpuDdw.Runtime;

namespace IlgpuDdw.Verification;

/// <summary>One row of <c>ddw verify</c>: a kernel's result on a device against its CPU reference.</summary>
/// <param name="Op">Op and pass, e.g. <c>Conv2d.BackwardWeight</c>.</param>
/// <param name="Shape">The case's shape description.</param>
/// <param name="MaxAbsError">Largest |device − reference|.</param>
/// <param name="MaxRelError">Largest |device − reference| / max(|reference|, 1e-6).</param>
/// <param name="Pass">Whether every element is within atol + rtol·|reference|.</param>
public sealed record VerifyResult(string Op, string Shape, double MaxAbsError, double MaxRelError, bool Pass)
{
    /// <summary>Compares a device result to a reference with the given tolerances.</summary>
    public static VerifyResult Compare(string op, string shape, ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double atol, double rtol)
    {
        if (expected.Length != actual.Length)
            return new VerifyResult(op, shape, double.PositiveInfinity, double.PositiveInfinity, false);
        double maxAbs = 0, maxRel = 0;
        bool pass = true;
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i], a = actual[i];
            double abs = Math.Abs(e - a);
            if (double.IsNaN(abs)) { pass = false; maxAbs = double.NaN; continue; }
            maxAbs = Math.Max(maxAbs, abs);
            maxRel = Math.Max(maxRel, abs / Math.Max(Math.Abs(e), 1e-6));
            if (abs > atol + rtol * Math.Abs(e)) pass = false;
        }
        return new VerifyResult(op, shape, maxAbs, maxRel, pass);
    }
}

/// <summary>
/// A group of verification cases for one op family: runs the family's kernels on a device at several shapes
/// and compares each pass (forward and every backward) with the CPU reference. Implementations are found by
/// reflection (public, parameterless constructor), so adding a suite is adding a class.
/// </summary>
public interface IVerifySuite
{
    /// <summary>The op family, e.g. <c>Conv2d</c>.</summary>
    string Name { get; }

    /// <summary>Runs every case on <paramref name="device"/>.</summary>
    IEnumerable<VerifyResult> Run(Device device);
}

/// <summary>Finds and runs every <see cref="IVerifySuite"/>.</summary>
public static class Verifier
{
    /// <summary>Tolerances for device-versus-reference comparisons (DESIGN.md §4): forward.</summary>
    public const double ForwardAtol = 1e-5, ForwardRtol = 1e-4;

    /// <summary>Tolerances for backward passes.</summary>
    public const double BackwardAtol = 1e-4, BackwardRtol = 1e-3;

    /// <summary>Every suite in this assembly, ordered by name.</summary>
    public static IReadOnlyList<IVerifySuite> Suites() => typeof(Verifier).Assembly.GetTypes()
        .Where(t => typeof(IVerifySuite).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false } && t.GetConstructor(Type.EmptyTypes) is not null)
        .Select(t => (IVerifySuite)Activator.CreateInstance(t)!)
        .OrderBy(s => s.Name, StringComparer.Ordinal)
        .ToArray();

    /// <summary>Runs every suite (optionally only those whose name contains <paramref name="filter"/>).</summary>
    public static IEnumerable<VerifyResult> RunAll(Device device, string? filter = null)
    {
        foreach (var s in Suites())
        {
            if (filter is not null && !s.Name.Contains(filter, StringComparison.OrdinalIgnoreCase)) continue;
            foreach (var r in s.Run(device)) yield return r;
        }
    }

    /// <summary>Seeded uniform floats in [lo, hi).</summary>
    public static float[] Uniform(int n, int seed, float lo = -1f, float hi = 1f)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = lo + (hi - lo) * (float)r.NextDouble();
        return a;
    }

    /// <summary>Seeded floats in ±[gap, 1): kept away from the ReLU kink.</summary>
    public static float[] AwayFromZero(int n, int seed, float gap = 0.05f)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (r.Next(2) == 0 ? -1 : 1) * (gap + (1 - gap) * (float)r.NextDouble());
        return a;
    }
}
