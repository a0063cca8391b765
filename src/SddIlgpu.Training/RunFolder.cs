// A run's output folder, held for the length of the run (issue 10 §5): a lock file opened with FileShare.None
// (on Linux .NET takes flock(LOCK_EX | LOCK_NB) on it, released by the kernel when the process dies, so a
// crashed run leaves no stale lock), a refusal to start a new run over another run's files unless asked to
// overwrite them (then all of them go together), and removal of temporaries a killed write left behind.
using SddIlgpu.Layers;

namespace SddIlgpu.Training;

/// <summary>How a run may use its output folder.</summary>
public enum RunFolderMode
{
    /// <summary>A new run: the folder must not hold another run's checkpoint, log or plot.</summary>
    New,

    /// <summary>Continuing the run the folder holds: its files are kept.</summary>
    Resume,

    /// <summary>A new run replacing the one the folder holds: its checkpoint, log and plot are deleted together.</summary>
    Overwrite,
}

/// <summary>The output folder cannot be used: in use by another run, holding another run, or not writable.</summary>
public sealed class RunFolderException(string message, Exception? inner = null) : IOException(message, inner);

/// <summary>An output folder locked by this process until disposed.</summary>
public sealed class RunFolder : IDisposable
{
    /// <summary>The lock file; kept between runs (deleting it would let two runs lock different files of one name).</summary>
    public const string LockFile = ".sdd.lock";

    /// <summary>The files a run writes; a folder holding any of them holds a run.</summary>
    public static readonly string[] RunFiles = [Trainer.CheckpointFile, Trainer.LogFile, Trainer.PlotFile];

    // Windows reports ERROR_SHARING_VIOLATION / ERROR_LOCK_VIOLATION; on Unix .NET's flock fails with
    // EWOULDBLOCK, which it puts in HResult as the raw errno (11 on Linux, 35 on macOS and BSD).
    const int SharingViolation = unchecked((int)0x80070020);
    const int LockViolation = unchecked((int)0x80070021);

    static bool IsHeldByAnother(IOException e) =>
        e.HResult is SharingViolation or LockViolation
        || (OperatingSystem.IsLinux() && e.HResult == 11)
        || ((OperatingSystem.IsMacOS() || OperatingSystem.IsFreeBSD()) && e.HResult == 35);

    FileStream? lockStream;

    RunFolder(string path, FileStream lockStream, IReadOnlyList<string> removed)
    {
        Path = path;
        this.lockStream = lockStream;
        RemovedTemporaries = removed;
    }

    /// <summary>The folder's full path.</summary>
    public string Path { get; }

    /// <summary>Stale temporaries (a killed write's <c>.NAME.PID.GUID.tmp</c>) deleted when the folder was opened.</summary>
    public IReadOnlyList<string> RemovedTemporaries { get; }

    /// <summary>
    /// Creates the folder if needed, locks it, applies <paramref name="mode"/> and removes stale temporaries.
    /// Throws <see cref="RunFolderException"/> naming the folder when another process holds it, when a new run
    /// would mix with another run's files, or when it cannot be written.
    /// </summary>
    public static RunFolder Open(string directory, RunFolderMode mode)
    {
        ArgumentNullException.ThrowIfNull(directory);
        var full = System.IO.Path.GetFullPath(directory);
        FileStream stream;
        try
        {
            Directory.CreateDirectory(full);
            stream = new FileStream(System.IO.Path.Combine(full, LockFile), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e) when (IsHeldByAnother(e))
        {
            throw new RunFolderException(
                $"Output folder '{full}' is in use by another sdd run (it holds {LockFile}). Wait for that run to finish or choose another --out.", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RunFolderException($"Output folder '{full}' is not writable ({e.Message}). Choose another --out or fix its permissions or free space.", e);
        }
        try
        {
            var existing = RunFiles.Where(f => File.Exists(System.IO.Path.Combine(full, f))).ToList();
            if (existing.Count > 0 && mode == RunFolderMode.New)
                throw new RunFolderException(
                    $"Output folder '{full}' already holds a run ({string.Join(", ", existing)}). Resume it with --resume {System.IO.Path.Combine(full, Trainer.CheckpointFile)}, pass --overwrite to replace it, or choose another --out.");
            if (mode == RunFolderMode.Overwrite)
                foreach (var f in existing)
                    File.Delete(System.IO.Path.Combine(full, f));
            return new RunFolder(full, stream, AtomicFile.RemoveStaleTemporaries(full));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stream.Dispose();
            throw e as RunFolderException ?? new RunFolderException($"Output folder '{full}' could not be prepared ({e.Message}).", e);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>Releases the lock (the lock file stays).</summary>
    public void Dispose() => Interlocked.Exchange(ref lockStream, null)?.Dispose();
}
