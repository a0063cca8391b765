// The end of `sdd train`: how the run ended (done, diverged, stopped by a signal), only the files that exist,
// the exact command that resumes it, and the exit code (0 done, 3 diverged, 130 SIGINT, 143 SIGTERM).
using System.Globalization;
using System.Text.RegularExpressions;
using SddIlgpu.Training;

namespace SddIlgpu.Cli;

internal static partial class RunReport
{
    /// <summary>Prints the summary of <paramref name="result"/> and returns the tool's exit code.</summary>
    public static int Print(TrainResult result, RunSignals signals, string resumeCommand)
    {
        var inv = CultureInfo.InvariantCulture;
        if (result.Interrupted)
            Console.WriteLine(string.Create(inv, $"Stopped at step {result.Steps} by {(signals.Received == System.Runtime.InteropServices.PosixSignal.SIGTERM ? "SIGTERM" : "SIGINT")}."));
        else if (result.Diverged)
            Console.WriteLine(string.Create(inv, $"Diverged at step {result.Steps}: the loss became {result.FinalLoss}. Lower --lr or raise --warmup."));
        else
            Console.WriteLine(string.Create(inv,
                $"Done: {result.Steps} steps, train loss {result.FinalLoss:F4}, validation loss {result.ValLoss:F4}, {result.TokensPerSecond:F0} tokens/s, {result.SecondsPerStep * 1000:F1} ms/step (medians)"));
        if (result.CheckpointPath is { } ckpt && File.Exists(ckpt))
            Console.WriteLine(result.Diverged
                ? string.Create(inv, $"Checkpoint: {ckpt} (the last good one, step {result.CheckpointStep})")
                : $"Checkpoint: {ckpt}");
        else if (result.Diverged)
            Console.WriteLine("Checkpoint: none (the run diverged before its first; --checkpoint-every N keeps good steps)");
        if (File.Exists(result.LogPath))
            Console.WriteLine($"Log:        {result.LogPath}");
        if (result.PlotPath is { } plot && File.Exists(plot))
            Console.WriteLine($"Plot:       {plot}{(result.Diverged ? " (the divergence is marked)" : "")}");
        if (result.Interrupted)
        {
            Console.WriteLine($"Resume:     {resumeCommand}");
            return signals.ExitCode;
        }
        return result.Diverged ? 3 : 0;
    }

    /// <summary>A POSIX-shell word: as is when it has only safe characters, else single-quoted.</summary>
    public static string Quote(string word) =>
        word.Length > 0 && SafeWord().IsMatch(word) ? word : "'" + word.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    [GeneratedRegex(@"^[A-Za-z0-9_./:@%+=,-]+$")]
    private static partial Regex SafeWord();
}
