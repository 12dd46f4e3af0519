using IlgpuDdw.Autograd;
using IlgpuDdw.Models;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Tests;

/// <summary>Eager freeing in the backward pass must not change any gradient of a dynamic network.</summary>
[Collection("cpu")]
public sealed class TapeEagerFreeingTests(DeviceFixture fx)
{
    [Fact]
    public void EagerFreeing_KeepsTheAdjacencyGradient_UntilEveryGateHasRun()
    {
        var d = fx.Device;
        var data = TrainerTests.Synthetic(4, 1);
        (float[][] All, float[] FirstRouterBias) Run(bool eager)
        {
            using var model = new DdwNet(d, ModelZoo.Get("resnet_mini", 8), new WiringConfig { Kind = WiringKind.Dynamic }, seed: 1);
            using var tape = new Tape(d) { FreeGradsEagerly = eager, FreeActivationsEagerly = eager };
            var x = tape.Own(Tensor.FromArray(d, data.Images, 4, 1, 8, 8));
            using var labels = IntTensor.FromArray(d, data.Labels);
            tape.Backward(tape.CrossEntropy(model.Forward(tape, x), labels));
            var grads = model.Parameters().Select(p => p.GradToArray()).ToArray();
            var bias = model.Stages[0].Wiring!.Routers[0].Fc2.Bias!.GradToArray();
            tape.Clear();
            return (grads, bias);
        }
        var (plain, bias) = Run(false);
        var (eager, eagerBias) = Run(true);
        Assert.Equal(plain.Length, eager.Length);
        for (int i = 0; i < plain.Length; i++) Assert.Equal(plain[i], eager[i]);
        // Every out-edge of the first router carries a gradient (the output node's edge included).
        Assert.True(bias.Length >= 2);
        Assert.DoesNotContain(0f, eagerBias);
    }
}
