using System.Security.Cryptography;
using System.Text.Json;
using IlgpuDdw.Autograd;
using IlgpuDdw.IO;
using IlgpuDdw.Models;
using IlgpuDdw.Nn;
using IlgpuDdw.Training;
using IlgpuDdw.Wiring;
using Xunit.Abstractions;

namespace IlgpuDdw.Tests;

/// <summary>
/// Checkpoints committed under <c>Fixtures/</c> (written by <see cref="Checkpoint.Save(string, DdwNet, IReadOnlyDictionary{string, string}?, IEnumerable{KeyValuePair{string, SafeTensor}}?)"/>
/// with perturbed weights) still load: every tensor name, shape and value, and the logits of a fixed batch in
/// evaluation and training mode, are those recorded in <c>Fixtures/checkpoints.json</c> when they were written (the
/// logits to float rounding).
/// To rewrite them (only after a deliberate format change), run
/// <c>DDW_WRITE_FIXTURES=tests/IlgpuDdw.Tests/Fixtures dotnet test --filter FullyQualifiedName~CheckpointFixtureTests.Write</c>.
/// </summary>
[Collection("cpu")]
public sealed class CheckpointFixtureTests(DeviceFixture fx, ITestOutputHelper output)
{
    private const int Batch = 2, ImageSeed = 5, PerturbSeed = 9;

    /// <summary>One fixture: a model (zoo name, or the tiny end-to-end spec) and wiring.</summary>
    private sealed record Case(string File, string Model, WiringKind Wiring, int Seed);

    private static readonly Case[] Cases =
    [
        new("tiny-dense.safetensors", "e2e_tiny", WiringKind.Dense, 3),
        new("tiny-dynamic.safetensors", "e2e_tiny", WiringKind.Dynamic, 4),
        new("mobilenet_mini-dynamic.safetensors", "mobilenet_mini", WiringKind.Dynamic, 1),
    ];

    /// <summary>What a fixture held when it was written.</summary>
    public sealed record Expected(string File, string[] Names, int[][] Shapes, string[] Sha256, float[] EvalLogits, float[] TrainLogits);

    private static string FixtureDirectory => Path.Combine(AppContext.BaseDirectory, "Fixtures");

    [Fact]
    public void CommittedCheckpoints_LoadWithTheirNamesValuesAndLogits()
    {
        var expected = JsonSerializer.Deserialize<Expected[]>(File.ReadAllText(Path.Combine(FixtureDirectory, "checkpoints.json")))!;
        Assert.Equal(Cases.Length, expected.Length);
        // after a deliberate change of the model's function (not of the format): DDW_UPDATE_FIXTURE_LOGITS=<the Fixtures
        // folder> records the logits the committed files give now, keeping the files themselves
        string? update = Environment.GetEnvironmentVariable("DDW_UPDATE_FIXTURE_LOGITS");
        var updated = new List<Expected>();
        foreach (var c in Cases)
        {
            var e = expected.Single(x => x.File == c.File);
            string path = Path.Combine(FixtureDirectory, c.File);
            using var net = Load(path, c);
            var state = net.StateDict();
            Assert.Equal(e.Names, state.Entries.Select(s => s.Name));
            Assert.Equal(e.Names.Order(StringComparer.Ordinal), SafeTensors.Load(path).Tensors.Keys.Order(StringComparer.Ordinal));
            for (int i = 0; i < e.Names.Length; i++)
            {
                Assert.Equal(e.Shapes[i], state.Entries[i].Shape);
                Assert.True(e.Sha256[i] == Hash(state.Entries[i].Data), $"{c.File}: values of {e.Names[i]} differ from the recorded ones.");
            }
            var (evalLogits, trainLogits) = Logits(net);
            updated.Add(e with { EvalLogits = evalLogits, TrainLogits = trainLogits });
            if (!string.IsNullOrEmpty(update)) continue;
            // within float rounding: kernels may change their summation order (the fused router did), the model may not
            Assert.Equal(e.EvalLogits, evalLogits, (x, y) => Math.Abs(x - y) <= 1e-5f * (1 + Math.Abs(x)));
            Assert.Equal(e.TrainLogits, trainLogits, (x, y) => Math.Abs(x - y) <= 1e-5f * (1 + Math.Abs(x)));
            output.WriteLine($"{c.File}: {e.Names.Length} tensors, logits equal to 1e-5");
        }
        if (!string.IsNullOrEmpty(update))
            File.WriteAllText(Path.Combine(update, "checkpoints.json"), JsonSerializer.Serialize(updated, new JsonSerializerOptions { WriteIndented = true }));
        fx.Device.TrimPool();
    }

    /// <summary>Writes the fixtures and their expected values into the folder named by DDW_WRITE_FIXTURES (no-op without it).</summary>
    [Fact]
    public void Write()
    {
        string? dir = Environment.GetEnvironmentVariable("DDW_WRITE_FIXTURES");
        if (string.IsNullOrEmpty(dir)) return;
        Directory.CreateDirectory(dir);
        var all = new List<Expected>();
        foreach (var c in Cases)
        {
            using var net = new DdwNet(fx.Device, Spec(c.Model), new WiringConfig { Kind = c.Wiring }, c.Seed);
            Perturb(net);
            string path = Path.Combine(dir, c.File);
            Checkpoint.Save(path, net);
            var state = net.StateDict();
            var (evalLogits, trainLogits) = Logits(net);
            all.Add(new Expected(c.File, [.. state.Entries.Select(s => s.Name)], [.. state.Entries.Select(s => s.Shape)],
                [.. state.Entries.Select(s => Hash(s.Data))], evalLogits, trainLogits));
            output.WriteLine($"{path}: {new FileInfo(path).Length} bytes");
        }
        File.WriteAllText(Path.Combine(dir, "checkpoints.json"), JsonSerializer.Serialize(all, new JsonSerializerOptions { WriteIndented = true }));
    }

    private static ModelSpec Spec(string model) => model == "e2e_tiny" ? EndToEndGradientTests.TinySpec() : ModelZoo.Get(model);

    /// <summary>Zoo models load through <see cref="Checkpoint.LoadModel"/>; the tiny spec (not in the zoo) through its state dict.</summary>
    private DdwNet Load(string path, Case c)
    {
        var info = Checkpoint.ReadInfo(path);
        Assert.Equal((c.Model, c.Wiring, c.Seed), (info.Model, info.Wiring.Kind, info.Seed));
        if (c.Model != "e2e_tiny") return Checkpoint.LoadModel(fx.Device, path);
        var net = new DdwNet(fx.Device, Spec(c.Model), info.Wiring, info.Seed);
        var state = new StateDict();
        foreach (var (name, t) in SafeTensors.Load(path).Tensors) state.Add(new StateEntry(name, [.. t.Shape], t.ToFloat32()));
        net.LoadStateDict(state, strict: true);
        return net;
    }

    /// <summary>
    /// Moves every value away from its initialisation (so that a load that copies nothing fails), with router output
    /// biases spread over [−1, 3] so that some edges are cut at τ = 0.5.
    /// </summary>
    private static void Perturb(DdwNet net)
    {
        var rng = new Random(PerturbSeed);
        foreach (var (name, t) in net.NamedParameters().Concat(net.NamedBuffers()))
        {
            var v = t.ToArray();
            for (int i = 0; i < v.Length; i++)
            {
                double u = rng.NextDouble();
                v[i] = name.EndsWith("running_var", StringComparison.Ordinal) ? v[i] * (float)(0.5 + u)
                    : name.Contains(".routers.", StringComparison.Ordinal) && name.EndsWith("fc2.bias", StringComparison.Ordinal) ? (float)(4 * u - 1)
                    : v[i] + (float)(0.2 * (2 * u - 1));
            }
            t.CopyFrom(v);
        }
    }

    /// <summary>Logits of a fixed batch: no-grad evaluation, then a recorded forward pass in training mode.</summary>
    private (float[] Eval, float[] Train) Logits(DdwNet net)
    {
        var d = fx.Device;
        var spec = net.Spec;
        using var x = Tensor.FromArray(d, Check.ToFloat(Seeded.Uniform<double>(Batch * spec.InputChannels * spec.InputSize * spec.InputSize, ImageSeed)),
            Batch, spec.InputChannels, spec.InputSize, spec.InputSize);
        using var tape = new Tape(d);
        float[] eval;
        net.Eval();
        using (tape.NoGrad()) eval = net.Forward(tape, x).ToArray();
        tape.Clear();
        net.Train();
        var train = net.Forward(tape, x).ToArray();
        tape.Clear();
        return (eval, train);
    }

    private static string Hash(float[] data)
    {
        var bytes = new byte[data.Length * sizeof(float)];
        for (int i = 0; i < data.Length; i++) System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), data[i]);
        return Convert.ToHexString(SHA256.HashData(bytes));
    }
}
