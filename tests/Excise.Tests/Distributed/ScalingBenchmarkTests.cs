using Excise.Benchmarking;
using Xunit.Abstractions;

namespace Excise.Tests.Distributed;

/// <summary>excise bench's scaling section on the smoke model: the built CLI alone and under mpirun -np 2, a few steps each.</summary>
public class ScalingBenchmarkTests(ITestOutputHelper output)
{
    [MpirunFact]
    public void One_and_two_ranks_report_their_speed_and_two_ranks_the_allreduce_share()
    {
        if (!File.Exists(RepositoryPaths.Cli)) Assert.Fail($"{RepositoryPaths.Cli} is missing: build the solution (dotnet build Excise.slnx -c Release).");
        var settings = new BenchmarkSettings
        {
            Models = [new BenchModel("smoke", RepositoryPaths.Config("smoke"))], Sections = new HashSet<string> { "scaling" },
            ScalingExecutable = RepositoryPaths.Cli, ScalingSteps = 3, ScalingImages = 64,
        };
        var scaling = BenchmarkRunner.Run(settings, output.WriteLine).Scaling!;

        Assert.Null(scaling.Skipped);
        Assert.Equal([1, 2], scaling.Points.Select(p => p.Ranks));
        Assert.All(scaling.Points, p => Assert.Equal(3, p.Steps));
        // The rates are the global batch over the median step, whatever the number of ranks sharing it.
        Assert.All(scaling.Points, p => Assert.Equal(scaling.Batch / p.MedianSecondsPerStep, p.ImagesPerSecond, 6));
        Assert.Equal(0, scaling.Points[0].AllreduceSeconds);
        var two = scaling.Points[1];
        Assert.True(two.AllreduceSeconds > 0 && two.AllreduceShare is > 0 and < 1, $"allreduce {two.AllreduceSeconds} s, {two.AllreduceShare:P1}");
        Assert.Equal(two.AllreduceSeconds / two.TrainingSeconds, two.AllreduceShare, 12);
        Assert.Equal(scaling.Points[1].ImagesPerSecond / scaling.Points[0].ImagesPerSecond, scaling.Speedup!.Value, 12);
        Assert.InRange(scaling.GradientMegabytes, 1.0, 2.0); // the smoke UNet: about 348,000 float weights
    }
}
