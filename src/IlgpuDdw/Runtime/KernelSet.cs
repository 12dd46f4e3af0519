using System.Reflection;
using ILGPU;
using ILGPU.Runtime;
using IlgpuDdw.Kernels;

namespace IlgpuDdw.Runtime;

/// <summary>
/// Every kernel of <c>IlgpuDdw.Kernels</c> as a typed launch delegate for one device. A kernel is compiled
/// and loaded the first time its property is read and cached for the device's lifetime (so each is loaded
/// once per device). Implicitly grouped kernels take <c>(stream, extent, ...)</c>; size the extent with
/// <see cref="Device.Extent"/> and pass the same value as the kernel's <c>stride</c> argument.
/// </summary>
public sealed partial class KernelSet
{
    private readonly Device _device;
    private readonly Dictionary<MethodInfo, Delegate> _loaded = new();

    internal KernelSet(Device device) => _device = device;

    /// <summary>The kernel methods loaded so far on this device.</summary>
    public IReadOnlyCollection<MethodInfo> LoadedMethods => _loaded.Keys;

    /// <summary>Every method marked <see cref="KernelAttribute"/> in the kernels assembly.</summary>
    public static IReadOnlyList<MethodInfo> AllKernelMethods { get; } = typeof(KernelAttribute).Assembly
        .GetTypes()
        .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Static))
        .Where(m => m.GetCustomAttribute<KernelAttribute>() is not null)
        .OrderBy(m => m.DeclaringType!.Name, StringComparer.Ordinal).ThenBy(m => m.Name, StringComparer.Ordinal)
        .ToArray();

    /// <summary>Reads every kernel property, compiling and loading every kernel now (e.g. before timing).</summary>
    public void LoadAll()
    {
        foreach (var p in typeof(KernelSet).GetProperties(BindingFlags.Public | BindingFlags.Instance))
            if (typeof(Delegate).IsAssignableFrom(p.PropertyType))
                _ = p.GetValue(this);
    }

    /// <summary>
    /// Loads a user's own implicitly grouped kernel (first parameter <c>Index1D</c>) as a launch delegate of type
    /// <typeparamref name="TLauncher"/> = <c>Action&lt;AcceleratorStream, Index1D, ...the kernel's other
    /// parameters&gt;</c>, cached per device. This is the extension point for custom ops (see README).
    /// </summary>
    public TLauncher Load<TLauncher>(Delegate kernel) where TLauncher : Delegate
    {
        var method = kernel.Method;
        if (_loaded.TryGetValue(method, out var cached))
            return (TLauncher)cached;
        var launcher = _device.Accelerator.LoadAutoGroupedKernel(method).CreateLauncherDelegate<TLauncher>();
        _loaded[method] = launcher;
        return launcher;
    }

    /// <summary>
    /// Loads an explicitly grouped kernel as <c>Action&lt;AcceleratorStream, KernelConfig, ...&gt;</c>, cached per device.
    /// </summary>
    public TLauncher LoadExplicit<TLauncher>(Delegate kernel) where TLauncher : Delegate
    {
        var method = kernel.Method;
        if (_loaded.TryGetValue(method, out var cached))
            return (TLauncher)cached;
        var launcher = _device.Accelerator.LoadKernel(method).CreateLauncherDelegate<TLauncher>();
        _loaded[method] = launcher;
        return launcher;
    }

    // ---- Elementwise ----------------------------------------------------------------------------------

    /// <summary><see cref="ElementwiseKernels.Fill"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, float, ArrayView<float>> Fill =>
        Load<Action<AcceleratorStream, Index1D, int, int, float, ArrayView<float>>>(ElementwiseKernels.Fill);

    /// <summary><see cref="ElementwiseKernels.Copy"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, ArrayView<float>, ArrayView<float>> Copy =>
        Load<Action<AcceleratorStream, Index1D, int, int, ArrayView<float>, ArrayView<float>>>(ElementwiseKernels.Copy);

    /// <summary><see cref="ElementwiseKernels.Axpy"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, float, ArrayView<float>, ArrayView<float>> Axpy =>
        Load<Action<AcceleratorStream, Index1D, int, int, float, ArrayView<float>, ArrayView<float>>>(ElementwiseKernels.Axpy);

    /// <summary><see cref="ElementwiseKernels.AddForward"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>> AddForward =>
        Load<Action<AcceleratorStream, Index1D, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>>>(ElementwiseKernels.AddForward);

    /// <summary><see cref="ElementwiseKernels.MultiplyForward"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>> MultiplyForward =>
        Load<Action<AcceleratorStream, Index1D, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>>>(ElementwiseKernels.MultiplyForward);

    /// <summary><see cref="ElementwiseKernels.MultiplyBackward"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>> MultiplyBackward =>
        Load<Action<AcceleratorStream, Index1D, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>>>(ElementwiseKernels.MultiplyBackward);

    // ---- Reductions -----------------------------------------------------------------------------------

    /// <summary><see cref="ReductionKernels.SumChunks"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, int, int, float, ArrayView<float>, ArrayView<float>> SumChunks =>
        Load<Action<AcceleratorStream, Index1D, int, int, int, int, float, ArrayView<float>, ArrayView<float>>>(ReductionKernels.SumChunks);

    /// <summary><see cref="ReductionKernels.SumBackward"/>.</summary>
    public Action<AcceleratorStream, Index1D, int, int, float, ArrayView<float>, ArrayView<float>> SumBackward =>
        Load<Action<AcceleratorStream, Index1D, int, int, float, ArrayView<float>, ArrayView<float>>>(ReductionKernels.SumBackward);
}
