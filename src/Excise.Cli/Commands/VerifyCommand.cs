using System.CommandLine;
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
    public static Command Create()
    {
        var run = CliOptions.Text("--run", "The trained run to certify.", required: true, helpName: "RUN_DIR");
        var reference = CliOptions.Text("--base", "The run (or weights file) to measure the change from (default: the weights the run started from).", helpName: "BASE_RUN");
        var basis = CliOptions.Text("--basis", "The concept basis (default: the run's own concept.safetensors).", helpName: "FILE");
        var weights = CliOptions.Text("--weights", "Weights to certify (default: the run's model.safetensors).", helpName: "FILE");
        var tolerance = CliOptions.OptionalDouble("--tolerance", "The largest share of the change allowed inside the subspace (default: the run's selective.certificate_tolerance).", min: 0, max: 1);
        var json = CliOptions.Text("--json", "Where to write the certificate (default: the run's certificate.json).", helpName: "FILE");
        var command = new Command("verify", $"Certify that a projected run's learned change avoids the concept subspace (exit {ExitCodes.CertificateFailed} if not).")
        {
            run, reference, basis, weights, tolerance, json,
        }.WithExamples(
            "excise verify --run runs/ft",
            "excise verify --run runs/ft-standard --base models/base --basis concept.safetensors");
        command.SetAction(r =>
        {
            var directory = new RunDirectory(r.GetValue(run)!);
            var result = RunCertificate.Compute(directory, new RunCertificateRequest(r.GetValue(reference), r.GetValue(basis), r.GetValue(weights), r.GetValue(tolerance)));
            var jsonOut = r.GetValue(json) ?? directory.CertificatePath;
            AtomicFile.WriteAllText(jsonOut, result.Certificate.ToJson());
            Print(result, jsonOut);
            return result.Certificate.Passed ? ExitCodes.Done : ExitCodes.CertificateFailed;
        });
        return command;
    }

    static void Print(RunCertificateResult result, string jsonOut)
    {
        var certificate = result.Certificate;
        var table = new Table().AddColumn("weight").AddColumn("‖ΔW‖").AddColumn("‖ΔW U‖ / ‖ΔW‖").AddColumn("‖ΔW U‖ / ‖W_base U‖")
            .AddColumn("‖ΔW U‖ / float32 floor").AddColumn("");
        foreach (var w in certificate.Weights)
            table.AddRow(Markup.Escape(w.Name), $"{w.ChangeNorm:E2}", $"{w.ShareOfChangeInConcept:E2}", $"{w.ConceptResponseShift:E2}",
                w.RoundingFloor > 0 ? $"{w.ConceptChangeNorm / w.RoundingFloor:F2}" : "–",
                w.PassedWithinRounding ? "[green]ok (within rounding)[/]" : w.Passed ? "[green]ok[/]" : "[red]exceeds[/]");
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine($"Concept basis rank {result.BasisRank} ({Markup.Escape(string.Join(", ", result.Concepts))}); reference {Markup.Escape(result.ReferencePath)}; tolerance {result.Tolerance:E0}.");
        if (certificate.Weights.Any(w => w.PassedWithinRounding))
            AnsiConsole.MarkupLine("A weight marked [green]ok (within rounding)[/] has a ratio over the tolerance but a concept change no larger than the rounding of its stored float32 values (the float32 floor): no stored change that small can be told from rounding.");
        AnsiConsole.MarkupLine(certificate.Passed
            ? $"[green]Certified[/]: worst share of the learned change in the concept subspace {certificate.WorstShare:E2}. Written to {Markup.Escape(jsonOut)}."
            : $"[red]Not certified[/]: worst share {certificate.WorstShare:E2}, worst response shift {certificate.WorstShift:E2} exceed {result.Tolerance:E0}. Written to {Markup.Escape(jsonOut)}.");
    }
}
