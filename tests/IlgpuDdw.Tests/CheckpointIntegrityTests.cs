using System.Buffers.Binary;
using System.Text.Json;
using IlgpuDdw.Models;
using IlgpuDdw.Training;
using IlgpuDdw.Wiring;

namespace IlgpuDdw.Tests;

/// <summary>Checkpoints carry per-tensor checksums (written by SafeTensors.Save): a flipped data byte is caught on load.</summary>
[Collection("cpu")]
public sealed class CheckpointIntegrityTests(DeviceFixture fx)
{
    [Fact]
    public void Flipped_Byte_In_A_Checkpoint_Names_The_File_And_The_Tensor()
    {
        var d = fx.Device;
        using var dir = new TempDirectory();
        string path = dir.File("m.safetensors");
        using var model = DdwNet.Create(d, "resnet_mini", new WiringConfig { Kind = WiringKind.Dense }, seed: 3);
        Checkpoint.Save(path, model);
        using (Checkpoint.LoadModel(d, path)) { }

        // Flip one bit in the middle of the first tensor of the byte buffer.
        var bytes = File.ReadAllBytes(path);
        long headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        using var header = JsonDocument.Parse(bytes.AsMemory(8, (int)headerLength));
        var (name, begin, end) = header.RootElement.EnumerateObject()
            .Where(p => p.Name != "__metadata__")
            .Select(p => (p.Name, Begin: p.Value.GetProperty("data_offsets")[0].GetInt64(), End: p.Value.GetProperty("data_offsets")[1].GetInt64()))
            .First(t => t.Begin == 0);
        bytes[8 + headerLength + (begin + end) / 2] ^= 0x40;
        File.WriteAllBytes(path, bytes);

        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.LoadModel(d, path));
        Assert.StartsWith($"{path}: tensor '{name}': checksum mismatch (file corrupted?): SHA-256 of its {end - begin} bytes at data_offsets [{begin}, {end}] is ", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Throws<InvalidDataException>(() => Checkpoint.ReadInfo(path));
    }
}
