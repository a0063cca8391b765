// A fork/join pool for the managed ops: Workers − 1 dedicated threads that spin briefly, then sleep, between
// jobs, so one parallel op costs ~1 µs of hand-off instead of Parallel.For's scheduling. Parts are claimed
// dynamically but each part is a fixed range, so results never depend on which thread ran it.
namespace SddIlgpu.Tensors.Managed;

internal static class WorkerPool
{
    /// <summary>Spins a helper waits for the next job before it sleeps (ManualResetEventSlim's maximum).</summary>
    const int SpinCount = 2047;

    static readonly Lock gate = new();
    static readonly ManualResetEventSlim[] wake;
    static Job? current;

    [ThreadStatic]
    static bool insideJob;

    [ThreadStatic]
    static int worker;

    static WorkerPool()
    {
        var helpers = ManagedSimd.Workers - 1;
        wake = new ManualResetEventSlim[helpers];
        for (var i = 0; i < helpers; i++)
        {
            wake[i] = new ManualResetEventSlim(false, SpinCount);
            var index = i;
            new Thread(() => HelperLoop(index)) { IsBackground = true, Name = $"sdd-managed-{i + 1}" }.Start();
        }
    }

    /// <summary>
    /// The running thread's index in [0, <see cref="ManagedSimd.Workers"/>): helper i is i + 1; the thread that called
    /// <see cref="Run"/>, and any thread outside the pool, is 0. At most one job runs at a time, so per-worker
    /// scratch indexed by it is never shared by two threads of one job.
    /// </summary>
    public static int CurrentWorker => worker;

    /// <summary>Jobs run in parallel since the process started (read by the perf tool's profile).</summary>
    public static long Jobs { get; private set; }

    /// <summary>
    /// Stopwatch ticks the calling thread spent waiting at joins, after running every part it could claim: the cost
    /// of helpers that finished later (started late, were descheduled, or had more work).
    /// </summary>
    public static long JoinWaitTicks { get; private set; }

    /// <summary>Runs work(p) for every p in [0, n) and returns when all have finished (inline when nested or contended).</summary>
    public static void Run(int n, Action<int> work)
    {
        if (n <= 1 || wake.Length == 0 || insideJob || !gate.TryEnter())
        {
            for (var p = 0; p < n; p++)
                work(p);
            return;
        }
        try
        {
            var job = new Job(work, n);
            Volatile.Write(ref current, job);
            foreach (var w in wake)
                w.Set();
            job.Claim();
            var claimed = System.Diagnostics.Stopwatch.GetTimestamp();
            var spin = new SpinWait();
            while (Volatile.Read(ref job.Pending) > 0)
                spin.SpinOnce(sleep1Threshold: -1);
            Jobs++;
            JoinWaitTicks += System.Diagnostics.Stopwatch.GetTimestamp() - claimed;
            if (job.Failure is { } e)
                throw new AggregateException("A managed op failed on a worker thread.", e);
        }
        finally
        {
            gate.Exit();
        }
    }

    static void HelperLoop(int index)
    {
        worker = index + 1;
        var signal = wake[index];
        Job? last = null;
        while (true)
        {
            signal.Wait();
            signal.Reset(); // then read the job: a Set for a newer job either came before (seen now) or stays set
            var job = Volatile.Read(ref current);
            if (job is null || job == last)
                continue;
            last = job;
            job.Claim();
        }
    }

    /// <summary>One fork/join: parts are claimed by counter, so a stale helper finds none left.</summary>
    sealed class Job(Action<int> body, int parts)
    {
        readonly int count = parts;
        public int Next, Pending = parts;
        public Exception? Failure;

        public void Claim()
        {
            insideJob = true;
            try
            {
                int p;
                while ((p = Interlocked.Increment(ref Next) - 1) < count)
                {
                    try
                    {
                        body(p);
                    }
                    catch (Exception e)
                    {
                        Interlocked.CompareExchange(ref Failure, e, null);
                    }
                    Interlocked.Decrement(ref Pending);
                }
            }
            finally
            {
                insideJob = false;
            }
        }
    }
}
