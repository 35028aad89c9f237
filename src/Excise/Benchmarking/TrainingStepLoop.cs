using System.Diagnostics;
using Excise.Diffusion;
using Excise.Models;
using Excise.Training;
using TorchSharp;
using TorchSharp.Modules;
using AdamW = Excise.Training.AdamW;
using static TorchSharp.torch;

namespace Excise.Benchmarking;

/// <summary>Wall-clock seconds of one training step, split at the points where the work changes hands.</summary>
public sealed record StepPhases(double Forward, double Backward, double Optimizer, double Hooks, double Loss)
{
    public double Total => Forward + Backward + Optimizer + Hooks;
}

/// <summary>
/// The training step the <see cref="Trainer"/> runs, on a fixed batch: forward, MSE against the noise, backward,
/// hooks (projection), gradient clipping at 1.0, AdamW, in a dispose scope per step and with a GC every
/// <see cref="GcEvery"/> steps as in training. The PyTorch reference times the same sequence.
/// </summary>
public sealed class TrainingStepLoop : IDisposable
{
    readonly UNet2DConditionModel model;
    readonly SyntheticBatch batch;
    readonly List<(string Name, Parameter Param)> parameters;
    readonly AdamW optimizer;
    readonly List<ITrainingHook> hooks = new();
    int step;

    public TrainingStepLoop(UNet2DConditionModel model, SyntheticBatch batch, double learningRate = 1e-4)
    {
        this.model = model;
        this.batch = batch;
        LearningRate = learningRate;
        parameters = model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, p.parameter)).ToList();
        optimizer = new AdamW(parameters, weightDecay: 0.01);
        model.train();
    }

    public double LearningRate { get; }
    public double GradClip { get; init; } = 1.0;
    public int GcEvery { get; init; } = 10;
    public IReadOnlyList<(string Name, Parameter Param)> Parameters => parameters;

    public void AddHook(ITrainingHook hook) => hooks.Add(hook);

    public StepPhases Step()
    {
        StepPhases phases;
        using (NewDisposeScope())
        {
            var clock = Stopwatch.StartNew();
            Tensor loss;
            using (var forwardScope = NewDisposeScope()) // as the trainer: backward frees what our handles would hold
                loss = DenoisingObjective.MeanSquaredError(model.forward(batch.Sample, batch.Timesteps, batch.TextStates, batch.TextMask),
                    batch.Target).MoveToOuterDisposeScope();
            double value = loss.ToDouble();
            double forward = clock.Elapsed.TotalSeconds;

            clock.Restart();
            optimizer.ZeroGrad();
            loss.backward();
            double backward = clock.Elapsed.TotalSeconds;

            clock.Restart();
            foreach (var h in hooks) h.AfterBackward(step);
            foreach (var h in hooks) h.BeforeOptimizerStep(step);
            double hooksBefore = clock.Elapsed.TotalSeconds;

            clock.Restart();
            if (GradClip > 0) nn.utils.clip_grad_norm_(parameters.Select(p => p.Param), GradClip);
            optimizer.Step(LearningRate);
            double optimizerTime = clock.Elapsed.TotalSeconds;

            clock.Restart();
            foreach (var h in hooks) h.AfterOptimizerStep(step);
            phases = new StepPhases(forward, backward, optimizerTime, hooksBefore + clock.Elapsed.TotalSeconds, value);
        }
        step++;
        if (GcEvery > 0 && step % GcEvery == 0) GC.Collect();
        return phases;
    }

    public void Dispose() => optimizer.Dispose();
}
