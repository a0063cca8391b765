// Outputs are written to a temporary file beside the target and renamed over it, so a crash, a full disk
// or an unwritable folder never leaves a half-written checkpoint, log or plot. A process killed mid-write
// leaves its temporary behind; RemoveStaleTemporaries deletes exactly those (our name pattern, a dead writer).
using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace SddIlgpu.Layers;

public static class AtomicFile
{
    /// <summary>Writes through <paramref name="write"/> into a temp file, flushes it to disk, then renames it onto <paramref name="path"/>.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        var tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}{TempSuffix}");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            try
            {
                File.Delete(tmp);
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
            throw;
        }
    }

    /// <summary>The suffix of every temporary this class writes: <c>.NAME.PID.GUID.tmp</c>.</summary>
    public const string TempSuffix = ".tmp";

    static readonly Regex TempName = new(@"^\..+\.(?<pid>[0-9]{1,10})\.[0-9a-f]{32}\.tmp$", RegexOptions.CultureInvariant);

    /// <summary>
    /// Deletes the temporaries in <paramref name="directory"/> that a killed write left: files named like ours whose
    /// writing process no longer runs. Other files, and temporaries of live processes, are kept. Returns the deleted paths.
    /// </summary>
    public static IReadOnlyList<string> RemoveStaleTemporaries(string directory)
    {
        var removed = new List<string>();
        if (!Directory.Exists(directory))
            return removed;
        foreach (var path in Directory.EnumerateFiles(directory, "." + "*" + TempSuffix))
        {
            var m = TempName.Match(Path.GetFileName(path));
            if (!m.Success || !int.TryParse(m.Groups["pid"].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || IsRunning(pid))
                continue;
            try
            {
                File.Delete(path);
                removed.Add(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Not ours to remove after all (permissions) or already gone: leave it.
            }
        }
        return removed;
    }

    static bool IsRunning(int pid)
    {
        if (pid == Environment.ProcessId)
            return true;
        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    public static void WriteAllBytes(string path, byte[] bytes) => Write(path, s => s.Write(bytes));

    public static void WriteAllText(string path, string text) =>
        Write(path, s =>
        {
            using var w = new StreamWriter(s, new System.Text.UTF8Encoding(false), 1 << 16, leaveOpen: true);
            w.Write(text);
        });
}
