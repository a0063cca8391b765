// Allreduce cost under mpirun: `mpirun -np N dotnet SddIlgpu.Perf.dll allreduce [FLOATS...]` times the
// in-place float sum that data-parallel training does once per step, after a barrier, and prints on rank 0
// the fastest and the median time (they differ a lot on a loaded machine), the algorithm bandwidth (bytes / time) and the bus bandwidth (algbw · 2(N−1)/N, the
// convention of nccl-tests, comparable across rank counts).
using System.Diagnostics;
using SddIlgpu.Training.Distributed;

namespace SddIlgpu.Perf;

public static class AllReduceBench
{
    public static void Run(IReadOnlyList<long> sizes, int repeats = 20)
    {
        using var world = Collective.FromEnvironment();
        if (world.Rank == 0)
            Console.WriteLine($"allreduce over {world.Size} rank(s), {repeats} repeats; bandwidths from the median");
        foreach (var n in sizes)
        {
            var data = new float[n];
            Array.Fill(data, 1f);
            world.AllReduceSum(data); // warm-up (connection set-up)
            var times = new double[repeats];
            for (var i = 0; i < repeats; i++)
            {
                world.Barrier();
                var clock = Stopwatch.StartNew();
                world.AllReduceSum(data);
                times[i] = clock.Elapsed.TotalSeconds;
            }
            Array.Sort(times);
            var (t, fastest) = (times[repeats / 2], times[0]);
            var bytes = 4.0 * n;
            var algbw = bytes / t / 1e9;
            if (world.Rank == 0)
                Console.WriteLine($"{n,12:N0} floats {bytes / 1e6,9:F2} MB  fastest {fastest * 1e3,9:F3} ms  median {t * 1e3,9:F3} ms  algbw {algbw,7:F2} GB/s  busbw {algbw * 2 * (world.Size - 1) / world.Size,7:F2} GB/s");
        }
    }
}
