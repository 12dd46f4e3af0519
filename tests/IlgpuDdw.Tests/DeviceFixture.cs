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
