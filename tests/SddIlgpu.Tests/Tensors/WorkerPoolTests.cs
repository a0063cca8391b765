// The managed pool's hand-off contract under artificial delays: every part of a job runs exactly once, on
// some thread, and has finished (its plain writes visible) when Run returns; a helper that wakes late never
// runs a part of a job that has already returned; two callers at once both get complete jobs.
using NUnit.Framework;
using SddIlgpu.Tensors.Managed;
using SddIlgpu.Tests.Support;

namespace SddIlgpu.Tests.Tensors;

public sealed class WorkerPoolTests
{
    /// <summary>Delays a part by a pseudo-random amount (none, a yield, a spin or a sleep) fixed by (job, part).</summary>
    static void Delay(int job, int part)
    {
        switch ((uint)(job * 7919 + part * 104729) % 5)
        {
            case 1:
                Thread.Yield();
                break;
            case 2:
                Thread.SpinWait(2_000);
                break;
            case 3:
                Thread.Sleep(0);
                break;
            case 4:
                if (job % 8 == 0 && part == 0)
                    Thread.Sleep(1); // the caller or a helper asleep while the others finish
                break;
        }
    }

    /// <summary>Runs <paramref name="jobs"/> delayed jobs from the calling thread and checks each one as Run returns.</summary>
    static string? RunJobs(int jobs, int parts, int seed)
    {
        var runs = new int[parts];
        var values = new long[parts];
        var inFlight = 0;
        var current = -1;
        string? stale = null;
        for (var job = 0; job < jobs; job++)
        {
            Array.Clear(runs);
            Volatile.Write(ref current, job);
            var j = job;
            WorkerPool.Run(parts, p =>
            {
                Interlocked.Increment(ref inFlight);
                if (Volatile.Read(ref current) != j)
                    stale ??= $"part {p} of job {j} ran while job {Volatile.Read(ref current)} was current";
                Delay(j + seed, p);
                if (p == parts / 2)
                    WorkerPool.Run(2, _ => Delay(j, p)); // nested: runs inline on this thread
                runs[p]++;
                values[p] = (long)j * 1_000_003 + p + seed;
                Interlocked.Decrement(ref inFlight);
            });
            if (Volatile.Read(ref inFlight) != 0)
                return $"job {job}: Run returned with {inFlight} parts still running";
            for (var p = 0; p < parts; p++)
            {
                if (runs[p] != 1)
                    return $"job {job}: part {p} ran {runs[p]} times";
                if (values[p] != (long)job * 1_000_003 + p + seed)
                    return $"job {job}: part {p}'s result {values[p]} is not visible after Run returned";
            }
        }
        return stale;
    }

    [Test]
    public void EveryPartRunsOnceAndHasFinishedWhenRunReturnsDespiteDelays()
    {
        var parts = 2 * ManagedSimd.Workers + 1;
        using var load = new Contention(spinners: Environment.ProcessorCount, compactGc: false);
        Assert.That(RunJobs(300, parts, 0), Is.Null);
    }

    [Test]
    public void TwoCallersAtOnceBothGetCompleteJobs()
    {
        var parts = 2 * ManagedSimd.Workers + 1;
        string? other = "not run";
        var second = new Thread(() => other = RunJobs(200, parts, 17)) { Name = "test-second-caller" };
        second.Start();
        var first = RunJobs(200, parts, 0);
        second.Join();
        Assert.That(first, Is.Null, "first caller");
        Assert.That(other, Is.Null, "second caller");
    }

    [Test]
    public void AFailingPartIsReportedAfterTheOthersFinished()
    {
        Assume.That(ManagedSimd.Workers, Is.GreaterThan(1), "one core: the pool runs every job inline");
        var parts = 2 * ManagedSimd.Workers + 1;
        var done = 0;
        var e = Assert.Throws<AggregateException>(() => WorkerPool.Run(parts, p =>
        {
            Delay(3, p);
            if (p == 1)
                throw new InvalidOperationException("part 1 broke");
            Interlocked.Increment(ref done);
        }))!;
        Assert.That(e.InnerException, Is.TypeOf<InvalidOperationException>());
        Assert.That(Volatile.Read(ref done), Is.EqualTo(parts - 1), "every other part had finished when Run threw");
    }
}
