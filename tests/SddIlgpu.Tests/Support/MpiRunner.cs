// Starts `mpirun -np N dotnet sdd.dll ...` (the sdd built beside the tests) and waits for it with a time
// limit. The multi-process tests are ignored, with the reason, where Open MPI's mpirun is not installed.
using System.Diagnostics;
using NUnit.Framework;

namespace SddIlgpu.Tests.Support;

public sealed record MpiResult(int Code, string Out, string Err, TimeSpan Elapsed);

public static class MpiRunner
{
    /// <summary>Flags every test launch uses: root in CI containers, 2 ranks on 2 cores, no core binding.</summary>
    static readonly string[] Common = ["--allow-run-as-root", "--oversubscribe", "--bind-to", "none"];

    public static string Mpirun =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, "mpirun")).FirstOrDefault(File.Exists)
        ?? Ignore();

    static string Ignore()
    {
        Assert.Ignore("mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev); the multi-process tests need Open MPI.");
        return "";
    }

    /// <summary>The dotnet host and sdd.dll that this test run built.</summary>
    public static string[] Sdd => [
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet",
        Path.Combine(AppContext.BaseDirectory, "sdd.dll")];

    /// <summary>mpirun -np <paramref name="ranks"/> sdd ARGS.</summary>
    public static MpiResult Run(int ranks, IEnumerable<string> sddArgs, TimeSpan? limit = null) =>
        Launch([.. Common, "-np", ranks.ToString(), .. Sdd, .. sddArgs], limit ?? TimeSpan.FromMinutes(3), null);

    /// <summary>One mpirun of several programs (MPMD: rank i runs <paramref name="perRank"/>[i]).</summary>
    public static MpiResult RunEach(IReadOnlyList<string[]> perRank, TimeSpan limit)
    {
        var args = new List<string>(Common);
        for (var r = 0; r < perRank.Count; r++)
        {
            if (r > 0)
                args.Add(":");
            args.AddRange(["-np", "1", .. Sdd, .. perRank[r]]);
        }
        return Launch(args, limit, null);
    }

    /// <summary>Starts mpirun, calls <paramref name="whileRunning"/> with its process, then waits for the exit.</summary>
    public static MpiResult Launch(IEnumerable<string> mpirunArgs, TimeSpan limit, Action<Process>? whileRunning)
    {
        var psi = new ProcessStartInfo(Mpirun) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in mpirunArgs)
            psi.ArgumentList.Add(a);
        var clock = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        try
        {
            whileRunning?.Invoke(p);
            if (!p.WaitForExit(limit))
                Assert.Fail($"mpirun {string.Join(' ', psi.ArgumentList)} did not finish within {limit.TotalSeconds:F0} s (a hang).");
        }
        finally
        {
            if (!p.HasExited)
            {
                p.Kill(entireProcessTree: true);
                p.WaitForExit();
            }
        }
        var elapsed = clock.Elapsed;
        return new MpiResult(p.ExitCode, stdout.Result, stderr.Result, elapsed);
    }

    /// <summary>The process of MPI rank <paramref name="rank"/> started by mpirun <paramref name="mpirun"/> (Linux /proc), or null.</summary>
    public static int? RankProcess(Process mpirun, int rank)
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid))
                continue;
            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var ppid = int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1]);
                if (ppid != mpirun.Id)
                    continue;
                var environ = File.ReadAllText(Path.Combine(dir, "environ")).Split('\0');
                if (environ.Contains($"OMPI_COMM_WORLD_RANK={rank}"))
                    return pid;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
            {
                // the process ended while we looked
            }
        }
        return null;
    }
}
