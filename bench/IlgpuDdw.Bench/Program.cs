using BenchmarkDotNet.Running;
using IlgpuDdw.Runtime;

namespace IlgpuDdw.Bench;

/// <summary>
/// Entry point: <c>dotnet run -c Release --project bench/IlgpuDdw.Bench -- [--device cpu|cuda|cpu,cuda] --filter '*Router*' --job short</c>.
/// <c>--device</c> (taken out before BenchmarkDotNet parses the rest) sets DDW_DEVICE, which gives the values of
/// every suite's <c>Device</c> parameter (see <see cref="BenchDevices"/>).
/// </summary>
public static class Program
{
    public static void Main(string[] args)
    {
        var rest = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--device" && i + 1 < args.Length)
                Environment.SetEnvironmentVariable(Device.EnvironmentVariable, args[++i]);
            else if (args[i].StartsWith("--device=", StringComparison.Ordinal))
                Environment.SetEnvironmentVariable(Device.EnvironmentVariable, args[i]["--device=".Length..]);
            else
                rest.Add(args[i]);
        }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run([.. rest]);
    }
}
