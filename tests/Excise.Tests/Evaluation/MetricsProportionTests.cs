using Excise.Evaluation.Metrics;

namespace Excise.Tests.Evaluation;

public class MetricsProportionTests
{
    [Fact]
    public void Wilson_interval_for_8_of_10_matches_the_hand_computed_bounds()
    {
        // centre = (0.8 + 1.96²/20) / (1 + 1.96²/10) = 0.71675; half-width = 1.96/(1.38415) · √(0.016 + 0.009604) = 0.22656
        var estimate = ProportionEstimate.Wilson(8, 10);
        Assert.Equal(0.8, estimate.Rate, 12);
        Assert.Equal(0.4902, estimate.Lower, 4);
        Assert.Equal(0.9433, estimate.Upper, 4);
    }

    [Fact]
    public void Wilson_interval_at_none_and_all_keeps_the_observed_side_exact()
    {
        var none = ProportionEstimate.Wilson(0, 20);
        Assert.Equal((0.0, 0.0), (none.Rate, none.Lower));
        Assert.Equal(0.1611, none.Upper, 4); // z²/(n + z²) = 3.8415/23.8415
        var all = ProportionEstimate.Wilson(20, 20);
        Assert.Equal((1.0, 1.0), (all.Rate, all.Upper));
        Assert.Equal(1 - 0.1611, all.Lower, 4);
    }

    [Fact]
    public void Wilson_interval_widens_with_z_and_knows_nothing_without_trials()
    {
        var at95 = ProportionEstimate.Wilson(30, 100);
        var at99 = ProportionEstimate.Wilson(30, 100, z: 2.5758293035489);
        Assert.True(at99.Lower < at95.Lower && at99.Upper > at95.Upper);
        // Textbook Wilson bounds for 30/100 (centre (p + z²/2n)/(1 + z²/n), half-width z·√(p(1−p)/n + z²/4n²)/(1 + z²/n)).
        Assert.Equal((0.218949, 0.395849), (Math.Round(at95.Lower, 6), Math.Round(at95.Upper, 6)));
        Assert.Equal((0.197461, 0.427428), (Math.Round(at99.Lower, 6), Math.Round(at99.Upper, 6)));

        var empty = ProportionEstimate.Wilson(0, 0);
        Assert.True(double.IsNaN(empty.Rate));
        Assert.Equal((0.0, 1.0), (empty.Lower, empty.Upper));
        Assert.Equal("n/a (0 trials)", empty.Format());
        Assert.Throws<ArgumentOutOfRangeException>(() => ProportionEstimate.Wilson(11, 10));
        Assert.Throws<ArgumentOutOfRangeException>(() => ProportionEstimate.Wilson(1, 10, z: 0));
    }
}
