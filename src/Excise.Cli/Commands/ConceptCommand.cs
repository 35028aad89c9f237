using Excise.Configuration;
using System.Globalization;
using Excise.Projection;
using Excise.Text;
using Spectre.Console;

namespace Excise.Cli.Commands;

/// <summary>excise concept: builds (or extends) the orthonormal basis of a prohibited concept's text-state subspace.</summary>
static class ConceptCommand
{
    public const string Usage =
        "excise concept --concept \"the Acme logo\" [--concept \"another\" ...] [--prompts FILE] [--mode concept-tokens|contrastive|all-tokens] " +
        "[--energy 0.99 | --rank K] [--add-to EXISTING.safetensors] [--max-length 32] --out concept.safetensors";

    public static int Run(string[] args)
    {
        var cl = new CommandLine(args);
        var concepts = cl.All("concept");
        if (concepts.Count == 0) throw new UsageException($"Give at least one --concept \"phrase\". Usage: {Usage}");
        var promptFile = cl.Option("prompts");
        var modeName = cl.Option("mode") ?? SubspaceMode.ConceptTokens.ToName();
        if (!EnumNames.TryParse<SubspaceMode>(modeName, out var mode)) throw new UsageException($"--mode must be one of {EnumNames.AllNames<SubspaceMode>("|")}, got '{modeName}'.");
        bool energyGiven = cl.Option("energy") is not null;
        double energy = cl.Double("energy", 0.99);
        int? rank = cl.Option("rank") is not null ? cl.Int("rank", 0) : null;
        if (energyGiven && rank is not null) throw new UsageException("Give either --energy or --rank, not both.");
        var addTo = cl.Option("add-to");
        int maxLength = cl.Int("max-length", 32);
        var outPath = cl.Required("out", "the basis .safetensors file to write");
        cl.EnsureAllUsed();
        if (maxLength < 2) throw new UsageException("--max-length must be at least 2.");

        var extraPrompts = promptFile is null ? null : ConceptPrompts.ReadFile(promptFile, concepts);
        var options = new SubspaceOptions(mode, energy, rank, ExtraPrompts: extraPrompts);

        using var existing = addTo is null ? null : ConceptBasis.Load(addTo);
        using var encoder = MiniLmTextEncoder.Create(maxLength);
        if (existing is not null && existing.Info.EncoderId != encoder.Id)
            throw new UsageException($"{addTo} was built with '{existing.Info.EncoderId}' but this run encodes with '{encoder.Id}'; pass the --max-length it was built with.");
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
