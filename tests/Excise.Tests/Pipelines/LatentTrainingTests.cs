using Excise.Data;
using Excise.Diffusion;
using Excise.Imaging;
using Excise.Models;
using Excise.Pipelines;
using Excise.Projection;
using Excise.Serialization;
using Excise.Tests.Data;
using Excise.Training;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Excise.Tests.Pipelines;

/// <summary>
/// Fine-tuning a Stable Diffusion pipeline folder end to end on the tiny pipeline (32×32 RGB images, 16×16×4 latents):
/// the images are encoded by the VAE once and cached, the UNet trains on latents with CLIP's states, a resume is bit-exact,
/// the fine-tuned pipeline folder reopens with the run's weights, sampling decodes RGB images, and a projection arm builds
/// its basis from the pipeline's CLIP encoder and passes its certificate.
/// </summary>
public sealed class LatentTrainingTests(ITestOutputHelper output)
{
    private static readonly string[] Captions = ["a red shirt", "a blue bag with the Acme logo", "a green sneaker", "a yellow dress"];

    /// <summary>8 synthetic RGB 32×32 images (a coloured square on a grey ground), each with a caption and a concept mask.</summary>
    private static string WriteImageFolder(string directory, int width = 32, int height = 32)
    {
        var examples = new List<TrainingExample>();
        for (int i = 0; i < 8; i++)
        {
            var image = RasterImage.Blank(width, height, 3);
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                {
                    bool inside = x >= 4 + i && x < 16 + i && y >= 8 && y < 24;
                    int p = (y * width + x) * 3;
                    image.Pixels[p] = (byte)(inside ? 40 * (i % 4) + 60 : 128);
                    image.Pixels[p + 1] = (byte)(inside ? 200 - 30 * (i % 3) : 128);
                    image.Pixels[p + 2] = (byte)(inside ? 30 * i : 120);
                }
            examples.Add(new TrainingExample($"img{i}", image, Captions[i % Captions.Length], null, ConceptTruth.Clean,
                ConceptMasks.FromRegion(width, height, new PixelRect(20, 20, 5, 5))));
        }
        ImageFolderDataset.Write(directory, examples);
        return directory;
    }

    /// <summary>A few dozen real images: the Fashion-MNIST training slice the default data config makes (30% carry the logo, grey saved as PNG), as an imagefolder.</summary>
    private static string WriteRealImageFolder(string directory, int images = 36)
    {
        DatasetExport.Write(new DataConfig(Limit: images, ImageSize: 32), directory);
        return directory;
    }

    private static RunConfig Config(string pipeline, string images, params string[] settings) => RunConfig.FromSettings(
        new[] { $"pipeline={pipeline}", "data.source=imagefolder", $"data.path={images}", "data.image_size=32", "training.steps=4",
                "training.batch_size=4", "training.warmup_steps=0", "training.learning_rate=1e-3", "training.log_every=1",
                "training.checkpoint_every=2", "training.caption_dropout=0.25", "preview.per_prompt=0", "threads=1" }.Concat(settings));

    private void Log(string message) => output.WriteLine(message);

    /// <summary>Same shape, type and every value.</summary>
    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.dtype == b.dtype && a.eq(b).all().item<bool>();

    [Fact]
    public void A_pipeline_trains_on_cached_VAE_latents_and_is_written_back_as_a_pipeline_folder_that_samples_RGB_images()
    {
        using var dir = new TempDirectory();
        var pipelinePath = TinyPipeline.Write(dir.File("sd"));
        var images = WriteImageFolder(dir.File("images"));
        var run = new RunDirectory(dir.File("run"));
        var messages = new List<string>();
        // With EMA, model.safetensors and so the pipeline written back hold the EMA weights.
        var result = TrainingJob.Run(Config(pipelinePath, images, "preview.per_prompt=1", "preview.steps=2", "training.ema_decay=0.5"), run, resume: false,
            log: m => { messages.Add(m); Log(m); });

        Assert.Equal(8, result.TrainImages);
        Assert.True(double.IsFinite(result.Summary.FinalLoss));
        Assert.Contains(messages, m => m.Contains("Encoded them once with the pipeline's VAE to latents 4×16×16"));
        var pipeline = StableDiffusionPipelineFolder.Open(pipelinePath);
        var written = run.LoadConfig();
        Assert.Equal(pipeline.ContentHash(), written.PipelineSha256);
        Assert.Equal(pipeline.NoiseSchedule, written.Diffusion);

        // The cache holds the VAE's posterior of the prepared images × scaling factor.
        using (var scope = NewDisposeScope())
        {
            using var vae = pipeline.LoadVae();
            var prepared = ImageFolderDataset.Read(images).Select(e => e.Image).ToList();
            var posterior = vae.Encode(DenoisingObjective.ToModelRange(ImageTensors.ToUint8Batch(prepared)));
            using var cache = SafetensorsFile.Load(run.LatentsPath);
            Assert.Equal(pipeline.VaeConfig.ScalingFactor, LatentCacheKey.FromMetadata(cache.Metadata)!.ScalingFactor);
            Assert.True(cache["mean"].allclose(posterior.Mean * pipeline.VaeConfig.ScalingFactor, rtol: 0, atol: 1e-6));
            Assert.True(cache["std"].allclose(posterior.LogVariance.mul(0.5).exp() * pipeline.VaeConfig.ScalingFactor, rtol: 0, atol: 1e-6));
        }

        // The fine-tuned pipeline reopens, its UNet equal to the run's sampling (EMA) weights and changed by training.
        Assert.Equal("ema", SafetensorsFile.ReadMetadata(run.ModelPath)["weights"]);
        var fineTuned = StableDiffusionPipelineFolder.Open(run.PipelinePath);
        using (var scope = NewDisposeScope())
        {
            using var trained = SafetensorsFile.Load(run.ModelPath);
            using var reopened = fineTuned.LoadUNet();
            using var original = pipeline.LoadUNet();
            var state = reopened.state_dict();
            Assert.All(trained.Names, name => Assert.True(Same(state[name], trained[name]), name));
            Assert.Contains(trained.Names, name => !Same(original.state_dict()[name], trained[name]));
        }
        Assert.Equal(File.ReadAllBytes(Path.Combine(pipelinePath, "vae", "diffusion_pytorch_model.safetensors")),
                     File.ReadAllBytes(Path.Combine(run.PipelinePath, "vae", "diffusion_pytorch_model.safetensors")));

        // Sampling decodes the latents with the VAE: RGB images at the pipeline's pixel size.
        Assert.True(File.Exists(run.PreviewPath));
        using (var sampler = run.OpenPipeline())
        {
            var sampled = sampler.GenerateImages(["a red shirt", "a green sneaker"], new SamplingOptions(Steps: 2));
            Assert.All(sampled, image => Assert.Equal((32, 32, 3), (image.Width, image.Height, image.Channels)));
        }

        // A fine-tune continues from the written pipeline as from any pipeline folder: it starts from the run's weights,
        // which a projection arm keeps as its certificate's reference.
        var further = new RunDirectory(dir.File("further"));
        TrainingJob.Run(Config(run.PipelinePath, images, "training.steps=1", "selective.arm=update-projection", "selective.concept=the Acme logo"),
            further, resume: false, log: Log);
        using (var scope = NewDisposeScope())
        {
            using var trained = SafetensorsFile.Load(run.ModelPath);
            using var start = SafetensorsFile.Load(further.InitialWeightsPath);
            Assert.All(trained.Names, name => Assert.True(Same(start[name], trained[name]), name));
        }
    }

    [Fact]
    public void A_resumed_pipeline_run_reads_its_latents_back_and_is_bit_exact_with_an_uninterrupted_one()
    {
        using var dir = new TempDirectory();
        var pipelinePath = TinyPipeline.Write(dir.File("sd"));
        var images = WriteImageFolder(dir.File("images"));
        var whole = new RunDirectory(dir.File("whole"));
        TrainingJob.Run(Config(pipelinePath, images), whole, resume: false, log: Log);

        var parts = new RunDirectory(dir.File("parts"));
        var config = Config(pipelinePath, images);
        TrainingJob.Run(config with { Training = config.TrainingOrDefault with { Steps = 2 } }, parts, resume: false, log: Log);
        var messages = new List<string>();
        TrainingJob.Run(parts.LoadConfig() with { Training = config.TrainingOrDefault }, parts, resume: true, log: m => { messages.Add(m); Log(m); });
        Assert.Contains(messages, m => m.Contains("Read their VAE latents"));

        Assert.Equal(File.ReadAllBytes(whole.ModelPath), File.ReadAllBytes(parts.ModelPath));
        using var pa = StableDiffusionPipelineFolder.Open(whole.PipelinePath).LoadUNet();
        using var pb = StableDiffusionPipelineFolder.Open(parts.PipelinePath).LoadUNet();
        Assert.All(pa.state_dict(), entry => Assert.True(Same(entry.Value, pb.state_dict()[entry.Key]), entry.Key));
    }

    [Fact]
    public void Update_projection_on_a_pipeline_builds_its_basis_from_CLIP_and_passes_the_certificate()
    {
        using var dir = new TempDirectory();
        var pipelinePath = TinyPipeline.Write(dir.File("sd"));
        var images = WriteImageFolder(dir.File("images"));
        var run = new RunDirectory(dir.File("run"));
        var result = TrainingJob.Run(Config(pipelinePath, images, "selective.arm=update-projection", "selective.concept=the Acme logo", "training.steps=3"),
            run, resume: false, log: Log);

        Assert.NotNull(result.Certificate);
        Assert.True(result.Certificate!.Passed, $"worst share {result.Certificate.WorstShare}");
        var verified = RunCertificate.Compute(run, new RunCertificateRequest());
        Assert.True(verified.Certificate.Passed);
        using var basis = ConceptBasis.Load(run.BasisPath);
        using var encoder = StableDiffusionPipelineFolder.Open(pipelinePath).LoadTextEncoder();
        Assert.Equal(encoder.Id, basis.Info.EncoderId);
        Assert.Equal(["the Acme logo"], basis.Info.Concepts);
    }

    [Fact]
    public void LoRA_on_a_pipeline_writes_the_adapters_and_a_merged_pipeline_and_update_projection_certifies_it()
    {
        using var dir = new TempDirectory();
        var pipelinePath = TinyPipeline.Write(dir.File("sd"));
        var images = WriteImageFolder(dir.File("images"));
        var run = new RunDirectory(dir.File("run"));
        var result = TrainingJob.Run(Config(pipelinePath, images, "selective.arm=update-projection", "selective.concept=the Acme logo",
            "lora={\"rank\":4,\"alpha\":4}", "training.steps=3", "training.learning_rate=1e-2"), run, resume: false, log: Log);

        Assert.True(result.Certificate!.Passed, $"worst share {result.Certificate.WorstShare}");
        Assert.True(File.Exists(run.LoraPath));
        using var trained = SafetensorsFile.Load(run.ModelPath);
        using var original = SafetensorsFile.Load(StableDiffusionPipelineFolder.Open(pipelinePath).UNetWeights.Path);
        // model.safetensors is the merged UNet: the adapted K/V weights moved, nothing else did (the base is frozen),
        // and the pipeline written back holds exactly these weights.
        Assert.DoesNotContain(trained.Names, n => n.Contains("lora_"));
        var adapted = trained.Names.Where(n => n.EndsWith("attn2.to_k.weight") || n.EndsWith("attn2.to_v.weight")).ToList();
        Assert.NotEmpty(adapted);
        Assert.All(adapted, n => Assert.False(Same(trained[n], original[n]), n));
        Assert.True(Same(trained["conv_in.weight"], original["conv_in.weight"]));
        using var unet = StableDiffusionPipelineFolder.Open(run.PipelinePath).LoadUNet();
        var state = unet.state_dict();
        Assert.All(trained.Names, n => Assert.True(Same(state[n], trained[n]), n));
    }

    [Fact]
    public void The_concept_command_builds_a_basis_from_the_pipelines_CLIP_and_a_MiniLM_basis_cannot_extend_it()
    {
        using var dir = new TempDirectory();
        var pipelinePath = TinyPipeline.Write(dir.File("sd"));
        var (exit, text) = Cli.CliProcess.Run("concept", "--pipeline", pipelinePath, "--concept", "the Acme logo", "--out", dir.File("clip.safetensors"));
        output.WriteLine(text);
        Assert.Equal(0, exit);
        Assert.Contains("held-out prompts", text);
        using (var basis = ConceptBasis.Load(dir.File("clip.safetensors")))
        using (var encoder = StableDiffusionPipelineFolder.Open(pipelinePath).LoadTextEncoder())
        {
            Assert.Equal(32, basis.Dimension);
            Assert.Equal(encoder.Id, basis.Info.EncoderId);
        }
        // A MiniLM basis describes another encoder's states: extending it with CLIP's is refused, naming both.
        Assert.Equal(0, Cli.CliProcess.Run("concept", "--concept", "the Acme logo", "--out", dir.File("minilm.safetensors")).ExitCode);
        (exit, text) = Cli.CliProcess.Run("concept", "--pipeline", pipelinePath, "--concept", "the Zebra pattern", "--add-to", dir.File("minilm.safetensors"), "--out", dir.File("both.safetensors"));
        Assert.Equal(2, exit);
        Assert.Contains("pass the pipeline it was built from", System.Text.RegularExpressions.Regex.Replace(text, @"\s+", " "));
        Assert.False(File.Exists(dir.File("both.safetensors")));
    }

    [Fact]
    public void A_v_prediction_pipeline_trains_on_the_velocity()
    {
        using var dir = new TempDirectory();
        var epsilonPipeline = TinyPipeline.Write(dir.File("sd-eps"));
        var vPipeline = TinyPipeline.Write(dir.File("sd-v"));
        TinyPipeline.EditJson(Path.Combine(vPipeline, "scheduler", "scheduler_config.json"), node => node["prediction_type"] = "v_prediction");
        var images = WriteImageFolder(dir.File("images"));
        var epsilonRun = new RunDirectory(dir.File("eps"));
        var vRun = new RunDirectory(dir.File("v"));
        var epsilon = TrainingJob.Run(Config(epsilonPipeline, images, "training.steps=2"), epsilonRun, resume: false, log: Log);
        var v = TrainingJob.Run(Config(vPipeline, images, "training.steps=2"), vRun, resume: false, log: Log);

        Assert.Equal(PredictionType.VPrediction, vRun.LoadConfig().DiffusionOrDefault.PredictionType);
        Assert.NotEqual(epsilonRun.LoadConfig().Hash(), vRun.LoadConfig().Hash());
        // The same images, timesteps and noise, another target: the first step's loss differs.
        Assert.NotEqual(MetricsLine.ReadAll(epsilonRun)[0].LossLast, MetricsLine.ReadAll(vRun)[0].LossLast);
        Assert.True(double.IsFinite(v.Summary.FinalLoss) && double.IsFinite(epsilon.Summary.FinalLoss));

        // The target itself is v = √ᾱ·ε − √(1 − ᾱ)·x₀ with the pipeline's ᾱ.
        using var scope = NewDisposeScope();
        var schedule = new NoiseSchedule(vRun.LoadConfig().DiffusionOrDefault);
        var x0 = randn(2, 4, 16, 16);
        var noise = randn(2, 4, 16, 16);
        var t = tensor(new long[] { 10, 900 });
        var alphaBar = tensor(new[] { (float)schedule.AlphasCumprod[10], (float)schedule.AlphasCumprod[900] }).view(-1, 1, 1, 1);
        var expected = alphaBar.sqrt() * noise - (1 - alphaBar).sqrt() * x0;
        Assert.True(DenoisingObjective.Target(schedule, x0, noise, t).allclose(expected, rtol: 1e-5, atol: 1e-6));
    }

    [Fact]
    public void Masks_come_down_to_latent_resolution_masking_a_latent_pixel_when_any_of_its_pixels_is()
    {
        using var dir = new TempDirectory();
        var pipelinePath = TinyPipeline.Write(dir.File("sd"));
        var images = WriteImageFolder(dir.File("images"));
        var config = Config(pipelinePath, images, "selective.arm=masked-loss", "selective.mask_margin=0");
        var pipeline = config.OpenPipelineFolder()!;
        using var encoder = pipeline.LoadTextEncoder();
        using var data = TrainingData.PrepareLatents(config, encoder, pipeline, dir.File("latents.safetensors"), CPU, writeCache: true);
        Assert.Contains("a latent pixel is left out when any of its 2×2 image pixels is", data.ImagesDone);
        var weights = data.Batches.LossWeights!;
        Assert.Equal(new long[] { 8, 1, 16, 16 }, weights.shape);
        // The mask covers pixels 20–24 of x and y: latent pixels 10–12 (12 holds pixel 24 alone).
        for (int y = 0; y < 16; y++)
            for (int x = 0; x < 16; x++)
                Assert.Equal(x is >= 10 and <= 12 && y is >= 10 and <= 12 ? 0 : 1, weights[0, 0, y, x].ToInt32());
        Assert.Equal(new long[] { 8, 4, 16, 16 }, data.Batches.Images.shape);
    }

    [Fact]
    public void Random_flips_on_a_pipeline_draw_the_VAE_latents_of_the_mirror_images_with_their_masks_mirrored()
    {
        using var dir = new TempDirectory();
        var pipelinePath = TinyPipeline.Write(dir.File("sd"));
        var images = WriteImageFolder(dir.File("images"));
        var config = Config(pipelinePath, images, "data.random_flip=true", "selective.arm=masked-loss", "selective.mask_margin=0");
        var pipeline = config.OpenPipelineFolder()!;
        using var encoder = pipeline.LoadTextEncoder();
        using var data = TrainingData.PrepareLatents(config, encoder, pipeline, dir.File("latents.safetensors"), CPU, writeCache: true);
        Assert.Contains("Encoded them and their mirror images once", data.ImagesDone);

        // Rows 8–15 are the VAE's posteriors of the mirrored images (encoded, not the latents flipped).
        var batches = data.Batches;
        Assert.Equal(new long[] { 16, 4, 16, 16 }, batches.Images.shape);
        using (var scope = NewDisposeScope())
        using (var vae = pipeline.LoadVae())
        using (no_grad())
        {
            var prepared = new ImagePreparation(32, 3, CenterCrop: false, RandomFlip: false, ToGrey: false).Prepare(PngIO.Load(Path.Combine(images, "img3.png")), "img3");
            var mirrored = DenoisingObjective.ToModelRange(ImageTensors.ToUint8Batch([prepared]).flip(3));
            var expected = vae.Encode(mirrored).Mean * pipeline.VaeConfig.ScalingFactor;
            Assert.True(batches.Images[8 + 3].allclose(expected[0], rtol: 0, atol: 1e-5));
            Assert.False(batches.Images[8 + 3].allclose(batches.Images[3].flip(2), rtol: 0, atol: 1e-3), "a flipped latent is not the mirror image's latent");
        }

        // Over a few steps both orientations are drawn, and a flipped example's mask is the mirror of its own.
        int flips = 0, kept = 0;
        for (int step = 0; step < 6; step++)
        {
            using var scope = NewDisposeScope();
            var indices = batches.BatchIndices(seed: 0, step, 4);
            var (_, weights) = batches.Draw(indices, seed: 0, step, CPU);
            for (int p = 0; p < indices.Length; p++)
            {
                var own = batches.LossWeights![indices[p]].to(ScalarType.Float32);
                if (Same(own, own.flip(2))) continue; // a symmetric mask cannot tell the two apart
                if (Same(weights![p], own)) kept++;
                else if (Same(weights[p], own.flip(2))) flips++;
                else Assert.Fail($"step {step}, position {p}: the mask is neither the example's nor its mirror");
            }
        }
        Assert.True(flips > 0 && kept > 0, $"{flips} flipped, {kept} kept");
        var run = TrainingJob.Run(config with { Training = config.TrainingOrDefault with { Steps = 2 } }, new RunDirectory(dir.File("run")), resume: false, log: Log);
        Assert.True(double.IsFinite(run.Summary.FinalLoss));
    }

    [Fact]
    public void Wide_images_on_a_pipeline_are_cropped_at_each_step_as_the_pixel_path_crops_them_and_the_crop_is_encoded_by_the_VAE()
    {
        using var dir = new TempDirectory();
        var pipelinePath = TinyPipeline.Write(dir.File("sd"));
        var wide = WriteImageFolder(dir.File("wide"), width: 48);
        var config = Config(pipelinePath, wide, "data.random_flip=true", "selective.arm=masked-loss", "selective.mask_margin=0");
        var pipeline = config.OpenPipelineFolder()!;
        using var encoder = pipeline.LoadTextEncoder();
        using var latentData = TrainingData.PrepareLatents(config, encoder, pipeline, dir.File("latents.safetensors"), CPU, writeCache: true);
        Assert.Contains("8 images are not square: each step encodes the 32×32 crop it draws", latentData.ImagesDone);
        // The pixel path's batches of the same images, which crop and flip at the same (seed, step, position).
        using var pixelData = TrainingData.Prepare(config, encoder, modelChannels: 3);
        var latents = latentData.Batches;
        // The latent draw's noise ε, read from batches of the cached rows alone: same generator, same shape, same ε.
        using var cachedOnly = TrainingBatches.FromLatents(latents.Images.narrow(0, 0, 8).clone(), latents.LatentStd!.narrow(0, 0, 8).clone(), latents.CaptionIndex,
            latents.TextStates, latents.TextMask, latents.EmptyCaptionIndex);
        using var vae = pipeline.LoadVae();
        var factor = pipeline.VaeConfig.ScalingFactor;
        var offsets = new HashSet<string>();
        for (int step = 0; step < 4; step++)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var indices = latents.BatchIndices(seed: 0, step, 4);
            var (drawn, weights) = latents.Draw(indices, seed: 0, step, CPU);
            var (pixels, pixelWeights) = pixelData.Batches.Draw(indices, seed: 0, step, CPU);
            using var rows = tensor(indices);
            var (cached, _) = cachedOnly.Draw(indices, seed: 0, step, CPU);
            var noise = (cached - latents.Images.index_select(0, rows)) / latents.LatentStd.index_select(0, rows);
            var posterior = vae.Encode(pixels);
            var expected = posterior.Mean * factor + (posterior.LogVariance * 0.5).exp() * factor * noise;
            var worst = (drawn - expected).abs().max().ToDouble();
            Assert.True(worst < 1e-4, $"step {step}: the latents are not the VAE's posterior of the pixel path's crops (max |Δ| {worst:E2})");
            Assert.True(Same(weights!, TrainingData.ToLatentResolution(pixelWeights!.to(ScalarType.Byte), 2).to(ScalarType.Float32)), $"step {step}: masks");
            for (int p = 0; p < 4; p++) offsets.Add($"{indices[p]}:{pixels[p].narrow(2, 0, 8).sum().ToDouble():F3}");
        }
        Assert.True(offsets.Count > 4, "the crops should move from step to step");
        var run = TrainingJob.Run(config with { Training = config.TrainingOrDefault with { Steps = 2 } }, new RunDirectory(dir.File("run")), resume: false, log: Log);
        Assert.True(double.IsFinite(run.Summary.FinalLoss));
    }

    [Fact]
    public void What_a_pipeline_run_cannot_use_is_refused_by_name()
    {
        using var dir = new TempDirectory();
        var pipelinePath = TinyPipeline.Write(dir.File("sd"));
        var images = WriteImageFolder(dir.File("images"));

        var model = Assert.Throws<ArgumentException>(() => Config(pipelinePath, images, "model.sample_size=16", "text.encoder=minilm"));
        Assert.Contains("drop model", model.Message);
        Assert.Contains("text (", model.Message);
        Assert.Contains("diffusion", Assert.Throws<ArgumentException>(() => Config(pipelinePath, images, "diffusion.beta_end=0.02")).Message);
        Assert.Contains("must be 32", Assert.Throws<ArgumentException>(() => Config(pipelinePath, images, "data.image_size=64")).Message);
        Assert.Contains("selective.concept", Assert.Throws<ArgumentException>(() => Config(pipelinePath, images, "selective.arm=update-projection")).Message);
        Assert.Contains("projects nothing", Assert.Throws<ArgumentException>(() => Config(pipelinePath, images, "selective.concept=the Acme logo")).Message);

        var wide = WriteImageFolder(dir.File("wide"), width: 48);
        var cropped = TrainingJob.Run(Config(pipelinePath, wide, "data.center_crop=true", "training.steps=1"), new RunDirectory(dir.File("cropped")), resume: false);
        Assert.Equal(8, cropped.TrainImages);

        // Attacks and evaluation are not built for latent runs: refused with the reason, not a failure deep in sampling.
        var attack = Assert.Throws<NotSupportedException>(() => Excise.Attacks.Victim.Open(new RunDirectory(dir.File("cropped"))));
        Assert.Contains("attacks and evaluation do not run on pipeline runs yet", attack.Message);
    }

    [Fact]
    public void The_command_line_trains_a_pipeline_on_real_images_samples_it_through_the_VAE_and_verifies_its_certificate()
    {
        // As a user would: real images, the pipeline's default fine-tune settings (learning rate 1e-5, where float32
        // rounding once broke the certificate), sampled, certified, and the written-back pipeline read again.
        using var dir = new TempDirectory();
        var pipelinePath = TinyPipeline.Write(dir.File("sd"));
        var images = WriteRealImageFolder(dir.File("images"));
        var run = dir.File("run");
        var (exit, text) = Cli.CliProcess.Run("train", "--pipeline", pipelinePath, "--data", images, "--arm", "update-projection",
            "--concept", "the Acme logo", "--out", run, "--set", "training.steps=6", "--set", "preview.per_prompt=0", "--set", "threads=1");
        output.WriteLine(text);
        Assert.Equal(0, exit);
        var flat = System.Text.RegularExpressions.Regex.Replace(text, @"\s+", " ");
        Assert.Contains("Encoded them once with the pipeline's VAE", flat);
        Assert.Contains("36 training images", flat);
        var written = StableDiffusionPipelineFolder.Open(Path.Combine(run, "pipeline"));
        using (var unet = written.LoadUNet())
        using (var trained = SafetensorsFile.Load(Path.Combine(run, "model.safetensors")))
        using (var original = SafetensorsFile.Load(StableDiffusionPipelineFolder.Open(pipelinePath).UNetWeights.Path))
        {
            var key = unet.named_parameters().First(p => p.name.EndsWith("attn2.to_v.weight"));
            Assert.True(Same(key.parameter.detach(), trained[key.name]), "the written pipeline holds the run's weights");
            Assert.False(Same(trained[key.name], original[key.name]), "and they were trained");
        }

        (exit, text) = Cli.CliProcess.Run("sample", "--run", run, "--prompt", "a sneaker", "-n", "2", "--steps", "2", "--out", dir.File("grid.png"));
        output.WriteLine(text);
        Assert.Equal(0, exit);
        Assert.Equal(3, PngIO.Load(dir.File("grid.png")).Channels);

        (exit, text) = Cli.CliProcess.Run("verify", "--run", run);
        output.WriteLine(text);
        Assert.Equal(0, exit);
        Assert.Contains("Certified", text);
    }
}
