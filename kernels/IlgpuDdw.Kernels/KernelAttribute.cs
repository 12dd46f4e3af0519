namespace IlgpuDdw.Kernels;

/// <summary>
/// Marks a static method as an ILGPU kernel entry point. The runtime's <c>KernelSet</c> loads every marked
/// method once per device, and the test suite compiles every marked method to PTX for the Cuda backend.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false, Inherited = false)]
public sealed class KernelAttribute : Attribute
{
    /// <summary>
    /// True for explicitly grouped kernels (launched with a <c>KernelConfig</c>, may use shared memory and
    /// barriers); false (default) for implicitly grouped grid-stride kernels whose first parameter is an index.
    /// </summary>
    public bool ExplicitlyGrouped { get; init; }
}
