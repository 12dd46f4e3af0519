using System.Text.Json;

namespace IlgpuDdw.Training;

/// <summary>Appends one JSON object per line (JSON lines) to a file; flushed after every record.</summary>
public sealed class MetricsWriter : IDisposable
{
    private readonly StreamWriter _writer;

    /// <summary>Opens (appending to) <paramref name="path"/>, creating its directory.</summary>
    public MetricsWriter(string path, bool append = true)
    {
        Path = System.IO.Path.GetFullPath(path);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
        _writer = new StreamWriter(Path, append);
    }

    /// <summary>The file written.</summary>
    public string Path { get; }

    /// <summary>Writes one record.</summary>
    public void Write(EpochMetrics record)
    {
        _writer.WriteLine(JsonSerializer.Serialize(record, MetricsJsonContext.Default.EpochMetrics));
        _writer.Flush();
    }

    /// <inheritdoc/>
    public void Dispose() => _writer.Dispose();
}
