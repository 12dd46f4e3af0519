using IlgpuDdw.Runtime;

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
