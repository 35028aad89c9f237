using System.CommandLine;
using Excise.Attacks;
using Excise.Evaluation;
using Excise.Training;
using Spectre.Console;

namespace Excise.Cli.Commands;

/// <summary>excise eval: attacks a run and judges the results — extraction rate, quality, semantic fidelity, memorisation.</summary>
static class EvalCommand
{
    static readonly AttackKind[] DefaultAttacks = [AttackKind.Prompt, AttackKind.Paraphrase, AttackKind.BaselineRate, AttackKind.Inversion, AttackKind.InversionControl];

    public static Command Create()
    {
        var defaults = new EvaluationSettings([], new AttackSettings(AttackKind.Prompt), "");
        var run = CliOptions.Text("--run", "A trained run directory.", required: true, helpName: "RUN_DIR");
        var attacks = CliOptions.ChoiceList<AttackKind>("--attacks", $"The attacks to run (default: {string.Join(",", DefaultAttacks.Select(Configuration.EnumNames.ToName))}).");
        var attack = new AttackOptions();
        var threads = CliOptions.Threads();
        var judges = CliOptions.Text("--judges", "The judges' cache (default: runs/judges).", helpName: "DIR");
        var reference = CliOptions.Int("--reference", "Real test images the FD and KID compare with.", defaults.ReferenceImages, min: 2);
        var resnetImages = CliOptions.Int("--resnet-images", "Images per side for the ResNet18 FID (0 = skip it).", defaults.ResNetImages, min: 0);
        var memorisation = CliOptions.Int("--memorisation-train", "Training images searched for near-copies (0 = skip).", defaults.MemorisationTrainImages, min: 0);
        var quickJudges = CliOptions.Flag("--quick-judges", "Smoke-test judges trained in seconds (for trying the command, not for figures).");
        var output = CliOptions.Text("--out", "Where to write eval.json, eval.md and the attack images (default: RUN_DIR/eval).", helpName: "DIR");
        var recipe = CliOptions.Text("--recipe", "Judge a model that never saw the concept (a base) under this fine-tuning config's data: its concept, adversary images and memorisation set.", helpName: "FINETUNE_CONFIG");
        var command = new Command("eval", "Attack a run and judge it: extraction rate with intervals, FD/KID, ResNet18 FID, semantic fidelity, memorisation.")
        {
            run, attacks, threads, judges, reference, resnetImages, memorisation, quickJudges, output, recipe,
        }.WithExamples(
            "excise eval --run runs/ft",
            "excise eval --run models/base --recipe configs/finetune.json --attacks baseline-rate --n 8 --steps 20 --out runs/base-eval");
        attack.AddTo(command);
        command.SetAction(r =>
        {
            var settings = new EvaluationSettings(r.GetValue(attacks) ?? DefaultAttacks, attack.Read(r, AttackKind.Prompt),
                r.GetValue(judges) ?? ProjectFiles.JudgeCache, r.GetValue(reference), r.GetValue(resnetImages), r.GetValue(memorisation), r.GetValue(quickJudges));
            return Run(new RunDirectory(r.GetValue(run)!), settings, r.GetValue(threads), r.GetValue(output), r.GetValue(recipe));
        });
        return command;
    }

    static int Run(RunDirectory run, EvaluationSettings settings, int threads, string? outOption, string? recipeFile)
    {
        Excise.Torch.TorchRuntime.ConfigureThreads(threads);
        var outDir = outOption ?? Path.Combine(run.Root, "eval");
        void Log(string message) => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(message)}[/]");
        RunEvaluation result;
        if (recipeFile is null) result = RunEvaluator.Evaluate(run, settings, outDir, Log);
        else
        {
            // A model that never saw the concept (a base) is judged under a fine-tuning config's data recipe: its concept,
            // held-out adversary images and memorisation set, exactly as the experiment's floor is.
            var recipe = RunConfig.Load(recipeFile, [$"init={run.Root}"]);
            using var context = EvaluationContext.Create(settings, recipe.DataOrDefault.Concept
                ?? throw new UsageException($"--recipe: {recipeFile} has no data.concept to judge extraction of."), Log);
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
