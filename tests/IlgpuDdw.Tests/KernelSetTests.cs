using System.Linq.Expressions;
using System.Reflection;
using ILGPU;
using ILGPU.Runtime;
using IlgpuDdw.Kernels;
using IlgpuDdw.Runtime;

namespace IlgpuDdw.Tests;

/// <summary>The launcher properties of <see cref="KernelSet"/> against the <see cref="KernelAttribute"/> methods.</summary>
[Collection("cpu")]
public sealed class KernelSetTests(DeviceFixture fx)
{
    private static PropertyInfo[] Launchers() => typeof(KernelSet)
        .GetProperties(BindingFlags.Public | BindingFlags.Instance)
        .Where(p => typeof(Delegate).IsAssignableFrom(p.PropertyType))
        .ToArray();

    private static string Name(MethodInfo m) => $"{m.DeclaringType!.Name}.{m.Name}";

    /// <summary>Action&lt;AcceleratorStream, [KernelConfig,] ...the kernel's parameters&gt;.</summary>
    private static Type ExpectedLauncher(MethodInfo kernel)
    {
        var arguments = new List<Type> { typeof(AcceleratorStream) };
        if (kernel.GetCustomAttribute<KernelAttribute>()!.ExplicitlyGrouped)
            arguments.Add(typeof(KernelConfig));
        arguments.AddRange(kernel.GetParameters().Select(p => p.ParameterType));
        return Expression.GetActionType([.. arguments]);
    }

    [Fact]
    public void EveryKernel_HasExactlyOneLauncher_WithItsSignature()
    {
        var kernels = new KernelSet(fx.Device);
        var launched = new List<MethodInfo>();
        foreach (var p in Launchers())
        {
            var before = kernels.LoadedMethods.ToHashSet();
            _ = p.GetValue(kernels);
            // Exactly one new method: a launcher that loaded nothing new shares its kernel with an earlier one.
            var loaded = kernels.LoadedMethods.Where(m => !before.Contains(m)).ToArray();
            Assert.True(loaded.Length == 1, $"{p.Name} loaded {loaded.Length} new kernels");
            var kernel = loaded[0];
            Assert.True(KernelSet.AllKernelMethods.Contains(kernel), $"{p.Name} loads {Name(kernel)}, which is not marked [Kernel]");
            Assert.True(ExpectedLauncher(kernel) == p.PropertyType, $"{p.Name} has type {p.PropertyType} for {Name(kernel)}");
            launched.Add(kernel);
        }
        var missing = KernelSet.AllKernelMethods.Except(launched).Select(Name).ToArray();
        Assert.True(missing.Length == 0, "no launcher for: " + string.Join(", ", missing));
        Assert.Equal(KernelSet.AllKernelMethods.Count, launched.Count);
    }

    [Fact]
    public void LoadAll_LoadsExactlyTheKernelMethods()
    {
        var kernels = new KernelSet(fx.Device);
        kernels.LoadAll();
        Assert.Equal(KernelSet.AllKernelMethods.Select(Name).Order(StringComparer.Ordinal),
            kernels.LoadedMethods.Select(Name).Order(StringComparer.Ordinal));
    }

    /// <summary>Each group of two threads stages its inputs in shared memory; the first thread writes their sum.</summary>
    [Kernel(ExplicitlyGrouped = true)]
    private static void PairSums(ArrayView<float> x, ArrayView<float> sums)
    {
        var pair = SharedMemory.Allocate<float>(2);
        pair[Group.IdxX] = x[Grid.GlobalIndex.X];
        Group.Barrier();
        if (Group.IsFirstThread)
            sums[Grid.IdxX] = pair[0] + pair[1];
    }

    [Fact]
    public void LoadExplicit_LaunchesAnExplicitlyGroupedKernel_AndCachesIt()
    {
        var d = fx.Device;
        var launch = d.Kernels.LoadExplicit<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>>>(PairSums);
        Assert.Same(launch, d.Kernels.LoadExplicit<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>>>(PairSums));

        using var x = d.Accelerator.Allocate1D([1f, 2f, 3f, 4f, 5f, 6f, 7f, 8f]);
        using var sums = d.Accelerator.Allocate1D<float>(4);
        launch(d.Stream, new KernelConfig(4, 2), x.View, sums.View);
        d.Synchronize();
        Assert.Equal([3f, 7f, 11f, 15f], sums.GetAsArray1D());
    }
}
