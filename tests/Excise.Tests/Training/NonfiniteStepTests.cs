using System.Text.Json;
using Excise.Serialization;
using Excise.Training;
using static TorchSharp.torch;

namespace Excise.Tests.Training;

/// <summary>training.on_nonfinite: stop (default) or skip a step whose loss or gradient is NaN/Inf, with a counter and a limit.</summary>
public class NonfiniteStepTests
{
    /// <summary>Poisons the gradients of chosen steps, as an overflow in backward would.</summary>
    sealed class NaNGradientAt(Trainer trainer, params int[] steps) : ITrainingHook
    {
        public void AfterBackward(int step)
        {
            if (!steps.Contains(step)) return;
            using var _ = no_grad();
            trainer.Parameters[0].Param.grad!.fill_(double.NaN);
        }
    }

    [Fact]
    public void Skip_drops_the_whole_update_of_a_step_with_a_non_finite_gradient_and_counts_it()
    {
        using var twoSteps = new TempDir();
        using var threeSteps = new TempDir();
        TinyRun.Train(TinyRun.Config("training.steps=2", "training.checkpoint_every=0"), twoSteps.Path);
        var log = new List<string>();
        var summary = TinyRun.Train(TinyRun.Config("training.steps=3", "training.checkpoint_every=0", "training.on_nonfinite=skip"), threeSteps.Path,
            setup: t => { t.AddHook(new NaNGradientAt(t, 2)); t.Log = log.Add; });

        Assert.Equal(1, summary.SkippedSteps);
        Assert.Equal(2, summary.Losses.Count);
        Assert.Contains(log, l => l.StartsWith("Step 3: gradient norm is NaN; skipped"));
        // No optimizer step, no weight change: three steps with the third skipped are exactly two steps.
        using var a = SafetensorsFile.Load(Path.Combine(twoSteps.Path, "model.safetensors"));
        using var b = SafetensorsFile.Load(Path.Combine(threeSteps.Path, "model.safetensors"));
        foreach (var name in a.Names) Assert.True(a[name].eq(b[name]).all().ToBoolean(), name);
        var last = JsonDocument.Parse(File.ReadAllLines(Path.Combine(threeSteps.Path, "metrics.jsonl"))[^1]).RootElement;
        Assert.Equal(3, last.GetProperty("step").GetInt32());
        Assert.Equal(1, last.GetProperty("skipped_steps").GetInt32());
        Assert.Equal(JsonValueKind.Null, last.GetProperty("loss_last").ValueKind);
    }

    [Fact]
    public void Stop_is_the_default_and_names_the_option()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<TrainingDivergedException>(() =>
            TinyRun.Train(TinyRun.Config("training.steps=3"), dir.Path, setup: t => t.AddHook(new NaNGradientAt(t, 1))));
        Assert.Contains("Gradient norm is NaN at step 2", e.Message);
        Assert.Contains("training.on_nonfinite=skip", e.Message);
    }

    [Fact]
    public void Too_many_consecutive_NaN_losses_stop_the_run_with_a_checkpoint_of_the_last_good_weights()
    {
        using var dir = new TempDir();
        int calls = 0;
        var log = new List<string>();
        var e = Assert.Throws<TrainingDivergedException>(() => TinyRun.Train(
            TinyRun.Config("training.steps=20", "training.checkpoint_every=1", "training.on_nonfinite=skip", "training.max_consecutive_skips=3"), dir.Path,
            setup: t => t.Log = log.Add,
            // From the third forward pass on, every prediction is NaN (a NaN in the data would do the same).
            wrapPredictor: predict => (x, t, s, m) => ++calls >= 3 ? predict(x, t, s, m) * double.NaN : predict(x, t, s, m)));

        Assert.Contains("Steps 3–5: 3 consecutive steps", e.Message);
        Assert.Contains("training.max_consecutive_skips = 3", e.Message);
        Assert.Equal(3, log.Count);
        Assert.Contains("loss is NaN", log[0]);
        var store = new CheckpointStore(Path.Combine(dir.Path, "checkpoints"));
        var state = CheckpointStore.ReadState(store.Latest()!);
        Assert.Equal((5, 2L, 3L, 3), (state.Step, state.OptimizerSteps, state.SkippedSteps, state.ConsecutiveSkips));
    }

    [Fact]
    public void The_skip_count_and_the_streak_survive_a_resume()
    {
        using var dir = new TempDir();
        string[] skip = ["training.on_nonfinite=skip", "training.max_consecutive_skips=2"];
        var first = TinyRun.Train(TinyRun.Config([.. skip, "training.steps=3"]), dir.Path, setup: t => t.AddHook(new NaNGradientAt(t, 2)));
        Assert.Equal(1, first.SkippedSteps);
        // Step 3 was skipped just before the checkpoint; skipping step 4 after the resume makes two in a row, as without the restart.
        var e = Assert.Throws<TrainingDivergedException>(() =>
            TinyRun.Train(TinyRun.Config(skip), dir.Path, resume: true, setup: t => t.AddHook(new NaNGradientAt(t, 3))));
        Assert.Contains("Steps 3–4: 2 consecutive steps", e.Message);
    }

    [Fact]
    public void The_option_is_validated_and_left_out_of_the_config_hash()
    {
        var unknown = Assert.Throws<InvalidDataException>(() => TinyRun.Config("training.on_nonfinite=ignore"));
        Assert.Contains("training.on_nonfinite", unknown.Message);
        var zero = Assert.Throws<ArgumentException>(() => TinyRun.Config("training.max_consecutive_skips=0"));
        Assert.Contains("training.max_consecutive_skips", zero.Message);
        // A run stopped by a NaN can be resumed with skip: the hash, which guards resumes, does not change.
        Assert.Equal(TinyRun.Config().Hash(), TinyRun.Config("training.on_nonfinite=skip", "training.max_consecutive_skips=50").Hash());
    }
}
