using IlgpuDdw.Runtime;

namespace IlgpuDdw.Tests;

/// <summary>
/// <see cref="StagedUpload{T}"/>: page-locked double-buffered uploads arrive intact, do not count as synchronisations,
/// and wait only when a buffer would be reused before any synchronisation (so a queued copy is never overwritten).
/// </summary>
[Collection("cpu")]
public sealed class StagedUploadTests(DeviceFixture fx)
{
    [Fact]
    public void Uploads_Arrive_WithoutSynchronising_WhileEachBufferIsReusedAfterASync()
    {
        var d = fx.Device;
        using var staging = new StagedUpload<float>(d);
        using var t = Tensor.Empty(d, 37);
        int syncs = d.Synchronizations;
        for (int step = 0; step < 5; step++)
        {
            var values = Enumerable.Range(0, 37).Select(i => (float)(step * 100 + i)).ToArray();
            staging.Upload(values, t.View);
            Assert.Equal(values, t.ToArray()); // ToArray is the step's one synchronisation
        }
        Assert.Equal(5, d.Synchronizations - syncs);
        Assert.Equal(0, staging.Waits);
    }

    [Fact]
    public void ABufferReusedBeforeAnySync_WaitsFirst_AndDifferentLengthsGrowTheBuffers()
    {
        var d = fx.Device;
        using var staging = new StagedUpload<int>(d);
        using var a = IntTensor.FromArray(d, new int[3]);
        using var b = IntTensor.FromArray(d, new int[9]);
        staging.Upload([1, 2, 3], a.View);
        staging.Upload([1, 2, 3, 4, 5, 6, 7, 8, 9], b.View);
        Assert.Equal(0, staging.Waits);
        staging.Upload([7, 8, 9], a.View); // slot 0 again, no synchronisation since its copy was queued
        Assert.Equal(1, staging.Waits);
        staging.Upload([9, 8, 7, 6, 5, 4, 3, 2, 1], b.View); // slot 1: the wait above synchronised after its copy
        Assert.Equal(1, staging.Waits);
        var ha = new int[3];
        var hb = new int[9];
        d.Download(a.View, ha.AsSpan());
        d.Download(b.View, hb.AsSpan());
        Assert.Equal([7, 8, 9], ha);
        Assert.Equal([9, 8, 7, 6, 5, 4, 3, 2, 1], hb);
        Assert.Throws<ArgumentException>(() => staging.Upload([1, 2], a.View));
    }
}
