// The loss curve as a PNG: training loss per step and validation loss at each evaluation (ScottPlot). A run
// that diverged is marked: a red line at the first step whose loss is NaN or infinite, and a cross on the curve.
using System.Globalization;
using ScottPlot;
using SddIlgpu.Layers;

namespace SddIlgpu.Training.Metrics;

public static class LossPlot
{
    /// <summary>Renders the records to a PNG at <paramref name="path"/> (atomically).</summary>
    public static void Write(string path, IReadOnlyList<StepRecord> records, string title)
    {
        using var plot = Build(records, title);
        var bytes = plot.GetImageBytes(900, 500, ImageFormat.Png);
        AtomicFile.WriteAllBytes(path, bytes);
    }

    /// <summary>The first step whose training loss is NaN or infinite, if any.</summary>
    public static StepRecord? Divergence(IReadOnlyList<StepRecord> records) =>
        records?.FirstOrDefault(r => !double.IsFinite(r.Loss));

    /// <summary>The plot <see cref="Write"/> renders (for callers that render it elsewhere, and for tests).</summary>
    public static Plot Build(IReadOnlyList<StepRecord> records, string title)
    {
        ArgumentNullException.ThrowIfNull(records);
        var plot = new Plot();
        var train = records.Where(r => double.IsFinite(r.Loss)).ToList();
        if (train.Count > 0)
        {
            var s = plot.Add.Scatter(train.Select(r => (double)r.Step).ToArray(), train.Select(r => r.Loss).ToArray());
            s.LegendText = "train loss";
            s.MarkerSize = 0;
            s.LineWidth = 1.5f;
        }
        var val = records.Where(r => r.ValLoss is double v && double.IsFinite(v)).ToList();
        if (val.Count > 0)
        {
            var s = plot.Add.Scatter(val.Select(r => (double)r.Step).ToArray(), val.Select(r => r.ValLoss!.Value).ToArray());
            s.LegendText = "validation loss";
            s.MarkerSize = 6;
            s.LineWidth = 2;
        }
        if (Divergence(records) is { } bad)
        {
            var line = plot.Add.VerticalLine(bad.Step, 2, Colors.Red, LinePattern.Dashed);
            line.LabelText = string.Create(CultureInfo.InvariantCulture, $"diverged at step {bad.Step}");
            line.LegendText = string.Create(CultureInfo.InvariantCulture, $"diverged at step {bad.Step} (loss {bad.Loss})");
            if (train.LastOrDefault(r => r.Step < bad.Step) is { } last)
                plot.Add.Marker(bad.Step, last.Loss, MarkerShape.Cross, 14, Colors.Red);
            // Room right of the line for its label.
            var first = records.Min(r => r.Step);
            plot.Axes.SetLimitsX(first, bad.Step + Math.Max(1, 0.15 * (bad.Step - first)));
        }
        plot.Title(title);
        plot.XLabel("step");
        plot.YLabel("cross-entropy (nats)");
        plot.ShowLegend(Alignment.UpperRight);
        return plot;
    }
}
