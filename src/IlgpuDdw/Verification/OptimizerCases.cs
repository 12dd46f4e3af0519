using IlgpuDdw.Training;
using O = IlgpuDdw.Kernels.Reference.OptimizerReference;

namespace IlgpuDdw.Verification;

/// <summary>
/// The SGD step (plain, momentum, Nesterov, coupled and decoupled weight decay) over several steps: one
/// parameter at lengths 1, 37, 1025, and three parameters of rank 1, 2 and 4 with a learning rate changed between
/// steps; the parameters and the momentum buffers of <see cref="Sgd.StateDict"/> (none without momentum).
/// </summary>
internal static class OptimizerCases
{
    private const string Family = "Optimizer";

    private readonly record struct Config(float Momentum, bool Nesterov, float Decay, bool Decoupled)
    {
        public override string ToString() => $"mu{Momentum}{(Nesterov ? " nesterov" : "")} wd{Decay}{(Decoupled ? " decoupled" : "")}";
    }

    public static IEnumerable<VerifyCase> All()
    {
        Config[] configs = [new(0f, false, 0f, false), new(0.9f, false, 1e-2f, false), new(0.9f, true, 5e-2f, false), new(0.8f, false, 5e-2f, true)];
        foreach (int n in new[] { 1, 37, 1025 })
            foreach (var c in configs)
                yield return Case([[n]], c, [0.1f, 0.1f, 0.1f]);
        Config[] more =
        [
            new(0f, false, 0f, false), new(0f, false, 0.05f, false), new(0f, false, 0.05f, true),
            new(0.9f, false, 0f, false), new(0.9f, false, 1e-2f, false), new(0.9f, true, 1e-2f, false),
            new(0.8f, false, 0.1f, true), new(0.7f, true, 0.1f, true),
        ];
        foreach (var c in more)
            yield return Case([[1], [3, 5], [7, 1, 3, 3]], c, [0.05f, 0.05f, 0.05f, 0.02f, 0.02f]);
    }

    /// <param name="shapes">The parameters' shapes.</param>
    /// <param name="config">The optimizer's options.</param>
    /// <param name="rates">The learning rate of each step.</param>
    private static VerifyCase Case(int[][] shapes, Config config, float[] rates)
    {
        string shape = $"{string.Join(", ", shapes.Select(Tensor.Format))} {config}" + (rates.Distinct().Count() > 1 ? $" lr {string.Join("/", rates)}" : "");
        return new(Family, shape, ["Sgd.Step", config.Momentum == 0f ? "Sgd.StateDict" : "Sgd.MomentumBuffer"], d => Run(d, shapes, config, rates, shape));
    }

    private static IEnumerable<VerifyResult> Run(Device device, int[][] shapes, Config c, float[] rates, string shape)
    {
        var host = shapes.Select((s, i) => Seeded.Uniform<float>(s.Aggregate(1, (a, b) => a * b), 41 + 1000 * i)).ToArray();
        var buffers = host.Select(h => new float[h.Length]).ToArray();
        var tensors = shapes.Select((s, i) => Tensor.FromArray(device, host[i], s)).ToArray();
        try
        {
            using var sgd = new Sgd(tensors, rates[0], c.Momentum, c.Nesterov, c.Decay, c.Decoupled);
            for (int step = 0; step < rates.Length; step++)
            {
                sgd.LearningRate = rates[step];
                for (int i = 0; i < tensors.Length; i++)
                {
                    var g = Seeded.Uniform<float>(host[i].Length, 42 + step + 1000 * i);
                    tensors[i].Grad.CopyFrom(g);
                    O.SgdStep<float>(host[i], g, buffers[i], rates[step], c.Momentum, c.Decay, c.Nesterov, c.Decoupled);
                }
                sgd.Step();
            }
            string Which(string pass, int i) => tensors.Length == 1 ? pass : $"{pass} p{i}";
            for (int i = 0; i < tensors.Length; i++)
                yield return VerifyResult.Compare(Which("Sgd.Step", i), shape, host[i], tensors[i].ToArray(), Tolerance.Forward);
            var state = sgd.StateDict();
            if (c.Momentum == 0f)
                yield return VerifyResult.Condition("Sgd.StateDict", shape, state.Count == 0, $": no momentum, but {state.Count} buffers");
            else
                for (int i = 0; i < tensors.Length; i++)
                    yield return VerifyResult.Compare(Which("Sgd.MomentumBuffer", i), shape, buffers[i],
                        state.TryGetValue(Sgd.MomentumBufferKey(i), out var b) ? b : [], Tolerance.Forward);
        }
        finally
        {
            foreach (var t in tensors) t.Dispose();
        }
    }
}
