using BenchmarkDotNet.Running;

namespace IlgpuDdw.Bench;

/// <summary>Entry point: <c>dotnet run -c Release --project bench/IlgpuDdw.Bench -- --filter '*'</c>.</summary>
public static class Program
{
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
