using IlgpuDdw.Autograd;
using IlgpuDdw.Models;
using IlgpuDdw.Nn;
using IlgpuDdw.Training;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Tests;

/// <summary>The trainer's objective as a list of terms, and training a plain <see cref="Module"/>.</summary>
[Collection("cpu")]
public sealed class ObjectiveTests(DeviceFixture fx)
{
    /// <summary>A constant: it shifts the objective by its value and has no gradient.</summary>
    private sealed class ConstantTerm(float value) : IObjectiveTerm
    {
        public string Name => "constant";

        public Tensor Compute(Tape tape, ObjectiveContext context) => tape.Own(Tensor.FromArray(context.Model.Device, [value], 1));
    }

    /// <summary>Records the steps it saw.</summary>
    private sealed class StepRecorder : IObjectiveTerm
    {
        public List<(int Epoch, int Step, int TotalSteps, int Batch)> Seen { get; } = new();

        public string Name => "recorder";

        public Tensor Compute(Tape tape, ObjectiveContext context)
        {
            Seen.Add((context.Epoch, context.Step, context.TotalSteps, context.Labels.Length));
            return tape.Scale(tape.CrossEntropy(context.Logits, context.Labels), 0f);
        }
    }

    private static TrainerOptions Options => new() { Epochs = 2, BatchSize = 8, EvalBatchSize = 16, LearningRate = 0.05f, Seed = 3, Augment = true };

    [Fact]
    public void ACustomTerm_ChangesTheObjectiveByItsValue_AndNothingElse()
    {
        var d = fx.Device;
        var spec = ModelZoo.Get("resnet_mini", 8);
        var train = TrainerTests.Synthetic(32, 1);
        var test = TrainerTests.Synthetic(16, 2);
        using var plain = new DdwNet(d, spec, new WiringConfig { Kind = WiringKind.Dense }, seed: 4);
        using var shifted = new DdwNet(d, spec, new WiringConfig { Kind = WiringKind.Dense }, seed: 4);
        using var a = new Trainer(plain, train, test, Options);
        using var b = new Trainer(shifted, train, test, Options, [new CrossEntropyTerm(), new ConstantTerm(2.5f)]);
        Assert.Equal(["cross_entropy"], a.Terms.Select(t => t.Name));
        Assert.Equal(["cross_entropy", "constant"], b.Terms.Select(t => t.Name));
        a.Run();
        b.Run();
        for (int e = 0; e < 2; e++)
        {
            Assert.Equal(a.History[e].TrainLoss, b.History[e].TrainLoss);
            Assert.Equal([("cross_entropy", a.History[e].TrainLoss)], a.History[e].Terms.Select(t => (t.Name, t.Value)));
            Assert.Equal([("cross_entropy", a.History[e].TrainLoss), ("constant", 2.5)], b.History[e].Terms.Select(t => (t.Name, t.Value)));
        }
        Assert.Equal(a.StepLosses, b.StepLosses);
        var sa = plain.StateDict();
        var sb = shifted.StateDict();
        for (int i = 0; i < sa.Count; i++) Assert.True(sa.Entries[i].Data.AsSpan().SequenceEqual(sb.Entries[i].Data), sa.Entries[i].Name);
    }

    [Fact]
    public void Terms_SeeEveryStep_AndTheirProgressIsReported()
    {
        var d = fx.Device;
        using var model = new DdwNet(d, ModelZoo.Get("resnet_mini", 8), new WiringConfig { Kind = WiringKind.Chain }, seed: 1);
        var recorder = new StepRecorder();
        using var t = new Trainer(model, TrainerTests.Synthetic(32, 1), TrainerTests.Synthetic(16, 2), Options, [new CrossEntropyTerm(), recorder]);
        var progress = new List<TrainProgress>();
        t.Progress = new SyncProgress(progress.Add);
        t.Run();
        Assert.Equal(Enumerable.Range(0, 8).Select(s => (s / 4, s, 8, 8)), recorder.Seen);
        Assert.All(progress, p => Assert.Equal(["cross_entropy", "recorder"], p.Terms.Select(x => x.Name)));
        Assert.All(progress, p => Assert.Equal(p.Loss, p.Terms[0].Value));
        Assert.All(progress, p => Assert.Equal(0, p.Terms[1].Value));
        Assert.Throws<ArgumentException>(() => new Trainer(model, TrainerTests.Synthetic(8, 1), TrainerTests.Synthetic(8, 1), Options, []));
    }

    [Fact]
    public void SparsityWeight_BuildsTheSparsityTerm_ForDynamicWiringOnly()
    {
        var d = fx.Device;
        var spec = ModelZoo.Get("resnet_mini", 8);
        var options = Options with { Epochs = 1, SparsityWeight = 0.5f, LabelSmoothing = 0.1f };
        using var chain = new DdwNet(d, spec, new WiringConfig { Kind = WiringKind.Chain });
        using var dynamic = new DdwNet(d, spec, new WiringConfig { Kind = WiringKind.Dynamic });
        Assert.Equal(["cross_entropy"], ObjectiveTerms.FromOptions(options, chain).Select(t => t.Name));
        var terms = ObjectiveTerms.FromOptions(options, dynamic);
        Assert.Equal(["cross_entropy", "sparsity"], terms.Select(t => t.Name));
        Assert.Equal(0.1f, ((CrossEntropyTerm)terms[0]).LabelSmoothing);
        Assert.Equal(0.5f, ((RouterSparsityTerm)terms[1]).Weight);
        Assert.Equal(["cross_entropy"], ObjectiveTerms.FromOptions(options with { SparsityWeight = 0 }, dynamic).Select(t => t.Name));

        using var t = new Trainer(dynamic, TrainerTests.Synthetic(16, 1), TrainerTests.Synthetic(8, 2), options);
        var epoch = t.RunEpoch();
        // λ · mean of router outputs in (0, 1)
        Assert.InRange(epoch.Terms[1].Value, 1e-6, 0.5);
        Assert.Throws<ArgumentException>(() => new RouterSparsityTerm(-1));

        using var c = new Trainer(chain, TrainerTests.Synthetic(16, 1), TrainerTests.Synthetic(8, 2), options with { SparsityWeight = 0 }, [new RouterSparsityTerm(1)]);
        Assert.Throws<InvalidOperationException>(() => c.RunEpoch());
    }

    [Fact]
    public void Trainer_TrainsAPlainModule()
    {
        var d = fx.Device;
        using var model = LayerFactory.Sequence(d,
            [new ConvSpec(1, 8, 3, padding: 1), new ActivationSpec(ActivationKind.Relu), new GlobalAvgPoolSpec(), new LinearSpec(8, 10)], new SeedSequence(0));
        using var dir = new TempDirectory();
        using var t = new Trainer(model, TrainerTests.Synthetic(32, 1), TrainerTests.Synthetic(16, 2), Options with { Epochs = 1 });
        using (var metrics = new MetricsWriter(dir.File("metrics.jsonl")))
        {
            t.Metrics = metrics;
            var r = t.RunEpoch();
            Assert.True(double.IsFinite(r.TrainLoss));
            Assert.InRange(r.TestAccuracy, 0, 1);
            Assert.Equal(1, r.KeepRate);
            Assert.True(double.IsNaN(r.EffectiveMacs));
            Assert.Empty(t.LastEval!.MeanAdjacency);
        }
        Assert.Contains("\"model\":\"Sequential\",\"wiring\":\"none\"", File.ReadAllText(dir.File("metrics.jsonl")));
        Assert.Throws<InvalidOperationException>(() => Checkpoint.Save(dir.File("x.safetensors"), t));
    }

    private sealed class SyncProgress(Action<TrainProgress> report) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress value) => report(value);
    }
}
