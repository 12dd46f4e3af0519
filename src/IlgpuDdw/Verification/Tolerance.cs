namespace IlgpuDdw.Verification;

/// <summary>
/// How close a device result must be to its reference: |actual − expected| ≤ <see cref="Atol"/> +
/// <see cref="Rtol"/>·|expected| for every element. The static members are the one tolerance table of the
/// kernel-versus-reference checks (DESIGN.md §4), shared by <c>ddw verify</c> and the tests.
/// </summary>
/// <param name="Atol">Absolute tolerance.</param>
/// <param name="Rtol">Relative tolerance (a multiple of |expected|).</param>
public readonly record struct Tolerance(double Atol, double Rtol)
{
    /// <summary>Forward passes and optimizer steps: atol 1e-5, rtol 1e-4.</summary>
    public static Tolerance Forward { get; } = new(1e-5, 1e-4);

    /// <summary>Backward passes: atol 1e-4, rtol 1e-3.</summary>
    public static Tolerance Backward { get; } = new(1e-4, 1e-3);

    /// <summary>Bit-exact results (indices, counts).</summary>
    public static Tolerance Exact { get; } = new(0, 0);

    // ---- looser per-op values, each with its reason ---------------------------------------------------

    /// <summary>
    /// The sum of <paramref name="n"/> floats: the device adds in a different order than the reference's one
    /// running sum, and the rounding difference grows like √n, so atol is 1e-5·√n (rtol as <see cref="Forward"/>).
    /// </summary>
    public static Tolerance SumForward(int n) => new(1e-5 * Math.Sqrt(n), Forward.Rtol);

    /// <summary>
    /// A loss of about 1000 (logits of ±1000) against the double reference: one float ulp there is 6e-5, so
    /// atol 1e-3, rtol 1e-5.
    /// </summary>
    public static Tolerance LargeLossForward { get; } = new(1e-3, 1e-5);

    /// <summary>
    /// A TF32 tensor-core GEMM (<see cref="Conv2dKernels.ForwardTiledTf32"/>, <see cref="Conv2dKernels.BackwardInputTiledTf32"/>)
    /// against the FP32 reference, each output a sum of <paramref name="k"/> products of operands of order 1: rounding each
    /// operand to TF32's 10 mantissa bits costs up to 2⁻¹¹ relative, so a product up to 2·2⁻¹¹ ≈ 1e-3, and with random
    /// signs the product errors add like √k: atol 1e-3·√k, rtol 1e-3. (Against a reference computed on the same
    /// TF32-rounded operands only the FP32 summation order differs, and <see cref="Forward"/> holds.)
    /// </summary>
    public static Tolerance Tf32(int k) => new(1e-3 * Math.Sqrt(Math.Max(1, k)), 1e-3);
}
