using IlgpuDdw.Distributed;

namespace IlgpuDdw.Training;

/// <summary>
/// Terms of the whole batch in data-parallel training: the ranks' gate states are gathered into the state of the
/// global batch (rank blocks in rank order, which is the global batch's order), the term is evaluated on it (on the device,
/// the same kernels as one process's), and each rank keeps the gradient of its own samples divided by its share n_r / N of the batch (the loss gradient is
/// seeded with that share and summed over the ranks, see <see cref="ObjectiveContext.Group"/>).
/// </summary>
internal static class GlobalBatch
{
    /// <summary>
    /// The global batch's gate states (every rank's samples, in rank order), with the first global sample of this rank
    /// and the global batch size.
    /// </summary>
    public static (StageKeepState[] Global, int First, int Total) Gather(Communicator group, IReadOnlyList<StageKeepState> local)
    {
        int batch = local[0].Batch;
        var sizes = group.AllGather<int>([batch]);
        int max = sizes.Max(), total = sizes.Sum(), first = sizes.Take(group.Rank).Sum();
        int perSample = local.Sum(s => (s.Nodes + 1) * (s.Nodes + 1) + s.Inputs.Sum(x => x.Length / s.Batch));
        var send = new double[max * perSample];
        int at = 0;
        foreach (var s in local)
        {
            foreach (var a in s.Adjacency) send[at++] = a;
            foreach (var x in s.Inputs) { x.CopyTo(send, at); at += x.Length; }
        }
        var all = group.AllGather<double>(send);
        var global = new StageKeepState[local.Count];
        var offsets = new int[group.Size]; // read position within each rank's block
        for (int k = 0; k < local.Count; k++)
        {
            var s = local[k];
            int size = s.Nodes + 1, square = size * size;
            var adjacency = new float[total * square];
            var inputs = s.Inputs.Select(x => new double[total * (x.Length / s.Batch)]).ToArray();
            int sample = 0;
            for (int r = 0; r < group.Size; r++)
            {
                int block = r * max * perSample, n = sizes[r];
                for (int v = 0; v < n * square; v++) adjacency[sample * square + v] = (float)all[block + offsets[r] + v];
                offsets[r] += n * square;
                for (int i = 0; i < inputs.Length; i++)
                {
                    int degree = s.Inputs[i].Length / s.Batch;
                    Array.Copy(all, block + offsets[r], inputs[i], sample * degree, n * degree);
                    offsets[r] += n * degree;
                }
                sample += n;
            }
            global[k] = s with { Batch = total, Adjacency = adjacency, Inputs = inputs };
        }
        return (global, first, total);
    }
}
