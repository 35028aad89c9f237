using Excise.Diffusion;
using Excise.Models;
using Excise.Models.Clip;
using Excise.Models.Vae;
using Excise.Pipelines;
using Excise.Serialization;
using Excise.Tests.Data;
using Excise.Tests.Models;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Excise.Tests.Pipelines;

/// <summary>
/// A diffusers Stable Diffusion folder built from the golden tiny parts opens into the same components the golden data
/// describes, writes back in the same layout with the fine-tuned UNet and every other file unchanged, and the folders
/// Excise cannot use are refused naming the file and the key.
/// </summary>
public sealed class PipelineFolderTests(ITestOutputHelper output)
{
    private const double UNetOutputTolerance = 5e-6; // tests/golden/README.md, sdtiny output

    private static readonly string[] UnchangedFiles =
    [
        "model_index.json", "unet/config.json", "vae/config.json", "vae/diffusion_pytorch_model.safetensors",
        "text_encoder/config.json", "text_encoder/model.safetensors", "tokenizer/vocab.json", "tokenizer/merges.txt",
        "tokenizer/tokenizer_config.json", "tokenizer/special_tokens_map.json", "scheduler/scheduler_config.json",
    ];

    [Fact]
    public void Open_reads_every_component_and_each_reproduces_its_golden_model()
    {
        using var dir = new TempDirectory();
        var pipeline = StableDiffusionPipelineFolder.Open(TinyPipeline.Write(dir.File("sd")));
        using var scope = NewDisposeScope();

        Assert.Equal(GoldenData.Config("sdtiny"), pipeline.UNetConfig);
        Assert.Equal(32, pipeline.TextEncoderConfig.HiddenSize);
        Assert.Equal(4, pipeline.VaeConfig.LatentChannels);
        Assert.Equal(77, pipeline.Tokenizer.ModelMaxLength);
        Assert.Null(pipeline.UNetWeights.Variant);
        Assert.Equal("PNDMScheduler", pipeline.ModelIndex.ClassOf("scheduler"));
        Assert.True(pipeline.ModelIndex.Components.Single(c => c.Name == "safety_checker").IsAbsent);

        var io = GoldenData.Io("sdtiny");
        using var unet = pipeline.LoadUNet();
        using var reference = GoldenData.LoadedModel("sdtiny");
        using (no_grad())
        {
            var prediction = unet.forward(io["x"], io["timesteps"], io["encoder_hidden_states"]);
            var delta = (prediction - io["output"]).abs().max().ToDouble();
            output.WriteLine($"UNet from the folder: output max|Δ| = {delta:E2} against diffusers");
            Assert.True(delta <= UNetOutputTolerance, $"UNet output max|Δ| {delta:E2}");
            Assert.True(GoldenData.Identical(prediction, reference.forward(io["x"], io["timesteps"], io["encoder_hidden_states"])));

            using var vae = pipeline.LoadVae();
            var vaeIo = GoldenData.Io("vae-tiny");
            var mean = vae.Encode(vaeIo["x"]).Mean;
            Assert.True((mean - vaeIo["latent_dist.mean"]).abs().max().ToDouble() <= 9e-6 * vaeIo["latent_dist.mean"].abs().max().ToDouble());
            Assert.True(GoldenData.Identical(vae.Decode(vaeIo["latent_dist.mean"]), GoldenVae().Decode(vaeIo["latent_dist.mean"])));

            using var text = pipeline.LoadTextModel();
            var clipIo = GoldenData.Io("clip-text-tiny");
            var hidden = text.Forward(clipIo["input_ids"].to_type(ScalarType.Int64)).LastHiddenState;
            Assert.True((hidden - clipIo["last_hidden_state"]).abs().max().ToDouble() <= 4e-6 * clipIo["last_hidden_state"].abs().max().ToDouble());
        }
    }

    [Fact]
    public void The_scheduler_config_becomes_Stable_Diffusions_scaled_linear_schedule()
    {
        using var dir = new TempDirectory();
        var pipeline = StableDiffusionPipelineFolder.Open(TinyPipeline.Write(dir.File("sd")));
        var scheduler = pipeline.SchedulerConfig;
        Assert.Equal((1, false, false, "leading"), (scheduler.StepsOffset, scheduler.SetAlphaToOne, scheduler.ClipSample, scheduler.TimestepSpacing));
        // Sampling a run of it follows them: no x₀ clipping of latents, leading timesteps + 1, the last step to ᾱ₀.
        Assert.Equal(new SchedulerSampling(ClipSample: false, TimestepSpacing.Leading, StepsOffset: 1, SetAlphaToOne: false), scheduler.Sampling);
        // A key the file leaves out takes its class's default: DDIM clips and ends on ᾱ = 1, PNDM does neither.
        var ddim = SchedulerConfig.FromDiffusersJson("""{"_class_name": "DDIMScheduler"}""", "ddim.json").Sampling;
        Assert.Equal(new SchedulerSampling(ClipSample: true, Spacing: null, StepsOffset: 0, SetAlphaToOne: true), ddim);
        var pndm = SchedulerConfig.FromDiffusersJson("""{"_class_name": "PNDMScheduler"}""", "pndm.json").Sampling;
        Assert.Equal((false, false), (pndm.ClipSample, pndm.SetAlphaToOne));
        Assert.Equal(new NoiseScheduleOptions(BetaSchedule.ScaledLinear, 1000, 0.00085, 0.012, PredictionType.Epsilon), pipeline.NoiseSchedule);

        // diffusers: betas = linspace(√0.00085, √0.012, 1000)²; ᾱ = cumprod(1 − β): 0.99915 first, 0.00466 last (SD 1.x).
        var alphas = new NoiseSchedule(pipeline.NoiseSchedule).AlphasCumprod;
        Assert.Equal(1 - 0.00085, alphas[0], 12);
        Assert.Equal(0.00466, alphas[999], 5);
        Assert.Equal(Math.Pow(Math.Sqrt(0.00085) + (Math.Sqrt(0.012) - Math.Sqrt(0.00085)) * 500 / 999, 2), 1 - alphas[500] / alphas[499], 12);
    }

    [Fact]
    public void A_v_prediction_scheduler_config_gives_a_v_prediction_schedule()
    {
        using var dir = new TempDirectory();
        var root = TinyPipeline.Write(dir.File("sd"));
        TinyPipeline.EditJson(Path.Combine(root, "scheduler", "scheduler_config.json"), node =>
        {
            node["prediction_type"] = "v_prediction";
            node["beta_schedule"] = "squaredcos_cap_v2";
        });
        var schedule = StableDiffusionPipelineFolder.Open(root).NoiseSchedule;
        Assert.Equal(PredictionType.VPrediction, schedule.PredictionType);
        Assert.Equal(BetaSchedule.Cosine, schedule.Schedule);
    }

    [Fact]
    public void Save_writes_the_fine_tuned_unet_under_diffusers_names_and_copies_every_other_file_byte_for_byte()
    {
        using var dir = new TempDirectory();
        var root = TinyPipeline.Write(dir.File("sd"));
        // An optional component diffusers would load: Excise ignores it and must keep it.
        Directory.CreateDirectory(Path.Combine(root, "safety_checker"));
        File.WriteAllText(Path.Combine(root, "safety_checker", "config.json"), "{\"_name_or_path\": \"kept\"}");
        var pipeline = StableDiffusionPipelineFolder.Open(root);
        using var scope = NewDisposeScope();
        using var unet = pipeline.LoadUNet();
        var (tunedName, tuned) = unet.CrossAttentionKeyValueWeights().First();
        using (no_grad()) tuned.add_(0.01f);

        var target = dir.File("sd-ft");
        pipeline.Save(target, unet);

        foreach (var file in UnchangedFiles.Append("safety_checker/config.json"))
            Assert.True(File.ReadAllBytes(Path.Combine(root, file)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(target, file))), $"{file} changed");
        Assert.DoesNotContain(Directory.EnumerateDirectories(dir.Path), d => Path.GetFileName(d).StartsWith('.')); // no staging folder left

        var written = Path.Combine(target, "unet", "diffusion_pytorch_model.safetensors");
        Assert.Equal(GoldenData.HeaderShapes(GoldenData.WeightsPath("sdtiny")).OrderBy(kv => kv.Key).Select(kv => (kv.Key, string.Join(",", kv.Value))),
                     GoldenData.HeaderShapes(written).OrderBy(kv => kv.Key).Select(kv => (kv.Key, string.Join(",", kv.Value))));
        Assert.Equal(SafetensorsFile.ReadMetadata(GoldenData.WeightsPath("sdtiny")), SafetensorsFile.ReadMetadata(written));

        var reopened = StableDiffusionPipelineFolder.Open(target);
        using var again = reopened.LoadUNet();
        var before = unet.state_dict();
        foreach (var (name, tensor) in again.state_dict())
            Assert.True(GoldenData.Identical(before[name], tensor), $"{name} differs after the round trip");
        using var golden = GoldenData.LoadedModel("sdtiny");
        Assert.False(GoldenData.Identical(golden.state_dict()[tunedName], again.state_dict()[tunedName]), "the fine-tune was not written");
    }

    [Fact]
    public void An_fp16_unet_loads_into_float32_and_is_written_back_as_fp16_under_its_variant_name()
    {
        using var dir = new TempDirectory();
        var root = TinyPipeline.Write(dir.File("sd"), halfPrecisionUNet: true);
        var pipeline = StableDiffusionPipelineFolder.Open(root);
        Assert.Equal(StableDiffusionPipelineFolder.HalfPrecisionVariant, pipeline.UNetWeights.Variant);
        Assert.All(pipeline.UNetWeights.Tensors, entry => Assert.Equal(ScalarType.Float16, entry.DType));
        using var scope = NewDisposeScope();
        using var unet = pipeline.LoadUNet();
        using var golden = GoldenData.LoadedModel("sdtiny");
        var goldenState = golden.state_dict();
        foreach (var (name, tensor) in unet.state_dict())
        {
            Assert.Equal(ScalarType.Float32, tensor.dtype);
            Assert.True(GoldenData.Identical(goldenState[name].to(ScalarType.Float16).to(ScalarType.Float32), tensor), $"{name} is not the fp16 value");
        }
        var io = GoldenData.Io("sdtiny");
        using (no_grad())
        {
            var delta = (unet.forward(io["x"], io["timesteps"], io["encoder_hidden_states"]) - io["output"]).abs().max().ToDouble();
            output.WriteLine($"fp16 weights in float32: output max|Δ| = {delta:E2} against diffusers' float32 run");
            Assert.True(delta < 1e-2, $"fp16 UNet output max|Δ| {delta:E2}");
        }

        var target = dir.File("sd-ft");
        pipeline.Save(target, unet);
        Assert.False(File.Exists(Path.Combine(target, "unet", "diffusion_pytorch_model.safetensors")));
        var reopened = StableDiffusionPipelineFolder.Open(target);
        Assert.Equal(pipeline.UNetWeights.Tensors.Select(e => (e.Name, e.DType)), reopened.UNetWeights.Tensors.Select(e => (e.Name, e.DType)));
        using var again = reopened.LoadUNet();
        foreach (var (name, tensor) in again.state_dict())
            Assert.True(GoldenData.Identical(unet.state_dict()[name], tensor), $"{name} differs after the fp16 round trip");
    }

    [Fact]
    public void Save_rewrites_every_unet_variant_so_no_stale_copy_of_the_old_weights_remains()
    {
        using var dir = new TempDirectory();
        var root = TinyPipeline.Write(dir.File("sd"));
        using var scope = NewDisposeScope();
        using (var half = SafetensorsFile.Load(GoldenData.WeightsPath("sdtiny")))
            SafetensorsFile.Save(Path.Combine(root, "unet", "diffusion_pytorch_model.fp16.safetensors"), half.Names.Select(n => KeyValuePair.Create(n, half[n].to(ScalarType.Float16))));
        File.WriteAllBytes(Path.Combine(root, "unet", "diffusion_pytorch_model.bin"), [0x80, 2, 0x7d, 0x71, 0x00, 0x2e]);
        var pipeline = StableDiffusionPipelineFolder.Open(root);
        Assert.Null(pipeline.UNetWeights.Variant); // full precision wins when both are present
        using var unet = pipeline.LoadUNet();
        var (name, tuned) = unet.CrossAttentionKeyValueWeights().First();
        using (no_grad()) tuned.mul_(2f);

        var target = dir.File("sd-ft");
        pipeline.Save(target, unet);
        Assert.False(File.Exists(Path.Combine(target, "unet", "diffusion_pytorch_model.bin")), "a pickle of the old weights was copied");
        using var written = SafetensorsFile.Load(Path.Combine(target, "unet", "diffusion_pytorch_model.fp16.safetensors"));
        Assert.Equal(ScalarType.Float16, written[name].dtype);
        Assert.True(GoldenData.Identical(tuned.to(ScalarType.Float16), written[name]), "the fp16 variant still holds the old weights");
    }

    [Fact]
    public void Save_refuses_an_existing_folder_and_leaves_it_untouched()
    {
        using var dir = new TempDirectory();
        var pipeline = StableDiffusionPipelineFolder.Open(TinyPipeline.Write(dir.File("sd")));
        Directory.CreateDirectory(dir.File("taken"));
        File.WriteAllText(dir.File("taken/keep.txt"), "mine");
        using var unet = pipeline.LoadUNet();
        var error = Assert.Throws<IOException>(() => pipeline.Save(dir.File("taken"), unet));
        Assert.Contains("already exists", error.Message);
        Assert.Equal(["keep.txt"], Directory.EnumerateFileSystemEntries(dir.File("taken")).Select(Path.GetFileName));
        Assert.Throws<IOException>(() => pipeline.Save(Path.Combine(pipeline.Path, "inside"), unet));
        using var other = new UNet2DConditionModel(pipeline.UNetConfig with { CrossAttentionDim = 16 });
        Assert.Throws<ArgumentException>(() => pipeline.Save(dir.File("other"), other));
        Assert.False(Directory.Exists(dir.File("other")));
    }

    [Fact]
    public void A_save_that_fails_midway_leaves_no_folder_behind()
    {
        using var dir = new TempDirectory();
        var root = TinyPipeline.Write(dir.File("sd"));
        using var scope = NewDisposeScope();
        // An fp16 variant that is not this UNet (one tensor renamed): Open loads the full-precision file, Save must rewrite both.
        using (var contents = SafetensorsFile.Load(GoldenData.WeightsPath("sdtiny")))
            SafetensorsFile.Save(Path.Combine(root, "unet", "diffusion_pytorch_model.fp16.safetensors"),
                contents.Names.Select(n => KeyValuePair.Create(n == "conv_in.bias" ? "conv_in.bias_renamed" : n, contents[n].to(ScalarType.Float16))));
        var pipeline = StableDiffusionPipelineFolder.Open(root);
        using var unet = pipeline.LoadUNet();
        var error = Assert.Throws<InvalidDataException>(() => pipeline.Save(dir.File("sd-ft"), unet));
        Assert.Contains("conv_in.bias_renamed", error.Message);
        Assert.Equal([root], Directory.EnumerateDirectories(dir.Path)); // neither the target nor a staging folder
    }

    public static TheoryData<string, string, string[]> Refusals() => new()
    {
        { "unknown scheduler class", "scheduler", ["model_index.json", "'scheduler'", "FlowMatchEulerDiscreteScheduler"] },
        { "unsupported text encoder class", "text_encoder", ["model_index.json", "'text_encoder'", "CLIPTextModelWithProjection"] },
        { "missing subfolder", "vae", ["vae", "model_index.json 'vae'", "missing"] },
        { "pickle only", "unet", ["diffusion_pytorch_model.bin", "excise convert", "--allow-pickle"] },
        { "unknown component", "text_encoder_2", ["model_index.json", "'text_encoder_2'"] },
        { "scheduler beta schedule", "beta_schedule", ["scheduler_config.json", "'beta_schedule'", "sigmoid"] },
        { "scheduler class mismatch", "_class_name", ["scheduler_config.json", "'_class_name'", "DDIMScheduler"] },
        { "mismatched text width", "cross_attention_dim", ["unet", "'cross_attention_dim'", "'hidden_size'"] },
        { "sharded weights", "text_encoder", ["model.safetensors.index.json", "sharded"] },
        { "pipeline class", "_class_name", ["model_index.json", "'_class_name'", "StableDiffusionXLPipeline"] },
        { "trained betas", "trained_betas", ["scheduler_config.json", "'trained_betas'"] },
        { "betas out of order", "beta_end", ["scheduler_config.json", "'beta_end'", "0.0001"] },
        { "timestep spacing", "timestep_spacing", ["scheduler_config.json", "'timestep_spacing'", "karras", "trailing"] },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public void A_folder_Excise_cannot_use_is_refused_naming_the_file_and_the_key(string problem, string key, string[] expected)
    {
        using var dir = new TempDirectory();
        var root = TinyPipeline.Write(dir.File("sd"));
        var modelIndex = Path.Combine(root, "model_index.json");
        switch (problem)
        {
            case "unknown scheduler class":
                TinyPipeline.EditJson(modelIndex, n => n[key] = new System.Text.Json.Nodes.JsonArray("diffusers", "FlowMatchEulerDiscreteScheduler"));
                break;
            case "unsupported text encoder class":
                TinyPipeline.EditJson(modelIndex, n => n[key] = new System.Text.Json.Nodes.JsonArray("transformers", "CLIPTextModelWithProjection"));
                break;
            case "missing subfolder":
                Directory.Delete(Path.Combine(root, key), recursive: true);
                break;
            case "pickle only":
                File.Move(Path.Combine(root, key, "diffusion_pytorch_model.safetensors"), Path.Combine(root, key, "diffusion_pytorch_model.bin"));
                break;
            case "unknown component":
                TinyPipeline.EditJson(modelIndex, n => n[key] = new System.Text.Json.Nodes.JsonArray("transformers", "CLIPTextModelWithProjection"));
                break;
            case "scheduler beta schedule":
                TinyPipeline.EditJson(Path.Combine(root, "scheduler", "scheduler_config.json"), n => n[key] = "sigmoid");
                break;
            case "scheduler class mismatch":
                TinyPipeline.EditJson(Path.Combine(root, "scheduler", "scheduler_config.json"), n => n[key] = "DDIMScheduler");
                break;
            case "mismatched text width":
                TinyPipeline.EditJson(Path.Combine(root, "text_encoder", "config.json"), n => n["hidden_size"] = 64);
                break;
            case "pipeline class":
                TinyPipeline.EditJson(modelIndex, n => n[key] = "StableDiffusionXLPipeline");
                break;
            case "trained betas":
                TinyPipeline.EditJson(Path.Combine(root, "scheduler", "scheduler_config.json"), n => n[key] = new System.Text.Json.Nodes.JsonArray(0.001, 0.002));
                break;
            case "timestep spacing":
                TinyPipeline.EditJson(Path.Combine(root, "scheduler", "scheduler_config.json"), n => n[key] = "karras");
                break;
            case "betas out of order":
                TinyPipeline.EditJson(Path.Combine(root, "scheduler", "scheduler_config.json"), n => n[key] = 0.0001);
                break;
            case "sharded weights":
                File.Move(Path.Combine(root, key, "model.safetensors"), Path.Combine(root, key, "model-00001-of-00001.safetensors"));
                File.WriteAllText(Path.Combine(root, key, "model.safetensors.index.json"), "{\"weight_map\": {}}");
                break;
        }
        var before = Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories).Order().Select(f => (f, File.ReadAllBytes(f).Length)).ToList();
        var error = Assert.ThrowsAny<Exception>(() => StableDiffusionPipelineFolder.Open(root));
        output.WriteLine($"{problem}: {error.GetType().Name}: {error.Message}");
        Assert.True(error is NotSupportedException or InvalidDataException, $"{problem}: {error.GetType().Name}");
        foreach (var part in expected) Assert.Contains(part, error.Message);
        Assert.Equal(before, Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories).Order().Select(f => (f, File.ReadAllBytes(f).Length)).ToList());
    }

    private static AutoencoderKL GoldenVae()
    {
        var vae = new AutoencoderKL(VaeConfig.FromDiffusersJson(File.ReadAllText(GoldenData.ConfigPath("vae-tiny"))));
        vae.LoadSafetensors(GoldenData.WeightsPath("vae-tiny"));
        vae.eval();
        return vae;
    }
}
