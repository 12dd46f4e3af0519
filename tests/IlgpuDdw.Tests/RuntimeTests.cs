using System.Reflection;
using ILGPU;
using ILGPU.Backends.PTX;
using ILGPU.Backends.EntryPoints;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using IlgpuDdw.Kernels;
using IlgpuDdw.Runtime;
using ILGPU.Runtime.CPU;
using Device = IlgpuDdw.Runtime.Device;

namespace IlgpuDdw.Tests;

[Collection("cpu")]
public sealed class RuntimeTests(DeviceFixture fx)
{
    [Fact]
    public void CpuDevice_IsConfiguredForGridStride()
    {
        var d = fx.Device;
        Assert.Equal(DeviceKind.Cpu, d.Kind);
        Assert.True(d.MaxThreads <= 16 * Environment.ProcessorCount);
        Assert.Equal(d.MaxThreads, d.Extent(1_000_000));
        Assert.Equal(1, d.Extent(0));
        Assert.Equal(3, d.Extent(3));
    }

    [Fact]
    public void CudaWithoutGpu_ListsExistingDevices()
    {
        if (Device.ListDevices().Any(x => x.Spec.StartsWith("cuda", StringComparison.Ordinal)))
            return; // a GPU is present: nothing to check here
        var e = Assert.Throws<ArgumentException>(() => Device.Create("cuda"));
        Assert.Contains("cpu (", e.Message);
        e = Assert.Throws<ArgumentException>(() => Device.Create("cuda:3"));
        Assert.Contains("cpu (", e.Message);
        e = Assert.Throws<ArgumentException>(() => Device.Create("tpu"));
        Assert.Contains("tpu", e.Message);
    }

    [Fact]
    public void ListDevices_HasCpu()
    {
        var cpu = Assert.Single(Device.ListDevices(), x => x.Spec == "cpu");
        Assert.True(cpu.Multiprocessors >= 1);
    }

    [Fact]
    public void KernelSet_ExposesEveryKernel()
    {
        var ks = fx.Device.Kernels;
        ks.LoadAll();
        var loaded = ks.LoadedMethods.ToHashSet();
        var missing = KernelSet.AllKernelMethods.Where(m => !loaded.Contains(m)).Select(m => $"{m.DeclaringType!.Name}.{m.Name}").ToArray();
        Assert.True(missing.Length == 0, "KernelSet has no launcher for: " + string.Join(", ", missing));
        Assert.NotEmpty(KernelSet.AllKernelMethods);
    }

    public static TheoryData<string> KernelNames()
    {
        var data = new TheoryData<string>();
        foreach (var m in KernelSet.AllKernelMethods) data.Add($"{m.DeclaringType!.Name}.{m.Name}");
        return data;
    }

    private static readonly Lazy<(Context Context, PTXBackend Backend)> Ptx = new(() =>
    {
        var ctx = Context.Create(b => b.CPU().EnableAlgorithms().Optimize(OptimizationLevel.O2));
        var backend = new PTXBackend(ctx, new CudaCapabilityContext(CudaArchitecture.SM_90), CudaArchitecture.SM_90, CudaInstructionSet.ISA_80, null!);
        return (ctx, backend);
    });

    private static readonly object PtxLock = new();

    [Theory, MemberData(nameof(KernelNames))]
    public void Kernel_CompilesToPtx(string name) => Assert.Contains(".entry", CompilePtx(name));

    /// <summary>
    /// The TF32 kernels issue tensor-core mma through inline PTX on the Cuda backend (the CPU accelerator runs their
    /// emulation instead): the PTX holds the mma.sync and the cvt.rna rounding, and the FP32 tiled kernels hold neither.
    /// </summary>
    [Theory]
    [InlineData("Conv2dKernels.ForwardTiledTf32", "Conv2dKernels.ForwardTiled")]
    [InlineData("Conv2dKernels.BackwardInputTiledTf32", "Conv2dKernels.BackwardInputTiled")]
    public void Tf32Kernels_IssueMmaSync_AndRoundWithCvtRna(string tf32, string fp32)
    {
        var ptx = CompilePtx(tf32);
        Assert.Contains("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32", ptx);
        Assert.Contains("cvt.rna.tf32.f32", ptx);
        var plain = CompilePtx(fp32);
        Assert.DoesNotContain("mma.sync", plain);
        Assert.DoesNotContain("tf32", plain);
    }

    private static string CompilePtx(string name)
    {
        var m = KernelSet.AllKernelMethods.Single(x => $"{x.DeclaringType!.Name}.{x.Name}" == name);
        var attr = m.GetCustomAttribute<KernelAttribute>()!;
        var entry = attr.ExplicitlyGrouped
            ? EntryPointDescription.FromExplicitlyGroupedKernel(m)
            : EntryPointDescription.FromImplicitlyGroupedKernel(m);
        lock (PtxLock)
            return ((PTXCompiledKernel)Ptx.Value.Backend.Compile(entry, KernelSpecialization.Empty)).PTXAssembly;
    }
}
