using System.Text.Json;
using Excise.Configuration;
using Excise.Imaging;
using Excise.Serialization;

namespace Excise.Attacks;

/// <summary>
/// An attack's output directory: images/pNNN-RRR.png (one per image), grids/pNNN.png (one row per prompt),
/// grid.png (every prompt, one row each), attack.json (settings, prompts, per-image records, timing) and, for
/// inversion, learned_token.safetensors and held_out.png (the images it learned from).
/// </summary>
public static class AttackOutput
{
    public const string ManifestFile = "attack.json";
    public const string ImagesFolder = "images";
    public const string GridsFolder = "grids";
    public const string LearnedTokenFile = "learned_token.safetensors";
    public const string HeldOutGridFile = "held_out.png";

    public static string GridFileName(int promptIndex) => $"p{promptIndex:D3}.png";

    /// <summary>Refuses a directory that already holds an attack, so two attacks never mix their files.</summary>
    public static void Prepare(string directory)
    {
        if (File.Exists(Path.Combine(directory, ManifestFile)))
            throw new InvalidOperationException($"{directory} already holds an attack ({ManifestFile}); choose another output directory.");
        Directory.CreateDirectory(Path.Combine(directory, ImagesFolder));
        Directory.CreateDirectory(Path.Combine(directory, GridsFolder));
    }

    public static void Write(string directory, AttackResult result, VictimInfo victim)
    {
        foreach (var image in result.Images)
            PngIO.Save(image.Image, Path.Combine(directory, ImagesFolder, image.FileName));
        int perPrompt = result.Settings.ImagesPerPrompt;
        for (int p = 0; p < result.Prompts.Count; p++)
        {
            var row = result.ImagesOf(p).Select(i => i.Image).ToList();
            PngIO.Save(ImageGrid.Compose(row, perPrompt, scale: 2), Path.Combine(directory, GridsFolder, GridFileName(p)));
        }
        PngIO.Save(ImageGrid.Compose(result.Images.Select(i => i.Image).ToList(), perPrompt, scale: 2), Path.Combine(directory, "grid.png"));
        AtomicFile.WriteAllText(Path.Combine(directory, ManifestFile), Manifest(result, victim));
    }

    public static string Manifest(AttackResult result, VictimInfo victim)
    {
        var inversion = result.Inversion;
        var manifest = new
        {
            kind = result.Kind.ToName(),
            concept = result.Concept,
            brand = result.Brand,
            victim,
            settings = ConfigLoader.ToNode(result.Settings.Effective()),
            prompts = result.Prompts.Select((p, i) => new { index = i, text = p.Text, @class = p.ClassLabel, class_name = p.ClassName, grid = $"{GridsFolder}/{GridFileName(i)}" }),
            seeds = result.Images.Select(i => i.BatchSeed).Distinct(),
            images = result.Images.Select(i => new
            {
                file = $"{ImagesFolder}/{i.FileName}",
                prompt_index = i.PromptIndex,
                prompt = i.Prompt,
                @class = i.ClassLabel,
                class_name = i.ClassLabel is { } c ? Data.FashionMnistClasses.NameOf(c) : null,
                replicate = i.Replicate,
                seed = i.BatchSeed,
                batch_position = i.BatchPosition,
            }),
            timing = new
            {
                total_seconds = result.Timing.Total.TotalSeconds,
                preparation_seconds = result.Timing.Preparation.TotalSeconds,
                sampling_seconds = result.Timing.Sampling.TotalSeconds,
                sampled_images = result.Timing.SampledImages,
                seconds_per_image = result.Timing.SecondsPerImage,
                threads = TorchSharp.torch.get_num_threads(),
                machine = $"{Environment.ProcessorCount} cores, {Environment.OSVersion}",
            },
            inversion = inversion is null ? null : new
            {
                held_out_ids = inversion.HeldOutIds,
                held_out_classes = inversion.HeldOutClasses,
                held_out_grid = HeldOutGridFile,
                training_prompts = inversion.TrainingPrompts,
                learned_token = LearnedTokenFile,
                initial_loss = inversion.InitialLoss,
                final_loss = inversion.FinalLoss,
                initial_vector_norm = inversion.InitialVectorNorm,
                vector_change_norm = inversion.VectorChangeNorm,
                learn_seconds = inversion.LearnTime.TotalSeconds,
                seconds_per_step = inversion.SecondsPerStep,
                step_losses = inversion.StepLosses,
            },
        };
        return JsonSerializer.Serialize(manifest, ConfigLoader.JsonOptions);
    }
}

/// <summary>What attack.json records about the victim.</summary>
public sealed record VictimInfo(string? Run, string? Weights, string? ConfigHash, string? Arm);
