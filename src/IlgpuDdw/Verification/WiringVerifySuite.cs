using IlgpuDdw.Runtime;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Verification;

/// <summary>
/// Verification of the wiring kernels (router, gate, dense edges, chain fill, adjacency-masked aggregation,
/// forward and every backward) through a stage's wiring with given node outputs, against
/// <c>StageReference&lt;float&gt;</c>: odd channel counts, non-square maps, batch 1 and 3, 2 to 9 nodes (9: the
/// output node reads its sources in two launches), both gate gradients.
/// </summary>
public sealed class WiringVerifySuite : IVerifySuite
{
    /// <inheritdoc/>
    public string Name => "Wiring";

    internal static IEnumerable<WiringCase> Cases()
    {
        yield return WiringCase.Create(WiringKind.Dynamic, 3, 3, 5, 3, 2, GateGradient.KeptOnly, seed: 11);
        yield return WiringCase.Create(WiringKind.Dynamic, 5, 1, 3, 2, 3, GateGradient.StraightThrough, seed: 12);
        yield return WiringCase.Create(WiringKind.Dynamic, 9, 2, 3, 1, 3, GateGradient.StraightThrough, tau: 0.3f, seed: 13);
        yield return WiringCase.Create(WiringKind.Dense, 4, 3, 7, 2, 3, seed: 14);
        yield return WiringCase.Create(WiringKind.Chain, 3, 2, 5, 3, 1, seed: 15);
    }

    /// <inheritdoc/>
    public IEnumerable<VerifyResult> Run(Device device)
    {
        foreach (var c in Cases())
            foreach (var r in c.Compare(c.RunOnDevice(device)))
                yield return r;
    }
}
