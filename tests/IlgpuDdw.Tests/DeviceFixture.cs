using IlgpuDdw.Runtime;

// The collections mostly wait on launches, processes and the disk, not on the cores: run four at a time (on a 2-core
// machine the default of one per core leaves "cpu-cli" waiting for "cpu-groups" and the 2-rank MPI jobs).
[assembly: CollectionBehavior(MaxParallelThreads = 4)]

namespace IlgpuDdw.Tests;

/// <summary>One CPU accelerator shared by every test class of the "cpu" collection.</summary>
public sealed class DeviceFixture : IDisposable
{
    public DeviceFixture() => Device = Device.Create("cpu");

    public Device Device { get; }

    public void Dispose() => Device.Dispose();
}

[CollectionDefinition("cpu")]
public sealed class CpuCollection : ICollectionFixture<DeviceFixture>;

/// <summary>
/// A CPU accelerator with groups of up to 4 warps of 4 threads, for explicitly grouped kernels at several warps per
/// group, shared by the "cpu-groups" collection.
/// </summary>
public sealed class GroupedDeviceFixture : IDisposable
{
    public GroupedDeviceFixture() => Device = Device.CreateCpu(threadsPerWarp: 4, warpsPerGroup: 4);

    public Device Device { get; }

    public void Dispose() => Device.Dispose();
}

[CollectionDefinition("cpu-groups")]
public sealed class CpuGroupsCollection : ICollectionFixture<GroupedDeviceFixture>;

/// <summary>
/// A second CPU accelerator for the classes that run whole commands (the CLI in-process, training on the data set),
/// so that they run beside the "cpu" collection instead of after it.
/// </summary>
[CollectionDefinition("cpu-cli")]
public sealed class CpuCliCollection : ICollectionFixture<DeviceFixture>;
