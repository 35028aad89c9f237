using Excise.Diffusion;
using Excise.Models;
using Excise.Text;
using Excise.Training;
using static TorchSharp.torch;

namespace Excise.Tests.Training;

/// <summary>
/// The smoke config shrunk further for tests: the real UNet architecture, a real slice of Fashion-MNIST
/// and real MiniLM states, small enough that a training step takes a fraction of a second.
/// </summary>
internal static class TinyRun
{
    static readonly Lazy<OnnxTextEncoder> SharedEncoder = new(() => MiniLmTextEncoder.Create(32));
    public static ITextEncoder Encoder => SharedEncoder.Value;

    public static RunConfig Config(params string[] overrides) => RunConfig.Load(RepositoryPaths.Config("smoke"),
        new[] { "data.limit=64", "training.batch_size=8", "training.steps=6", "training.warmup_steps=2", "training.log_every=1",
                "training.checkpoint_every=3", "preview.per_prompt=0", "threads=2" }.Concat(overrides));

    public static UNet2DConditionModel Model(RunConfig config)
    {
        manual_seed(config.Seed);
        return new UNet2DConditionModel(UNetConfig.FromDiffusersJson(config.ModelConfig.ToJsonString()));
    }

    /// <summary>Trains in <paramref name="runDir"/> with a bare Trainer (no job, no lock), resuming from the newest good checkpoint if asked.</summary>
    public static TrainingSummary Train(RunConfig config, string runDir, bool resume = false, Action<Trainer>? setup = null,
                                        Func<NoisePredictor, NoisePredictor>? wrapPredictor = null)
    {
        using var data = TrainingData.Prepare(config, Encoder, 1);
        using var model = Model(config);
        var run = new RunDirectory(runDir);
        Directory.CreateDirectory(runDir);
        NoisePredictor predict = (x, t, s, m) => model.forward(x, t, s, m);
        using var trainer = new Trainer(config, model, wrapPredictor is null ? predict : wrapPredictor(predict), data.Batches, run, CPU);
        setup?.Invoke(trainer);
        if (resume) trainer.Resume(new CheckpointStore(run.CheckpointsDir).Latest()!);
        return trainer.Train();
    }
}
