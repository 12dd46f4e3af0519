using IlgpuDdw.Autograd;
using IlgpuDdw.Data;
using IlgpuDdw.Models;
using IlgpuDdw.Nn;

namespace IlgpuDdw.Training;

/// <summary>What <see cref="BatchNormRecalibration.Recalibrate"/> did.</summary>
/// <param name="Images">Training images the statistics were recomputed on.</param>
/// <param name="Batches">Forward passes (batches) run.</param>
/// <param name="Layers">Batch-norm layers recalibrated.</param>
public sealed record RecalibrationResult(int Images, int Batches, int Layers);

/// <summary>
/// Precise batch norm: recomputes every batch norm's running statistics with the model's final wiring. The wiring
/// runs as at evaluation (no gate noise, dead-node skipping as set), each batch norm in training mode over the live
/// samples of each node, with momentum 1/(k + 1) for batch k, so that after K batches the running mean is the mean
/// of the K batch means and the running variance the mean of the K unbiased batch variances (a layer whose node had
/// fewer than 2 live values in a batch keeps that batch out). No parameter changes; no gradient is recorded.
/// </summary>
public static class BatchNormRecalibration
{
    /// <summary>
    /// Recalibrates <paramref name="model"/> on the first <paramref name="images"/> images of <paramref name="data"/> in
    /// batches of <paramref name="batchSize"/>; leaves the model in evaluation mode.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="images"/> is not in 1..data.Count, or the batch size is below 2.</exception>
    public static RecalibrationResult Recalibrate(DdwNet model, ImageDataset data, int images, int batchSize = 256)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        if (images < 1 || images > data.Count)
            throw new ArgumentException($"recalibrate-bn: --images {images} must be in 1..{data.Count} (the training images available).", nameof(images));
        if (batchSize < 2)
            throw new ArgumentException($"recalibrate-bn: batch size {batchSize} must be at least 2 (a batch variance needs two values).", nameof(batchSize));
        var norms = model.NamedModules().Select(m => m.Module).OfType<BatchNorm2d>().ToArray();
        var device = model.Device;
        model.Eval();
        foreach (var bn in norms)
        {
            bn.Train();
            bn.RunningMean.Fill(0f);
            bn.RunningVar.Fill(1f);
        }
        int batches = 0;
        using var tape = new Tape(device);
        try
        {
            for (int start = 0; start < images; start += batchSize, batches++)
            {
                int count = Math.Min(batchSize, images - start);
                if (count < 2 && batches > 0) break; // a last batch of one image has no variance
                foreach (var bn in norms) bn.MomentumOverride = 1f / (batches + 1);
                using (tape.NoGrad())
                {
                    var x = tape.Own(Tensor.FromArray(device, data.Images.AsSpan(start * data.SampleLength, count * data.SampleLength),
                        count, data.Channels, data.Height, data.Width));
                    model.Forward(tape, x);
                }
                tape.Clear();
            }
        }
        finally
        {
            foreach (var bn in norms) bn.MomentumOverride = null;
            model.Eval();
        }
        device.Synchronize();
        return new RecalibrationResult(images, batches, norms.Length);
    }
}
