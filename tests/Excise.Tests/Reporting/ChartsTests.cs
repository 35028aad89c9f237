using Excise.Data;
using Excise.Evaluation.Metrics;
using Excise.Experiment;
using Excise.Imaging;
using Excise.Reporting;

namespace Excise.Tests.Reporting;

public class ChartsTests
{
    static void AssertChartPng(string path)
    {
        Assert.True(PngIO.HasPngSignature(File.ReadAllBytes(path)), $"{path} is not a PNG.");
        var image = PngIO.Load(path);
        Assert.Equal((Charts.Width, Charts.Height), (image.Width, image.Height));
    }

    static Estimate? Rate(int group, int series) => (group, series) switch
    {
        (0, 0) => Estimate.FromProportion(ProportionEstimate.Wilson(33, 40)),
        (0, 1) => Estimate.OfValues([0.1, 0.2]),
        (1, 0) => Estimate.OfValues([0.4]),
        (1, 1) => null,
        _ => Estimate.FromProportion(ProportionEstimate.Wilson(0, 0)), // NaN rate: a gap
    };

    [Fact]
    public void Grouped_bar_chart_writes_a_png_of_the_chart_size_and_tolerates_missing_values()
    {
        using var dir = new TempDir();
        string path = dir.File("plots/bars.png");
        Charts.GroupedBarChart("Extraction", ["standard", "update-projection", "filter-images"], ["named", "unasked"], Rate,
            "share of images", yMax: 1, path);
        AssertChartPng(path);

        // Left to right: standard's two bars (0.825, 0.15), update-projection's first (0.4; its second is missing), and
        // nothing for filter-images (NaN). On a fixed 0–1 axis the heights keep the values' ratios.
        var image = PngIO.Load(path);
        var named = Bars(image, 0);
        var unasked = Bars(image, 1);
        Assert.Equal(2, named.Count);
        Assert.Single(unasked);
        Assert.True(named[0].Left < unasked[0].Left && unasked[0].Left < named[1].Left, "bars out of group order");
        Assert.Equal(0.4 / 0.825, (double)named[1].Height / named[0].Height, 0.01);
        Assert.Equal(0.15 / 0.825, (double)unasked[0].Height / named[0].Height, 0.01);
    }

    /// <summary>
    /// The bars drawn in palette colour <paramref name="series"/>, left to right, each with its height in pixels (the
    /// median over its columns of the longest vertical run of that colour, so the whisker drawn over its centre does not
    /// count). Only x &lt; 600 is searched: the plot area, never the legend.
    /// </summary>
    static List<(int Left, int Right, int Height)> Bars(RasterImage image, int series)
    {
        var colour = ChartPalette.Colour(series);
        bool Is(int x, int y) => Math.Abs(image[x, y, 0] - colour.Red) + Math.Abs(image[x, y, 1] - colour.Green) + Math.Abs(image[x, y, 2] - colour.Blue) < 40;
        var runs = new int[600];
        for (int x = 0; x < 600; x++)
            for (int y = 0, run = 0; y < image.Height; y++)
            {
                run = Is(x, y) ? run + 1 : 0;
                runs[x] = Math.Max(runs[x], run);
            }
        var bars = new List<(int, int, int)>();
        for (int x = 0; x < 600; x++)
        {
            if (runs[x] < 3) continue;
            int left = x;
            // A whisker as tall as the bar cuts its centre column or two: a gap that narrow is still the same bar.
            while (Enumerable.Range(x + 1, 4).Any(next => next < 600 && runs[next] >= 3)) x++;
            var heights = runs[left..(x + 1)].Where(h => h >= 3).Order().ToArray();
            bars.Add((left, x, heights[heights.Length / 2]));
        }
        return bars;
    }

    [Fact]
    public void Bar_chart_without_a_fixed_axis_scales_to_the_data()
    {
        using var dir = new TempDir();
        string path = dir.File("fd.png");
        Charts.GroupedBarChart("FD", ["a", "b"], ["FD"], (g, _) => Estimate.OfValues(g == 0 ? [12.0, 14.0] : [30.0, double.NaN]),
            "distance", yMax: null, path);
        AssertChartPng(path);
    }

    [Fact]
    public void Charts_are_deterministic()
    {
        using var dir = new TempDir();
        IReadOnlyList<double> losses = Enumerable.Range(0, 300).Select(i => 1.0 / (1 + i) + 0.01 * (i % 7)).ToList();
        Charts.LineChart("Loss", [("standard", losses)], "step", "loss", dir.File("a.png"), 25);
        Charts.LineChart("Loss", [("standard", losses)], "step", "loss", dir.File("b.png"), 25);
        Assert.Equal(File.ReadAllBytes(dir.File("a.png")), File.ReadAllBytes(dir.File("b.png")));
    }

    [Fact]
    public void Line_chart_draws_each_series_in_its_palette_colour_and_survives_nan_and_empty_series()
    {
        using var dir = new TempDir();
        IReadOnlyList<double> first = [0.5, double.NaN, 0.4, 0.3, double.NaN, double.NaN, 0.2];
        IReadOnlyList<double> flat = [0.25, 0.25, 0.25];
        string path = dir.File("loss.png");
        Charts.LineChart("Loss", [("noisy", first), ("flat", flat), ("empty", [])], "step", "loss", path, smoothWindow: 1);
        AssertChartPng(path);

        // Left of x = 600 is plot area whatever the legend's width, so a colour found there is a line, not a legend swatch.
        var image = PngIO.Load(path);
        bool DrawsLine(int index)
        {
            var colour = ChartPalette.Colour(index);
            for (int y = 0; y < image.Height; y++)
                for (int x = 0; x < 600; x++)
                    if (Math.Abs(image[x, y, 0] - colour.Red) + Math.Abs(image[x, y, 1] - colour.Green) + Math.Abs(image[x, y, 2] - colour.Blue) < 40)
                        return true;
            return false;
        }
        Assert.True(DrawsLine(0), "The NaN-broken series is drawn in the first palette colour.");
        Assert.True(DrawsLine(1), "The flat series is drawn in the second palette colour.");
    }

    [Fact]
    public void Line_chart_with_no_finite_values_is_still_written()
    {
        using var dir = new TempDir();
        string path = dir.File("none.png");
        Charts.LineChart("Loss", [("nan", [double.NaN, double.NaN])], "step", "loss", path, 25);
        Charts.LineChart("Loss", [], "step", "loss", dir.File("no-series.png"), 25);
        AssertChartPng(path);
        AssertChartPng(dir.File("no-series.png"));
    }

    [Fact]
    public void Moving_average_is_trailing_and_skips_nan()
    {
        var smoothed = Charts.MovingAverage([1, 2, 3, double.NaN, 5, double.NaN, double.NaN, double.NaN], window: 3);
        // Windows: [1], [1,2], [1,2,3], [2,3,·], [3,·,5], [·,5,·], [5,·,·], [·,·,·].
        Assert.Equal([1, 1.5, 2, 2.5, 4, 5, 5], smoothed.Take(7));
        Assert.True(double.IsNaN(smoothed[7]));
    }
}
