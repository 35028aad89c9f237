using System.Text.Json.Nodes;
using Excise.Serialization;
using Excise.Tests.Models;
using static TorchSharp.torch;

namespace Excise.Tests.Pipelines;

/// <summary>
/// Writes a complete tiny Stable Diffusion pipeline folder in diffusers' layout from the golden parts (tests/golden): the
/// sdtiny UNet (cross-attention 32, 4 input channels), clip-text-tiny (hidden size 32), clip-tokenizer/ and vae-tiny
/// (4 latent channels), with a model_index.json and an SD 1.5-style PNDM scheduler_config.json. The configs are the
/// golden ones unwrapped into the files diffusers and transformers write; the weights files are the golden ones.
/// Reusable by any test that needs a pipeline on disk (training on it comes later).
/// </summary>
internal static class TinyPipeline
{
    public const string SchedulerConfigJson = """
        {
          "_class_name": "PNDMScheduler",
          "_diffusers_version": "0.31.0",
          "beta_end": 0.012,
          "beta_schedule": "scaled_linear",
          "beta_start": 0.00085,
          "clip_sample": false,
          "num_train_timesteps": 1000,
          "prediction_type": "epsilon",
          "set_alpha_to_one": false,
          "skip_prk_steps": true,
          "steps_offset": 1,
          "timestep_spacing": "leading",
          "trained_betas": null
        }
        """;

    public const string ModelIndexJson = """
        {
          "_class_name": "StableDiffusionPipeline",
          "_diffusers_version": "0.31.0",
          "feature_extractor": [null, null],
          "requires_safety_checker": false,
          "safety_checker": [null, null],
          "scheduler": ["diffusers", "PNDMScheduler"],
          "text_encoder": ["transformers", "CLIPTextModel"],
          "tokenizer": ["transformers", "CLIPTokenizer"],
          "unet": ["diffusers", "UNet2DConditionModel"],
          "vae": ["diffusers", "AutoencoderKL"]
        }
        """;

    /// <summary>Writes the folder at <paramref name="root"/> and returns it.</summary>
    /// <param name="halfPrecisionUNet">Store the UNet only as the fp16 variant (diffusion_pytorch_model.fp16.safetensors, F16 tensors).</param>
    public static string Write(string root, bool halfPrecisionUNet = false)
    {
        Directory.CreateDirectory(root);
        File.WriteAllText(Path.Combine(root, "model_index.json"), ModelIndexJson);

        var unet = Directory.CreateDirectory(Path.Combine(root, "unet")).FullName;
        File.WriteAllText(Path.Combine(unet, "config.json"), Unwrapped("sdtiny", node => { }));
        if (halfPrecisionUNet)
        {
            using var scope = NewDisposeScope();
            using var contents = SafetensorsFile.Load(GoldenData.WeightsPath("sdtiny"));
            SafetensorsFile.Save(Path.Combine(unet, "diffusion_pytorch_model.fp16.safetensors"),
                contents.Names.Select(n => KeyValuePair.Create(n, contents[n].to(ScalarType.Float16))), new Dictionary<string, string> { ["format"] = "pt" });
        }
        else File.Copy(GoldenData.WeightsPath("sdtiny"), Path.Combine(unet, "diffusion_pytorch_model.safetensors"));

        var vae = Directory.CreateDirectory(Path.Combine(root, "vae")).FullName;
        File.WriteAllText(Path.Combine(vae, "config.json"), Unwrapped("vae-tiny", node => { }));
        File.Copy(GoldenData.WeightsPath("vae-tiny"), Path.Combine(vae, "diffusion_pytorch_model.safetensors"));

        var textEncoder = Directory.CreateDirectory(Path.Combine(root, "text_encoder")).FullName;
        File.WriteAllText(Path.Combine(textEncoder, "config.json"), Unwrapped("clip-text-tiny", node =>
        {
            // What save_pretrained writes beside the model's keys (the golden wrapper keeps them apart).
            node["architectures"] = new JsonArray("CLIPTextModel");
            node["transformers_version"] = "4.46.0";
        }));
        File.Copy(GoldenData.WeightsPath("clip-text-tiny"), Path.Combine(textEncoder, "model.safetensors"));

        var tokenizer = Directory.CreateDirectory(Path.Combine(root, "tokenizer")).FullName;
        foreach (var file in Directory.EnumerateFiles(Path.Combine(GoldenData.Directory, "clip-tokenizer")))
            File.Copy(file, Path.Combine(tokenizer, Path.GetFileName(file)));

        var scheduler = Directory.CreateDirectory(Path.Combine(root, "scheduler")).FullName;
        File.WriteAllText(Path.Combine(scheduler, "scheduler_config.json"), SchedulerConfigJson);
        return root;
    }

    /// <summary>A golden config file as the library writes it: the <c>"config"</c> keys at the top, with the class name.</summary>
    private static string Unwrapped(string name, Action<JsonObject> edit)
    {
        var golden = JsonNode.Parse(File.ReadAllText(GoldenData.ConfigPath(name)))!.AsObject();
        var file = new JsonObject { ["_class_name"] = golden["_class_name"]!.DeepClone() };
        if (golden["_diffusers_version"] is { } version) file["_diffusers_version"] = version.DeepClone();
        foreach (var (key, value) in golden["config"]!.AsObject()) file[key] = value?.DeepClone();
        edit(file);
        return file.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>Rewrites one JSON file of a written pipeline (a refusal test's one wrong key).</summary>
    public static void EditJson(string path, Action<JsonObject> edit)
    {
        var node = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(node);
        File.WriteAllText(path, node.ToJsonString());
    }
}
