// The README's "your own loop" against the packed IlgpuDdw package: a few SGD steps of resnet_mini with dynamic
// wiring on the CPU device, over the first images of Fashion-MNIST's training split. Prints the loss of each step;
// exits 1 if a loss is not finite.
//   dotnet run --project tests/examples/CustomTrainer [-- STEPS]
using IlgpuDdw;
using IlgpuDdw.Autograd;
using IlgpuDdw.Data;
using IlgpuDdw.Models;
using IlgpuDdw.Training;
using IlgpuDdw.Wiring;

const int batch = 32;
int steps = args.Length > 0 ? int.Parse(args[0]) : 3;
if (steps < 1) { Console.Error.WriteLine($"steps must be at least 1, got {steps}"); return 2; }

using var device = IlgpuDdw.Runtime.Device.Create("cpu");
using var model = DdwNet.Create(device, "resnet_mini", new WiringConfig { Kind = WiringKind.Dynamic, Tau = 0.5f }, seed: 0);
var train = FashionMnist.Load(DatasetSplit.Train).Subset(steps * batch);

// Your own loop: one tape, ops record their backward, Clear frees the step's tensors.
using var opt = new Sgd(model.Parameters(), lr: 0.02f, momentum: 0.9f, weightDecay: 5e-4f);
using var tape = new Tape(device) { FreeGradsEagerly = true, FreeActivationsEagerly = true };
for (int step = 0; step < steps; step++)
{
    using var x = Tensor.FromArray(device, train.Images.AsSpan(step * batch * 784, batch * 784), batch, 1, 28, 28);
    using var y = IntTensor.FromArray(device, train.Labels.AsSpan(step * batch, batch));
    var loss = tape.CrossEntropy(model.Forward(tape, x), y);
    var adjacency = model.Stages[0].LastAdjacency!.Read();   // [B, n+1, n+1] edge weights this batch chose
    opt.ZeroGrad();
    tape.Backward(loss);
    opt.Step();
    float value = loss.ToArray()[0];
    tape.Clear();

    Console.WriteLine($"step {step + 1}/{steps}: loss {value:F4}, stage 0 adjacency [{adjacency.GetLength(0)}, {adjacency.GetLength(1)}, {adjacency.GetLength(2)}]");
    if (!float.IsFinite(value))
    {
        Console.Error.WriteLine($"loss is not finite at step {step + 1}: {value}");
        return 1;
    }
}
return 0;
