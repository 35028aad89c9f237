using Excise.Projection;
using Excise.Serialization;
using Excise.Training;
using Spectre.Console;

namespace Excise.Cli.Commands;

/// <summary>
/// The certificate: for every projected weight, how much of what training changed lies in the concept
/// subspace. Exits 3 when any weight exceeds the tolerance.
/// </summary>
static class VerifyCommand
{
    public static int Run(string[] args)
    {
        var cl = new CommandLine(args);
        var run = new RunDirectory(cl.Required("run", "a trained run directory"));
        var baseOption = cl.Option("base");
        var basisOption = cl.Option("basis");
        var weightsOption = cl.Option("weights");
        double? toleranceOption = cl.Option("tolerance") is null ? null : cl.Double("tolerance", 0);
        var jsonOut = cl.Option("json") ?? run.CertificatePath;
        cl.EnsureAllUsed(); // a mistyped option is a usage error whatever else is wrong
        var config = run.LoadConfig();
        double tolerance = toleranceOption ?? config.SelectiveOrDefault.CertificateTolerance;

        var basisPath = basisOption ?? (File.Exists(run.BasisPath) ? run.BasisPath
            : throw new UsageException($"{run.Root} has no concept basis; pass --basis FILE."));
        var reference = baseOption is not null
            ? (Directory.Exists(baseOption) ? new RunDirectory(baseOption).ModelPath : baseOption)
            : TrainingJob.CertificateReference(config, run) is var path && File.Exists(path) ? path
                : throw new UsageException($"The run's reference weights ({path}) are missing; pass --base BASE_RUN.");
        using var basis = ConceptBasis.Load(basisPath);
        var certificate = ProjectionCertificate.Compute(weightsOption ?? run.ModelPath, reference, basis.U,
            ProjectionCertificate.MergedWeightPatterns(TrainingJob.ProjectedPatterns(config)), tolerance);

        var table = new Table().AddColumn("weight").AddColumn("‖ΔW‖").AddColumn("‖ΔW U‖ / ‖ΔW‖").AddColumn("‖ΔW U‖ / ‖W_base U‖").AddColumn("");
        foreach (var w in certificate.Weights)
            table.AddRow(Markup.Escape(w.Name), $"{w.ChangeNorm:E2}", $"{w.ShareOfChangeInConcept:E2}", $"{w.ConceptResponseShift:E2}",
                w.Passed ? "[green]ok[/]" : "[red]exceeds[/]");
        AnsiConsole.Write(table);
        AtomicFile.WriteAllText(jsonOut, certificate.ToJson());
        AnsiConsole.MarkupLine($"Concept basis rank {basis.Rank} ({Markup.Escape(string.Join(", ", basis.Info.Concepts))}); reference {Markup.Escape(reference)}; tolerance {tolerance:E0}.");
        AnsiConsole.MarkupLine(certificate.Passed
            ? $"[green]Certified[/]: worst share of the learned change in the concept subspace {certificate.WorstShare:E2}. Written to {Markup.Escape(jsonOut)}."
            : $"[red]Not certified[/]: worst share {certificate.WorstShare:E2}, worst response shift {certificate.WorstShift:E2} exceed {tolerance:E0}. Written to {Markup.Escape(jsonOut)}.");
        return certificate.Passed ? 0 : 3;
    }
}
