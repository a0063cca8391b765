// Ctrl+C and `kill` during a run (issue 10 §5): the first SIGINT or SIGTERM cancels the trainer's token, so the
// step in progress finishes, the checkpoint is written and the run exits 130 (SIGINT) or 143 (SIGTERM); a second
// signal aborts at once. PosixSignalRegistration with Cancel = true replaces the runtime's default termination.
using System.Runtime.InteropServices;

namespace SddIlgpu.Cli;

/// <summary>SIGINT / SIGTERM handling for one run: a cancellation token and the exit code the signal asks for.</summary>
public sealed class RunSignals : IDisposable
{
    readonly CancellationTokenSource cts = new();
    readonly PosixSignalRegistration[] registrations;
    readonly Action<string> notify;
    readonly Action<int> abort;
    readonly string stopping;
    int first;

    /// <param name="notify">Prints a one-line notice (stderr in the tool).</param>
    /// <param name="abort">Ends the process at once with the given exit code (a second signal).</param>
    public RunSignals(Action<string> notify, Action<int> abort) : this(notify, abort, register: true)
    {
    }

    RunSignals(Action<string> notify, Action<int> abort, bool register, string stopping = "stopping after the current step and saving a checkpoint")
    {
        this.stopping = stopping;
        this.notify = notify;
        this.abort = abort;
        registrations = register
            ? [PosixSignalRegistration.Create(PosixSignal.SIGINT, Handle), PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handle)]
            : [];
    }

    /// <summary>No handlers: signals keep their default effect (an MPI rank, which its launcher ends with SIGTERM).</summary>
    public static RunSignals None() => new(_ => { }, _ => { }, register: false);

    /// <summary>The tool's handler: notices on stderr, a second signal exits the process.</summary>
    public static RunSignals ForConsole() => new(m => Console.Error.WriteLine($"sdd: {m}"), Environment.Exit);

    /// <summary>The tool's handler for a command whose first signal abandons its work (<paramref name="stopping"/> says how).</summary>
    public static RunSignals ForConsole(string stopping) => new(m => Console.Error.WriteLine($"sdd: {m}"), Environment.Exit, register: true, stopping);

    /// <summary>Cancelled by the first signal.</summary>
    public CancellationToken Token => cts.Token;

    /// <summary>The first signal received, or null.</summary>
    public PosixSignal? Received => Volatile.Read(ref first) is 0 ? null : (PosixSignal)Volatile.Read(ref first);

    /// <summary>128 + the signal's number: 130 for SIGINT, 143 for SIGTERM (what a shell reports for a killed process).</summary>
    public int ExitCode => ExitCodeOf(Received ?? throw new InvalidOperationException("No signal was received."));

    /// <summary>128 + the POSIX number of <paramref name="signal"/>.</summary>
    public static int ExitCodeOf(PosixSignal signal) => signal switch
    {
        PosixSignal.SIGINT => 130,
        PosixSignal.SIGTERM => 143,
        _ => throw new ArgumentOutOfRangeException(nameof(signal), signal, "Only SIGINT and SIGTERM stop a run."),
    };

    /// <summary>What a signal does: the first cancels the token, the next aborts. Public for tests.</summary>
    public void OnSignal(PosixSignal signal)
    {
        var name = signal == PosixSignal.SIGINT ? "SIGINT" : "SIGTERM";
        if (Interlocked.CompareExchange(ref first, (int)signal, 0) == 0)
        {
            notify($"{name}: {stopping} (send it again to abort at once).");
            cts.Cancel();
            return;
        }
        notify($"{name} again: aborting at once.");
        abort(ExitCodeOf(signal));
    }

    void Handle(PosixSignalContext context)
    {
        context.Cancel = true;
        OnSignal(context.Signal);
    }

    public void Dispose()
    {
        foreach (var r in registrations)
            r.Dispose();
        cts.Dispose();
    }
}
