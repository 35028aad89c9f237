using Excise.Diffusion;
using Excise.Imaging;
using Excise.Text;
using Excise.Training;

namespace Excise.Tests.Training;

public class TrainingJobTests
{
    [Fact]
    public void A_job_writes_a_resumable_run_that_the_sampler_can_open()
    {
        using var dir = new TempDir();
        var run = new RunDirectory(dir.File("run"));
        var config = TinyRun.Config("training.steps=4", "training.checkpoint_every=2", "preview.per_prompt=2", "preview.steps=3",
                                    "data.concept={\"phrase\":\"the Acme logo\",\"stamp_fraction\":0.5}");
        var result = TrainingJob.Run(config, run, resume: false);

        Assert.Equal(4, result.Summary.Steps);
        foreach (var file in new[] { run.ConfigPath, run.UNetConfigPath, run.MetricsPath, run.ModelPath, run.SummaryPath, run.TextStatesPath, run.GroundTruthPath })
            Assert.True(File.Exists(file), file);
        var preview = PngIO.Load(run.PreviewPath);
        Assert.True(preview.Width > 2 * 32 && preview.Height > 10 * 32, $"preview is {preview.Width}x{preview.Height}");
        Assert.Contains("\"stamped\":true", File.ReadAllText(run.GroundTruthPath).Replace(" ", ""));
        using (var cache = TextStateCache.Load(run.TextStatesPath, TinyRun.Encoder.Id))
            Assert.Contains(cache.Captions, c => c.Contains("the Acme logo"));

        var again = Assert.Throws<InvalidOperationException>(() => TrainingJob.Run(config, run, resume: false));
        Assert.Contains("--resume", again.Message);

        var resumed = TrainingJob.Run(run.LoadConfig() with { Training = config.TrainingOrDefault with { Steps = 6 } }, run, resume: true);
        Assert.Equal(6, resumed.Summary.Steps);
        Assert.Equal(4, resumed.Summary.ResumedFrom);

        using var pipeline = run.OpenPipeline();
        var images = pipeline.GenerateImages(["a photo of a sneaker"], new SamplingOptions(Steps: 2));
        Assert.Single(images);
        Assert.Equal((32, 32, 1), (images[0].Width, images[0].Height, images[0].Channels));
    }

    [Fact]
    public void A_fine_tune_records_the_base_it_started_from_and_refuses_a_changed_one()
    {
        using var dir = new TempDir();
        var baseRun = new RunDirectory(dir.File("base"));
        TrainingJob.Run(TinyRun.Config("training.steps=2", "training.checkpoint_every=0"), baseRun, resume: false);
        var pinned = Excise.Serialization.Digest.Pin(baseRun.ModelPath);

        var fineTune = new RunDirectory(dir.File("ft"));
        var config = TinyRun.Config("training.steps=2", "training.checkpoint_every=2", $"init={baseRun.Root}") with { Model = null };
        TrainingJob.Run(config, fineTune, resume: false);
        Assert.Equal(pinned, fineTune.LoadConfig().InitSha256);
        Assert.Equal((config with { InitSha256 = pinned }).Hash(), fineTune.LoadConfig().Hash());
        Assert.NotEqual(config.Hash(), fineTune.LoadConfig().Hash()); // which base is part of what decides the weights

        // The base replaced by other weights (and pinned anew): resuming the fine-tune would mix two bases, so it is refused.
        File.Copy(fineTune.ModelPath, baseRun.ModelPath, overwrite: true);
        Excise.Serialization.Digest.Pin(baseRun.ModelPath);
        var changed = Assert.Throws<ArgumentException>(() =>
            TrainingJob.Run(fineTune.LoadConfig() with { Training = config.TrainingOrDefault with { Steps = 3 } }, fineTune, resume: true));
        Assert.Contains("init_sha256", changed.Message);
        Assert.Contains(pinned, changed.Message);

        // A pinned base whose bytes changed under its pin is refused wherever it is loaded.
        var bytes = File.ReadAllBytes(baseRun.ModelPath);
        bytes[^1] ^= 1;
        File.WriteAllBytes(baseRun.ModelPath, bytes);
        Assert.Throws<InvalidDataException>(() => baseRun.OpenPipeline());
    }

    [Fact]
    public void Trains_on_an_exported_imagefolder()
    {
        using var dir = new TempDir();
        var source = TinyRun.Config("data.limit=12");
        var examples = Excise.Data.ConceptDatasetBuilder.Build(source.DataOrDefault.ToRecipe()).Train
            .Select(e => e with { Image = e.Image.FitTo(32, 3) }).ToList();   // RGB on disk, grey model
        Excise.Data.ImageFolderDataset.Write(dir.File("folder"), examples);

        var config = TinyRun.Config("data.source=imagefolder", $"data.path={dir.File("folder")}", "training.steps=2");
        var result = TrainingJob.Run(config, new RunDirectory(dir.File("run")), resume: false);
        Assert.Equal(12, result.TrainImages);
        Assert.True(double.IsFinite(result.Summary.FinalLoss));
    }

    [Fact]
    public void Colour_photos_of_another_shape_are_refused_by_a_grey_model_and_train_once_converted_saying_what_was_done()
    {
        using var dir = new TempDir();
        var source = TinyRun.Config("data.limit=12");
        // As a user's photos come: 48×40 and in colour (a warm tint), not the model's 32×32 grey.
        var photos = Excise.Data.ConceptDatasetBuilder.Build(source.DataOrDefault.ToRecipe()).Train
            .Select(e =>
            {
                var rgb = e.Image.ResizeTo(48, 40).ToRgb();
                for (int i = 0; i < rgb.Pixels.Length; i += 3) rgb.Pixels[i] = (byte)Math.Min(255, rgb.Pixels[i] + 60);
                return e with { Image = rgb, ConceptMask = null };
            }).ToList();
        Excise.Data.ImageFolderDataset.Write(dir.File("photos"), photos);
        string[] folder = ["data.source=imagefolder", $"data.path={dir.File("photos")}", "training.steps=2"];

        var refused = Assert.Throws<InvalidDataException>(() =>
            TrainingJob.Run(TinyRun.Config(folder), new RunDirectory(dir.File("strict")), resume: false));
        Assert.Contains("data.to_grey = true", refused.Message);
        Assert.Contains("model.in_channels = 3", refused.Message);

        var log = new List<string>();
        var result = TrainingJob.Run(TinyRun.Config([.. folder, "data.to_grey=true", "data.random_flip=true"]),
            new RunDirectory(dir.File("converted")), resume: false, log: log.Add);
        Assert.True(double.IsFinite(result.Summary.FinalLoss));
        var said = Assert.Single(log, line => line.StartsWith("Images: ", StringComparison.Ordinal));
        Assert.Contains("12 of 48×40, 12 in colour", said);
        Assert.Contains("12 resized to a shorter side of 32", said);
        Assert.Contains("12 cropped to 32×32 at a position drawn each step", said);
        Assert.Contains("12 colour images converted to grey", said);
        Assert.Contains("mirrored", said);
    }

    [Fact]
    public void Mismatched_image_size_is_refused_before_any_work()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<ArgumentException>(() => TrainingJob.Run(TinyRun.Config("data.image_size=64"), new RunDirectory(dir.File("run")), resume: false));
        Assert.Contains("sample_size", e.Message);
        Assert.False(File.Exists(Path.Combine(dir.File("run"), "config.json")));
    }
}
