namespace IlgpuDdw.Training;

/// <summary>
/// Learning rate with linear warm-up then cosine decay: for step s of S total steps and W warm-up steps,
/// lr(s) = base·(s+1)/W for s &lt; W, else minLr + (base − minLr)·(1 + cos(π·(s−W)/(S−W)))/2.
/// </summary>
public sealed class CosineSchedule
{
    /// <summary>Creates a schedule.</summary>
    /// <exception cref="ArgumentException">Non-positive total steps or base rate, warm-up outside [0, total], or minLr outside [0, base].</exception>
    public CosineSchedule(float baseLr, int totalSteps, int warmupSteps = 0, float minLr = 0f)
    {
        if (!(baseLr > 0) || float.IsInfinity(baseLr)) throw new ArgumentException($"Base learning rate must be positive and finite; got {baseLr}.", nameof(baseLr));
        if (totalSteps < 1) throw new ArgumentException($"Total steps must be at least 1; got {totalSteps}.", nameof(totalSteps));
        if (warmupSteps < 0 || warmupSteps > totalSteps) throw new ArgumentException($"Warm-up steps must be in [0, {totalSteps}]; got {warmupSteps}.", nameof(warmupSteps));
        if (minLr < 0 || minLr > baseLr) throw new ArgumentException($"Minimum learning rate must be in [0, {baseLr}]; got {minLr}.", nameof(minLr));
        BaseLr = baseLr; TotalSteps = totalSteps; WarmupSteps = warmupSteps; MinLr = minLr;
    }

    /// <summary>Peak learning rate.</summary>
    public float BaseLr { get; }

    /// <summary>Steps in the whole run.</summary>
    public int TotalSteps { get; }

    /// <summary>Linear warm-up steps.</summary>
    public int WarmupSteps { get; }

    /// <summary>Final learning rate.</summary>
    public float MinLr { get; }

    /// <summary>The learning rate of step <paramref name="step"/> (0-based; clamped to the schedule).</summary>
    public float At(int step)
    {
        step = Math.Clamp(step, 0, TotalSteps - 1);
        if (step < WarmupSteps) return BaseLr * (step + 1) / WarmupSteps;
        int span = Math.Max(1, TotalSteps - WarmupSteps);
        double t = (double)(step - WarmupSteps) / span;
        return (float)(MinLr + (BaseLr - MinLr) * 0.5 * (1 + Math.Cos(Math.PI * t)));
    }
}
