// Learning-rate schedule of spec §6: linear warmup from 0 to the peak over `warmup` steps, then cosine
// decay to min_lr_ratio·peak at the last step.
namespace SddIlgpu.Training;

public static class LrSchedule
{
    /// <summary>The learning rate of step <paramref name="step"/> (0-based) out of <paramref name="totalSteps"/>.</summary>
    public static double At(int step, int totalSteps, double peak, int warmup, double minLrRatio)
    {
        var min = peak * minLrRatio;
        if (warmup > 0 && step < warmup)
            return peak * (step + 1) / warmup;
        var decaySteps = Math.Max(1, totalSteps - 1 - warmup);
        var progress = Math.Clamp((double)(step - warmup) / decaySteps, 0, 1);
        return min + 0.5 * (1 + Math.Cos(Math.PI * progress)) * (peak - min);
    }
}
