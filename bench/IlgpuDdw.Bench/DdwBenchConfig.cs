using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;

namespace IlgpuDdw.Bench;

/// <summary>The suites' shared config: median, min and max beside BenchmarkDotNet's default columns.</summary>
public sealed class DdwBenchConfig : ManualConfig
{
    /// <summary>Creates the config.</summary>
    public DdwBenchConfig() => AddColumn(StatisticColumn.Median, StatisticColumn.Min, StatisticColumn.Max);
}
