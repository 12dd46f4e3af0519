using System.Collections.Concurrent;
using System.Diagnostics;
using IlgpuDdw.Autograd;
using IlgpuDdw.Data;
using IlgpuDdw.Distributed;
using IlgpuDdw.Nn;
using IlgpuDdw.Runtime;

namespace IlgpuDdw.Training;

/// <summary>Settings of data-parallel training (<see cref="Trainer"/> over several ranks).</summary>
public sealed record DataParallelOptions
{
    /// <summary>The ranks to train on; null: <see cref="Communicator.World"/> (one process unless started by <c>mpirun</c> / <c>srun</c>).</summary>
    public Communicator? Communicator { get; init; }

    /// <summary>
    /// Synchronised batch norm (<c>--sync-bn</c>): training-mode statistics and backward sums over the global batch,
    /// so N ranks × batch B/N train as one process with batch B. False: each rank normalises with its own batch's
    /// statistics (PyTorch's default), which changes the result with the rank count.
    /// </summary>
    public bool SyncBatchNorm { get; init; }

    /// <summary>All-reduce gradient buckets on a communication thread while the backward pass runs (default true; CPU accelerator with a thread-safe engine).</summary>
    public bool Overlap { get; init; } = true;

    /// <summary>
    /// Reduce gradients and broadcast parameters with NCCL between GPUs (one rank per Cuda device; MPI still starts the
    /// ranks and carries the host collectives). Default false: the communicator's own engine (MPI through host memory on a GPU).
    /// </summary>
    public bool Nccl { get; init; }

    /// <summary>Bytes per gradient bucket (default 256 KiB; a bucket holds whole parameters, in reverse layer order).</summary>
    public int BucketBytes { get; init; } = 256 << 10;

    /// <summary>
    /// Samples per gradient group (<c>--grad-group</c>, <see cref="Tape.GradientGroupSize"/>): convolution, linear and
    /// router parameter gradients are summed per group of this many samples and the group sums added pairwise, so
    /// that their summation order does not depend on the rank count. With <see cref="SyncBatchNorm"/>, ranks whose per-rank
    /// batch is the same power-of-two number of groups (one group each: any rank count) train bit for bit as one process
    /// with the global batch (measured: 1 × 32 = 2 × 16, 1 × 64 = 2 × 32 = 4 × 16). 0: the whole (per-rank) batch at once. Null (the default): <see cref="CpuGradientGroupSize"/> on
    /// the CPU accelerator, 0 on Cuda (one launch per parameter gradient; GPU ranks then agree to float rounding).
    /// </summary>
    public int? GradientGroupSize { get; init; }

    /// <summary>The CPU accelerator's default gradient group: 16 samples (batch 32 over 1 or 2 ranks, 128 over up to 8).</summary>
    public const int CpuGradientGroupSize = 16;

    /// <summary>The gradient group a training step on <paramref name="device"/> uses (<see cref="GradientGroupSize"/> or the device's default).</summary>
    public int GradientGroupFor(Device device) => GradientGroupSize ?? (device.Kind == DeviceKind.Cpu && !device.IsDryRun ? CpuGradientGroupSize : 0);

    /// <summary>
    /// The settings a <see cref="Trainer"/> made without explicit ones uses (the <c>ddw</c> command sets them from
    /// <c>--sync-bn</c>, <c>--no-overlap</c> and <c>--bucket-kb</c>): <see cref="Communicator.World"/>, per-rank batch norm, overlap.
    /// </summary>
    public static DataParallelOptions Default { get; set; } = new();

    /// <summary>The options of a single process (rank 0 of 1).</summary>
    public static DataParallelOptions SingleProcess { get; } = new() { Communicator = new Communicator.SingleProcess() };

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid value.</summary>
    public void Validate()
    {
        if (BucketBytes < 4) throw new ArgumentException($"Bucket size must be at least 4 bytes; got {BucketBytes}.");
        if (GradientGroupSize < 0) throw new ArgumentException($"The gradient group size must be 0 (the whole batch) or a positive number of samples; got {GradientGroupSize}.");
    }
}

/// <summary>
/// The data-parallel engine of <see cref="Trainer"/> for more than one rank. Every parameter's gradient is a view of
/// one flat buffer (<see cref="Tensor.BindGrad"/>; zeroed by one launch), cut into buckets of whole parameters in
/// reverse order (the backward pass finishes the last layers first). While the backward runs, the tape tells this
/// engine when every op that read a bucket's parameters has run its backward (<see cref="IBackwardObserver"/>); the
/// bucket is then summed over the ranks on a communication thread (its own duplicate of the communicator), in bucket
/// order on every rank. The loss gradient is seeded with n_r / N (this rank's share of the global batch), so the sum
/// is the gradient of the global batch's mean. Parameters, buffers and optimizer state are broadcast from rank 0 at
/// the start; every rank then applies the same update and stays bit-identical.
/// </summary>
internal sealed unsafe class DataParallel : IBackwardObserver, IDisposable
{
    private readonly Communicator _comm;
    private readonly NcclCommunicator? _nccl; // owned
    private readonly Device _device;
    private readonly Tensor[] _parameters;
    private readonly Dictionary<Tensor, int> _index = new(ReferenceEqualityComparer.Instance);
    private readonly int[] _offsets;
    private readonly int[] _firstRead;
    private readonly (int First, int End, int Offset, int Length)[] _buckets; // parameters [First, End)
    private readonly int[] _readyAt;
    private readonly Tensor _flat;
    private readonly Dictionary<ImageDataset, ImageDataset> _shards = new(ReferenceEqualityComparer.Instance);
    private readonly bool _pairwise; // gradient groups: ranks' gradients added in the groups' pairwise order
    private bool _allTouched;
    private int _next;

    // communication thread
    private readonly Communicator? _gradComm;
    private readonly Thread? _thread;
    private readonly BlockingCollection<int> _requests = new();
    private readonly BlockingCollection<Exception?> _completions = new();
    private readonly float* _base;
    private int _pending;

    public DataParallel(Module model, Sgd optimizer, Communicator comm, DataParallelOptions options)
    {
        _device = model.Device;
        if (options.Nccl) _nccl = NcclCommunicator.Create(comm, _device);
        _comm = _nccl ?? comm;
        SyncBatchNorm = options.SyncBatchNorm;
        _pairwise = options.GradientGroupFor(_device) > 0 && _nccl is null;
        _parameters = optimizer.Parameters.ToArray();
        _offsets = new int[_parameters.Length + 1];
        for (int i = 0; i < _parameters.Length; i++)
        {
            _index[_parameters[i]] = i;
            _offsets[i + 1] = checked(_offsets[i] + _parameters[i].Length);
        }
        _firstRead = new int[_parameters.Length];
        Array.Fill(_firstRead, int.MaxValue);
        _flat = Tensor.Zeros(_device, Math.Max(1, _offsets[^1]));
        _flat.Name = "flat gradients";
        for (int i = 0; i < _parameters.Length; i++) _parameters[i].BindGrad(_flat, _offsets[i]);

        var buckets = new List<(int, int, int, int)>();
        int end = _parameters.Length;
        while (end > 0)
        {
            int first = end - 1;
            while (first > 0 && 4L * (_offsets[end] - _offsets[first - 1]) <= options.BucketBytes) first--;
            buckets.Add((first, end, _offsets[first], _offsets[end] - _offsets[first]));
            end = first;
        }
        _buckets = [.. buckets];
        _readyAt = new int[_buckets.Length];

        BroadcastState(model, optimizer);

        bool cpuMemory = _device.Kind == DeviceKind.Cpu && !_device.IsDryRun;
        if (options.Overlap && cpuMemory && comm.IsThreadSafe && _buckets.Length > 0)
        {
            var view = (ILGPU.IContiguousArrayView)_flat.View;
            _base = (float*)(view.Buffer.NativePtr + (nint)view.IndexInBytes);
            _gradComm = comm.Duplicate();
            _thread = new Thread(Communicate) { IsBackground = true, Name = "gradient all-reduce" };
            _thread.Start();
        }
    }

    /// <summary>The ranks.</summary>
    public Communicator Communicator => _comm;

    /// <summary>Whether batch norm is synchronised over the ranks.</summary>
    public bool SyncBatchNorm { get; }

    /// <summary>Whether buckets are reduced on the communication thread during the backward pass.</summary>
    public bool Overlaps => _thread is not null;

    /// <summary>Gradient buckets (reverse parameter order).</summary>
    public int BucketCount => _buckets.Length;

    /// <summary>Elements of the flat gradient buffer.</summary>
    public int GradientLength => _offsets[^1];

    /// <summary>Seconds the main thread spent waiting for gradient all-reduces (since creation).</summary>
    public double WaitSeconds { get; private set; }

    private void BroadcastState(Module model, Sgd optimizer)
    {
        foreach (var p in _parameters) _comm.Broadcast(_device, p.View);
        foreach (var (_, b) in model.NamedBuffers()) _comm.Broadcast(_device, b.View);
        var state = optimizer.StateDict();
        if (state.Count == 0) return;
        var copy = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach (var (key, values) in state.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            _comm.Broadcast<float>(values);
            copy[key] = values;
        }
        optimizer.LoadStateDict(copy);
    }

    /// <summary>This rank's contiguous block of <paramref name="data"/> (sizes differ by at most one).</summary>
    public ImageDataset Shard(ImageDataset data)
    {
        if (_shards.TryGetValue(data, out var shard)) return shard;
        var (start, count) = Split(data.Count, _comm.Rank, _comm.Size);
        int sample = data.SampleLength;
        shard = new ImageDataset(data.Images.AsSpan(start * sample, count * sample).ToArray(), data.Labels.AsSpan(start, count).ToArray(),
            data.Channels, data.Height, data.Width, data.ClassCount, data.BackgroundValue);
        _shards[data] = shard;
        return shard;
    }

    /// <summary>Block <paramref name="rank"/> of <paramref name="total"/> items over <paramref name="ranks"/> (the first total mod ranks get one more).</summary>
    public static (int Start, int Count) Split(int total, int rank, int ranks)
    {
        int q = total / ranks, r = total % ranks;
        return (rank * q + Math.Min(rank, r), q + (rank < r ? 1 : 0));
    }

    /// <summary>Zeros every gradient (one launch over the flat buffer).</summary>
    public void ZeroGrad() => _flat.Fill(0f);

    /// <summary>
    /// The backward pass of one step with the gradient all-reduce: seeds d loss = <paramref name="localCount"/> /
    /// <paramref name="globalCount"/>, reduces the buckets as they become ready (or after the pass without overlap),
    /// waits for them, and gives every parameter that received a gradient on any rank its gradient view.
    /// </summary>
    public void Backward(Tape tape, Tensor objective, int localCount, int globalCount)
    {
        for (int b = 0; b < _buckets.Length; b++)
        {
            int ready = int.MaxValue; // a bucket nothing read is ready at once
            for (int i = _buckets[b].First; i < _buckets[b].End; i++) ready = Math.Min(ready, _firstRead[i]);
            _readyAt[b] = ready;
        }
        _next = 0;
        _pending = 0;
        tape.Backward(objective, [(float)localCount / globalCount]);
        while (_next < _buckets.Length) Launch(_next++);
        var clock = Stopwatch.StartNew();
        Exception? failure = null;
        for (; _pending > 0; _pending--)
            if (_completions.Take() is { } e) failure ??= e;
        WaitSeconds += clock.Elapsed.TotalSeconds;
        if (failure is not null) throw new DistributedException($"Gradient all-reduce failed on rank {_comm.Rank} of {_comm.Size}: {failure.Message}", failure);
        Array.Fill(_firstRead, int.MaxValue);
        BindTouched();
    }

    /// <summary>Parameters that got a gradient on some rank but not here get their (reduced) gradient view, as one process would have.</summary>
    private void BindTouched()
    {
        if (_allTouched) return;
        var touched = new int[_parameters.Length];
        for (int i = 0; i < touched.Length; i++) touched[i] = _parameters[i].GradOrNull is null ? 0 : 1;
        _comm.AllReduce<int>(touched, ReduceOp.Max);
        bool all = true;
        for (int i = 0; i < touched.Length; i++)
        {
            if (touched[i] != 0) _ = _parameters[i].Grad; // a view of the flat buffer; holds the other ranks' sum
            else all = false;
        }
        _allTouched = all;
    }

    /// <summary>Sums <paramref name="values"/> over the ranks in place (host).</summary>
    public void Sum(double[] values) => _comm.AllReduce<double>(values);

    private void Launch(int bucket)
    {
        var (_, _, offset, length) = _buckets[bucket];
        if (_thread is not null)
        {
            _device.Stream.Synchronize(); // the launches that wrote the bucket have finished (the CPU accelerator runs them asynchronously)
            _pending++;
            _requests.Add(bucket);
            return;
        }
        Reduce(_comm, _flat.View.SubView(offset, length));
    }

    /// <summary>Sums a gradient bucket over the ranks: pairwise with gradient groups (the order one process adds its groups in), else the engine's all-reduce.</summary>
    private void Reduce(Communicator comm, ArrayView<float> bucket)
    {
        if (_pairwise) comm.AllReducePairwise(_device, bucket);
        else comm.AllReduce(_device, bucket);
    }

    private void Communicate()
    {
        foreach (int bucket in _requests.GetConsumingEnumerable())
        {
            try
            {
                var (_, _, offset, length) = _buckets[bucket];
                var values = new Span<float>(_base + offset, length);
                if (_pairwise) _gradComm!.AllReducePairwise(values);
                else _gradComm!.AllReduce(values);
                _completions.Add(null);
            }
            catch (Exception e)
            {
                _completions.Add(e);
            }
        }
    }

    /// <inheritdoc/>
    public void OnRead(Tensor input, int entry)
    {
        if (_index.TryGetValue(input, out int i) && entry < _firstRead[i]) _firstRead[i] = entry;
    }

    /// <inheritdoc/>
    public void OnBackwardDone(int entry)
    {
        while (_next < _buckets.Length && _readyAt[_next] >= entry) Launch(_next++);
    }

    /// <summary>Stops the communication thread and frees the flat buffer (the parameters get gradients of their own again).</summary>
    public void Dispose()
    {
        _requests.CompleteAdding();
        _thread?.Join();
        _gradComm?.Dispose();
        _nccl?.Dispose();
        foreach (var p in _parameters)
            if (!p.IsDisposed) p.BindGrad(null);
        _flat.Dispose();
    }
}
