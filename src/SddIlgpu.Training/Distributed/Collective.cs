// Finds out whether this process was started by mpirun (Open MPI exports OMPI_COMM_WORLD_SIZE and
// OMPI_COMM_WORLD_LOCAL_RANK to every rank; PMIx launchers such as srun --mpi=pmix export PMIX_RANK) and
// picks each rank's device from its local rank, as llm.c does with cudaSetDevice(local_rank).
using SddIlgpu.Tensors;

namespace SddIlgpu.Training.Distributed;

/// <summary>The entry point of data parallelism: the group this process belongs to.</summary>
public static class Collective
{
    /// <summary>Environment variable naming Open MPI's library when it is not on the loader's path.</summary>
    public const string LibraryVariable = "SDD_MPI_LIBRARY";

    /// <summary>
    /// The MPI group when this process was started by an MPI launcher, else <see cref="SingleProcess"/>.
    /// Call once per process; dispose the result at exit (MPI_Finalize).
    /// </summary>
    /// <exception cref="MpiException">Started by mpirun but Open MPI cannot be loaded or started.</exception>
    public static ICollective FromEnvironment() => FromEnvironment(Environment.GetEnvironmentVariable);

    /// <inheritdoc cref="FromEnvironment()"/>
    public static ICollective FromEnvironment(Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        if (LaunchedBy(environment) is null)
            return SingleProcess.Instance;
        var localRank = int.TryParse(environment("OMPI_COMM_WORLD_LOCAL_RANK") ?? environment("MPI_LOCALRANKID"), out var l) ? l : 0;
        return MpiCollective.Initialize(environment(LibraryVariable) ?? MpiCollective.DefaultLibrary, localRank);
    }

    /// <summary>The variable that shows an MPI launcher started this process ("NAME=value"), or null.</summary>
    public static string? LaunchedBy(Func<string, string?> environment)
    {
        foreach (var name in (string[])["OMPI_COMM_WORLD_SIZE", "PMIX_RANK"])
            if (environment(name) is { Length: > 0 } value)
                return $"{name}={value}";
        return null;
    }

    /// <summary>
    /// The device a rank opens: an explicit index (<c>cuda:1</c>) is kept; a bare kind (<c>cuda</c>, <c>opencl</c>)
    /// becomes that kind's device number LocalRank; <c>auto</c> picks the best kind as alone and then device
    /// LocalRank modulo the number of such devices (ranks share a device when there are fewer devices than ranks).
    /// </summary>
    public static string DeviceName(string requested, ICollective world)
    {
        ArgumentNullException.ThrowIfNull(requested);
        ArgumentNullException.ThrowIfNull(world);
        if (world.Size == 1 || requested.Contains(':', StringComparison.Ordinal))
            return requested;
        if (requested is "cuda" or "opencl")
            return $"{requested}:{world.LocalRank}";
        if (requested != "auto")
            return requested;
        var devices = Device.List();
        foreach (var kind in (BackendKind[])[BackendKind.Cuda, BackendKind.OpenCL])
        {
            var usable = devices.Count(d => d.Kind == kind && d.Usable);
            if (usable > 0)
                return $"{(kind == BackendKind.Cuda ? "cuda" : "opencl")}:{world.LocalRank % usable}";
        }
        return "cpu";
    }
}
