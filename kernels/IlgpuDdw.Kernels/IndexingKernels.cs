using ILGPU;

namespace IlgpuDdw.Kernels;

/// <summary>
/// Row gather/scatter over the leading (batch) dimension: used by dead-node skipping to run a block on the
/// samples that need it and to place the results (and a shared constant row) back into the full batch.
/// </summary>
public static class IndexingKernels
{
    /// <summary>
    /// <c>dst[dstRows[r]·rowLength + c] = src[srcRows[r]·rowLength + c]</c> for r &lt; rows, c &lt; rowLength
    /// (n = rows·rowLength; grid-stride). Overwrites the addressed rows of dst; the row indices are validated on
    /// the host. With srcRows = [0, 0, ...] it broadcasts one row.
    /// </summary>
    [Kernel]
    public static void CopyRows(Index1D index, int n, int stride, int rowLength, ArrayView<int> srcRows, ArrayView<int> dstRows,
        ArrayView<float> src, ArrayView<float> dst)
    {
        for (int e = index; e < n; e += stride)
        {
            int r = e / rowLength;
            int c = e - r * rowLength;
            dst[dstRows[r] * rowLength + c] = src[srcRows[r] * rowLength + c];
        }
    }
}
