// In-process load for race tests: busy threads that take the cores from the pool helpers at random moments,
// and a thread that keeps compacting gen 0 so any array a raw pointer was taken from gets moved.
namespace SddIlgpu.Tests.Support;

/// <summary>Runs the load until disposed; <see cref="Collections"/> counts the compactions it forced.</summary>
public sealed class Contention : IDisposable
{
    readonly CancellationTokenSource stop = new();
    readonly List<Thread> threads = [];
    int collections;

    /// <param name="spinners">Busy threads (each yields now and then, so preemption points vary).</param>
    /// <param name="compactGc">Also run a thread that forces compacting gen-0 collections back to back.</param>
    public Contention(int spinners, bool compactGc)
    {
        var token = stop.Token;
        for (var i = 0; i < spinners; i++)
        {
            var seed = i;
            Start($"test-spinner-{i}", () =>
            {
                var r = new Random(seed);
                while (!token.IsCancellationRequested)
                {
                    Thread.SpinWait(r.Next(1, 20_000));
                    if (r.Next(4) == 0)
                        Thread.Yield();
                }
            });
        }
        if (compactGc)
        {
            Start("test-gc-compactor", () =>
            {
                while (!token.IsCancellationRequested)
                {
                    GC.Collect(0, GCCollectionMode.Forced, blocking: true, compacting: true);
                    Interlocked.Increment(ref collections);
                }
            });
        }
    }

    public int Collections => Volatile.Read(ref collections);

    void Start(string name, ThreadStart body)
    {
        var t = new Thread(body) { IsBackground = true, Name = name };
        t.Start();
        threads.Add(t);
    }

    public void Dispose()
    {
        stop.Cancel();
        foreach (var t in threads)
            t.Join();
        stop.Dispose();
    }
}
