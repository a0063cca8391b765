// Line plots of the experiments (ScottPlot), with an optional log-10 y axis: ScottPlot 5 has no log axis, so
// the values are plotted as log10(y) and the ticks are placed by hand at 1-2-5 steps or whole decades.
using System.Globalization;
using ScottPlot;
using SddIlgpu.Layers;

namespace SddIlgpu.Training.Experiments;

/// <summary>One curve: label, points, and whether it is drawn dashed (e.g. "at step 1").</summary>
public sealed record PlotSeries(string Label, double[] X, double[] Y, bool Dashed = false, int ColorIndex = -1);

public static class ExperimentPlots
{
    static readonly ScottPlot.Palettes.Category10 Palette = new();

    /// <summary>Renders the series to a PNG at <paramref name="path"/> (atomically); non-finite points (and non-positive ones on a log axis) are left out.</summary>
    public static void Lines(string path, string title, string xLabel, string yLabel, IReadOnlyList<PlotSeries> series, bool logY,
        int width = 1100, int height = 540)
    {
        ArgumentNullException.ThrowIfNull(series);
        var plot = new Plot();
        var shown = new List<double>();
        for (var i = 0; i < series.Count; i++)
        {
            var s = series[i];
            var points = s.X.Zip(s.Y).Where(p => double.IsFinite(p.Second) && (!logY || p.Second > 0)).ToArray();
            if (points.Length == 0)
                continue;
            var ys = points.Select(p => logY ? Math.Log10(p.Second) : p.Second).ToArray();
            shown.AddRange(ys);
            var line = plot.Add.Scatter(points.Select(p => p.First).ToArray(), ys);
            line.LegendText = s.Label;
            line.Color = Palette.GetColor(s.ColorIndex >= 0 ? s.ColorIndex : i);
            line.LineWidth = 2;
            line.MarkerSize = points.Length <= 40 ? 6 : 0;
            if (s.Dashed)
                line.LinePattern = LinePattern.Dashed;
        }
        if (logY && shown.Count > 0)
            plot.Axes.Left.TickGenerator = LogTicks(shown.Min(), shown.Max());
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(logY ? yLabel + " (log scale)" : yLabel);
        plot.ShowLegend(Edge.Right);
        AtomicFile.WriteAllBytes(path, plot.GetImageBytes(width, height, ImageFormat.Png));
    }

    /// <summary>Ticks for log10 values in [lo, hi]: 1-2-5 steps over a narrow range, whole decades over a wide one.</summary>
    static ScottPlot.TickGenerators.NumericManual LogTicks(double lo, double hi)
    {
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        int first = (int)Math.Floor(lo) - 1, last = (int)Math.Ceiling(hi) + 1;
        var span = hi - lo;
        var decadeStep = Math.Max(1, (int)Math.Ceiling(span / 10));
        for (var k = first; k <= last; k++)
        {
            if (span > 3)
            {
                if (k % decadeStep == 0)
                    ticks.AddMajor(k, "1e" + k.ToString(CultureInfo.InvariantCulture));
                continue;
            }
            foreach (var m in new[] { 1.0, 2.0, 5.0 })
            {
                var v = m * Math.Pow(10, k);
                ticks.AddMajor(Math.Log10(v), v.ToString("G3", CultureInfo.InvariantCulture));
            }
        }
        return ticks;
    }
}
