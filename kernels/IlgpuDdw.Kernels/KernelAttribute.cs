namespace IlgpuDdw.Kernels;

/// <summary>
/// Marks a static method as an ILGPU kernel entry point. At build time the runtime's <c>KernelSet</c> gets one
/// typed launcher property per marked method (loaded once per device), and the test suite compiles every marked
/// method to PTX for the Cuda backend.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false, Inherited = false)]
public sealed class KernelAttribute : Attribute
{
    /// <summary>
    /// True for explicitly grouped kernels (launched with a <c>KernelConfig</c>, may use shared memory and
    /// barriers); false (default) for implicitly grouped grid-stride kernels whose first parameter is an index.
    /// </summary>
    public bool ExplicitlyGrouped { get; init; }

    /// <summary>
    /// Name of the kernel's launcher property on <c>KernelSet</c>. Default: the method name, prefixed with the
    /// family (class name without "Kernels") when it starts with Forward or Backward:
    /// <c>Conv2dKernels.BackwardInput</c> → <c>Conv2dBackwardInput</c>, <c>ElementwiseKernels.Fill</c> → <c>Fill</c>.
    /// </summary>
    public string? Launcher { get; init; }
}
