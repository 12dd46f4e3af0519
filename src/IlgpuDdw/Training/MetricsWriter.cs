namespace IlgpuDdw.Training;

/// <summary>Appends one JSON object per line (JSON lines) to a file; flushed after every record.</summary>
public sealed class MetricsWriter : IDisposable
{
    private readonly StreamWriter _writer;

    /// <summary>Opens <paramref name="path"/> (appending, or replacing it when <paramref name="append"/> is false), creating its directory.</summary>
    /// <exception cref="RunFileException">The file cannot be opened for writing.</exception>
    public MetricsWriter(string path, bool append = true)
    {
        Path = System.IO.Path.GetFullPath(path);
        StreamWriter? writer = null;
        RunFiles.Write("metrics", Path, () =>
        {
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
            var file = new FileStream(Path, append ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.Read);
            writer = new StreamWriter(FileFaults.Wrap(Path, file));
        });
        _writer = writer!;
    }

    /// <summary>The file written.</summary>
    public string Path { get; }

    /// <summary>
    /// Opens <paramref name="path"/> to continue the run of a resumed <paramref name="trainer"/>: first removes that
    /// run's records (same model, wiring and seed) past the trainer's step, which a run that stopped between writing
    /// an epoch's record and its checkpoint left behind, so that no epoch appears twice; other runs' records stay.
    /// </summary>
    /// <exception cref="RunFileException">The file cannot be rewritten or opened.</exception>
    public static MetricsWriter ForResume(string path, Trainer trainer)
    {
        ArgumentNullException.ThrowIfNull(trainer);
        RemoveAfter(path, trainer.RunModelName, trainer.RunWiringName, trainer.RunSeed, trainer.Step);
        return new MetricsWriter(path, append: true);
    }

    /// <summary>
    /// Removes the records of one run (<paramref name="model"/>, <paramref name="wiring"/>, <paramref name="seed"/>)
    /// whose step is past <paramref name="step"/>, and lines that are not records (a line torn by a crash), from
    /// <paramref name="path"/> (rewritten atomically); returns how many lines were removed (0 when the file does not exist).
    /// </summary>
    public static int RemoveAfter(string path, string model, string wiring, int seed, int step)
    {
        string full = System.IO.Path.GetFullPath(path);
        if (!File.Exists(full)) return 0;
        var lines = RunFiles.Read("metrics", full, () => File.ReadAllLines(full));
        var kept = lines.Where(line => Parse(line) is { } r && !(r.Model == model && r.Wiring == wiring && r.Seed == seed && r.Step > step)).ToArray();
        if (kept.Length < lines.Length)
            RunFiles.WriteAllText("metrics", full, kept.Length == 0 ? "" : string.Join('\n', kept) + "\n");
        return lines.Length - kept.Length;
    }

    private static EpochMetrics? Parse(string line)
    {
        try { return JsonSerializer.Deserialize(line, MetricsJsonContext.Default.EpochMetrics); }
        catch (JsonException) { return null; }
    }

    /// <summary>Writes one record.</summary>
    /// <exception cref="RunFileException">The write failed (e.g. the disk is full).</exception>
    public void Write(EpochMetrics record) => RunFiles.Write("metrics", Path, () =>
    {
        _writer.WriteLine(JsonSerializer.Serialize(record, MetricsJsonContext.Default.EpochMetrics));
        _writer.Flush();
    });

    /// <inheritdoc/>
    public void Dispose()
    {
        try { _writer.Dispose(); }
        catch (IOException) { /* a failed write was reported already; closing must not mask it */ }
    }
}
