using System.Buffers.Binary;
using System.IO.Compression;
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
}

/// <summary>
/// Reader of IDX files (the MNIST container: a 4-byte big-endian magic <c>0x0000TTRR</c>, type TT, rank RR,
/// then RR big-endian 32-bit dimensions, then the row-major data), raw or gzip-compressed. Only the unsigned-byte
/// type (0x08) is read. Every malformed input ends in an <see cref="InvalidDataException"/> naming the file; no
/// allocation is sized from a header value: the decompressed bytes are read first (up to a cap) and the header is
/// checked against them.
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

    /// <summary>
    /// Reads a whole file, decompressing it when it starts with the gzip signature (0x1F 0x8B) whatever its name.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="maxBytes">The most decompressed bytes accepted; a larger file is rejected before it is read in full.</param>
    /// <exception cref="InvalidDataException">Corrupt gzip data, or more than <paramref name="maxBytes"/> bytes.</exception>
    public static byte[] ReadAllBytes(string path, long maxBytes = DefaultMaxBytes)
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
            return raw;
        }

        using var gzip = new GZipStream(file, CompressionMode.Decompress);
        using var output = new MemoryStream();
        var chunk = new byte[1 << 16];
        while (true)
        {
            int n;
            try { n = gzip.Read(chunk); }
            catch (InvalidDataException e) { throw new InvalidDataException($"{path}: corrupt gzip data ({e.Message})", e); }
            if (n == 0) return output.ToArray();
            if (output.Length + n > maxBytes)
                throw new InvalidDataException($"{path}: decompresses to more than the limit of {maxBytes} bytes");
            output.Write(chunk, 0, n);
        }
    }

    /// <summary>
    /// Parses decompressed IDX bytes. The header must carry <paramref name="expectedMagic"/> and its dimensions'
    /// product must equal the number of bytes after the header exactly.
    /// </summary>
    /// <param name="bytes">The whole decompressed file.</param>
    /// <param name="expectedMagic"><see cref="ImagesMagic"/>, <see cref="LabelsMagic"/> or another unsigned-byte magic.</param>
    /// <param name="source">The file name used in error messages.</param>
    /// <exception cref="InvalidDataException">Wrong magic, truncated header or data, or a size mismatch.</exception>
    public static IdxArray Parse(byte[] bytes, int expectedMagic, string source)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        ArgumentNullException.ThrowIfNull(source);
        if (((expectedMagic >> 8) & 0xFF) != UnsignedByteType || (expectedMagic & unchecked((int)0xFFFF0000)) != 0 || (expectedMagic & 0xFF) == 0)
            throw new ArgumentException($"expected magic 0x{expectedMagic:X8} is not an unsigned-byte IDX magic of rank >= 1", nameof(expectedMagic));
        if (bytes.Length < 4)
            throw new InvalidDataException($"{source}: {bytes.Length} bytes is too short for an IDX header (truncated file)");
        int magic = BinaryPrimitives.ReadInt32BigEndian(bytes);
        if (magic != expectedMagic)
            throw new InvalidDataException(
                $"{source}: IDX magic 0x{magic:X8}, expected 0x{expectedMagic:X8} ({Describe(expectedMagic)}); wrong file or not an IDX file");
        int rank = magic & 0xFF;
        int headerLength = 4 + 4 * rank;
        if (bytes.Length < headerLength)
            throw new InvalidDataException($"{source}: {bytes.Length} bytes is too short for a rank-{rank} IDX header of {headerLength} bytes (truncated file)");

        long available = bytes.Length - headerLength;
        var dims = new int[rank];
        long product = 1;
        bool tooLarge = false;
        for (int i = 0; i < rank; i++)
        {
            uint d = BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(4 + 4 * i));
            if (d > int.MaxValue)
                throw new InvalidDataException($"{source}: dimension {i} is {d}, beyond the largest supported {int.MaxValue} (corrupt header)");
            dims[i] = (int)d;
            if (d != 0 && product > available / d) tooLarge = true; // product * d > available; stops overflow too
            else product *= d;
        }
        if (dims.Contains(0)) { product = 0; tooLarge = false; }
        string shape = string.Join("×", dims);
        if (tooLarge || product > available)
            throw new InvalidDataException(
                $"{source}: header declares {shape} = more bytes than the {available} data bytes present (truncated file or corrupt header)");
        if (product < available)
            throw new InvalidDataException(
                $"{source}: header declares {shape} = {product} data bytes but {available} follow the header (trailing bytes or corrupt header)");
        return new IdxArray(source, dims, bytes.AsMemory(headerLength));
    }

    /// <summary>
    /// Reads and parses one IDX file (raw or gzip), optionally checking the SHA-256 of the decompressed bytes.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="expectedMagic">The magic the file must carry.</param>
    /// <param name="expectedSha256">Lower-case hex SHA-256 of the decompressed file, or null to skip the check.</param>
    /// <param name="maxBytes">Cap on the decompressed size.</param>
    /// <exception cref="InvalidDataException">Corrupt or mismatching data, or a checksum mismatch (naming both hashes).</exception>
    public static IdxArray Read(string path, int expectedMagic, string? expectedSha256 = null, long maxBytes = DefaultMaxBytes)
    {
        var bytes = ReadAllBytes(path, maxBytes);
        if (expectedSha256 is not null)
        {
            string actual = Sha256Hex(bytes);
            if (!string.Equals(actual, expectedSha256, StringComparison.OrdinalIgnoreCase))
                throw new InvalidDataException(
                    $"{path}: SHA-256 of the decompressed data is {actual}, expected {expectedSha256.ToLowerInvariant()}: the file is corrupt or not the expected one");
        }
        return Parse(bytes, expectedMagic, path);
    }

    /// <summary>Lower-case hex SHA-256 of <paramref name="bytes"/>.</summary>
    public static string Sha256Hex(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

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
        var header = new byte[4 + 4 * dimensions.Length];
        BinaryPrimitives.WriteInt32BigEndian(header, (UnsignedByteType << 8) | dimensions.Length);
        for (int i = 0; i < dimensions.Length; i++)
            BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4 + 4 * i), dimensions[i]);
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write);
        using Stream output = gzip ? new GZipStream(file, CompressionLevel.Fastest) : file;
        output.Write(header);
        output.Write(data);
    }

    private static string Describe(int magic) => magic switch
    {
        ImagesMagic => "unsigned-byte images, rank 3",
        LabelsMagic => "unsigned-byte labels, rank 1",
        _ => $"unsigned bytes, rank {magic & 0xFF}",
    };
}
