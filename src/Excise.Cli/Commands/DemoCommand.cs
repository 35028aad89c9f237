using Excise.Configuration;
using System.Globalization;
using Excise.Attacks;
using Excise.Data;
using Excise.Experiment;
using Excise.Projection;
using Excise.Reporting;
using Spectre.Console;

namespace Excise.Cli.Commands;

/// <summary>
/// The main job: the whole selective-learning experiment on the embedded default (or the user's concept, logo
/// and imagefolder), every arm against every attack, written up as report.html, results.json and results.md.
/// </summary>
static class DemoCommand
{
    public const string Usage =
        "excise demo [--preset quick|default|full] [--out DIR] [--concept TEXT] [--logo FILE.svg|FILE.png] [--concept-kind logo|stripes] [--dataset IMAGEFOLDER] " +
        "[--arms a,b,c] [--seeds N] [--attacks prompt,paraphrase,inversion,inversion-control,baseline-rate] [--steps N] [--n IMAGES_PER_PROMPT] " +
        "[--sampler ddim|dpm++2m] [--sampling-steps N] " +
        "[--subspace-mode concept-tokens|contrastive|all-tokens] [--energy E | --rank K] [--threads N] [--arm-workers N] [--set key=value (fine-tuning)] " +
        "[--train-base] [--base-set key=value] [--projection-set key=value (projection arms only)] [--cache DIR] [--judges DIR] " +
        "[--shares 0.01,0.03,0.1,0.3 (the experiment at each share of stamped images)]";

    /// <summary>The stripes concept's name when none is given: "pattern" makes its paraphrases a print's, "Zebra" is its brand.</summary>
    public const string StripesPhrase = "the Zebra pattern";

    public static int Run(string[] args)
    {
        var cl = new CommandLine(args);
        var preset = cl.Option("preset") ?? ExperimentPresets.Default;
        var plan = ExperimentPresets.Get(preset, Path.Combine(ProjectFiles.Root, "configs"));
        var outDir = Path.GetFullPath(cl.Option("out") ?? Path.Combine(ProjectFiles.RunsRoot, "demo"));
        var paths = new ExperimentPaths(outDir,
            Path.GetFullPath(cl.Option("cache") ?? Path.Combine(ProjectFiles.RunsRoot, "cache")),
            Path.GetFullPath(cl.Option("judges") ?? Path.Combine(ProjectFiles.RunsRoot, "judges")));

        var baseOverrides = plan.BaseOverrides.ToList();
        var finetuneOverrides = plan.FinetuneOverrides.ToList();
        var kind = ConceptKind.Logo;
        if (cl.Option("concept-kind") is { } kindName && !EnumNames.TryParse(kindName, out kind))
            throw new UsageException($"--concept-kind must be {EnumNames.AllNames<ConceptKind>(" or ")} (got '{kindName}').");
        if (kind == ConceptKind.Stripes)
        {
            // Stripes over the garment, named as a pattern (its paraphrases are a fabric print's); the inversion adversary
            // starts from the concept's own generic noun, as it starts from "logo" for a logo.
            finetuneOverrides.Add("data.concept.kind=stripes");
            if (cl.Option("concept") is null) finetuneOverrides.Add($"data.concept.phrase={StripesPhrase}");
            plan = plan with { Attack = plan.Attack with { Inversion = plan.Attack.InversionOrDefault with { PlaceholderWord = "pattern" } } };
        }
        if (cl.Option("concept") is { } concept) finetuneOverrides.Add($"data.concept.phrase={concept}");
        if (cl.Option("logo") is { } logo)
        {
            if (!File.Exists(logo)) throw new UsageException($"--logo: file not found: {logo}");
            finetuneOverrides.Add($"data.concept.logo={Path.GetFullPath(logo)}");
        }
        if (cl.Option("dataset") is { } dataset)
        {
            if (!Directory.Exists(dataset)) throw new UsageException($"--dataset: no directory at {dataset} (an imagefolder: images plus metadata.jsonl with captions).");
            foreach (var list in new[] { baseOverrides, finetuneOverrides })
                list.AddRange(["data.source=imagefolder", $"data.path={Path.GetFullPath(dataset)}"]);
        }
        if (cl.Option("steps") is { } steps) finetuneOverrides.Add($"training.steps={steps}");
        finetuneOverrides.AddRange(cl.All("set"));
        baseOverrides.AddRange(cl.All("base-set"));

        var arms = cl.Option("arms") is { } armList ? Split(armList).Select(ParseArm).ToList() : plan.Arms;
        var attacks = cl.Option("attacks") is { } attackList ? Split(attackList).Select(ParseAttack).ToList() : plan.Attacks;
        var subspace = plan.Subspace;
        if (cl.Option("subspace-mode") is { } modeName)
            subspace = subspace with { Mode = EnumNames.TryParse<SubspaceMode>(modeName, out var mode) ? mode : throw new UsageException($"--subspace-mode must be one of {EnumNames.AllNames<SubspaceMode>("|")}.") };
        if (cl.Option("energy") is not null) subspace = subspace with { Energy = cl.Double("energy", 0.99) };
        if (cl.Option("rank") is not null) subspace = subspace with { Rank = cl.Int("rank", 0) };
        plan = plan with
        {
            BaseOverrides = baseOverrides,
            FinetuneOverrides = finetuneOverrides,
            Arms = arms,
            Attacks = attacks,
            Seeds = cl.Int("seeds", plan.Seeds),
            Subspace = subspace,
            Attack = plan.Attack with
            {
                ImagesPerPrompt = cl.Int("n", plan.Attack.ImagesPerPrompt),
                Sampler = cl.Option("sampler") is { } sampler ? AttackCommand.ParseSampler(sampler) : plan.Attack.Sampler,
                SamplingSteps = cl.Int("sampling-steps", plan.Attack.SamplingSteps),
            },
            Threads = cl.Int("threads", plan.Threads),
            ArmWorkers = cl.Int("arm-workers", plan.ArmWorkers),
            ProjectionOverrides = cl.All("projection-set"),
            ShippedBase = cl.Flag("train-base") ? null : plan.ShippedBase,
        };
        var shares = cl.Option("shares") is { } shareList ? Split(shareList).Select(ParseShare).ToList() : null;
        cl.EnsureAllUsed();
        try
        {
            plan.Validate();
            if (shares is not null) ShareSweep.Validate(shares);
        }
        catch (ArgumentException e) { throw new UsageException(e.Message); }
        if (shares is not null) return RunSweep(plan, paths, shares, "excise demo " + string.Join(' ', args.Select(Quote)));

        AnsiConsole.MarkupLine($"[bold]Selective-learning experiment[/] ({Markup.Escape(plan.Preset)} preset): {arms.Count} arms × {plan.Seeds} seed(s), attacks {Markup.Escape(string.Join(", ", attacks.Select(EnumNames.ToName)))} → {Markup.Escape(outDir)}");
        var command = "excise demo " + string.Join(' ', args.Select(Quote));
        var results = ProgressDisplay.Run("experiment", 1.0, update =>
            ExperimentRunner.Run(plan, paths, command.Trim(),
                new SyncProgress<ExperimentProgress>(p => update(p.Done / p.Total,
                    $"{p.Status} · {ProgressDisplay.Duration(p.Elapsed)} elapsed" + (p.Remaining is { } r ? $" · ETA {ProgressDisplay.Duration(r)}" : ""))),
                message => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(message)}[/]"),
                writeReport: finished => ExperimentReport.Write(finished, paths.Output)));

        Print(results, outDir);
        return 0;
    }

    /// <summary>The experiment at every share of stamped images (<c>--shares</c>), each in OUT/share-x/, then sweep.md and its charts.</summary>
    static int RunSweep(Excise.Experiment.ExperimentPlan plan, ExperimentPaths paths, IReadOnlyList<double> shares, string command)
    {
        AnsiConsole.MarkupLine($"[bold]Stamped-share sweep[/] ({Markup.Escape(plan.Preset)} preset): {plan.Arms.Count} arms × {plan.Seeds} seed(s) at shares "
                               + $"{Markup.Escape(string.Join(", ", shares.Order().Select(s => s.ToString("P0", CultureInfo.InvariantCulture))))} → {Markup.Escape(paths.Output)}");
        var sweep = ProgressDisplay.Run("share sweep", 1.0, update =>
            ShareSweep.Run(plan, paths, shares, command.Trim(),
                new SyncProgress<ShareSweepProgress>(p => update(p.Fraction,
                    $"share {p.Index + 1}/{p.Shares}: {p.Experiment.Status} · {ProgressDisplay.Duration(p.Experiment.Elapsed)} elapsed")),
                message => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(message)}[/]"),
                writeReport: ExperimentReport.Write));
        ShareSweepReport.Write(sweep, paths.Output);
        AnsiConsole.MarkupLine($"Done. Sweep: [blue]{Markup.Escape(Path.Combine(paths.Output, ShareSweepReport.Markdown))}[/] and plots/share-sweep-*.png; "
                               + "each share's report.html in its share-* folder.");
        return 0;
    }

    static double ParseShare(string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var share) && double.IsFinite(share)
            ? share : throw new UsageException($"--shares takes shares of stamped images such as 0.01,0.03,0.1,0.3 (got '{text}').");

    static void Print(ExperimentResults results, string outDir)
    {
        var columns = ResultsTable.Columns(results.Setup.AttackNames, results.Setup.ConceptNoun);
        var table = new Table().AddColumn("arm");
        foreach (var c in columns) table.AddColumn(Markup.Escape(c.Header));
        foreach (var arm in results.Summary) table.AddRow(new[] { Markup.Escape(arm.Arm) }.Concat(columns.Select(c => Markup.Escape(c.Cell(arm)))).ToArray());
        AnsiConsole.Write(table);
        foreach (var line in results.Reading) AnsiConsole.MarkupLine($"• {Markup.Escape(line)}");
        var reused = results.Setup.ReusedArmRuns > 0 ? $" ({results.Setup.ReusedArmRuns} of {results.Runs.Count} arm runs reused from an earlier run)" : "";
        AnsiConsole.MarkupLine($"Done in {ProgressDisplay.Duration(TimeSpan.FromSeconds(results.ElapsedSeconds))}{reused}. Report: [blue]{Markup.Escape(Path.Combine(outDir, "report.html"))}[/]; figures: results.json, results.md.");
    }

    static IEnumerable<string> Split(string list) => list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    static Excise.Training.TrainingArm ParseArm(string name)
    {
        try { return EnumNames.Parse<Excise.Training.TrainingArm>(name, "arm"); }
        catch (ArgumentException e) { throw new UsageException("--arms: " + e.Message); }
    }

    static AttackKind ParseAttack(string name)
    {
        try { return EnumNames.Parse<AttackKind>(name, "attack kind"); }
        catch (ArgumentException e) { throw new UsageException("--attacks: " + e.Message); }
    }

    static string Quote(string arg) => arg.Contains(' ') ? $"\"{arg}\"" : arg;
}
