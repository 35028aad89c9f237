using Excise.Evaluation.Metrics;
using Excise.Experiment;

namespace Excise.Tests.Reporting;

public class EstimateTests
{
    [Fact]
    public void Several_values_give_the_mean_with_a_student_t_interval()
    {
        // Mean 2.5; sample variance ((1.5² + 0.5²) · 2) / 3 = 5/3; standard error √(5/12) = 0.6454972;
        // t(0.975, 3 df) = 3.182, so the half-width is 2.0539721.
        var estimate = Estimate.OfValues([1, 2, 3, 4]);
        Assert.Equal(2.5, estimate.Value, 12);
        Assert.Equal(0.4460279, estimate.Lower, 6);
        Assert.Equal(4.5539721, estimate.Upper, 6);
        Assert.Equal(4, estimate.N);
        Assert.Equal(Estimate.SeedsMethod, estimate.Method);
        Assert.Equal("2.500 [0.446, 4.554]", estimate.Format());
    }

    [Fact]
    public void One_value_is_a_point_without_an_interval()
    {
        var estimate = Estimate.OfValues([0.7]);
        Assert.Equal((0.7, 0.7, 0.7, 1, Estimate.PointMethod), (estimate.Value, estimate.Lower, estimate.Upper, estimate.N, estimate.Method));
        Assert.False(estimate.HasInterval);
        Assert.Equal("0.700", estimate.Format());
    }

    [Fact]
    public void One_seed_of_proportions_is_its_wilson_interval()
    {
        var wilson = ProportionEstimate.Wilson(8, 10);
        var estimate = Estimate.OfProportions([wilson]);
        Assert.Equal(new Estimate(wilson.Rate, wilson.Lower, wilson.Upper, 10, Estimate.WilsonMethod), estimate);
        Assert.Equal("0.800 [0.490, 0.943]", estimate.Format());
    }

    [Fact]
    public void Several_seeds_of_proportions_use_the_t_interval_clamped_to_the_unit_range()
    {
        // Rates 0 and 0.1: mean 0.05, standard error 0.05, t(1 df) = 12.706 → ±0.6353, clamped below at 0.
        var estimate = Estimate.OfProportions([ProportionEstimate.Wilson(0, 40), ProportionEstimate.Wilson(4, 40)]);
        Assert.Equal(0.05, estimate.Value, 12);
        Assert.Equal(0, estimate.Lower);
        Assert.Equal(0.05 + 12.706 * 0.05, estimate.Upper, 9);
        Assert.Equal((2, Estimate.SeedsMethod), (estimate.N, estimate.Method));
    }

    [Fact]
    public void A_nan_estimate_formats_as_not_available()
    {
        var estimate = Estimate.OfValues([double.NaN, 1]);
        Assert.True(double.IsNaN(estimate.Value));
        Assert.Equal("n/a", estimate.Format());
    }

    [Fact]
    public void Seeds_that_agree_still_carry_the_uncertainty_of_their_images()
    {
        // Three seeds at 2 of 80 each: the t interval has zero width; the pooled Wilson interval of 6 of 240 does not.
        var seeds = Enumerable.Repeat(ProportionEstimate.Wilson(2, 80), 3).ToList();
        var estimate = Estimate.OfProportions(seeds);
        var pooled = ProportionEstimate.Wilson(6, 240);
        Assert.Equal(0.025, estimate.Value, 12);
        Assert.Equal((pooled.Lower, pooled.Upper), (estimate.Lower, estimate.Upper));
        Assert.Equal((3, Estimate.SeedsMethod), (estimate.N, estimate.Method));
    }

    [Fact]
    public void Seeds_that_disagree_keep_the_wider_t_interval()
    {
        var estimate = Estimate.OfProportions([ProportionEstimate.Wilson(8, 80), ProportionEstimate.Wilson(40, 80), ProportionEstimate.Wilson(72, 80)]);
        var t = Estimate.OfValues([0.1, 0.5, 0.9]);
        Assert.Equal((Math.Max(0, t.Lower), Math.Min(1, t.Upper)), (estimate.Lower, estimate.Upper));
    }

    [Fact]
    public void A_difference_of_two_shares_has_newcombes_hybrid_score_interval()
    {
        // Newcombe (1998), Statistics in Medicine 17:873, Table II, example (a): 56/70 − 48/80 = 0.2000, method 10: [0.0524, 0.3339].
        var d = Estimate.Newcombe(ProportionEstimate.Wilson(56, 70), ProportionEstimate.Wilson(48, 80));
        Assert.Equal(0.2, d.Value, 12);
        Assert.Equal(0.0524, d.Lower, 4);
        Assert.Equal(0.3339, d.Upper, 4);
        Assert.Equal(1, d.Direction());
        // Example (e): 0/10 − 0/20 = 0, method 10: [−0.1611, 0.2775] — not collapsed to a point at the boundary, as a normal interval would be.
        var zero = Estimate.Newcombe(ProportionEstimate.Wilson(0, 10), ProportionEstimate.Wilson(0, 20));
        Assert.Equal(-0.1611, zero.Lower, 4);
        Assert.Equal(0.2775, zero.Upper, 4);
        Assert.Equal(0, zero.Direction());
    }

    [Fact]
    public void Differences_over_seeds_are_paired_and_never_narrower_than_the_pooled_images_allow()
    {
        var one = Estimate.OfDifferences([(ProportionEstimate.Wilson(56, 70), ProportionEstimate.Wilson(48, 80))]);
        Assert.Equal(Estimate.NewcombeMethod, one.Method);
        Assert.Equal(0.0524, one.Lower, 4);

        // Seeds 30/40 vs 20/40, 20/40 vs 10/40, 38/40 vs 28/40: each 10 images (0.25) apart, so the t interval has zero width;
        // the pooled images (88/120 vs 58/120) still leave the Newcombe interval's uncertainty around it.
        var agreeing = Estimate.OfDifferences([(W(30), W(20)), (W(20), W(10)), (W(38), W(28))]);
        var pooled = Estimate.Newcombe(ProportionEstimate.Wilson(88, 120), ProportionEstimate.Wilson(58, 120));
        Assert.Equal(Estimate.SeedsMethod, agreeing.Method);
        Assert.Equal(0.25, agreeing.Value, 12);
        Assert.Equal(pooled.Lower, agreeing.Lower, 12);
        Assert.Equal(pooled.Upper, agreeing.Upper, 12);

        // Seeds that disagree in sign keep the wider t interval, which includes 0.
        var disagreeing = Estimate.OfDifferences([(W(30), W(20)), (W(20), W(30)), (W(25), W(24))]);
        Assert.True(disagreeing.Lower < pooled.Lower - 0.25 && disagreeing.Upper > 0.3);
        Assert.Equal(0, disagreeing.Direction());

        static ProportionEstimate W(int k) => ProportionEstimate.Wilson(k, 40);
    }
}
