using System.CommandLine;
using System.Globalization;
using Excise.Configuration;
using Excise.Projection;
using Excise.Text;
using Spectre.Console;

namespace Excise.Cli.Commands;

/// <summary>excise concept: builds (or extends) the orthonormal basis of a prohibited concept's text-state subspace.</summary>
static class ConceptCommand
{
    public static Command Create()
    {
        var concepts = CliOptions.Repeated("--concept", "The prohibited concept's phrase; repeat for several concepts in one basis.", helpName: "TEXT");
        concepts.Required = true;
        var prompts = CliOptions.Text("--prompts", "More prompts naming the concept, one per line, added to the built-in ones.", helpName: "FILE");
        var mode = CliOptions.Choice("--mode", "What the basis spans: the concept tokens' states, their difference from the prompt without them, or every token's.", SubspaceMode.ConceptTokens);
        var energy = CliOptions.OptionalDouble("--energy", "Keep the fewest directions holding this share of the states' energy (default 0.99; not with --rank).", min: 0, max: 1);
        var rank = CliOptions.OptionalInt("--rank", "Keep exactly this many directions (not with --energy).", min: 1);
        var addTo = CliOptions.Text("--add-to", "Extend this basis (same encoder and mode) with the new concepts.", helpName: "BASIS.safetensors");
        var maxLength = CliOptions.Int("--max-length", "The text encoder's token length; must match the runs the basis is for.", 32, min: 2);
        var pipeline = CliOptions.Text("--pipeline", "Build the basis from this Stable Diffusion pipeline folder's CLIP text encoder (its own width and 77 tokens) instead of MiniLM.", helpName: "DIR");
        var output = CliOptions.Text("--out", "The basis .safetensors file to write.", required: true, helpName: "BASIS.safetensors");
        var command = new Command("concept", "Build a concept's text-state subspace (an orthonormal basis) for the projection arms and the certificate.")
        {
            concepts, prompts, mode, energy, rank, addTo, maxLength, pipeline, output,
        }.WithExamples(
            "excise concept --concept \"the Acme logo\" --out concept.safetensors",
            "excise concept --concept \"the Zebra pattern\" --mode contrastive --rank 8 --add-to concept.safetensors --out both.safetensors",
            "excise concept --pipeline ~/models/sd-1-5 --concept \"the Acme logo\" --out sd-concept.safetensors");
        command.SetAction(r => Run(r.GetValue(concepts)!, r.GetValue(prompts), r.GetChoice(mode), r.GetValue(energy), r.GetValue(rank), r.GetValue(addTo), r.GetValue(maxLength), r.GetValue(pipeline), r.GetValue(output)!));
        return command;
    }

    static int Run(IReadOnlyList<string> concepts, string? promptFile, SubspaceMode mode, double? energyOption, int? rank, string? addTo, int maxLength, string? pipeline, string outPath)
    {
        if (energyOption is not null && rank is not null) throw new UsageException("Give either --energy or --rank, not both.");
        double energy = energyOption ?? new SubspaceOptions().Energy;

        var extraPrompts = promptFile is null ? null : ConceptPrompts.ReadFile(promptFile, concepts);
        var options = new SubspaceOptions(mode, energy, rank, ExtraPrompts: extraPrompts);

        using var existing = addTo is null ? null : ConceptBasis.Load(addTo);
        using var encoder = pipeline is null ? MiniLmTextEncoder.Create(maxLength) : (ITextEncoder)Excise.Pipelines.StableDiffusionPipelineFolder.Open(pipeline).LoadTextEncoder();
        if (existing is not null && existing.Info.EncoderId != encoder.Id)
            throw new UsageException($"{addTo} was built with '{existing.Info.EncoderId}' but this run encodes with '{encoder.Id}'; " +
                                     (pipeline is null ? "pass the --max-length it was built with." : "pass the pipeline it was built from."));
        using var built = ConceptSubspaceBuilder.Build(encoder, concepts, options);
        using var union = existing is null ? null : ConceptBasis.Union([existing, built]);
        var result = union ?? built;
        result.Save(outPath);

        var table = new Table().AddColumns("basis", "concepts", "mode", "prompts", "vectors (kept)", "rank", "energy", "top σ");
        if (existing is not null) AddRow(table, "existing", existing);
        AddRow(table, existing is null ? "built" : "new", built);
        if (union is not null) AddRow(table, "union", union);
        AnsiConsole.Write(table);
        foreach (var concept in concepts)
        {
            // The figure that says how well the basis generalises is on prompts it never saw; the in-sample one is printed
            // beside it because the gap between the two is the basis fitting its own prompts.
            var heldOut = ConceptLeakage.MeasureHeldOut(encoder, result, concept);
            if (heldOut is null)
                AnsiConsole.MarkupLine($"\"{Markup.Escape(concept)}\" has no brand word to paraphrase, so there are no held-out prompts to measure the basis on.");
            else
                AnsiConsole.MarkupLine($"\"{Markup.Escape(concept)}\" on {heldOut.Prompts} held-out prompts (its paraphrases, never among the basis's prompts): " +
                                       $"{heldOut.ConceptTokensOutside:P2} of the paraphrase tokens' state energy and {heldOut.ChangesOutside:P2} of their effect on the prompt's states lie outside the basis.");
            var inSample = ConceptLeakage.Measure(encoder, result, concept, Excise.Attacks.AttackPrompts.Direct(concept).Select(p => p.Text).ToList());
            AnsiConsole.MarkupLine($"\"{Markup.Escape(concept)}\" on the {inSample.Prompts} direct attack prompts{(options.IncludeBuiltInPrompts ? " (in-sample: the basis was built from them)" : "")}: " +
                                   $"{inSample.ConceptTokensOutside:P2} of the concept tokens' state energy and {inSample.ChangesOutside:P2} of the concept's effect on the prompt's states lie outside the basis.");
        }
        AnsiConsole.MarkupLine($"Wrote [blue]{Markup.Escape(Path.GetFullPath(outPath))}[/]: basis [[{result.Dimension}, {result.Rank}]] for {Markup.Escape(result.Info.EncoderId)}.");
        return 0;
    }

    static void AddRow(Table table, string label, ConceptBasis basis)
    {
        var info = basis.Info;
        table.AddRow(
            Markup.Escape(label),
            Markup.Escape(string.Join("; ", info.Concepts)),
            info.Mode.ToName(),
            info.Prompts.Count.ToString(CultureInfo.InvariantCulture),
            $"{info.VectorsCollected} ({info.VectorsKept})",
            basis.Rank.ToString(CultureInfo.InvariantCulture),
            info.EnergyKept.ToString("F4", CultureInfo.InvariantCulture),
            string.Join(" ", info.SingularValues.Take(3).Select(s => s.ToString("G3", CultureInfo.InvariantCulture))) + (info.SingularValues.Count > 3 ? " …" : ""));
    }
}
