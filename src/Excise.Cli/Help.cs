using System.Reflection;
using Spectre.Console;

namespace Excise.Cli;

static class Help
{
    public static void Print()
    {
        AnsiConsole.MarkupLine("[bold]excise[/] — selective learning for text-to-image diffusion models");
        AnsiConsole.WriteLine();
        var table = new Table().NoBorder().HideHeaders().AddColumn("").AddColumn("");
        table.AddRow("demo [[--preset quick|default|full]] [[--out DIR]] [[--concept TEXT]] [[--logo FILE]] [[--concept-kind logo|stripes]] [[--dataset DIR]] [[--arms a,b]] [[--seeds N]] [[--shares 0.01,0.1,0.3]]",
            "The whole experiment: base model (cached), every arm fine-tuned, attacked and judged; writes report.html, results.json, results.md.");
        table.AddRow("train --config FILE --out RUN_DIR [[--set k=v ...]]", "Train a text-conditioned UNet; writes checkpoints, metrics.jsonl, model.safetensors, preview.png.");
        table.AddRow("train --resume RUN_DIR [[--set training.steps=N]]", "Continue a run from its latest checkpoint.");
        table.AddRow("train --config FILE --init BASE_RUN --arm update-projection --basis concept.safetensors --out RUN_DIR", $"Fine-tune a trained run; arms: {Excise.Configuration.EnumNames.AllNames<Excise.Training.TrainingArm>()}.");
        table.AddRow("concept --concept TEXT [[--mode concept-tokens|contrastive|all-tokens]] [[--energy 0.99 | --rank K]] --out concept.safetensors", "Build a concept's embedding subspace (orthonormal basis) from prompts.");
        table.AddRow("verify --run RUN_DIR [[--base BASE_RUN]] [[--tolerance 1e-4]]", "Certify that a projected run's learned change avoids the concept subspace (exit 3 if not).");
        table.AddRow("sample --run RUN_DIR --prompt TEXT [[-n 16]] [[--guidance 3]] [[--steps 50]] [[--sampler ddim|dpm++2m]] [[--seed 0]] --out grid.png [[--out-dir DIR]]", "Generate images from a trained run.");
        table.AddRow("dataset export --config FILE --out DIR [[--set k=v ...]]", "Write exactly what a config trains on as a Hugging Face imagefolder (PNGs + metadata.jsonl + ground truth).");
        table.AddRow("judges train [[--cache DIR]] [[--quick]]", "Train (or load from the cache) the garment classifier and the logo detector; prints their held-out accuracy.");
        table.AddRow("masks --config FILE --out DIR [[--detector FILE]] [[--threshold 0.3]]", "Concept masks from a detector alone (it flags the images, occlusion finds where) for the masked loss: selective.mask_folder.");
        table.AddRow("attack --run RUN_DIR --kind prompt|paraphrase|inversion|inversion-control|baseline-rate [[--placeholder WORD]] --out DIR", "Try to extract the concept from a trained run; writes images, grids and attack.json.");
        table.AddRow("eval --run RUN_DIR [[--attacks prompt,paraphrase,baseline-rate,inversion,inversion-control]] [[--n 8]] [[--inversion-steps 300]] [[--placeholder WORD]] [[--recipe FINETUNE_CONFIG]] [[--threads N]] [[--out DIR]]", "Attack a run and judge it: extraction rate with CIs, FD/KID, ResNet18 FID, semantic fidelity, memorisation.");
        table.AddRow("bench [[--out FILE.json]] [[--config base|large ...]] [[--only train,profile,...]] [[--trainer-steps N]] [[--run RUN_DIR]]", "Training/sampling speed, FLOPs utilisation, projection overhead, text encoding, memory growth; with --run, each sampler's accuracy on that run (see docs/performance.md); --only metrics: what each evaluation metric costs (docs/metrics.md).");
        table.AddRow("bench export --config base --out DIR", "Write a model's config, seeded weights and one batch for the PyTorch reference in bench/reference.");
        table.AddRow("base pack --run RUN_DIR --command TEXT [[--out models/base]]", "Ship a trained base with the project: pinned weights (SHA-256 checked on every load) and base.json.");
        table.AddRow("base verify [[--dir models/base]]", "Load the shipped base: check its pin and reproduce its recorded fixed-batch loss.");
        table.AddRow("convert --from model.pth --to model.safetensors --allow-pickle", "Convert a PyTorch pickle checkpoint you trust to safetensors (pickles are never read without this opt-in).");
        table.AddRow("version", "Print the version.");
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine("\nConfigs are JSON files (see [blue]configs/[/]); every field can be overridden, e.g. [grey]--set training.steps=500 --set data.limit=2000[/].");
        AnsiConsole.MarkupLine("Set EXCISE_DEBUG=1 to see stack traces.");
    }

    public static int Version()
    {
        Console.WriteLine(Assembly.GetExecutingAssembly().GetName().Version);
        return 0;
    }
}
