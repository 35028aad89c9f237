using Excise.Benchmarking;
using Excise.Tests.Attacks;

namespace Excise.Tests.Benchmarking;

/// <summary>The solvers section on the tiny trained victim: the run's own captions, and errors that shrink with steps.</summary>
[Collection(AttackVictimCollection.Name)]
public class SolverAccuracyTests(AttackVictim victim)
{
    [Fact]
    public void Every_solver_gets_closer_to_the_reference_with_more_steps_than_ten()
    {
        var prompts = SolverAccuracy.Prompts(victim.Run, 6);
        Assert.Equal(6, prompts.Count);
        Assert.Contains(prompts, p => p.Contains("the Acme logo"));

        var result = SolverAccuracy.Measure(victim.Run.Root, images: 4, referenceSteps: 60, guidanceScale: 3.0, seed: 1);
        Assert.Equal(SolverAccuracy.Candidates.Count, result.Points.Count);
        Assert.All(result.Points, p => Assert.True(p.RmseToReference > 0 && p.MaxErrorToReference >= p.RmseToReference, $"{p}"));
        foreach (var sampler in new[] { "ddim", "dpm++2m" })
        {
            // Not strictly monotone: x₀ clipping makes the ODE kinked, so near the reference the error stops shrinking.
            var points = result.Points.Where(p => p.Sampler == sampler).OrderBy(p => p.Steps).ToList();
            Assert.True(points.Skip(1).Min(p => p.RmseToReference) < points[0].RmseToReference / 1.5, string.Join("; ", points));
        }
    }

    [Fact]
    public void The_solvers_section_needs_a_run_and_a_longer_reference()
    {
        var smoke = new BenchModel("smoke", RepositoryPaths.Config("smoke"));
        var solvers = new HashSet<string> { "solvers" };
        Assert.Contains("--run", Assert.Throws<ArgumentException>(() => new BenchmarkSettings { Models = [smoke], Sections = solvers }.Validate()).Message);
        Assert.Throws<ArgumentException>(() => new BenchmarkSettings { Models = [smoke], Sections = solvers, SolverRun = victim.Run.Root, SolverReferenceSteps = 50 }.Validate());
        new BenchmarkSettings { Models = [smoke], Sections = solvers, SolverRun = victim.Run.Root }.Validate();
    }
}
