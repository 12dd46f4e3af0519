namespace IlgpuDdw.Kernels.Reference;

/// <summary>CPU reference of <see cref="IndexingKernels"/>.</summary>
public static class IndexingReference
{
    /// <summary><c>dst[dstRows[r]] = src[srcRows[r]]</c> row by row.</summary>
    public static void CopyRows<T>(int rowLength, ReadOnlySpan<int> srcRows, ReadOnlySpan<int> dstRows, ReadOnlySpan<T> src, Span<T> dst)
    {
        for (int r = 0; r < srcRows.Length; r++)
            src.Slice(srcRows[r] * rowLength, rowLength).CopyTo(dst.Slice(dstRows[r] * rowLength, rowLength));
    }
}
