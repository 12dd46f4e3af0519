using IlgpuDdw.Kernels.Reference;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Verification;

/// <summary>
/// One seeded gate check over a whole stage's adjacency: every row's gate from given router outputs (edge weights
/// a, and gate logits z for the stochastic gate), then the top-k selection of every column (top-k gate) and the
/// output-edge fix-up (<see cref="Force"/>), then the backward from an upstream gradient of the whole adjacency.
/// The ops run on a device and <see cref="GateReference"/> runs in float; both forward (A) and backward (da, dz)
/// are compared. Drawn values stay at least <see cref="Margin"/> from every decision boundary (a − τ, z + L), so an
/// accelerator's approximate exp/log cannot flip a decision; <see cref="CutFraction"/> of the router outputs lie
/// below τ (so that some output nodes lose every in-edge and are forced).
/// </summary>
internal sealed record GateCase(GateKind Gate, int Nodes, int Batch, float Tau, GateGradient Gradient, bool Noise, bool Force, double CutFraction, int Seed)
{
    /// <summary>Least distance of a drawn value from a decision boundary.</summary>
    public const double Margin = 0.02;

    private const float Temperature = 0.7f;
    private const int NoiseKey = 12345;

    private int Square => (Nodes + 1) * (Nodes + 1);

    private int? Key => Noise ? NoiseKey : null;

    public override string ToString() => $"{Gate} n={Nodes} B={Batch}" + Gate switch
    {
        GateKind.Threshold => $" tau={Tau} {Gradient}",
        GateKind.Continuous => $" tau={Tau}",
        GateKind.Stochastic => Noise ? " noise" : " no-noise",
        _ => "",
    } + (Force ? " forced" : "") + $" cut={CutFraction}";

    /// <summary>The op names of this case's gate (forward and backward passes).</summary>
    private string Op => Gate switch
    {
        GateKind.Threshold => "Gate",
        GateKind.Continuous => "ContinuousGate",
        GateKind.Stochastic => "StochasticGate",
        _ => "TopKGate",
    };

    /// <summary>Every pass <see cref="Run"/> reports.</summary>
    public string[] Passes =>
    [
        $"{Op}.Forward", $"{Op}.Backward",
        .. Gate == GateKind.TopK ? new[] { "TopKInEdges.Forward" } : [],
        .. Force ? new[] { "ForceOutputEdge.Forward" } : [],
    ];

    /// <summary>Weights per row (and logits), upstream gradient, drawn from <see cref="Seed"/>.</summary>
    private (float[][] A, float[][] Z, float[] G) Draw()
    {
        var r = new Random(Seed);
        var a = new float[Nodes][];
        var z = new float[Nodes][];
        for (int i = 0; i < Nodes; i++)
        {
            int n = Batch * (Nodes - i);
            a[i] = new float[n];
            z[i] = new float[n];
            for (int k = 0; k < n; k++)
            {
                bool cut = r.NextDouble() < CutFraction;
                // TopK ranks the raw outputs: draw them distinct (ties are a host test)
                a[i][k] = Gate is GateKind.Stochastic or GateKind.TopK ? (float)(0.05 + 0.9 * r.NextDouble())
                    : cut ? (float)(Tau * (0.05 + 0.9 * r.NextDouble()) - Margin) : (float)(Tau + Margin + (1 - Tau - 2 * Margin) * r.NextDouble());
                a[i][k] = Math.Max(a[i][k], 1e-3f);
                float l = Noise ? GateKernels.LogisticNoise(NoiseKey, i, k) : 0f;
                double t = (cut ? -1 : 1) * (Margin + 3 * r.NextDouble());
                z[i][k] = (float)(t - l);
            }
        }
        var g = new float[Batch * Square];
        for (int k = 0; k < g.Length; k++) g[k] = (float)(2 * r.NextDouble() - 1);
        return (a, z, g);
    }

    /// <summary>Runs the ops on <paramref name="device"/> and compares them with the float reference.</summary>
    public IEnumerable<VerifyResult> Run(Device device)
    {
        var (a, z, g) = Draw();
        string shape = ToString();
        // device
        var weights = a.Select(x => Tensor.FromArray(device, x, Batch, x.Length / Batch)).ToArray();
        var logits = z.Select(x => Tensor.FromArray(device, x, Batch, x.Length / Batch)).ToArray();
        float[] rowsA, selectedA, deviceA;
        float[][] deviceDa, deviceDz;
        try
        {
            foreach (var t in weights.Concat(logits)) t.RequiresGrad = true;
            using var tape = new Tape(device);
            var adjacency = new Adjacency(tape, Nodes, Batch);
            for (int i = 0; i < Nodes; i++)
            {
                switch (Gate)
                {
                    case GateKind.Threshold: tape.Gate(adjacency, i, weights[i], Tau, Gradient); break;
                    case GateKind.Continuous: tape.ContinuousGate(adjacency, i, weights[i], Tau); break;
                    case GateKind.Stochastic: tape.StochasticGate(adjacency, i, weights[i], logits[i], Temperature, Key); break;
                    default: tape.TopKGate(adjacency, i, weights[i]); break;
                }
                if (Force) tape.StoreOutputEdge(adjacency, i, weights[i]);
            }
            rowsA = adjacency.Tensor.ToArray();
            if (Gate == GateKind.TopK)
                for (int j = 1; j <= Nodes; j++) tape.TopKInEdges(adjacency, j, WiringConfig.TopK(0.5f, j));
            selectedA = adjacency.Tensor.ToArray();
            if (Force) tape.ForceOutputEdge(adjacency);
            deviceA = adjacency.Tensor.ToArray();
            Overwrite.Poisoned(() => tape.Backward(adjacency.Tensor, g));
            deviceDa = weights.Select(w => w.GradToArray()).ToArray();
            deviceDz = logits.Select(l => l.RequiresGrad && Gate == GateKind.Stochastic ? l.GradToArray() : new float[l.Length]).ToArray();
        }
        finally
        {
            foreach (var t in weights.Concat(logits)) t.Dispose();
        }

        // reference
        var adj = new float[Batch * Square];
        for (int i = 0; i < Nodes; i++)
            switch (Gate)
            {
                case GateKind.Threshold: GateReference.Forward<float>(a[i], Batch, Nodes, i, Tau, adj); break;
                case GateKind.Continuous: GateReference.ContinuousForward<float>(a[i], Batch, Nodes, i, Tau, adj); break;
                case GateKind.Stochastic: GateReference.StochasticForward<float>(a[i], z[i], Batch, Nodes, i, Key, adj); break;
                default: GateReference.Forward<float>(a[i], Batch, Nodes, i, -1f, adj); break;
            }
        yield return VerifyResult.Compare($"{Op}.Forward A", shape, adj, rowsA, Tolerance.Forward);
        if (Gate == GateKind.TopK)
        {
            for (int j = 1; j <= Nodes; j++) GateReference.TopKForward<float>(Batch, Nodes, j, WiringConfig.TopK(0.5f, j), adj);
            yield return VerifyResult.Compare("TopKInEdges.Forward A", shape, adj, selectedA, Tolerance.Exact);
        }
        if (Force)
        {
            var fallback = new float[Batch * Nodes];
            for (int b = 0; b < Batch; b++)
                for (int i = 0; i < Nodes; i++) fallback[b * Nodes + i] = a[i][b * (Nodes - i) + Nodes - i - 1];
            int before = Disconnected(adj);
            GateReference.ForceOutputEdge<float>(fallback, Batch, Nodes, adj);
            yield return VerifyResult.Compare("ForceOutputEdge.Forward A", shape, adj, deviceA, Tolerance.Forward);
            yield return VerifyResult.Condition("ForceOutputEdge.Forward forced", shape, before > 0 && Disconnected(adj) == 0,
                $"{before} samples had no in-edge into the output node before the fix-up (need > 0) and {Disconnected(adj)} after (need 0)");
        }
        for (int i = 0; i < Nodes; i++)
        {
            // the gates' backward kernels overwrite the router outputs' (and logits') new gradients: the references
            // overwrite a NaN buffer
            var da = Overwrite.Reference(a[i].Length, _ => { });
            var dz = Overwrite.Reference(a[i].Length, _ => { });
            switch (Gate)
            {
                case GateKind.Threshold:
                    GateReference.Backward<float>(a[i], g, Batch, Nodes, i, Tau, Gradient == GateGradient.StraightThrough, da, adj, accumulate: false);
                    break;
                case GateKind.Continuous: GateReference.ContinuousBackward<float>(a[i], adj, g, Batch, Nodes, i, Tau, da, accumulate: false); break;
                case GateKind.Stochastic:
                    GateReference.StochasticBackward<float>(a[i], z[i], adj, g, Batch, Nodes, i, Temperature, Key, da, dz, accumulate: false);
                    break;
                default: GateReference.Backward<float>(a[i], g, Batch, Nodes, i, -1f, true, da, adj, accumulate: false); break;
            }
            yield return VerifyResult.Compare($"{Op}.Backward da{i}", shape, da, deviceDa[i], Tolerance.Backward);
            if (Gate == GateKind.Stochastic)
                yield return VerifyResult.Compare($"{Op}.Backward dz{i}", shape, dz, deviceDz[i], Tolerance.Backward);
        }
    }

    private int Disconnected(float[] adjacency)
    {
        int count = 0, size = Nodes + 1;
        for (int b = 0; b < Batch; b++)
        {
            bool any = false;
            for (int i = 0; i < Nodes; i++) any |= adjacency[(b * size + i) * size + Nodes] != 0f;
            if (!any) count++;
        }
        return count;
    }
}
