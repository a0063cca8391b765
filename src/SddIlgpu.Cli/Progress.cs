// The progress line of a training run: step, loss, learning rate, tokens/s and ETA.
using System.Globalization;
using SddIlgpu.Training;
using SddIlgpu.Training.Metrics;

namespace SddIlgpu.Cli;

internal static class Progress
{
    public static void Print(StepRecord r, TrainProgress p)
    {
        var every = Math.Max(1, p.TotalSteps / 40);
        if (r.Step % every != 0 && r.Step != p.TotalSteps && r.ValLoss is null && r.Sample is null && double.IsFinite(r.Loss))
            return;
        var eta = TimeSpan.FromSeconds(Math.Max(0, p.EtaSeconds));
        var line = string.Create(CultureInfo.InvariantCulture,
            $"step {r.Step,6}/{p.TotalSteps}  loss {r.Loss,7:F4}  lr {r.Lr:E2}  |g| {r.GradNorm,7:F3}  {r.TokensPerSecond,8:F0} tok/s  ETA {eta:hh\\:mm\\:ss}");
        if (r.ValLoss is double v)
            line += string.Create(CultureInfo.InvariantCulture, $"  val {v:F4}");
        Console.WriteLine(line);
        if (r.Sample is { } s)
            Console.WriteLine("--- sample ---\n" + s + "\n--------------");
    }
}
