using DdwDevice = IlgpuDdw.Runtime.Device;

namespace IlgpuDdw.Bench;

/// <summary>
/// The device values of the suites' <c>Device</c> parameter: the DDW_DEVICE environment variable (one spec, or
/// several separated by commas, e.g. <c>cpu,cuda</c>), else <c>cpu</c>. <see cref="Program"/> sets the variable
/// from a <c>--device</c> argument before BenchmarkDotNet reads the parameters.
/// </summary>
public static class BenchDevices
{
    /// <summary>The device specs to run every suite on.</summary>
    public static IEnumerable<string> FromEnvironment()
    {
        string? value = Environment.GetEnvironmentVariable(DdwDevice.EnvironmentVariable);
        return string.IsNullOrWhiteSpace(value)
            ? ["cpu"]
            : value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
    }

    /// <summary>Uniform values in [−1, 1) from a seeded generator.</summary>
    public static float[] Uniform(int n, int seed)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(r.NextDouble() * 2 - 1);
        return a;
    }
}
