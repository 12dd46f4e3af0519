namespace IlgpuDdw.Autograd;

public static partial class Ops
{
    /// <summary>Whether <see cref="RouterFused"/> takes a router of these sizes (<see cref="RouterKernels"/>' limits).</summary>
    public static bool RouterFits(int channels, int hidden, int outDegree) =>
        channels is >= 1 and <= RouterKernels.MaxChannels && hidden is >= 1 and <= RouterKernels.MaxHidden
        && outDegree is >= 1 and <= RouterKernels.MaxOutDegree;

    /// <summary>
    /// Whether a router of these sizes runs as one <see cref="RouterFused"/> launch on a device of kind
    /// <paramref name="kind"/>: on Cuda when it fits (<see cref="RouterFits"/>); on the CPU accelerator never, since its
    /// group barriers make the one-group-per-sample kernel slower there than pooling and two linear launches.
    /// </summary>
    public static bool RouterFusedFor(DeviceKind kind, int channels, int hidden, int outDegree) =>
        kind != DeviceKind.Cpu && RouterFits(channels, hidden, outDegree);

    /// <summary>
    /// A node's router in one launch, <c>a = sigmoid(W2 · relu(W1 · GAP(input) + b1) + b2)</c> (<see cref="RouterKernels"/>):
    /// input <c>[B, C, H, W]</c>, w1 <c>[Hidden, C]</c>, b1 <c>[Hidden]</c>, w2 <c>[OutDegree, Hidden]</c>, b2
    /// <c>[OutDegree]</c>; returns a <c>[B, OutDegree]</c>. The same function as <see cref="GlobalAvgPool2d"/> and two
    /// <see cref="Linear"/> ops with ReLU and sigmoid (up to float summation order); the backward is three launches and
    /// accumulates into the gradients of every operand that requires one. Keeps the pooled features and hidden
    /// activations for the backward.
    /// </summary>
    /// <exception cref="ArgumentException">A shape does not match, or a size is beyond <see cref="RouterFits"/>.</exception>
    public static Tensor RouterFused(this Tape tape, Tensor input, Tensor w1, Tensor b1, Tensor w2, Tensor b2)
    {
        const string op = "Router";
        Tensor[] operands = [input, w1, b1, w2, b2];
        RequireSameDevice(op, tape, operands);
        RequireNchw(op, input);
        int batch = input.Dim(0), channels = input.Dim(1), spatial = input.Dim(2) * input.Dim(3);
        if (w1.Rank != 2 || w1.Dim(1) != channels)
            throw new ArgumentException($"Router: fc1 weight {w1.Describe()} must be [Hidden, {channels}] for input {input.Describe()}.", nameof(w1));
        int hidden = w1.Dim(0);
        if (w2.Rank != 2 || w2.Dim(1) != hidden)
            throw new ArgumentException($"Router: fc2 weight {w2.Describe()} must be [OutDegree, {hidden}] after fc1 {w1.Describe()}.", nameof(w2));
        int outDegree = w2.Dim(0);
        if (b1.Rank != 1 || b1.Length != hidden)
            throw new ArgumentException($"Router: fc1 bias {b1.Describe()} must be [{hidden}].", nameof(b1));
        if (b2.Rank != 1 || b2.Length != outDegree)
            throw new ArgumentException($"Router: fc2 bias {b2.Describe()} must be [{outDegree}].", nameof(b2));
        if (!RouterFits(channels, hidden, outDegree))
            throw new ArgumentException(
                $"Router: {channels} channels, {hidden} hidden, {outDegree} outputs exceed the fused kernel's {RouterKernels.MaxChannels}, {RouterKernels.MaxHidden}, {RouterKernels.MaxOutDegree}.", nameof(input));

        var d = tape.Device;
        var pooled = tape.NewTensor(batch, channels);
        var hiddenOut = tape.NewTensor(batch, hidden);
        var a = tape.NewTensor(batch, outDegree);
        var config = new KernelConfig(batch, RouterGroupSize(d));
        int groupSize = tape.GradientGroupSize;
        var shape = new RouterShape(channels, spatial, hidden, outDegree);
        d.Kernels.RouterForward(d.Stream, config, shape, input.View, w1.View, b1.View, w2.View, b2.View, pooled.View, hiddenOut.View, a.View);
        if (tape.NeedsGrad(operands))
            tape.Record(op, a, () =>
            {
                using var dz2 = Tensor.Empty(d, batch * outDegree);
                using var dz1 = Tensor.Empty(d, batch * hidden);
                using var dPooled = Tensor.Empty(d, batch * channels);
                // operands without a gradient get a scratch one from the pool, so each kernel has one shape of work
                using var scratch = new ScratchGradients(d);
                d.Kernels.RouterBackwardActivations(d.Stream, config, shape, a.Grad.View, a.View,
                    hiddenOut.View, w1.View, w2.View, dz2.View, dz1.View, dPooled.View);
                if (input.RequiresGrad)
                {
                    int inputExtent = d.Extent(input.Length);
                    var dInput = input.GradForWrite(out int accumulate);
                    d.Kernels.GlobalAvgPoolBackward(d.Stream, inputExtent, input.Length, inputExtent, spatial, 1f / spatial, accumulate, dPooled.View, dInput);
                }
                if (!w1.RequiresGrad && !b1.RequiresGrad && !w2.RequiresGrad && !b2.RequiresGrad) return;
                int n = hidden * channels + hidden + outDegree * hidden + outDegree, ext = d.Extent(n);
                ParameterGradients(d, groupSize, batch, [scratch.GradOf(w1), scratch.GradOf(b1), scratch.GradOf(w2), scratch.GradOf(b2)], (first, count, into) =>
                    d.Kernels.RouterBackwardParameters(d.Stream, ext, n, ext, count, channels, hidden, outDegree, Samples(dz1.View, hidden, first, count),
                        Samples(dz2.View, outDegree, first, count), Samples(pooled.View, channels, first, count), Samples(hiddenOut.View, hidden, first, count),
                        into[0], into[1], into[2], into[3]));
            });
        return a;
    }

    /// <summary>Threads a group of the fused router: whole warps, up to 256.</summary>
    private static int RouterGroupSize(Device d) => d.WholeWarps(256);

    /// <summary>A tensor's gradient view, or a pooled scratch buffer of its size when it requires none (freed on dispose).</summary>
    private sealed class ScratchGradients(Device device) : IDisposable
    {
        private readonly List<Tensor> _scratch = new();

        public ArrayView<float> GradOf(Tensor t)
        {
            if (t.RequiresGrad) return t.Grad.View;
            var s = Tensor.Empty(device, t.Length);
            _scratch.Add(s);
            return s.View;
        }

        public void Dispose()
        {
            foreach (var s in _scratch) s.Dispose();
        }
    }
}
