using System.Buffers.Binary;
using System.IO.Compression;
using System.Numerics;
using System.Security.Cryptography;

namespace IlgpuDdw.Data;

/// <summary>
/// The contents of an IDX file of unsigned bytes: its dimensions (big-endian in the file, first dimension =
/// item count) and the row-major payload, a slice of the decompressed file that follows the header.
/// </summary>
/// <param name="Source">The file the array was read from (used in error messages).</param>
/// <param name="Dimensions">The dimensions declared by the header.</param>
/// <param name="Data">The payload: exactly the product of <paramref name="Dimensions"/> bytes.</param>
public sealed record IdxArray(string Source, int[] Dimensions, ReadOnlyMemory<byte> Data)
{
    /// <summary>The first dimension: the number of items (images or labels).</summary>
    public int Count => Dimensions[0];

    /// <summary>
    /// Lower-case hex SHA-256 of the uncompressed IDX file holding this array (its unsigned-byte header, then
    /// <see cref="Data"/>): for an array read by <see cref="Idx.Read"/>, the SHA-256 of the decompressed file.
    /// </summary>
    public string Sha256()
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(Idx.Header(Dimensions));
        hash.AppendData(Data.Span);
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }
}

/// <summary>
/// Reader of IDX files (the MNIST container: a 4-byte big-endian magic <c>0x0000TTRR</c>, type TT, rank RR,
/// then RR big-endian 32-bit dimensions, then the row-major data), raw or gzip-compressed. Only the unsigned-byte
/// type (0x08) is read. Every malformed input ends in a one-line <see cref="InvalidDataException"/> naming the file
/// and what is wrong (corrupt gzip stream, wrong magic, truncated header or data, trailing bytes); a checksum is
/// compared only once the structure is valid. No allocation is sized from a header value: the decompressed bytes
/// are read first (up to a cap) and the header is checked against them.
/// </summary>
public static class Idx
{
    /// <summary>Magic of rank-3 unsigned-byte arrays (images: count × rows × columns).</summary>
    public const int ImagesMagic = 0x00000803;

    /// <summary>Magic of rank-1 unsigned-byte arrays (labels).</summary>
    public const int LabelsMagic = 0x00000801;

    /// <summary>Default cap on the decompressed size of one file (1 GiB; Fashion-MNIST's largest is 47 MB).</summary>
    public const long DefaultMaxBytes = 1L << 30;

    private const byte UnsignedByteType = 0x08;

    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    /// <summary>How a file was stored: raw, or gzip whose trailer does or does not match what it decompressed to.</summary>
    private enum Storage { Raw, Gzip, GzipEndsEarly }

    /// <summary>
    /// Reads a whole file, decompressing it when it starts with the gzip signature (0x1F 0x8B) whatever its name.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="maxBytes">The most decompressed bytes accepted; a larger file is rejected before it is read in full.</param>
    /// <exception cref="InvalidDataException">Corrupt gzip data, or more than <paramref name="maxBytes"/> bytes.</exception>
    public static byte[] ReadAllBytes(string path, long maxBytes = DefaultMaxBytes) => ReadFile(path, maxBytes).Bytes;

    private static (byte[] Bytes, Storage Storage) ReadFile(string path, long maxBytes)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (maxBytes <= 0 || maxBytes > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(maxBytes), maxBytes, $"must be in 1..{Array.MaxLength}");
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        Span<byte> signature = stackalloc byte[2];
        int got = file.ReadAtLeast(signature, 2, throwOnEndOfStream: false);
        file.Position = 0;
        if (got < 2 || signature[0] != 0x1F || signature[1] != 0x8B)
        {
            if (file.Length > maxBytes)
                throw new InvalidDataException($"{path}: {file.Length} bytes exceeds the limit of {maxBytes} bytes");
            var raw = new byte[file.Length];
            file.ReadExactly(raw);
            return (raw, Storage.Raw);
        }

        using var output = new MemoryStream();
        using (var gzip = new GZipStream(file, CompressionMode.Decompress, leaveOpen: true))
        {
            var chunk = new byte[1 << 16];
            while (true)
            {
                int n;
                try { n = gzip.Read(chunk); }
                catch (InvalidDataException e)
                {
                    throw new InvalidDataException($"{path}: corrupt gzip stream (bad compressed data or CRC)", e);
                }
                if (n == 0) break;
                if (output.Length + n > maxBytes)
                    throw new InvalidDataException($"{path}: decompresses to more than the limit of {maxBytes} bytes");
                output.Write(chunk, 0, n);
            }
        }
        // GZipStream stops quietly where a cut file ends; the trailer's ISIZE (length mod 2^32) tells.
        Span<byte> trailer = stackalloc byte[4];
        bool complete = false;
        if (file.Length >= 18)
        {
            file.Position = file.Length - 4;
            file.ReadExactly(trailer);
            complete = BinaryPrimitives.ReadUInt32LittleEndian(trailer) == (uint)output.Length;
        }
        return (output.ToArray(), complete ? Storage.Gzip : Storage.GzipEndsEarly);
    }

    /// <summary>
    /// Parses decompressed IDX bytes. The header must carry <paramref name="expectedMagic"/> and its dimensions'
    /// product must equal the number of bytes after the header exactly.
    /// </summary>
    /// <param name="bytes">The whole decompressed file.</param>
    /// <param name="expectedMagic"><see cref="ImagesMagic"/>, <see cref="LabelsMagic"/> or another unsigned-byte magic.</param>
    /// <param name="source">The file name used in error messages.</param>
    /// <exception cref="InvalidDataException">Wrong magic, truncated header or data, or trailing bytes.</exception>
    public static IdxArray Parse(byte[] bytes, int expectedMagic, string source) => Parse(bytes, expectedMagic, source, Storage.Raw);

    private static IdxArray Parse(byte[] bytes, int expectedMagic, string source, Storage storage)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        ArgumentNullException.ThrowIfNull(source);
        if (((expectedMagic >> 8) & 0xFF) != UnsignedByteType || (expectedMagic & unchecked((int)0xFFFF0000)) != 0 || (expectedMagic & 0xFF) == 0)
            throw new ArgumentException($"expected magic 0x{expectedMagic:X8} is not an unsigned-byte IDX magic of rank >= 1", nameof(expectedMagic));
        string file = storage == Storage.Raw ? "file" : "decompressed file";
        string cut = storage == Storage.GzipEndsEarly ? " (the gzip stream ends early: truncated .gz file)" : "";
        if (bytes.Length < 4)
            throw new InvalidDataException($"{source}: truncated file: {file} has {bytes.Length} bytes, too short for an IDX header{cut}");
        int magic = BinaryPrimitives.ReadInt32BigEndian(bytes);
        if (magic != expectedMagic)
            throw new InvalidDataException(
                $"{source}: wrong magic 0x{magic:X8}, expected 0x{expectedMagic:X8} ({Describe(expectedMagic)}): {DescribeMagic(magic, source, storage)}");
        int rank = magic & 0xFF;
        int headerLength = 4 + 4 * rank;
        if (bytes.Length < headerLength)
            throw new InvalidDataException(
                $"{source}: truncated file: {file} has {bytes.Length} bytes, too short for the {headerLength}-byte header of a rank-{rank} IDX file{cut}");

        var dims = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            uint d = BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(4 + 4 * i));
            if (d > int.MaxValue)
                throw new InvalidDataException($"{source}: corrupt header: dimension {i} is {d}, beyond the largest supported {int.MaxValue}");
            dims[i] = (int)d;
        }
        // The exact expected size: a corrupt header's product can exceed 64 bits.
        var expected = headerLength + dims.Aggregate(BigInteger.One, (p, d) => p * d);
        if (expected != bytes.Length)
        {
            string what = expected > bytes.Length
                ? (expected - headerLength > DefaultMaxBytes ? "truncated file or corrupt header" : "truncated file")
                : "trailing bytes or corrupt header";
            throw new InvalidDataException(
                $"{source}: {what}: header says {DescribeDimensions(dims)}, {file} has {bytes.Length.ToString("N0", Invariant)} bytes, " +
                $"expected {expected.ToString("N0", Invariant)}{(expected > bytes.Length ? cut : "")}");
        }
        return new IdxArray(source, dims, bytes.AsMemory(headerLength));
    }

    /// <summary>
    /// Reads and parses one IDX file (raw or gzip), then, when the structure is valid, optionally checks the
    /// SHA-256 of the decompressed bytes.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="expectedMagic">The magic the file must carry.</param>
    /// <param name="expectedSha256">Lower-case hex SHA-256 of the decompressed file, or null to skip the check.</param>
    /// <param name="maxBytes">Cap on the decompressed size.</param>
    /// <exception cref="InvalidDataException">Corrupt or malformed data (saying what is wrong), or a checksum
    /// mismatch of a well-formed file (naming both hashes).</exception>
    public static IdxArray Read(string path, int expectedMagic, string? expectedSha256 = null, long maxBytes = DefaultMaxBytes)
    {
        var (bytes, storage) = ReadFile(path, maxBytes);
        var array = Parse(bytes, expectedMagic, path, storage);
        if (expectedSha256 is not null) CheckSha256(array, expectedSha256, "the expected file");
        return array;
    }

    /// <summary>Lower-case hex SHA-256 of <paramref name="bytes"/>.</summary>
    public static string Sha256Hex(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>Throws unless <paramref name="array"/>'s file has SHA-256 <paramref name="expected"/> (any case).</summary>
    /// <param name="array">A well-formed array.</param>
    /// <param name="expected">The hex digest it must have.</param>
    /// <param name="reference">What the digest belongs to, for the message (e.g. "the published Fashion-MNIST file X").</param>
    internal static void CheckSha256(IdxArray array, string expected, string reference)
    {
        string actual = array.Sha256();
        if (!string.Equals(actual, expected, StringComparison.OrdinalIgnoreCase))
            throw new InvalidDataException(
                $"{array.Source}: structure is valid but SHA-256 differs from {reference}: expected {expected.ToLowerInvariant()}, got {actual}");
    }

    /// <summary>Writes an unsigned-byte IDX file (uncompressed, or gzip when <paramref name="gzip"/> is set).</summary>
    /// <param name="path">The file to create or overwrite.</param>
    /// <param name="dimensions">The dimensions; their product must equal <paramref name="data"/>'s length.</param>
    /// <param name="data">The row-major payload.</param>
    /// <param name="gzip">Compress with gzip.</param>
    public static void Write(string path, int[] dimensions, ReadOnlySpan<byte> data, bool gzip = false)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(dimensions);
        if (dimensions.Length is 0 or > 255 || dimensions.Any(d => d < 0))
            throw new ArgumentException($"dimensions [{string.Join(", ", dimensions)}]: need rank 1..255 and no negative dimension", nameof(dimensions));
        long product = dimensions.Aggregate(1L, (p, d) => p * d);
        if (product != data.Length)
            throw new ArgumentException($"dimensions [{string.Join(", ", dimensions)}] hold {product} bytes but data has {data.Length}", nameof(data));
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write);
        using Stream output = gzip ? new GZipStream(file, CompressionLevel.Fastest) : file;
        output.Write(Header(dimensions));
        output.Write(data);
    }

    /// <summary>The unsigned-byte IDX header of an array with <paramref name="dimensions"/>.</summary>
    internal static byte[] Header(int[] dimensions)
    {
        var header = new byte[4 + 4 * dimensions.Length];
        BinaryPrimitives.WriteInt32BigEndian(header, (UnsignedByteType << 8) | dimensions.Length);
        for (int i = 0; i < dimensions.Length; i++)
            BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4 + 4 * i), dimensions[i]);
        return header;
    }

    /// <summary>"60,000 items of 28×28" (rank ≥ 2) or "60,000 items" (rank 1).</summary>
    private static string DescribeDimensions(int[] dims) =>
        $"{dims[0].ToString("N0", Invariant)} items" + (dims.Length > 1 ? " of " + string.Join("×", dims.Skip(1)) : "");

    private static string Describe(int magic) => magic switch
    {
        ImagesMagic => "unsigned-byte images, rank 3",
        LabelsMagic => "unsigned-byte labels, rank 1",
        _ => $"unsigned bytes, rank {magic & 0xFF}",
    };

    /// <summary>What a wrong magic looks like: the other array of a pair, another IDX array, or not IDX at all.</summary>
    private static string DescribeMagic(int magic, string source, Storage storage)
    {
        if (magic is ImagesMagic or LabelsMagic)
            return $"this is an IDX file of {Describe(magic)} (images and labels files swapped?)";
        if ((magic & unchecked((int)0xFFFF0000)) == 0 && (magic & 0xFF) != 0)
            return $"this is an IDX file of element type 0x{(magic >> 8) & 0xFF:X2}, rank {magic & 0xFF}";
        if (storage != Storage.Raw) return "the decompressed data is not an IDX file";
        return source.EndsWith(".gz", StringComparison.OrdinalIgnoreCase)
            ? "not an IDX file, and not gzip-compressed although named .gz (no 1F 8B signature)"
            : "not an IDX file (nor gzip-compressed)";
    }
}
