using System.Text;

namespace IlgpuDdw.Training;

/// <summary>
/// A file operation of a run that failed for an anticipated reason (permission, missing folder, full disk, a file
/// where a folder belongs, ...). The message is one line: what, which path, why.
/// </summary>
public sealed class RunFileException(string message, Exception? inner = null) : IOException(message, inner);

/// <summary>
/// The files of a run: output folders that are never clobbered, atomic text writes, removal of temporary files
/// left by interrupted saves, and I/O failures turned into one-line <see cref="RunFileException"/>s.
/// </summary>
public static class RunFiles
{
    /// <summary>
    /// Prepares <paramref name="directory"/> for a new run: refuses a file in its place and, unless
    /// <paramref name="overwrite"/>, a folder that already holds anything; creates it; checks that it is writable.
    /// </summary>
    /// <exception cref="RunFileException">One of the above, naming the folder.</exception>
    public static void PrepareOutput(string directory, bool overwrite)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        string full = Path.GetFullPath(directory);
        if (File.Exists(full))
            throw new RunFileException($"output folder {full} is a file, not a folder; pass a folder to --out.");
        if (!overwrite && Directory.Exists(full))
        {
            var entries = Guard("list output folder", full, () => Directory.EnumerateFileSystemEntries(full).Take(4).ToArray());
            if (entries.Length > 0)
                throw new RunFileException(
                    $"output folder {full} is not empty (it holds {string.Join(", ", entries.Take(3).Select(Path.GetFileName))}{(entries.Length > 3 ? ", ..." : "")}); " +
                    "pass --overwrite to write into it anyway (files of the same names are replaced), or choose another folder.");
        }
        CheckWritable(full);
    }

    /// <summary>Creates <paramref name="directory"/> if needed and checks that a file can be created in it.</summary>
    /// <exception cref="RunFileException">It cannot be created or written (names the folder and the reason).</exception>
    public static void CheckWritable(string directory)
    {
        string full = Path.GetFullPath(directory);
        Guard("write to output folder", full, () =>
        {
            FileFaults.Check(full, write: true);
            Directory.CreateDirectory(full);
            string probe = Path.Combine(full, $".ddw-write-check-{Guid.NewGuid():N}");
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose)) { }
            return 0;
        });
    }

    /// <summary>
    /// Writes <paramref name="text"/> (UTF-8) to <paramref name="path"/> atomically: a temporary file in the same
    /// folder, then a rename; temporary files of earlier interrupted writes of that file are removed first.
    /// </summary>
    /// <param name="what">What the file is, for the error message (e.g. "results").</param>
    /// <param name="path">The file.</param>
    /// <param name="text">Its contents.</param>
    /// <exception cref="RunFileException">The write failed (the file is then unchanged).</exception>
    public static void WriteAllText(string what, string path, string text)
    {
        string full = Path.GetFullPath(path);
        Write(what, full, () =>
        {
            RemoveStaleTemporaries(full);
            string temp = TemporaryPath(full);
            try
            {
                using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
                using (var stream = FileFaults.Wrap(full, file))
                {
                    stream.Write(Encoding.UTF8.GetBytes(text));
                    stream.Flush();
                    file.Flush(flushToDisk: true);
                }
                File.Move(temp, full, overwrite: true);
            }
            catch
            {
                TryDelete(temp);
                throw;
            }
        });
    }

    /// <summary>Runs a write of <paramref name="path"/>, turning an I/O failure into a <see cref="RunFileException"/>.</summary>
    /// <param name="what">What is written (e.g. "checkpoint", "plot").</param>
    /// <param name="path">The file written.</param>
    /// <param name="write">The write.</param>
    public static void Write(string what, string path, Action write)
    {
        ArgumentNullException.ThrowIfNull(write);
        Guard("write " + what, path, () =>
        {
            FileFaults.Check(path, write: true);
            write();
            return 0;
        });
    }

    /// <summary>Runs a read of <paramref name="path"/>, turning an I/O failure into a <see cref="RunFileException"/>
    /// (a missing file keeps its own <see cref="FileNotFoundException"/>, whose message says how to get it).</summary>
    /// <param name="what">What is read (e.g. "Fashion-MNIST data").</param>
    /// <param name="path">The file or folder read.</param>
    /// <param name="read">The read.</param>
    public static T Read<T>(string what, string path, Func<T> read)
    {
        ArgumentNullException.ThrowIfNull(read);
        return Guard("read " + what, path, () =>
        {
            FileFaults.Check(path, write: false);
            return read();
        });
    }

    /// <summary>The temporary file name an atomic write of <paramref name="path"/> uses: <c>.NAME.GUID.tmp</c> beside it.</summary>
    internal static string TemporaryPath(string path) =>
        Path.Combine(Path.GetDirectoryName(path)!, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");

    /// <summary>
    /// Deletes the temporary files (<c>.NAME.*.tmp</c>) that interrupted atomic writes of <paramref name="path"/>
    /// left beside it; returns how many.
    /// </summary>
    internal static int RemoveStaleTemporaries(string path)
    {
        string? directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is null || !Directory.Exists(directory)) return 0;
        int removed = 0;
        foreach (var temp in Directory.EnumerateFiles(directory, $".{Path.GetFileName(path)}.*.tmp"))
            if (TryDelete(temp)) removed++;
        return removed;
    }

    /// <summary>Why an I/O operation failed, in a few words (the path is named by the caller).</summary>
    internal static string Reason(Exception e) => e switch
    {
        UnauthorizedAccessException => "permission denied",
        DirectoryNotFoundException => "a folder on the path does not exist",
        FileNotFoundException => "no such file",
        IOException { HResult: 28 or unchecked((int)0x80070070) or unchecked((int)0x80070027) } => "no space left on device",
        IOException { HResult: 30 } => "read-only file system",
        IOException { HResult: 21 } => "it is a folder, not a file",
        IOException { HResult: 20 } => "a part of the path is a file, not a folder",
        _ => OneLine(e.Message),
    };

    /// <summary><paramref name="text"/> with line breaks replaced by spaces.</summary>
    internal static string OneLine(string text) => text.ReplaceLineEndings(" ").Trim();

    private static T Guard<T>(string action, string path, Func<T> operation)
    {
        try
        {
            return operation();
        }
        catch (Exception e) when (e is (IOException or UnauthorizedAccessException) and not RunFileException and not FileNotFoundException)
        {
            throw new RunFileException($"cannot {action} {path}: {Reason(e)}", e);
        }
    }

    private static bool TryDelete(string path)
    {
        try
        {
            File.Delete(path);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}

/// <summary>File-system failures tests inject into the run's file operations (they cannot fill a disk or, as root,
/// make a folder read-only).</summary>
internal enum FileFault
{
    /// <summary>Writes fail part-way with "No space left on device" (ENOSPC).</summary>
    DiskFull,

    /// <summary>Writes fail at once with "permission denied".</summary>
    ReadOnly,

    /// <summary>Reads fail at once with "permission denied".</summary>
    Unreadable,
}

/// <summary>
/// Fault injection for <see cref="RunFiles"/> and <see cref="Checkpoint"/>: active for the calling flow only
/// (an <see cref="AsyncLocal{T}"/>), so tests running in one process do not disturb each other.
/// </summary>
internal static class FileFaults
{
    private sealed class Injection(FileFault fault, string? fileName, int skip)
    {
        public FileFault Fault { get; } = fault;

        public bool Matches(string path, bool write)
        {
            if ((Fault == FileFault.Unreadable) == write) return false;
            if (fileName is not null && !string.Equals(Path.GetFileName(path), fileName, StringComparison.Ordinal)) return false;
            return skip-- <= 0;
        }
    }

    private static readonly AsyncLocal<Injection?> Current = new();

    /// <summary>
    /// Makes matching operations fail until the result is disposed: those on files named
    /// <paramref name="fileName"/> (any file when null), after <paramref name="skip"/> matching operations succeeded.
    /// </summary>
    public static IDisposable Inject(FileFault fault, string? fileName = null, int skip = 0)
    {
        var previous = Current.Value;
        Current.Value = new Injection(fault, fileName, skip);
        return new Restore(() => Current.Value = previous);
    }

    /// <summary>Throws the injected failure for an operation on <paramref name="path"/> (disk-full faults fail in <see cref="Wrap"/>).</summary>
    public static void Check(string path, bool write)
    {
        if (Current.Value is not { Fault: not FileFault.DiskFull } injection || !injection.Matches(path, write)) return;
        throw new UnauthorizedAccessException($"Access to the path '{path}' is denied.");
    }

    /// <summary>The stream a write of <paramref name="path"/> goes through: <paramref name="stream"/>, or one that
    /// fails after a few bytes when a disk-full fault matches.</summary>
    public static Stream Wrap(string path, Stream stream) =>
        Current.Value is { Fault: FileFault.DiskFull } injection && injection.Matches(path, write: true) ? new FullDisk(stream) : stream;

    /// <summary>The wrapper <see cref="IO.SafeTensors"/> saves accept (null when no fault is active).</summary>
    public static Func<Stream, Stream>? WrapperFor(string path) => Current.Value is null ? null : s => Wrap(path, s);

    private sealed class Restore(Action restore) : IDisposable
    {
        public void Dispose() => restore();
    }

    /// <summary>Accepts 4 KiB, then fails every write as a full disk does.</summary>
    private sealed class FullDisk(Stream inner) : Stream
    {
        private long _left = 4096;

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            int n = (int)Math.Min(_left, buffer.Length);
            inner.Write(buffer[..n]);
            _left -= n;
            if (n < buffer.Length) throw new IOException("No space left on device", 28);
        }
    }
}
