// An ordered parallel map for streams: one thread reads the source, N workers transform its items, and the
// caller receives the results in source order. Unlike batches with a barrier after each (Parallel.For per batch),
// no worker waits for the slowest item of a batch, so every core stays busy until the stream ends. Memory is
// bounded by a window of items in flight.
using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;

namespace SddIlgpu.Training.Data.Prepare;

internal static class OrderedParallel
{
    sealed record Done<T, TResult>(T Item, TResult? Result, Exception? Error);

    /// <summary>
    /// <paramref name="body"/> of every item of <paramref name="source"/>, computed on <paramref name="threads"/>
    /// workers and yielded in source order, with at most <paramref name="window"/> items read but not yet yielded.
    /// </summary>
    /// <remarks>
    /// The source is enumerated (and disposed) on a thread of its own. An exception from <paramref name="body"/> or
    /// from the source is rethrown unchanged when its place in the order is reached, so the error is that of the
    /// earliest bad item however the work was scheduled. Disposing the enumerator early stops the reader and the
    /// workers and waits for them.
    /// </remarks>
    public static IEnumerable<(T Item, TResult Result)> Select<T, TResult>(
        IEnumerable<T> source, Func<T, TResult> body, int threads, int window, CancellationToken cancel)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(window, threads);
        if (threads == 1)
        {
            foreach (var item in source)
            {
                cancel.ThrowIfCancellationRequested();
                yield return (item, body(item));
            }
            yield break;
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var gate = new object();
        var slots = new Done<T, TResult>?[window];
        using var free = new SemaphoreSlim(window);
        using var queue = new BlockingCollection<(long Seq, T Item)>();
        long produced = -1; // the number of items read, once the reader has finished
        Exception? readError = null;

        var reader = Task.Factory.StartNew(() =>
        {
            long seq = 0;
            try
            {
                using var items = source.GetEnumerator();
                while (true)
                {
                    free.Wait(stop.Token);
                    if (!items.MoveNext())
                        break;
                    queue.Add((seq++, items.Current), stop.Token);
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
            }
            catch (Exception e)
            {
                readError = e;
            }
            finally
            {
                queue.CompleteAdding();
                lock (gate)
                {
                    produced = seq;
                    Monitor.PulseAll(gate);
                }
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

        var workers = new Task[threads];
        for (var w = 0; w < threads; w++)
            workers[w] = Task.Factory.StartNew(() =>
            {
                try
                {
                    foreach (var (seq, item) in queue.GetConsumingEnumerable(stop.Token))
                    {
                        Done<T, TResult> done;
                        try
                        {
                            done = new(item, body(item), null);
                        }
                        catch (Exception e)
                        {
                            done = new(item, default, e);
                        }
                        lock (gate)
                        {
                            slots[seq % window] = done;
                            Monitor.PulseAll(gate);
                        }
                    }
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                }
            }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

        using var wake = cancel.Register(() =>
        {
            lock (gate)
                Monitor.PulseAll(gate);
        });
        try
        {
            for (long next = 0; ; next++)
            {
                cancel.ThrowIfCancellationRequested();
                Done<T, TResult>? done;
                lock (gate)
                {
                    while ((done = slots[next % window]) is null && produced != next)
                    {
                        cancel.ThrowIfCancellationRequested();
                        Monitor.Wait(gate);
                    }
                    slots[next % window] = null;
                }
                if (done is null)
                {
                    // The reader has finished and every item it read has been yielded.
                    if (readError is not null)
                        ExceptionDispatchInfo.Throw(readError);
                    yield break;
                }
                if (done.Error is not null)
                    ExceptionDispatchInfo.Throw(done.Error);
                yield return (done.Item, done.Result!);
                free.Release(); // only now: the item in the caller's hands counts against the window
            }
        }
        finally
        {
            stop.Cancel();
            try
            {
                Task.WaitAll([reader, .. workers]);
            }
            catch (AggregateException)
            {
                // Their errors were delivered in order above, or are moot after an earlier one.
            }
        }
    }
}
