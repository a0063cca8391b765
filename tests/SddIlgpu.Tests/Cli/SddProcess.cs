// Runs the real `sdd` tool as a child process (the one built beside the tests), so signals, file locks and
// crashes act on a separate process as they do for a user. Output lines are collected as they arrive.
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace SddIlgpu.Tests.Cli;

public sealed partial class SddProcess : IDisposable
{
    public const int SigKill = 9, SigInt = 2, SigTerm = 15;

    readonly Process process;
    readonly ConcurrentQueue<string> outLines = new(), errLines = new();
    readonly SemaphoreSlim arrived = new(0);

    SddProcess(Process process) => this.process = process;

    public int Id => process.Id;

    /// <summary>Starts <c>sdd ARGS</c>: sdd.dll from the test output folder under the dotnet host running the tests.</summary>
    public static SddProcess Start(params string[] args)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "sdd.dll");
        var host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h ? h
            : Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet";
        var info = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(dll);
        foreach (var a in args)
            info.ArgumentList.Add(a);
        var process = new Process { StartInfo = info };
        var s = new SddProcess(process);
        process.OutputDataReceived += (_, e) => s.Add(s.outLines, e.Data);
        process.ErrorDataReceived += (_, e) => s.Add(s.errLines, e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return s;
    }

    void Add(ConcurrentQueue<string> lines, string? line)
    {
        if (line is null)
            return;
        lines.Enqueue(line);
        arrived.Release();
    }

    public string Out => string.Join('\n', outLines);
    public string Err => string.Join('\n', errLines);

    /// <summary>Waits until a line of stdout (or stderr) matches; fails with both outputs when the process exits or time runs out.</summary>
    public string WaitForLine(Func<string, bool> match, TimeSpan timeout, bool stderr = false)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if ((stderr ? errLines : outLines).FirstOrDefault(match) is { } line)
                return line;
            if (process.HasExited && !arrived.Wait(200))
                throw new InvalidOperationException($"sdd exited ({process.ExitCode}) before the expected line.\nstdout:\n{Out}\nstderr:\n{Err}");
            if (clock.Elapsed > timeout)
                throw new TimeoutException($"No expected line after {timeout}.\nstdout:\n{Out}\nstderr:\n{Err}");
            arrived.Wait(200);
        }
    }

    /// <summary>Sends a POSIX signal to the process.</summary>
    public void Signal(int signal)
    {
        if (Kill(process.Id, signal) != 0)
            throw new InvalidOperationException($"kill({process.Id}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}.");
    }

    /// <summary>Waits for exit (all output read) and returns the exit code; kills the process and fails past the timeout.</summary>
    public int WaitForExit(TimeSpan timeout)
    {
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"sdd did not exit within {timeout}.\nstdout:\n{Out}\nstderr:\n{Err}");
        }
        process.WaitForExit(); // drains the output readers
        return process.ExitCode;
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    public void Dispose()
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
        }
        process.Dispose();
        arrived.Dispose();
    }
}
