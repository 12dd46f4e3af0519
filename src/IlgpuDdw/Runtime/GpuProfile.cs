namespace IlgpuDdw.Runtime;

/// <summary>
/// The numbers of one GPU that the launch trace needs: the roofline (FP32 peak, TF32 tensor-core peak, memory bandwidth)
/// and the launch geometry (multiprocessors, resident threads per multiprocessor). <see cref="FloorSeconds(double, double, bool)"/>
/// is the roofline floor <c>max(FLOPs / peak, bytes / bandwidth)</c>, with the TF32 peak for the FLOPs of TF32 kernels: no
/// kernel doing that work can finish faster on this card.
/// </summary>
/// <param name="Name">Short name (<c>h200</c>, <c>h100</c>).</param>
/// <param name="Card">The card's full name.</param>
/// <param name="PeakFlops">FP32 peak in FLOP/s (no tensor cores).</param>
/// <param name="PeakFlopsSource">Where <paramref name="PeakFlops"/> comes from.</param>
/// <param name="Bandwidth">Device-memory bandwidth in bytes/s.</param>
/// <param name="BandwidthSource">Where <paramref name="Bandwidth"/> comes from (measured copy or nominal).</param>
/// <param name="Multiprocessors">Streaming multiprocessors.</param>
/// <param name="MaxThreadsPerMultiprocessor">Resident threads per multiprocessor.</param>
/// <param name="Tf32PeakFlops">Dense TF32 tensor-core peak in FLOP/s (the floor of the TF32 convolution kernels).</param>
/// <param name="Tf32PeakFlopsSource">Where <paramref name="Tf32PeakFlops"/> comes from.</param>
public sealed record GpuProfile(string Name, string Card, double PeakFlops, string PeakFlopsSource, double Bandwidth, string BandwidthSource,
    int Multiprocessors, int MaxThreadsPerMultiprocessor, double Tf32PeakFlops, string Tf32PeakFlopsSource)
{
    /// <summary>
    /// NVIDIA H200 (SXM): 67 TFLOP/s FP32, 494 TFLOP/s TF32 dense (the spec sheet's figure; 989 with sparsity),
    /// 4.3 TB/s measured device-to-device copy, 132 SMs.
    /// </summary>
    public static GpuProfile H200 { get; } = new("h200", "NVIDIA H200", 67e12, "datasheet", 4.3e12, "measured copy", 132, 2048,
        494e12, "spec sheet, dense; 989 with sparsity");

    /// <summary>
    /// NVIDIA H100 SXM: 67 TFLOP/s FP32 (datasheet), 494 TFLOP/s TF32 dense (spec sheet; 989 with sparsity), 3.35 TB/s
    /// HBM3 (nominal; copies measure nearer 3.0 TB/s), 132 SMs.
    /// </summary>
    public static GpuProfile H100 { get; } = new("h100", "NVIDIA H100 SXM", 67e12, "datasheet", 3.35e12, "nominal", 132, 2048,
        494e12, "spec sheet, dense; 989 with sparsity");

    /// <summary>Every profile, by <see cref="Name"/>.</summary>
    public static IReadOnlyList<GpuProfile> All { get; } = [H200, H100];

    /// <summary>The profile named <paramref name="name"/> (<c>h200</c>, <c>h100</c>; any case).</summary>
    /// <exception cref="ArgumentException">No profile has that name.</exception>
    public static GpuProfile Get(string name) =>
        All.FirstOrDefault(p => string.Equals(p.Name, name?.Trim(), StringComparison.OrdinalIgnoreCase))
        ?? throw new ArgumentException($"Unknown GPU '{name}'. Use {string.Join(" or ", All.Select(p => p.Name))}.", nameof(name));

    /// <summary>The profile whose card an accelerator name denotes (H200 or H100 in the name), else null.</summary>
    public static GpuProfile? ForCardName(string cardName) =>
        cardName.Contains("H200", StringComparison.OrdinalIgnoreCase) ? H200
        : cardName.Contains("H100", StringComparison.OrdinalIgnoreCase) ? H100
        : null;

    /// <summary>Threads per warp.</summary>
    public int WarpSize => 32;

    /// <summary>Most threads one group may hold.</summary>
    public int MaxThreadsPerGroup => 1024;

    /// <summary>Groups that give every multiprocessor two: the fill target of a launch (264 on 132 SMs).</summary>
    public int FillGroups => 2 * Multiprocessors;

    /// <summary>
    /// The roofline floor in seconds: <c>max(flops / peak, bytes / Bandwidth)</c>, the peak <see cref="Tf32PeakFlops"/>
    /// for FLOPs on TF32 tensor cores (<paramref name="tf32"/>), else <see cref="PeakFlops"/>.
    /// </summary>
    public double FloorSeconds(double flops, double bytes, bool tf32 = false) => Math.Max(flops / (tf32 ? Tf32PeakFlops : PeakFlops), bytes / Bandwidth);

    /// <summary>One line naming the card and its roofline numbers with their sources.</summary>
    public string Describe() =>
        $"{Card}: {PeakFlops / 1e12:F0} TFLOP/s FP32 ({PeakFlopsSource}), {Tf32PeakFlops / 1e12:F0} TFLOP/s TF32 ({Tf32PeakFlopsSource}), " +
        $"{Bandwidth / 1e12:F2} TB/s ({BandwidthSource}), {Multiprocessors} SMs";
}
