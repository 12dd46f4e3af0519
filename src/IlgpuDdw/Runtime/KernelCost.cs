namespace IlgpuDdw.Runtime;

/// <summary>
/// The work of one kernel launch as the roofline counts it: the work items the kernel loops over, the
/// floating-point operations it must do (a multiply-add is 2) and the fewest bytes it must move (every input
/// element read once, every output element written once, an accumulated (+=) output read and written once).
/// Computed on the host from the launch arguments by <see cref="KernelCosts"/>.
/// </summary>
/// <param name="WorkItems">Independent work items of the launch (its <c>n</c>).</param>
/// <param name="Flops">Floating-point operations.</param>
/// <param name="Bytes">Minimum bytes moved to and from device memory.</param>
/// <param name="Shape">The launch's problem shape in words (e.g. a convolution geometry), or null.</param>
/// <param name="Tf32">Whether the FLOPs run on TF32 tensor cores (the roofline then takes <see cref="GpuProfile.Tf32PeakFlops"/>).</param>
public readonly record struct KernelCost(long WorkItems, double Flops, double Bytes, string? Shape = null, bool Tf32 = false);
