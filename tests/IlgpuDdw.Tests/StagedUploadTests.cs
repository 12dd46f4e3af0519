using IlgpuDdw.Runtime;

namespace IlgpuDdw.Tests;

/// <summary>
/// <see cref="StagedUpload{T}"/>: page-locked double-buffered uploads arrive intact, do not count as synchronisations,
/// and never overwrite a queued copy: on Cuda a reused buffer first waits for the event after its last copy; on the CPU
/// accelerator copies run when queued, so nothing waits. On Cuda the copies run on a second stream with events between the
/// streams (<see cref="CudaStreamEvent"/>); that path needs a GPU to test.
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
    public void ABufferReusedBeforeAnySync_OnTheCpuAccelerator_DoesNotWait_AndDifferentLengthsGrowTheBuffers()
    {
        var d = fx.Device;
        using var staging = new StagedUpload<int>(d);
        using var a = IntTensor.FromArray(d, new int[3]);
        using var b = IntTensor.FromArray(d, new int[9]);
        staging.Upload([1, 2, 3], a.View);
        staging.Upload([1, 2, 3, 4, 5, 6, 7, 8, 9], b.View);
        Assert.Equal(0, staging.Waits);
        int syncs = d.Synchronizations;
        staging.Upload([7, 8, 9], a.View); // slot 0 again, no synchronisation since its copy was queued: it has run
        staging.Upload([9, 8, 7, 6, 5, 4, 3, 2, 1], b.View);
        Assert.Equal(0, staging.Waits);
        Assert.Equal(0, staging.EventWaits);
        Assert.Equal(syncs, d.Synchronizations);
        var ha = new int[3];
        var hb = new int[9];
        d.Download(a.View, ha.AsSpan());
        d.Download(b.View, hb.AsSpan());
        Assert.Equal([7, 8, 9], ha);
        Assert.Equal([9, 8, 7, 6, 5, 4, 3, 2, 1], hb);
        Assert.Throws<ArgumentException>(() => staging.Upload([1, 2], a.View));
    }

    [Fact]
    public void TheUploadStreamsEvents_WithoutACudaDriver_FailInOneClearLine()
    {
        // the Cuda path's cross-stream events come from the driver (libcuda.so.1); here there is none, and saying so is all it may do
        if (System.Runtime.InteropServices.NativeLibrary.TryLoad("libcuda.so.1", out var driver))
        {
            System.Runtime.InteropServices.NativeLibrary.Free(driver);
            return;
        }
        var e = Assert.Throws<InvalidOperationException>(() => new CudaStreamEvent());
        Assert.Equal("The CUDA driver (libcuda.so.1) could not be loaded.", e.Message);
    }
}
