namespace IlgpuDdw.Verification;

/// <summary>
/// One verification case: an op family's kernels at one configuration, run on a device and compared pass by
/// pass with the CPU reference. <c>ddw verify</c> and the test suite run the same cases
/// (<see cref="VerificationCases.All"/>).
/// </summary>
/// <param name="Family">The op family, e.g. <c>Conv2d</c>.</param>
/// <param name="Name">The configuration, unique within the family, e.g. the shape.</param>
/// <param name="Passes">Every pass its rows can report (<see cref="VerifyResult.PassName"/>), so that a filter selects cases without running them.</param>
/// <param name="Run">Runs the case on a device and returns one row per compared result.</param>
/// <param name="Tf32">Whether the case checks the optional TF32 path (<c>ddw verify</c> runs it only with <c>--tf32</c>).</param>
public sealed record VerifyCase(string Family, string Name, IReadOnlyList<string> Passes, Func<Device, IEnumerable<VerifyResult>> Run, bool Tf32 = false)
{
    /// <summary>Family and name: the case's unique id.</summary>
    public override string ToString() => $"{Family}: {Name}";
}
