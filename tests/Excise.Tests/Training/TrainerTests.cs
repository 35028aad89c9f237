using System.Text.Json;
using Excise.Diffusion;
using Excise.Serialization;
using Excise.Training;
using static TorchSharp.torch;

namespace Excise.Tests.Training;

public class TrainerTests
{
    static TrainingSummary Train(RunConfig config, string runDir, bool resume = false)
    {
        using var data = TrainingData.Prepare(config, TinyRun.Encoder, 1);
        using var model = TinyRun.Model(config);
        var run = new RunDirectory(runDir);
        Directory.CreateDirectory(runDir);
        using var trainer = new Trainer(config, model, (x, t, s, m) => model.forward(x, t, s, m), data.Batches, run, CPU);
        if (resume) trainer.Resume(new CheckpointStore(run.CheckpointsDir).Latest()!);
        return trainer.Train();
    }

    [Fact]
    public void Training_reduces_the_denoising_loss_on_a_fixed_batch()
    {
        var config = TinyRun.Config("training.steps=40", "training.checkpoint_every=0", "training.learning_rate=0.002");
        using var dir = new TempDir();
        using var data = TrainingData.Prepare(config, TinyRun.Encoder, 1);
        using var model = TinyRun.Model(config);
        var schedule = new NoiseSchedule(config.DiffusionOrDefault);

        double FixedBatchLoss()
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            manual_seed(123);
            var idx = Enumerable.Range(0, 32).Select(i => (long)i).ToArray();
            var x0 = data.Batches.Draw(idx, config.Seed, step: 0, CPU).Images;
            var captions = tensor(idx.Select(i => data.Batches.CaptionIndex[i]).ToArray());
            var t = randint(50, 950, new long[] { 32 });
            var noise = randn(x0.shape);
            var pred = model.forward(schedule.AddNoise(x0, noise, t), t.to(ScalarType.Float32),
                data.Batches.TextStates.index_select(0, captions), data.Batches.TextMask.index_select(0, captions));
            return nn.functional.mse_loss(pred, noise).ToDouble();
        }

        double before = FixedBatchLoss();
        using (var trainer = new Trainer(config, model, (x, t, s, m) => model.forward(x, t, s, m), data.Batches, new RunDirectory(dir.Path), CPU))
            trainer.Train();
        double after = FixedBatchLoss();
        Assert.True(after < 0.7 * before, $"loss on a fixed batch went from {before:F4} to {after:F4}");
    }

    [Fact]
    public void Resumed_run_continues_with_exactly_the_same_losses()
    {
        var config = TinyRun.Config();
        using var full = new TempDir();
        using var split = new TempDir();
        var uninterrupted = Train(config, full.Path);

        var firstHalf = Train(TinyRun.Config("training.steps=3"), split.Path);
        var secondHalf = Train(config, split.Path, resume: true);

        Assert.Equal(6, uninterrupted.Losses.Count);
        Assert.Equal(uninterrupted.Losses.Take(3), firstHalf.Losses);
        Assert.Equal(uninterrupted.Losses.Skip(3), secondHalf.Losses);
        Assert.Equal(3, secondHalf.ResumedFrom);
        // Final weights equal bit for bit, and metrics.jsonl has one line per step with no duplicates.
        using var a = SafetensorsFile.Load(Path.Combine(full.Path, "model.safetensors"));
        using var b = SafetensorsFile.Load(Path.Combine(split.Path, "model.safetensors"));
        foreach (var name in a.Names) Assert.True(a[name].eq(b[name]).all().ToBoolean(), name);
        var steps = File.ReadAllLines(Path.Combine(split.Path, "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("step").GetInt32());
        Assert.Equal(Enumerable.Range(1, 6), steps);
    }

    [Fact]
    public void Checkpoint_round_trip_is_bit_exact()
    {
        var config = TinyRun.Config("training.steps=2", "training.ema_decay=0.9");
        using var dir = new TempDir();
        using var data = TrainingData.Prepare(config, TinyRun.Encoder, 1);
        using var model = TinyRun.Model(config);
        var run = new RunDirectory(dir.Path);
        using var trainer = new Trainer(config, model, (x, t, s, m) => model.forward(x, t, s, m), data.Batches, run, CPU);
        trainer.Train();
        var checkpoint = new CheckpointStore(run.CheckpointsDir).Latest()!;

        using var reloaded = TinyRun.Model(TinyRun.Config("seed=99"));
        ModuleWeights.Load(reloaded, Path.Combine(checkpoint, "model.safetensors"));
        var original = model.state_dict();
        foreach (var (name, t) in reloaded.state_dict()) Assert.True(t.eq(original[name]).all().ToBoolean(), name);

        using var optimizerState = SafetensorsFile.Load(Path.Combine(checkpoint, CheckpointStore.TrainingStateFile));
        foreach (var (name, t) in trainer.Optimizer.StateTensors()) Assert.True(optimizerState[name].eq(t).all().ToBoolean(), name);
        Assert.Equal(2, CheckpointStore.ReadState(checkpoint).OptimizerSteps);
        Assert.True(File.Exists(Path.Combine(checkpoint, "ema.safetensors")));
    }

    [Fact]
    public void Resume_refuses_a_checkpoint_from_another_config()
    {
        using var dir = new TempDir();
        Train(TinyRun.Config("training.steps=3"), dir.Path);
        var e = Assert.Throws<InvalidOperationException>(() => Train(TinyRun.Config("training.learning_rate=0.01"), dir.Path, resume: true));
        Assert.Contains("different config", e.Message);
    }

    [Fact]
    public void Divergence_stops_with_a_clear_message_and_keeps_the_last_checkpoint()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<TrainingDivergedException>(() => Train(TinyRun.Config("training.learning_rate=1e30", "training.grad_clip=0", "training.warmup_steps=0", "training.checkpoint_every=1"), dir.Path));
        Assert.Contains("step", e.Message);
        Assert.NotNull(new CheckpointStore(Path.Combine(dir.Path, "checkpoints")).Latest());
    }

    [Fact]
    public void Old_checkpoints_are_pruned_to_the_configured_count()
    {
        using var dir = new TempDir();
        Train(TinyRun.Config("training.checkpoint_every=1", "training.keep_checkpoints=2"), dir.Path);
        var kept = new CheckpointStore(Path.Combine(dir.Path, "checkpoints")).CompleteCheckpoints().Select(c => c.Step);
        Assert.Equal(new[] { 5, 6 }, kept);
    }
}
