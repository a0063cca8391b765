// The loss curve as a PNG: training loss per step and validation loss at each evaluation (ScottPlot).
using ScottPlot;
using SddIlgpu.Layers;

namespace SddIlgpu.Training.Metrics;

public static class LossPlot
{
    /// <summary>Renders the records to a PNG at <paramref name="path"/> (atomically).</summary>
    public static void Write(string path, IReadOnlyList<StepRecord> records, string title)
    {
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
        plot.Title(title);
        plot.XLabel("step");
        plot.YLabel("cross-entropy (nats)");
        plot.ShowLegend(Alignment.UpperRight);
        var bytes = plot.GetImageBytes(900, 500, ImageFormat.Png);
        AtomicFile.WriteAllBytes(path, bytes);
    }
}
