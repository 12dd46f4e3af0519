namespace IlgpuDdw.Tests;

/// <summary>
/// Layer 3 of the correctness policy: every kernel on the CPU accelerator against its float reference, through the
/// one list of cases that <c>ddw verify</c> runs (<see cref="VerificationCases.All"/>), and the <c>--op</c> filter.
/// </summary>
[Collection("cpu")]
public sealed class VerificationTests(DeviceFixture fx)
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var c in VerificationCases.All) data.Add(c.ToString());
        return data;
    }

    [Theory, MemberData(nameof(Cases))]
    public void Case_MatchesReference(string id)
    {
        var c = VerificationCases.All.Single(x => x.ToString() == id);
        var rows = c.Run(fx.Device).ToArray();
        Assert.NotEmpty(rows);
        var failed = rows.Where(r => !r.Pass).ToArray();
        Assert.True(failed.Length == 0, string.Join("\n", failed.Select(r => r.ToString())));
        // the filter selects cases by their declared passes: they are exactly the passes of the rows
        Assert.Equal(c.Passes.Order(StringComparer.Ordinal), rows.Select(r => r.PassName).Distinct().Order(StringComparer.Ordinal));
    }

    [Fact]
    public void CaseIds_AreUnique_AndEveryFamilyHasCases()
    {
        var ids = VerificationCases.All.Select(c => c.ToString()).ToArray();
        Assert.Equal(ids.Length, ids.Distinct().Count());
        Assert.Equal(["Activation", "BatchNorm2d", "Conv2d", "Elementwise", "Linear", "Loss", "Optimizer", "Pooling", "Wiring"],
            VerificationCases.All.Select(c => c.Family).Distinct());
    }

    [Fact]
    public void Filter_MatchesFamilies_OpsAndPasses_IgnoringCase()
    {
        Assert.Equal(VerificationCases.All.Count, VerificationCases.Matching(null).Count);
        var weight = VerificationCases.Matching("conv2d.backwardweight");
        Assert.NotEmpty(weight);
        Assert.All(weight, c => Assert.Equal("Conv2d", c.Family));
        var relu = VerificationCases.Matching("RELU").Select(c => c.Family).Distinct().ToArray();
        Assert.Equal(["Activation", "Elementwise"], relu); // Relu, Relu6 and Multiply+Relu
        Assert.Equal(VerificationCases.All.Count(c => c.Family == "Pooling"), VerificationCases.Matching("pooling").Count);
        Assert.Empty(VerificationCases.Matching("NoSuchOp"));
        Assert.Contains("Relu", VerificationCases.OpNames);
        Assert.Contains("Conv2d", VerificationCases.OpNames);
        Assert.Contains("Aggregate", VerificationCases.OpNames);
        Assert.DoesNotContain("Multiply+Relu", VerificationCases.OpNames);
    }

    [Fact]
    public void Compare_ReportsTheFirstFailingElement_AndLengthMismatch()
    {
        var r = VerifyResult.Compare("Op.Forward", "[3]", [1f, 2f, 3f], [1f, 2.5f, float.NaN], Tolerance.Forward);
        Assert.False(r.Pass);
        Assert.StartsWith("[1]: got 2.5, expected 2", r.Failure);
        Assert.True(double.IsNaN(r.MaxAbsError));
        Assert.StartsWith("Op.Forward ([3])[1]: got 2.5", r.ToString());
        r = VerifyResult.Compare("Op.Forward", "[3]", [1f, 2f, 3f], [1f, 2f], Tolerance.Forward);
        Assert.Equal(": length 2, expected 3", r.Failure);
        r = VerifyResult.Compare("Op.Forward x1", "[2]", [float.PositiveInfinity, 1f], [float.PositiveInfinity, 1f + 1e-5f], Tolerance.Forward);
        Assert.True(r.Pass, r.Failure);
        Assert.Equal("Op.Forward", r.PassName);
        Assert.False(r.RequireShape([2], [1, 2]).Pass);
    }
}
