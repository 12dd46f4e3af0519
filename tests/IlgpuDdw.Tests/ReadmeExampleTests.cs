using IlgpuDdw.Autograd;
using IlgpuDdw.Data;
using IlgpuDdw.Models;
using IlgpuDdw.Training;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Tests;

/// <summary>The README's "your own loop" example, kept compiling and running.</summary>
[Collection("cpu")]
public sealed class ReadmeExampleTests(DeviceFixture fx)
{
    [Fact]
    public void OwnTrainingLoop_AsInTheReadme()
    {
        var device = fx.Device;
        using var model = DdwNet.Create(device, "resnet_mini", new WiringConfig { Kind = WiringKind.Dynamic, Tau = 0.5f }, seed: 0);
        var train = FashionMnist.Load(DatasetSplit.Test); // the smaller split keeps the test fast
        using var opt = new Sgd(model.Parameters(), lr: 0.02f, momentum: 0.9f, weightDecay: 5e-4f);
        using var tape = new Tape(device) { FreeGradsEagerly = true, FreeActivationsEagerly = true };
        using var x = Tensor.FromArray(device, train.Images.AsSpan(0, 32 * 784), 32, 1, 28, 28);
        using var y = IntTensor.FromArray(device, train.Labels.AsSpan(0, 32));
        var loss = tape.CrossEntropy(model.Forward(tape, x), y);
        var adjacency = model.Stages[0].LastAdjacency!.Read();
        opt.ZeroGrad();
        tape.Backward(loss);
        opt.Step();
        Assert.True(float.IsFinite(loss.ToArray()[0]));
        tape.Clear();
        Assert.Equal(32, adjacency.GetLength(0));
        Assert.Equal(4, adjacency.GetLength(1));
    }
}
