namespace IlgpuDdw.Nn;

/// <summary>Which fan Kaiming initialisation scales by.</summary>
public enum FanMode
{
    /// <summary>Inputs per output: preserves the forward activations' variance (PyTorch's default).</summary>
    FanIn,
    /// <summary>Outputs per input: preserves the backward gradients' variance.</summary>
    FanOut,
}

/// <summary>The nonlinearity that follows a layer, for <see cref="Init.Gain"/>.</summary>
public enum Nonlinearity
{
    /// <summary>Identity (also convolution without activation): gain 1.</summary>
    Linear,
    /// <summary>Sigmoid: gain 1.</summary>
    Sigmoid,
    /// <summary>Tanh: gain 5/3.</summary>
    Tanh,
    /// <summary>ReLU: gain √2.</summary>
    Relu,
    /// <summary>Leaky ReLU with negative slope a: gain √(2 / (1 + a²)).</summary>
    LeakyRelu,
}

/// <summary>
/// Parameter initialisation with PyTorch's formulas (<c>torch.nn.init</c>). Random values are generated on the
/// host and copied to the device: each call draws from its own generator seeded by <c>seed</c> (SplitMix64;
/// normals by Box–Muller in double), so the values are a pure function of (seed, shape, arguments) —
/// identical on every machine, device and run — and not PyTorch's stream of numbers. Give each parameter its
/// own seed (e.g. from a <see cref="SeedSequence"/>). <see cref="Uniform(Tensor, double, Random)"/> instead continues
/// a caller's <see cref="Random"/> stream across tensors (the routers' initialisation).
/// </summary>
public static class Init
{
    /// <summary>
    /// PyTorch's fans of a weight of shape [out, in, k1, k2, ...]: <c>fan_in = in · k1 · k2 · …</c>,
    /// <c>fan_out = out · k1 · k2 · …</c> (Linear [Out, In]: fan_in = In, fan_out = Out).
    /// </summary>
    /// <exception cref="ArgumentException">The shape has fewer than two dimensions.</exception>
    public static (int FanIn, int FanOut) Fans(IReadOnlyList<int> shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        if (shape.Count < 2)
            throw new ArgumentException($"Fans need a tensor of at least 2 dimensions [out, in, ...]; got {Tensor.Format(shape)}.", nameof(shape));
        int receptive = 1;
        for (int i = 2; i < shape.Count; i++) receptive *= shape[i];
        return (shape[1] * receptive, shape[0] * receptive);
    }

    /// <summary>
    /// PyTorch's <c>calculate_gain</c>: 1 for linear and sigmoid, 5/3 for tanh, √2 for ReLU,
    /// √(2 / (1 + a²)) for leaky ReLU with negative slope a (default 0.01 as in PyTorch).
    /// </summary>
    public static float Gain(Nonlinearity nonlinearity, float negativeSlope = 0.01f) => nonlinearity switch
    {
        Nonlinearity.Linear or Nonlinearity.Sigmoid => 1f,
        Nonlinearity.Tanh => 5f / 3f,
        Nonlinearity.Relu => MathF.Sqrt(2f),
        Nonlinearity.LeakyRelu => MathF.Sqrt(2f / (1f + negativeSlope * negativeSlope)),
        _ => throw new ArgumentOutOfRangeException(nameof(nonlinearity), nonlinearity, "Unknown nonlinearity."),
    };

    /// <summary>
    /// Kaiming (He) normal: N(0, std²) with <c>std = gain / √fan</c>, fan from <see cref="Fans"/> by
    /// <paramref name="mode"/>, gain = <see cref="Gain"/>(<paramref name="nonlinearity"/>, <paramref name="negativeSlope"/>).
    /// Defaults: fan_in, ReLU (std = √(2 / fan_in)).
    /// </summary>
    public static void KaimingNormal(Tensor tensor, int seed, FanMode mode = FanMode.FanIn,
        Nonlinearity nonlinearity = Nonlinearity.Relu, float negativeSlope = 0f)
    {
        float std = KaimingStd(tensor, mode, nonlinearity, negativeSlope);
        Normal(tensor, 0f, std, seed);
    }

    /// <summary>
    /// Kaiming (He) uniform: U(−bound, bound) with <c>bound = gain · √(3 / fan)</c> (see
    /// <see cref="KaimingNormal"/>). PyTorch's default Linear/Conv weight init is this with
    /// <see cref="Nonlinearity.LeakyRelu"/> and negative slope √5 (bound = 1/√fan_in).
    /// </summary>
    public static void KaimingUniform(Tensor tensor, int seed, FanMode mode = FanMode.FanIn,
        Nonlinearity nonlinearity = Nonlinearity.Relu, float negativeSlope = 0f)
    {
        float bound = MathF.Sqrt(3f) * KaimingStd(tensor, mode, nonlinearity, negativeSlope);
        Uniform(tensor, -bound, bound, seed);
    }

    /// <summary>Uniform values in [<paramref name="low"/>, <paramref name="high"/>).</summary>
    /// <exception cref="ArgumentException">The bounds are not finite or low ≥ high.</exception>
    public static void Uniform(Tensor tensor, float low, float high, int seed)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (!float.IsFinite(low) || !float.IsFinite(high) || !(low < high))
            throw new ArgumentException($"Uniform: need finite low < high; got low {low}, high {high}.");
        var rng = new SplitMix64(seed);
        var values = new float[tensor.Length];
        double width = (double)high - low;
        for (int i = 0; i < values.Length; i++)
            values[i] = Math.Min((float)(low + width * rng.NextDouble()), MathF.BitDecrement(high));
        tensor.CopyFrom(values);
    }

    /// <summary>
    /// Uniform values in [−<paramref name="bound"/>, <paramref name="bound"/>) drawn from <paramref name="generator"/>
    /// as <c>(2u − 1) · bound</c> in double, continuing its stream: tensors filled from one generator in turn share one
    /// sequence of numbers (as PyTorch's global generator), so their values depend on the order of the calls.
    /// </summary>
    /// <exception cref="ArgumentException">The bound is not finite and positive.</exception>
    public static void Uniform(Tensor tensor, double bound, Random generator)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        ArgumentNullException.ThrowIfNull(generator);
        if (!double.IsFinite(bound) || !(bound > 0))
            throw new ArgumentException($"Uniform: need a finite bound > 0; got {bound}.", nameof(bound));
        var values = new float[tensor.Length];
        for (int i = 0; i < values.Length; i++) values[i] = (float)((generator.NextDouble() * 2 - 1) * bound);
        tensor.CopyFrom(values);
    }

    /// <summary>Normal values N(<paramref name="mean"/>, <paramref name="std"/>²).</summary>
    /// <exception cref="ArgumentException">The mean or std is not finite, or std is negative.</exception>
    public static void Normal(Tensor tensor, float mean, float std, int seed)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (!float.IsFinite(mean) || !float.IsFinite(std) || std < 0f)
            throw new ArgumentException($"Normal: need a finite mean and a finite std ≥ 0; got mean {mean}, std {std}.");
        var rng = new SplitMix64(seed);
        var values = new float[tensor.Length];
        for (int i = 0; i < values.Length; i += 2)
        {
            // Box–Muller: two independent standard normals from two uniforms (u1 in (0, 1]).
            double r = Math.Sqrt(-2.0 * Math.Log(1.0 - rng.NextDouble()));
            double theta = 2.0 * Math.PI * rng.NextDouble();
            values[i] = (float)(mean + std * r * Math.Cos(theta));
            if (i + 1 < values.Length) values[i + 1] = (float)(mean + std * r * Math.Sin(theta));
        }
        tensor.CopyFrom(values);
    }

    /// <summary>Sets every element to 0.</summary>
    public static void Zeros(Tensor tensor) => Constant(tensor, 0f);

    /// <summary>Sets every element to 1.</summary>
    public static void Ones(Tensor tensor) => Constant(tensor, 1f);

    /// <summary>Sets every element to <paramref name="value"/> (on the device).</summary>
    public static void Constant(Tensor tensor, float value)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        tensor.Fill(value);
    }

    private static float KaimingStd(Tensor tensor, FanMode mode, Nonlinearity nonlinearity, float negativeSlope)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        var (fanIn, fanOut) = Fans(tensor.Shape);
        int fan = mode == FanMode.FanIn ? fanIn : fanOut;
        return Gain(nonlinearity, negativeSlope) / MathF.Sqrt(fan);
    }

    /// <summary>SplitMix64 (Steele, Lea, Flood 2014): a tiny, fully specified generator, stable across platforms.</summary>
    private struct SplitMix64(int seed)
    {
        private ulong _state = (ulong)(long)seed;

        public ulong Next()
        {
            ulong z = _state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }

        /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
        public double NextDouble() => (Next() >> 11) * (1.0 / (1UL << 53));
    }
}
