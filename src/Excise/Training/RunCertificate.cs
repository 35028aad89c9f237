using Excise.Projection;

namespace Excise.Training;

/// <summary>What <see cref="RunCertificate.Compute"/> checks a run against; null takes the run's own (its basis, its reference weights, its config's tolerance).</summary>
public sealed record RunCertificateRequest(string? Reference = null, string? Basis = null, string? Weights = null, double? Tolerance = null);

/// <summary>A run's certificate and what it was computed against.</summary>
public sealed record RunCertificateResult(ProjectionCertificate Certificate, string ReferencePath, string BasisPath, int BasisRank, IReadOnlyList<string> Concepts, double Tolerance);

/// <summary>
/// The projection certificate of a finished run (<c>excise verify</c>): by default the run's sampling weights against the
/// weights its training started from (<see cref="TrainingJob.CertificateReference"/>), on the weights its arm projected.
/// A standard run has no basis of its own, so a basis must be given to ask how much of its change lies in the concept.
/// </summary>
public static class RunCertificate
{
    public static RunCertificateResult Compute(RunDirectory run, RunCertificateRequest request)
    {
        var config = run.LoadConfig();
        double tolerance = request.Tolerance ?? config.SelectiveOrDefault.CertificateTolerance;
        var basisPath = request.Basis ?? (File.Exists(run.BasisPath) ? run.BasisPath
            : throw new FileNotFoundException($"{run.Root} has no concept basis (it was not trained by a projection arm); give the basis to check it against (--basis FILE).", run.BasisPath));
        var reference = request.Reference is { } given
            ? (Directory.Exists(given) ? new RunDirectory(given).ModelPath : given)
            : TrainingJob.CertificateReference(config, run) is var path && File.Exists(path) ? path
                : throw new FileNotFoundException($"The run's reference weights ({path}) are missing; give the run it started from (--base BASE_RUN).", path);
        using var basis = ConceptBasis.Load(basisPath);
        var certificate = ProjectionCertificate.Compute(request.Weights ?? run.ModelPath, reference, basis.U,
            ProjectionCertificate.MergedWeightPatterns(TrainingJob.ProjectedPatterns(config)), tolerance);
        return new RunCertificateResult(certificate, reference, basisPath, basis.Rank, basis.Info.Concepts, tolerance);
    }
}
