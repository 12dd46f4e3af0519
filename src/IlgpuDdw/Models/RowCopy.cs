namespace IlgpuDdw.Models;

/// <summary>
/// Copies whole samples (rows of the leading dimension) between tensors with the <c>CopyRows</c> kernel, for
/// dead-node skipping at inference. Not differentiable (no tape).
/// </summary>
public static class RowCopy
{
    /// <summary><c>dst[dstRows[r]] = src[srcRows[r]]</c> for every r (rows are whole samples).</summary>
    /// <exception cref="ArgumentException">Sample sizes differ, row lists differ in length, or a row is out of range.</exception>
    public static void Copy(Tensor src, int[] srcRows, Tensor dst, int[] dstRows)
    {
        ArgumentNullException.ThrowIfNull(src);
        ArgumentNullException.ThrowIfNull(dst);
        int rowLength = src.Length / src.Dim(0);
        if (dst.Length / dst.Dim(0) != rowLength)
            throw new ArgumentException($"RowCopy: sample sizes differ: {src.ShapeString} and {dst.ShapeString}.");
        if (srcRows.Length != dstRows.Length)
            throw new ArgumentException($"RowCopy: {srcRows.Length} source rows but {dstRows.Length} destination rows.");
        foreach (int r in srcRows)
            if (r < 0 || r >= src.Dim(0)) throw new ArgumentException($"RowCopy: source row {r} is outside 0..{src.Dim(0) - 1}.");
        foreach (int r in dstRows)
            if (r < 0 || r >= dst.Dim(0)) throw new ArgumentException($"RowCopy: destination row {r} is outside 0..{dst.Dim(0) - 1}.");
        if (srcRows.Length == 0) return;
        var d = src.Device;
        using var s = IntTensor.FromArray(d, srcRows);
        using var t = IntTensor.FromArray(d, dstRows);
        int n = srcRows.Length * rowLength, ext = d.Extent(n);
        d.Kernels.CopyRows(d.Stream, ext, n, ext, rowLength, s.View, t.View, src.View, dst.View);
        d.Synchronize(); // the index buffers are freed on return
    }
}
