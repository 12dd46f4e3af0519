namespace IlgpuDdw.Verification;

/// <summary>The one list of verification cases, and the <c>--op</c> filter over it.</summary>
public static class VerificationCases
{
    private static readonly Lazy<IReadOnlyList<VerifyCase>> AllCases = new(() =>
    [
        .. ActivationCases.All(), .. BatchNormCases.All(), .. Conv2dCases.All(), .. ElementwiseCases.All(), .. LinearCases.All(),
        .. LossCases.All(), .. OptimizerCases.All(), .. PoolingCases.All(), .. WiringCases.All(), .. KeepTermCases.All(), .. RouterCases.All(),
    ]);

    /// <summary>Every case, grouped by family (families in name order).</summary>
    public static IReadOnlyList<VerifyCase> All => AllCases.Value;

    /// <summary>
    /// The op names the filter knows: every part of every pass name before its dot, split at <c>+</c>
    /// (a fused check such as <c>Multiply+Relu.Backward</c> names both ops), sorted.
    /// </summary>
    public static IReadOnlyList<string> OpNames => All.SelectMany(c => c.Passes)
        .SelectMany(p => p.Split('.')[0].Split('+')).Distinct().Order(StringComparer.Ordinal).ToArray();

    /// <summary>
    /// The cases <paramref name="filter"/> selects (all when null): those whose family or any of whose pass
    /// names contains it, ignoring case, e.g. <c>Relu</c>, <c>conv2d.backwardweight</c>, <c>Pooling</c>; without
    /// <paramref name="tf32"/>, not the cases of the optional TF32 path (<see cref="VerifyCase.Tf32"/>).
    /// </summary>
    public static IReadOnlyList<VerifyCase> Matching(string? filter, bool tf32 = true) =>
        All.Where(c => (tf32 || !c.Tf32) && (filter is null || Contains(c.Family, filter) || c.Passes.Any(p => Contains(p, filter)))).ToArray();

    /// <summary>
    /// Runs the selected cases on <paramref name="device"/> (<see cref="Matching"/>); of a case selected by a pass name
    /// only the rows of the matching passes are returned.
    /// </summary>
    public static IEnumerable<VerifyResult> Run(Device device, string? filter = null, bool tf32 = true)
    {
        foreach (var c in Matching(filter, tf32))
        {
            bool whole = filter is null || Contains(c.Family, filter);
            foreach (var r in c.Run(device))
                if (whole || Contains(r.PassName, filter!))
                    yield return r;
        }
    }

    private static bool Contains(string name, string filter) => name.Contains(filter, StringComparison.OrdinalIgnoreCase);
}
