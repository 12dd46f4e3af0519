using System.Reflection;

namespace IlgpuDdw.Runtime;

/// <summary>
/// Every kernel of <c>IlgpuDdw.Kernels</c> as a typed launch delegate for one device. The launcher properties are
/// not written by hand: at build time the <c>IlgpuDdw.Generators</c> source generator emits one per
/// <see cref="KernelAttribute"/> method, its delegate type taken from the kernel's parameters and its name as
/// <see cref="KernelAttribute.Launcher"/> describes (<c>Conv2dKernels.BackwardInput</c> →
/// <see cref="Conv2dBackwardInput"/>). A kernel is compiled and loaded the first time its property is read and
/// cached for the device's lifetime (so each is loaded once per device). Implicitly grouped kernels take
/// <c>(stream, extent, ...)</c>; size the extent with <see cref="Device.Extent"/> and pass the same value as the
/// kernel's <c>stride</c> argument. Explicitly grouped kernels take <c>(stream, KernelConfig, ...)</c>.
/// While <see cref="Device.Tracer"/> is set (and always on a dry run) each property returns a wrapper that reports
/// the launch, its grid and its <see cref="KernelCosts"/> cost before launching (on a dry run, instead of launching).
/// </summary>
public sealed partial class KernelSet
{
    private readonly Device _device;
    private readonly Dictionary<MethodInfo, Delegate> _loaded = new();
    private readonly Dictionary<MethodInfo, int> _groupSizes = new();

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

    /// <summary>Compiles and loads every kernel now (e.g. before timing). Does nothing on a dry run.</summary>
    public void LoadAll()
    {
        if (!_device.IsDryRun) LoadEveryKernel();
    }

    /// <summary>
    /// Loads an implicitly grouped kernel (first parameter <c>Index1D</c>) as a launch delegate of type
    /// <typeparamref name="TLauncher"/> = <c>Action&lt;AcceleratorStream, Index1D, ...the kernel's other
    /// parameters&gt;</c>, cached per device. This is the extension point for custom ops (see README). While the
    /// device is traced the delegate reports each launch (without a cost formula) and on a dry run it launches nothing.
    /// </summary>
    public TLauncher Load<TLauncher>(Delegate kernel) where TLauncher : Delegate =>
        Tracing ? TracedCustom<TLauncher>(kernel, explicitlyGrouped: false) : LoadImplicit<TLauncher>(kernel);

    /// <summary>
    /// Loads an explicitly grouped kernel (may use shared memory and barriers) as a launch delegate of type
    /// <typeparamref name="TLauncher"/> = <c>Action&lt;AcceleratorStream, KernelConfig, ...the kernel's
    /// parameters&gt;</c>, cached per device; traced like <see cref="Load{TLauncher}"/>.
    /// </summary>
    public TLauncher LoadExplicit<TLauncher>(Delegate kernel) where TLauncher : Delegate =>
        Tracing ? TracedCustom<TLauncher>(kernel, explicitlyGrouped: true) : LoadGrouped<TLauncher>(kernel);

    /// <summary>
    /// The untraced launcher of an implicitly grouped kernel. On a GPU it launches groups of
    /// <see cref="Device.GpuGroupSize"/> threads (the extent rounded up to whole groups; the kernel returns for
    /// indices past the extent); on the CPU accelerator ILGPU picks the grouping.
    /// </summary>
    private TLauncher LoadImplicit<TLauncher>(Delegate kernel) where TLauncher : Delegate =>
        Cached<TLauncher>(kernel, m =>
        {
            if (_device.Kind == DeviceKind.Cuda)
            {
                _groupSizes[m] = Device.GpuGroupSize;
                return _device.Accelerator.LoadImplicitlyGroupedKernel(m, Device.GpuGroupSize);
            }
            var loaded = _device.Accelerator.LoadAutoGroupedKernel(m, out var info);
            _groupSizes[m] = info?.MinGroupSize ?? 1;
            return loaded;
        });

    /// <summary>The untraced launcher of an explicitly grouped kernel.</summary>
    private TLauncher LoadGrouped<TLauncher>(Delegate kernel) where TLauncher : Delegate =>
        Cached<TLauncher>(kernel, m => _device.Accelerator.LoadKernel(m));

    private TLauncher Cached<TLauncher>(Delegate kernel, Func<MethodInfo, Kernel> compile) where TLauncher : Delegate
    {
        var method = kernel.Method;
        if (_loaded.TryGetValue(method, out var cached))
            return (TLauncher)cached;
        var launcher = compile(method).CreateLauncherDelegate<TLauncher>();
        _loaded[method] = launcher;
        return launcher;
    }
}
