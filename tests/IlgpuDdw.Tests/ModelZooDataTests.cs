using IlgpuDdw.Data;
using IlgpuDdw.Models;
using IlgpuDdw.Training;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Tests;

/// <summary>Every zoo model trains on a data set's channels, classes and (resized) image side.</summary>
[Collection("cpu-cli")]
public sealed class ModelZooDataTests(DeviceFixture fx)
{
    [Fact]
    public void WithData_ChangesOnlyTheStemsFirstConvolutionAndTheClassifier()
    {
        var imageNet = ModelZoo.Get("resnet18");
        var fashion = ModelZoo.Get("resnet18", 32, channels: 1, classes: 10);
        Assert.Equal((1, 32, 10), (fashion.InputChannels, fashion.InputSize, fashion.NumClasses));
        // torchvision's 11,689,512 less 2·64·7·7 stem weights and 990 classes × (512 + 1).
        Assert.Equal(11_689_512 - 2 * 64 * 49 - 990 * 513, CostModel.Compute(fashion).TotalParameters);
        Assert.Equal(imageNet.Stages, fashion.Stages);
        Assert.Equal(imageNet.Stem.Skip(1), fashion.Stem.Skip(1));
        Assert.Same(imageNet, imageNet.WithData(3, 1000));
        var e = Assert.Throws<ArgumentException>(() => ModelZoo.Get("resnet18", 16, 1, 10));
        Assert.Contains("minimum is 32", e.Message);
    }

    public static TheoryData<string> Models() => [.. ModelZoo.Names];

    [Theory]
    [MemberData(nameof(Models))]
    public void EveryModel_TrainsAStep_OnOneChannelImagesAtItsSmallestInput(string name)
    {
        var native = ModelZoo.Get(name).WithData(1, 10);
        var spec = ModelZoo.Get(name, native.MinimumInputSize, 1, 10);
        var wiring = new WiringConfig { Kind = name == "resnet18" ? WiringKind.Dynamic : WiringKind.Chain };
        using var model = new DdwNet(fx.Device, spec, wiring, seed: 1);
        Assert.Equal(CostModel.Compute(spec, wiring.Kind).TotalParameters, model.Parameters().Sum(p => (long)p.Length));
        // Two images whose last feature maps are 1×1: batch norm there sees two values per channel, so the first
        // gradient is large (up to 1e19 for regnet_x_400mf, so the test loss after the step can be NaN); the
        // gradient-norm guard is off: the forward, backward and step run, and the training loss is finite.
        var train = TrainerTests.Synthetic(2, 1, spec.InputSize);
        using (var trainer = new Trainer(model, train, TrainerTests.Synthetic(2, 2, spec.InputSize),
            new TrainerOptions { Epochs = 1, BatchSize = 2, EvalBatchSize = 2, Seed = 1, MaxGradNorm = 0 }))
        {
            var r = trainer.RunEpoch();
            Assert.True(double.IsFinite(r.TrainLoss) && r.TrainLoss > 0, $"{name}: training loss {r.TrainLoss}");
            Assert.Equal(1, trainer.Step);
        }
        fx.Device.TrimPool();
    }

    [Fact]
    public void Resize_IsPyTorchsBilinearWithoutAlignCorners()
    {
        var data = new ImageDataset([0f, 1f, 2f, 3f], [0], 1, 2, 2, 1);
        var big = data.Resize(4);
        // torch.nn.functional.interpolate(torch.tensor([[[[0., 1], [2, 3]]]]), size=4, mode="bilinear", align_corners=False)
        Assert.Equal([0f, 0.25f, 0.75f, 1f, 0.5f, 0.75f, 1.25f, 1.5f, 1.5f, 1.75f, 2.25f, 2.5f, 2f, 2.25f, 2.75f, 3f], big.Images);
        Assert.Equal((4, 4, 1), (big.Height, big.Width, big.Count));
        Assert.Same(data, data.Resize(2));
        var small = big.Resize(2); // 4 → 2 samples the centres between pixel pairs
        Assert.Equal([0.375f, 1.125f, 1.875f, 2.625f], small.Images);
    }

    [Fact]
    public void Train_Resnet18_OnFashionMnist_At32_ReportsItsParameters_AndEvalReadsTheCheckpoint()
    {
        if (!File.Exists(Path.Combine(FashionMnist.DefaultDirectory, "train-images-idx3-ubyte.gz"))) return; // data not installed
        using var dir = new TempDirectory();
        var (code, output, err) = CliTests.Run("train", "--device", "cpu", "--model", "resnet18", "--input-size", "32", "--wiring", "chain",
            "--train-images", "8", "--test-images", "4", "--batch", "4", "--eval-batch", "4", "--out", dir.Path);
        Assert.True(code == 0, err);
        Assert.Contains("resnet18 for 1×32×32 inputs and 10 classes, chain wiring: 11,175,370 parameters", output);
        Assert.Contains("images resized from 28×28 to 32×32", output);
        Assert.Contains("train: epoch 1/1 trained (loss ", output); // the evaluation phase is announced
        Assert.Contains("evaluating on the test set", output);
        var info = Checkpoint.ReadInfo(Path.Combine(dir.Path, "checkpoint.safetensors"));
        Assert.Equal((32, 1, 10), (info.InputSize, info.InputChannels, info.NumClasses));
        (code, output, err) = CliTests.Run("eval", "--device", "cpu", "--checkpoint", Path.Combine(dir.Path, "checkpoint.safetensors"), "--test-images", "4");
        Assert.True(code == 0, err);
        Assert.Contains("resnet18", output);
    }
}
