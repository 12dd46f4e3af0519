using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace IlgpuDdw.IO;

/// <summary>Element types of the safetensors format (the header's <c>dtype</c> strings in brackets).</summary>
public enum SafeTensorDType
{
    /// <summary>Boolean, one byte (BOOL).</summary>
    Bool,
    /// <summary>Unsigned 8-bit integer (U8).</summary>
    UInt8,
    /// <summary>Signed 8-bit integer (I8).</summary>
    Int8,
    /// <summary>8-bit float, 5-bit exponent (F8_E5M2).</summary>
    Float8E5M2,
    /// <summary>8-bit float, 4-bit exponent (F8_E4M3).</summary>
    Float8E4M3,
    /// <summary>Signed 16-bit integer (I16).</summary>
    Int16,
    /// <summary>Unsigned 16-bit integer (U16).</summary>
    UInt16,
    /// <summary>IEEE half precision (F16).</summary>
    Float16,
    /// <summary>Brain float 16 (BF16).</summary>
    BFloat16,
    /// <summary>Signed 32-bit integer (I32).</summary>
    Int32,
    /// <summary>Unsigned 32-bit integer (U32).</summary>
    UInt32,
    /// <summary>IEEE single precision (F32).</summary>
    Float32,
    /// <summary>IEEE double precision (F64).</summary>
    Float64,
    /// <summary>Signed 64-bit integer (I64).</summary>
    Int64,
    /// <summary>Unsigned 64-bit integer (U64).</summary>
    UInt64,
}

/// <summary>
/// One tensor of a safetensors file: element type, shape and raw little-endian row-major bytes. Created from host
/// arrays with <see cref="FromFloat32"/> / <see cref="FromInt64"/>, read back with <see cref="ToFloat32"/> /
/// <see cref="ToInt64"/>.
/// </summary>
public sealed class SafeTensor
{
    private readonly int[] _shape;

    /// <summary>Wraps raw bytes (not copied) after checking that they hold exactly the shape's elements.</summary>
    /// <exception cref="ArgumentException">A negative dimension, or a byte count that does not match the shape.</exception>
    public SafeTensor(SafeTensorDType dtype, int[] shape, byte[] data)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(data);
        int size = SafeTensors.ElementSize(dtype);
        long count = SafeTensors.ElementCount(shape);
        if (count * size != data.Length)
            throw new ArgumentException(
                $"shape {SafeTensors.FormatShape(shape)} of {dtype} needs {count * size} bytes, data has {data.Length}", nameof(data));
        DType = dtype;
        _shape = (int[])shape.Clone();
        Data = data;
    }

    /// <summary>The element type.</summary>
    public SafeTensorDType DType { get; }

    /// <summary>The shape (empty for a scalar).</summary>
    public IReadOnlyList<int> Shape => _shape;

    /// <summary>The raw little-endian row-major bytes.</summary>
    public byte[] Data { get; }

    /// <summary>Number of elements (product of the shape; 1 for a scalar).</summary>
    public long ElementCount => Data.Length / SafeTensors.ElementSize(DType);

    /// <summary>A float32 tensor holding a copy of <paramref name="data"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="data"/>'s length is not the shape's element count.</exception>
    public static SafeTensor FromFloat32(int[] shape, ReadOnlySpan<float> data) =>
        new(SafeTensorDType.Float32, shape, ToLittleEndian(data, shape, BinaryPrimitives.WriteSingleLittleEndian));

    /// <summary>An int64 tensor holding a copy of <paramref name="data"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="data"/>'s length is not the shape's element count.</exception>
    public static SafeTensor FromInt64(int[] shape, ReadOnlySpan<long> data) =>
        new(SafeTensorDType.Int64, shape, ToLittleEndian(data, shape, BinaryPrimitives.WriteInt64LittleEndian));

    /// <summary>The elements of a <see cref="SafeTensorDType.Float32"/> tensor.</summary>
    /// <exception cref="InvalidOperationException">The tensor has another element type.</exception>
    public float[] ToFloat32() => FromLittleEndian(SafeTensorDType.Float32, BinaryPrimitives.ReadSingleLittleEndian);

    /// <summary>The elements of an <see cref="SafeTensorDType.Int64"/> tensor.</summary>
    /// <exception cref="InvalidOperationException">The tensor has another element type.</exception>
    public long[] ToInt64() => FromLittleEndian(SafeTensorDType.Int64, BinaryPrimitives.ReadInt64LittleEndian);

    private delegate void Writer<T>(Span<byte> destination, T value);

    private delegate T Reader<T>(ReadOnlySpan<byte> source);

    private static byte[] ToLittleEndian<T>(ReadOnlySpan<T> data, int[] shape, Writer<T> write) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(shape);
        long count = SafeTensors.ElementCount(shape);
        if (count != data.Length)
            throw new ArgumentException($"shape {SafeTensors.FormatShape(shape)} holds {count} elements, data has {data.Length}", nameof(data));
        if (BitConverter.IsLittleEndian) return MemoryMarshal.AsBytes(data).ToArray();
        int size = Marshal.SizeOf<T>();
        var bytes = new byte[data.Length * size];
        for (int i = 0; i < data.Length; i++) write(bytes.AsSpan(i * size), data[i]);
        return bytes;
    }

    private T[] FromLittleEndian<T>(SafeTensorDType expected, Reader<T> read) where T : unmanaged
    {
        if (DType != expected)
            throw new InvalidOperationException($"tensor is {DType}, not {expected}");
        if (BitConverter.IsLittleEndian) return MemoryMarshal.Cast<byte, T>(Data).ToArray();
        int size = Marshal.SizeOf<T>();
        var values = new T[Data.Length / size];
        for (int i = 0; i < values.Length; i++) values[i] = read(Data.AsSpan(i * size));
        return values;
    }
}

/// <summary>The contents of a safetensors file.</summary>
/// <param name="Metadata">The <c>__metadata__</c> string map (empty when the file has none), without the
/// <see cref="SafeTensors.ChecksumKey"/> entry, which <see cref="SafeTensors.Load"/> consumes.</param>
/// <param name="Tensors">The tensors by name, in header order.</param>
public sealed record SafeTensorsFile(IReadOnlyDictionary<string, string> Metadata, IReadOnlyDictionary<string, SafeTensor> Tensors)
{
    /// <summary>
    /// True when the file carried per-tensor checksums and every tensor matched its own; false for a file without
    /// them (written by PyTorch or another library, or by an older version).
    /// </summary>
    public bool ChecksumsVerified { get; init; }
}

/// <summary>
/// Reader and writer of the safetensors format (github.com/huggingface/safetensors): an 8-byte little-endian
/// header length N, N bytes of UTF-8 JSON
/// <c>{"__metadata__": {string: string}, name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...}</c>
/// (offsets relative to the byte buffer after the header), then the byte buffer. Writes are atomic; reads
/// validate everything before allocating and reject malformed files with a one-line
/// <see cref="InvalidDataException"/> naming the file and the problem.
/// <para>
/// Integrity: <see cref="Save(string, IEnumerable{KeyValuePair{string, SafeTensor}}, IReadOnlyDictionary{string, string}?)"/>
/// writes a per-tensor checksum into the metadata: the key <see cref="ChecksumKey"/> (<c>"tensor_sha256"</c>)
/// holds a compact JSON object mapping each tensor name to the lower-case hex SHA-256 of that tensor's bytes in the
/// byte buffer (its <c>data_offsets</c> range, little-endian as stored); in Python,
/// <c>hashlib.sha256(t.numpy().tobytes()).hexdigest()</c>. <see cref="Load"/> checks the structure first, then
/// verifies every tensor against the map when the file has one; files without it (e.g. written by PyTorch) load
/// unverified (<see cref="SafeTensorsFile.ChecksumsVerified"/> is false).
/// </para>
/// </summary>
public static class SafeTensors
{
    /// <summary>Largest header accepted (100 MB, as the reference implementation).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    /// <summary>The reserved header key of the metadata map.</summary>
    public const string MetadataKey = "__metadata__";

    /// <summary>
    /// The metadata key of the per-tensor checksums (a JSON object: tensor name → lower-case hex SHA-256 of its
    /// bytes); written by Save, verified and removed from <see cref="SafeTensorsFile.Metadata"/> by Load.
    /// </summary>
    public const string ChecksumKey = "tensor_sha256";

    private static readonly (SafeTensorDType Type, string Name, int Size)[] DTypes =
    [
        (SafeTensorDType.Bool, "BOOL", 1), (SafeTensorDType.UInt8, "U8", 1), (SafeTensorDType.Int8, "I8", 1),
        (SafeTensorDType.Float8E5M2, "F8_E5M2", 1), (SafeTensorDType.Float8E4M3, "F8_E4M3", 1),
        (SafeTensorDType.Int16, "I16", 2), (SafeTensorDType.UInt16, "U16", 2), (SafeTensorDType.Float16, "F16", 2),
        (SafeTensorDType.BFloat16, "BF16", 2), (SafeTensorDType.Int32, "I32", 4), (SafeTensorDType.UInt32, "U32", 4),
        (SafeTensorDType.Float32, "F32", 4), (SafeTensorDType.Float64, "F64", 8), (SafeTensorDType.Int64, "I64", 8),
        (SafeTensorDType.UInt64, "U64", 8),
    ];

    /// <summary>Bytes per element of <paramref name="dtype"/>.</summary>
    public static int ElementSize(SafeTensorDType dtype) => Find(dtype).Size;

    /// <summary>The header string of <paramref name="dtype"/> (e.g. "F32").</summary>
    public static string DTypeName(SafeTensorDType dtype) => Find(dtype).Name;

    /// <summary>
    /// Writes <paramref name="tensors"/> (in the given order, contiguous) and <paramref name="metadata"/> to
    /// <paramref name="path"/> atomically: everything is validated first, then written to a temporary file in the
    /// same directory, flushed to disk and moved over <paramref name="path"/>. On any failure the temporary file is
    /// deleted and an existing file at <paramref name="path"/> is left untouched.
    /// </summary>
    /// <exception cref="ArgumentException">An empty, duplicate or reserved tensor name, a null metadata entry, or
    /// the reserved metadata key <see cref="ChecksumKey"/>.</exception>
    public static void Save(string path, IEnumerable<KeyValuePair<string, SafeTensor>> tensors,
        IReadOnlyDictionary<string, string>? metadata = null) => Save(path, tensors, metadata, wrap: null);

    /// <summary><see cref="Save(string, IEnumerable{KeyValuePair{string, SafeTensor}}, IReadOnlyDictionary{string, string}?)"/>
    /// with the file stream passed through <paramref name="wrap"/> (tests inject write failures with it).</summary>
    internal static void Save(string path, IEnumerable<KeyValuePair<string, SafeTensor>> tensors,
        IReadOnlyDictionary<string, string>? metadata, Func<Stream, Stream>? wrap)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(tensors);
        var list = tensors.ToList();
        var header = BuildHeader(list, metadata ?? new Dictionary<string, string>());
        string full = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(full) ?? throw new ArgumentException($"path '{path}' has no directory", nameof(path));
        string temp = Path.Combine(directory, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                var stream = wrap?.Invoke(file) ?? file;
                Span<byte> length = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
                stream.Write(length);
                stream.Write(header);
                foreach (var (_, tensor) in list) stream.Write(tensor.Data);
                stream.Flush();
                file.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); }
            catch (IOException) { /* the original exception matters more */ }
            catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>
    /// Reads a whole safetensors file: checks its structure (header length, JSON, dtypes, shapes against byte
    /// counts, offsets within the file, no overlaps or holes), then verifies each tensor's checksum when the file
    /// carries <see cref="ChecksumKey"/>.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is truncated, malformed or corrupted (the message names the
    /// file, the tensor and the problem); nothing larger than the file is ever allocated.</exception>
    public static SafeTensorsFile Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        long fileLength = file.Length;
        if (fileLength < 8)
            throw Bad(path, $"file is {fileLength} bytes, too short for the 8-byte header length (truncated file)");
        Span<byte> lengthBytes = stackalloc byte[8];
        file.ReadExactly(lengthBytes);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        if (headerLength > (ulong)(fileLength - 8))
            throw Bad(path, $"header length {headerLength} reaches beyond the file's {fileLength - 8} bytes after the length (truncated or not a safetensors file)");
        if (headerLength > MaxHeaderBytes)
            throw Bad(path, $"header length {headerLength} exceeds the limit of {MaxHeaderBytes} bytes");
        if (headerLength < 2)
            throw Bad(path, $"header length {headerLength} is too short for a JSON object");
        var header = new byte[headerLength];
        file.ReadExactly(header);
        long bufferLength = fileLength - 8 - (long)headerLength;

        long bufferStart = 8 + (long)headerLength;
        var entries = ParseHeader(path, header, bufferStart, bufferLength, out var metadata);
        CheckLayout(path, entries, bufferLength);
        var checksums = ParseChecksums(path, metadata, entries);
        var tensors = new Dictionary<string, SafeTensor>(entries.Count);
        foreach (var e in entries)
        {
            var data = new byte[e.End - e.Begin];
            file.Position = bufferStart + e.Begin;
            file.ReadExactly(data);
            if (checksums is not null)
            {
                string actual = Convert.ToHexStringLower(SHA256.HashData(data));
                if (!string.Equals(actual, checksums[e.Name], StringComparison.OrdinalIgnoreCase))
                    throw Bad(path, $"tensor '{e.Name}': checksum mismatch (file corrupted?): SHA-256 of its {data.Length} bytes at " +
                        $"data_offsets [{e.Begin}, {e.End}] is {actual}, the header records {checksums[e.Name].ToLowerInvariant()}");
            }
            tensors.Add(e.Name, new SafeTensor(e.DType, e.Shape, data));
        }
        return new SafeTensorsFile(metadata, tensors) { ChecksumsVerified = checksums is not null };
    }

    internal static long ElementCount(int[] shape)
    {
        long count = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"shape {FormatShape(shape)} has a negative dimension", nameof(shape));
            count = checked(count * d);
        }
        return count;
    }

    internal static string FormatShape(IEnumerable<long> shape) => "[" + string.Join(", ", shape) + "]";

    internal static string FormatShape(IEnumerable<int> shape) => "[" + string.Join(", ", shape) + "]";

    private sealed record Entry(string Name, SafeTensorDType DType, int[] Shape, long Begin, long End);

    private static (SafeTensorDType Type, string Name, int Size) Find(SafeTensorDType dtype)
    {
        foreach (var d in DTypes)
            if (d.Type == dtype) return d;
        throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown safetensors dtype");
    }

    private static byte[] BuildHeader(List<KeyValuePair<string, SafeTensor>> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, tensor) in tensors)
        {
            if (string.IsNullOrEmpty(name)) throw new ArgumentException("a tensor name is null or empty", nameof(tensors));
            if (name == MetadataKey) throw new ArgumentException($"'{MetadataKey}' is reserved and cannot name a tensor", nameof(tensors));
            if (!names.Add(name)) throw new ArgumentException($"tensor name '{name}' appears twice", nameof(tensors));
            ArgumentNullException.ThrowIfNull(tensor, $"tensors['{name}']");
        }
        foreach (var (key, value) in metadata)
        {
            if (key is null || value is null)
                throw new ArgumentException($"metadata entry '{key}' has a null key or value", nameof(metadata));
            if (key == ChecksumKey)
                throw new ArgumentException($"metadata key '{ChecksumKey}' is reserved for the per-tensor checksums that Save writes", nameof(metadata));
        }

        using var json = new MemoryStream();
        using (var w = new Utf8JsonWriter(json))
        {
            w.WriteStartObject();
            if (metadata.Count > 0 || tensors.Count > 0)
            {
                w.WriteStartObject(MetadataKey);
                foreach (var (key, value) in metadata) w.WriteString(key, value);
                if (tensors.Count > 0) w.WriteString(ChecksumKey, ChecksumMap(tensors));
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, tensor) in tensors)
            {
                w.WriteStartObject(name);
                w.WriteString("dtype", DTypeName(tensor.DType));
                w.WriteStartArray("shape");
                foreach (int d in tensor.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset += tensor.Data.Length);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        // Pad with spaces so that the byte buffer starts 8-byte aligned (8-byte length + header).
        int padded = (int)((json.Length + 7) / 8 * 8);
        if (padded > MaxHeaderBytes)
            throw new ArgumentException($"header of {padded} bytes exceeds the readable limit of {MaxHeaderBytes} bytes", nameof(tensors));
        var header = new byte[padded];
        json.GetBuffer().AsSpan(0, (int)json.Length).CopyTo(header);
        header.AsSpan((int)json.Length).Fill((byte)' ');
        return header;
    }

    /// <summary>The <see cref="ChecksumKey"/> value: compact JSON, tensor name → lower-case hex SHA-256 of its bytes.</summary>
    private static string ChecksumMap(List<KeyValuePair<string, SafeTensor>> tensors)
    {
        using var json = new MemoryStream();
        using (var w = new Utf8JsonWriter(json))
        {
            w.WriteStartObject();
            foreach (var (name, tensor) in tensors) w.WriteString(name, Convert.ToHexStringLower(SHA256.HashData(tensor.Data)));
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(json.GetBuffer(), 0, (int)json.Length);
    }

    /// <summary>
    /// Takes the <see cref="ChecksumKey"/> entry out of <paramref name="metadata"/> and checks it: a JSON object
    /// with one 64-hex-digit string for every tensor and for nothing else. Null when the file has no checksums.
    /// </summary>
    private static Dictionary<string, string>? ParseChecksums(string path, Dictionary<string, string> metadata, List<Entry> entries)
    {
        if (!metadata.Remove(ChecksumKey, out var text)) return null;
        var checksums = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            using var doc = JsonDocument.Parse(text);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw Bad(path, $"metadata '{ChecksumKey}' is a JSON {doc.RootElement.ValueKind}, not an object of tensor name → SHA-256");
            foreach (var item in doc.RootElement.EnumerateObject())
            {
                string? hex = item.Value.ValueKind == JsonValueKind.String ? item.Value.GetString() : null;
                if (hex is null || hex.Length != 64 || !hex.All(char.IsAsciiHexDigit))
                    throw Bad(path, $"metadata '{ChecksumKey}': the checksum of tensor '{item.Name}' is {item.Value.GetRawText()}, not 64 hex digits");
                if (!checksums.TryAdd(item.Name, hex))
                    throw Bad(path, $"metadata '{ChecksumKey}': tensor '{item.Name}' appears twice");
            }
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: metadata '{ChecksumKey}' is not valid JSON ({e.Message})", e);
        }
        var names = entries.Select(e => e.Name).ToHashSet(StringComparer.Ordinal);
        if (checksums.Keys.FirstOrDefault(n => !names.Contains(n)) is { } stray)
            throw Bad(path, $"metadata '{ChecksumKey}' has a checksum for tensor '{stray}', which the file does not hold (file corrupted?)");
        if (entries.FirstOrDefault(e => !checksums.ContainsKey(e.Name)) is { } missing)
            throw Bad(path, $"tensor '{missing.Name}' has no checksum in metadata '{ChecksumKey}' (file corrupted?)");
        return checksums;
    }

    private static List<Entry> ParseHeader(string path, byte[] header, long bufferStart, long bufferLength, out Dictionary<string, string> metadata)
    {
        if (header[0] != (byte)'{')
            throw Bad(path, $"header starts with byte 0x{header[0]:X2}, not '{{'");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(header);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: header is not valid JSON ({e.Message})", e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw Bad(path, $"header is a JSON {doc.RootElement.ValueKind}, not an object");
            metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var entries = new List<Entry>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in doc.RootElement.EnumerateObject())
            {
                string name = property.Name;
                if (!seen.Add(name))
                    throw Bad(path, $"header key '{name}' appears twice");
                if (name == MetadataKey)
                    ParseMetadata(path, property.Value, metadata);
                else
                    entries.Add(ParseEntry(path, name, property.Value, bufferStart, bufferLength));
            }
            return entries;
        }
    }

    private static void ParseMetadata(string path, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw Bad(path, $"'{MetadataKey}' is a JSON {value.ValueKind}, not an object of strings");
        foreach (var item in value.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
                throw Bad(path, $"metadata '{item.Name}' is a JSON {item.Value.ValueKind}, not a string");
            if (!metadata.TryAdd(item.Name, item.Value.GetString()!))
                throw Bad(path, $"metadata key '{item.Name}' appears twice");
        }
    }

    private static Entry ParseEntry(string path, string name, JsonElement value, long bufferStart, long bufferLength)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw Bad(path, $"tensor '{name}': entry is a JSON {value.ValueKind}, not an object");
        if (!value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw Bad(path, $"tensor '{name}': missing or non-string \"dtype\"");
        string dtypeName = dtypeElement.GetString()!;
        int index = Array.FindIndex(DTypes, d => d.Name == dtypeName);
        if (index < 0)
            throw Bad(path, $"tensor '{name}': unknown dtype \"{dtypeName}\" (known: {string.Join(", ", DTypes.Select(d => d.Name))})");
        var (dtype, _, size) = DTypes[index];

        var shape = ReadIntegers(path, name, value, "shape");
        var offsets = ReadIntegers(path, name, value, "data_offsets");
        if (offsets.Length != 2)
            throw Bad(path, $"tensor '{name}': \"data_offsets\" has {offsets.Length} values, expected [begin, end]");
        long begin = offsets[0], end = offsets[1];
        if (begin < 0 || end < begin)
            throw Bad(path, $"tensor '{name}': data_offsets [{begin}, {end}] are out of range (need 0 <= begin <= end)");
        if (end > bufferLength)
            throw Bad(path, $"tensor '{name}': data_offsets [{begin}, {end}] are out of range for a byte buffer of {bufferLength} bytes " +
                $"(the file has {bufferStart + bufferLength} bytes, this tensor needs {bufferStart + end}: truncated file?)");

        // Shape dimensions: non-negative, each within int (host arrays), byte count without overflow.
        long bytes = size;
        foreach (long d in shape)
        {
            if (d < 0)
                throw Bad(path, $"tensor '{name}': shape {FormatShape(shape)} has a negative dimension");
            if (d > int.MaxValue)
                throw Bad(path, $"tensor '{name}': shape {FormatShape(shape)} has a dimension beyond {int.MaxValue}");
        }
        if (shape.Contains(0)) bytes = 0;
        else
            foreach (long d in shape)
            {
                if (bytes > long.MaxValue / d) { bytes = -1; break; } // beyond 64 bits: more than any range holds
                bytes *= d;
            }
        if (bytes != end - begin)
            throw Bad(path, $"tensor '{name}': shape {FormatShape(shape)} of {dtypeName} needs " +
                (bytes < 0 ? "more than 2^63 bytes, not" : $"{bytes} bytes, not") + $" the {end - begin} bytes of data_offsets [{begin}, {end}]");
        return new Entry(name, dtype, shape.Select(d => (int)d).ToArray(), begin, end);
    }

    private static long[] ReadIntegers(string path, string name, JsonElement entry, string key)
    {
        if (!entry.TryGetProperty(key, out var array) || array.ValueKind != JsonValueKind.Array)
            throw Bad(path, $"tensor '{name}': missing or non-array \"{key}\"");
        var values = new long[array.GetArrayLength()];
        int i = 0;
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out values[i]))
                throw Bad(path, $"tensor '{name}': \"{key}\"[{i}] is {item.GetRawText()}, not a 64-bit integer");
            i++;
        }
        return values;
    }

    /// <summary>
    /// The spec's layout rules: tensors may be listed in any order, but their byte ranges must not overlap and
    /// must cover the whole buffer without holes (which rules out hidden payloads / polyglot files).
    /// </summary>
    private static void CheckLayout(string path, List<Entry> entries, long bufferLength)
    {
        var sorted = entries.OrderBy(e => e.Begin).ThenBy(e => e.End).ToList();
        long covered = 0;
        Entry? previous = null;
        foreach (var e in sorted)
        {
            if (e.Begin < covered)
                throw Bad(path, $"tensor '{e.Name}' data_offsets [{e.Begin}, {e.End}] overlap tensor '{previous!.Name}' [{previous.Begin}, {previous.End}]");
            if (e.Begin > covered)
                throw Bad(path, $"bytes [{covered}, {e.Begin}) of the byte buffer belong to no tensor (holes are not allowed)");
            covered = e.End;
            if (e.End > e.Begin) previous = e;
        }
        if (covered != bufferLength)
            throw Bad(path, $"the byte buffer has {bufferLength} bytes but the tensors cover {covered} (trailing bytes or truncated file)");
    }

    private static InvalidDataException Bad(string path, string message) => new($"{path}: {message}");
}
