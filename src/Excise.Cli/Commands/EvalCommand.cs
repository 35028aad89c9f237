using Excise.Configuration;
using Excise.Attacks;
using Excise.Evaluation;
using Excise.Training;
using Spectre.Console;

namespace Excise.Cli.Commands;

/// <summary>Attacks a run and judges the results: extraction rate, quality, semantic fidelity, memorisation.</summary>
static class EvalCommand
{
    public static int Run(string[] args)
    {
        var cl = new CommandLine(args);
        var run = new RunDirectory(cl.Required("run", "a trained run directory"));
        var kinds = (cl.Option("attacks") ?? "prompt,paraphrase,baseline-rate,inversion,inversion-control")
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(text => EnumNames.Parse<AttackKind>(text, "attack kind")).ToList();
        var attack = AttackCommand.ParseSettings(cl, AttackKind.Prompt, defaultBatch: 32);
        int threads = cl.Int("threads", 0);
        if (threads < 0) throw new UsageException("--threads must be ≥ 0 (0 = one per core).");
        Excise.Torch.TorchRuntime.ConfigureThreads(threads);
        var settings = new EvaluationSettings(kinds, attack,
            cl.Option("judges") ?? Path.Combine(ProjectFiles.RunsRoot, "judges"),
            ReferenceImages: cl.Int("reference", 1000),
            ResNetImages: cl.Int("resnet-images", 200),
            MemorisationTrainImages: cl.Int("memorisation-train", 0),
            QuickJudges: cl.Flag("quick-judges"));
        var outDir = cl.Option("out") ?? Path.Combine(run.Root, "eval");
        // A model that never saw the concept (a base) is judged under a fine-tuning config's data recipe: its concept,
        // held-out adversary images and memorisation set, exactly as the experiment's floor is.
        var recipe = cl.Option("recipe") is { } recipeFile ? RunConfig.Load(recipeFile, [$"init={run.Root}"]) : null;
        cl.EnsureAllUsed();

        void Log(string message) => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(message)}[/]");
        RunEvaluation result;
        if (recipe is null) result = RunEvaluator.Evaluate(run, settings, outDir, Log);
        else
        {
            using var context = EvaluationContext.Create(settings, recipe.DataOrDefault.Concept
                ?? throw new UsageException($"--recipe: {cl.Option("recipe")} has no data.concept to judge extraction of."), Log);
            result = RunEvaluator.Evaluate(context, run, settings, outDir, Log, recipe: recipe);
        }
        var table = new Table();
        var columns = Excise.Evaluation.Metrics.MetricsReport.Columns;
        foreach (var c in columns) table.AddColumn(Markup.Escape(c.Header));
        foreach (var a in result.Attacks) table.AddRow(columns.Select(c => Markup.Escape(c.Cell(a.Metrics) ?? "–")).ToArray());
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine($"Wrote [blue]{Markup.Escape(Path.Combine(outDir, "eval.json"))}[/] and eval.md; attack images under {Markup.Escape(Path.Combine(outDir, "attacks"))}.");
        return 0;
    }
}
