namespace IlgpuDdw.Distributed;

/// <summary>
/// What the process's environment says about how it was started: the variables Open MPI's <c>mpirun</c>, MPICH's
/// Hydra, PMIx (<c>srun --mpi=pmix</c>, <c>prterun</c>) and PMI-2 set for each rank.
/// </summary>
public static class Launcher
{
    /// <summary>Variables whose presence means an MPI launcher started this process.</summary>
    public static readonly IReadOnlyList<string> RankVariables = ["OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "MPI_LOCALRANKID"];

    /// <summary>Whether <see cref="Communicator.World"/> should initialise MPI (see <see cref="Communicator.EngineVariable"/>).</summary>
    /// <exception cref="ArgumentException"><see cref="Communicator.EngineVariable"/> has a value other than mpi, none or empty.</exception>
    public static bool WantsMpi() => WantsMpi(Environment.GetEnvironmentVariable);

    /// <summary><see cref="WantsMpi()"/> over a given environment (for tests).</summary>
    public static bool WantsMpi(Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        var choice = environment(Communicator.EngineVariable)?.Trim().ToLowerInvariant();
        return choice switch
        {
            "mpi" => true,
            "none" => false,
            null or "" => RankVariables.Any(v => !string.IsNullOrEmpty(environment(v))),
            _ => throw new ArgumentException($"{Communicator.EngineVariable} must be mpi or none; got '{choice}'."),
        };
    }

    /// <summary>
    /// The rank and size the launcher announced (Open MPI, PMIx/PMI, Slurm), or null outside a launcher: known
    /// before MPI is initialised (e.g. to label early errors).
    /// </summary>
    public static (int Rank, int Size)? Announced(Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        foreach (var (rank, size) in new[] { ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"), ("PMIX_RANK", "PMIX_SIZE"), ("PMI_RANK", "PMI_SIZE"), ("SLURM_PROCID", "SLURM_NTASKS") })
            if (int.TryParse(environment(rank), out int r) && int.TryParse(environment(size), out int s) && s > 0 && r >= 0 && r < s)
                return (r, s);
        return null;
    }
}
