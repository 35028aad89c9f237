using System.Diagnostics;
using System.Text.Json;
using Excise.Diffusion;
using Excise.Distributed;
using Excise.Serialization;
using Excise.Torch;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Excise.Training;

/// <summary>
/// The DDPM training loop: ε-prediction MSE on noised images, caption dropout to the empty prompt (so the
/// model learns the unconditional score classifier-free guidance needs), AdamW with warm-up and gradient
/// clipping, optional EMA. Every random draw of step s comes from a generator seeded by (seed, s) and the
/// data order is a function of (seed, step), so a resumed run continues exactly as an uninterrupted one.
/// </summary>
public sealed class Trainer : IDisposable
{
    /// <summary>Seed stream (SeedMixer) of step s's noise and timesteps; TrainingBatches' order is stream 1. Runs resume bit-exactly because both are functions of (seed, step).</summary>
    const long NoiseStream = 2;

    readonly RunConfig config;
    readonly OptimizationConfig opt;
    readonly nn.Module model;
    readonly NoisePredictor predict;
    readonly TrainingBatches data;
    readonly NoiseSchedule schedule;
    readonly RunDirectory run;
    readonly Device device;
    readonly List<(string Name, Parameter Param)> parameters;
    readonly IOptimizer optimizer;
    readonly ExponentialMovingAverage? ema;
    readonly CheckpointStore checkpoints;
    readonly List<ITrainingHook> hooks = new();
    /// <summary>Time spent summing gradients across ranks (waiting for the slowest rank included); zero in one process.</summary>
    readonly Stopwatch allreduceClock = new();

    public int Step { get; private set; }
    public int StartStep { get; private set; }
    /// <summary>Steps whose update was dropped because the loss or gradient norm was not finite (training.on_nonfinite = skip), since step 0.</summary>
    public long SkippedSteps { get; private set; }
    /// <summary>How many of the latest steps were skipped in a row; reaching training.max_consecutive_skips stops the run.</summary>
    public int ConsecutiveSkips { get; private set; }
    /// <summary>Where skipped steps are reported (the job's log); silent when unset.</summary>
    public Action<string>? Log { get; set; }
    public IReadOnlyList<(string Name, Parameter Param)> Parameters => parameters;
    public IOptimizer Optimizer => optimizer;
    /// <summary>Standard deviation of Gaussian noise added to the text states of every batch (the embed-noise baseline).</summary>
    public double TextNoiseSigma { get; set; }
    /// <summary>
    /// The processes training this model together. With more than one, each computes its slice of every global batch,
    /// their gradients are summed into the one-process gradient before clipping, and rank 0 alone writes the run's files.
    /// </summary>
    public ProcessGroup Group { get; init; } = new SingleProcessGroup();

    public Trainer(RunConfig config, nn.Module model, NoisePredictor predict, TrainingBatches data, RunDirectory run, Device device)
    {
        this.config = config;
        opt = config.TrainingOrDefault;
        this.model = model;
        this.predict = predict;
        this.data = data;
        this.run = run;
        this.device = device;
        schedule = new NoiseSchedule(config.DiffusionOrDefault);
        parameters = model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, p.parameter)).ToList();
        if (parameters.Count == 0) throw new ArgumentException("The model has no trainable parameters.");
        optimizer = opt.Optimizer == OptimizerKind.Sgd
            ? new Sgd(parameters, opt.Momentum, opt.WeightDecay)
            : new AdamW(parameters, opt.Beta1, opt.Beta2, opt.Epsilon, opt.WeightDecay);
        ema = opt.EmaDecay > 0 ? new ExponentialMovingAverage(parameters, opt.EmaDecay) : null;
        checkpoints = new CheckpointStore(run.CheckpointsDir);
    }

    public void AddHook(ITrainingHook hook) => hooks.Add(hook);

    /// <summary>Facts recorded in every checkpoint and required to match on resume (e.g. the concept basis hash).</summary>
    public Dictionary<string, string> ExtraState { get; } = new();

    /// <summary>
    /// Restores weights, optimizer and EMA from a checkpoint folder and continues after its step. The folder must
    /// verify against its manifest (<see cref="CheckpointStore.Verify"/>); pick one with <see cref="CheckpointStore.FindLatestGood"/>.
    /// </summary>
    public void Resume(string checkpointDir)
    {
        CheckpointStore.Verify(checkpointDir);
        var state = CheckpointStore.ReadState(checkpointDir);
        if (state.ConfigHash != config.Hash())
            throw new InvalidOperationException($"{checkpointDir} was written with a different config (hash {state.ConfigHash}, this run {config.Hash()}); resuming would mix two runs.");
        foreach (var (key, value) in ExtraState)
            if (state.Extra is null || !state.Extra.TryGetValue(key, out var saved) || saved != value)
                throw new InvalidOperationException($"{checkpointDir} was written with {key} = '{(state.Extra?.GetValueOrDefault(key) ?? "(none)")}', this run has '{value}'; resuming would mix two runs.");
        ModuleWeights.Load(model, Path.Combine(checkpointDir, "model.safetensors"));
        using (var o = SafetensorsFile.Load(Path.Combine(checkpointDir, CheckpointStore.TrainingStateFile)))
            optimizer.LoadState(o, state.OptimizerSteps, Path.Combine(checkpointDir, CheckpointStore.TrainingStateFile));
        if (ema is not null)
        {
            var emaPath = Path.Combine(checkpointDir, "ema.safetensors");
            using var e = SafetensorsFile.Load(emaPath);
            ema.Load(e.Tensors, state.EmaUpdates, emaPath);
        }
        Step = StartStep = state.Step;
        SkippedSteps = state.SkippedSteps;
        ConsecutiveSkips = state.ConsecutiveSkips;
        if (Group.IsRoot) MetricsLine.TruncateAfter(run, state.Step);
    }

    public TrainingSummary Train(IProgress<TrainingProgress>? progress = null, CancellationToken cancel = default)
    {
        int total = opt.Steps;
        var losses = new List<double>();
        var stepTimes = new List<double>();
        var clock = Stopwatch.StartNew();
        double windowLoss = 0; int windowCount = 0;
        double lastGradNorm = 0;
        model.train();
        if (opt.BatchSize < Group.Size)
            throw new ArgumentException($"training.batch_size ({opt.BatchSize}) is smaller than the number of ranks ({Group.Size}); every rank needs at least one example of each batch.");
        using var metrics = Group.IsRoot ? new StreamWriter(run.MetricsPath, append: true) : null;
        RequireIdenticalReplicas();

        while (Step < total)
        {
            cancel.ThrowIfCancellationRequested();
            var stepClock = Stopwatch.StartNew();
            double lr = opt.LearningRateAt(Step);
            double loss;
            bool applied;
            using (var scope = NewDisposeScope())
            {
                applied = TrainStep(Step, lr, out loss, out lastGradNorm);
            }
            Step++;
            stepTimes.Add(stepClock.Elapsed.TotalSeconds);
            if (applied)
            {
                ConsecutiveSkips = 0;
                losses.Add(loss);
                windowLoss += loss; windowCount++;
            }
            else RecordSkip(loss, lastGradNorm);

            if (Step % opt.GcEvery == 0) GC.Collect();

            var recent = stepTimes.TakeLast(20).OrderBy(x => x).ToList();
            double secPerStep = recent[recent.Count / 2];
            bool checkpointDue = opt.CheckpointEvery > 0 && Step % opt.CheckpointEvery == 0 && Step < total;
            // Before a checkpoint, so rank 0 never saves weights the other ranks do not hold.
            if (Step % opt.LogEvery == 0 || checkpointDue) RequireIdenticalReplicas();
            if (metrics is not null && (Step % opt.LogEvery == 0 || Step == total || !applied))
            {
                WriteMetrics(metrics, windowCount > 0 ? windowLoss / windowCount : null, applied ? loss : null, lr, lastGradNorm, secPerStep, clock.Elapsed);
                windowLoss = 0; windowCount = 0;
            }
            progress?.Report(new TrainingProgress(Step, total, loss, lr, lastGradNorm, secPerStep, clock.Elapsed,
                TimeSpan.FromSeconds(secPerStep * (total - Step))));

            if (checkpointDue && Group.IsRoot) SaveCheckpoint();
            if (ConsecutiveSkips >= opt.MaxConsecutiveSkips)
                throw new TrainingDivergedException($"Steps {Step - ConsecutiveSkips + 1}–{Step}: {ConsecutiveSkips} consecutive steps had a non-finite loss or gradient " +
                    $"and were skipped (training.max_consecutive_skips = {opt.MaxConsecutiveSkips}); stopping. The weights are those of the last applied step; " +
                    $"the last checkpoint in {run.CheckpointsDir} holds them. Lower training.learning_rate or raise training.warmup_steps.");
        }
        RequireIdenticalReplicas();
        if (Group.IsRoot)
        {
            SaveCheckpoint();
            SaveFinalWeights();
        }

        var sortedTimes = stepTimes.Skip(1).DefaultIfEmpty(stepTimes.FirstOrDefault()).OrderBy(x => x).ToList();
        double median = sortedTimes.Count > 0 ? sortedTimes[sortedTimes.Count / 2] : 0;
        return new TrainingSummary(Step, StartStep, losses.LastOrDefault(double.NaN), losses.TakeLast(100).DefaultIfEmpty(double.NaN).Average(),
            clock.Elapsed, median, median > 0 ? opt.BatchSize / median : 0, Process.GetCurrentProcess().PeakWorkingSet64, losses, stepTimes, SkippedSteps,
            allreduceClock.Elapsed);
    }

    void RecordSkip(double loss, double gradNorm)
    {
        SkippedSteps++;
        ConsecutiveSkips++;
        Log?.Invoke($"Step {Step}: {(double.IsFinite(loss) ? $"gradient norm is {gradNorm}" : $"loss is {loss}")}; skipped its update " +
                    $"({SkippedSteps} skipped so far, {ConsecutiveSkips} in a row of at most {opt.MaxConsecutiveSkips}).");
    }

    /// <summary>One step; false when its loss or gradient norm was not finite and training.on_nonfinite = skip dropped the update.</summary>
    bool TrainStep(int step, double lr, out double value, out double gradNorm)
    {
        var generator = new Generator(SeedMixer.Derive(config.Seed, NoiseStream, step), device);
        var indices = data.BatchIndices(config.Seed, step, opt.BatchSize);
        var (x0, lossWeights) = data.Draw(indices, config.Seed, step, device);
        int batch = indices.Length;

        var captions = tensor(indices.Select(i => data.CaptionIndex[i]).ToArray(), device: device);
        if (opt.CaptionDropout > 0)
        {
            var drop = rand(new long[] { batch }, generator: generator, device: device).lt(opt.CaptionDropout);
            captions = where(drop, full_like(captions, data.EmptyCaptionIndex), captions);
        }
        var states = data.TextStates.index_select(0, captions.to(data.TextStates.device)).to(device);
        var mask = data.TextMask.index_select(0, captions.to(data.TextMask.device)).to(device);

        var t = randint(0, schedule.TrainTimesteps, new long[] { batch }, generator: generator, device: device);
        var noise = randn(x0.shape, generator: generator, device: device);
        // Drawn last, so every arm sees the same images, timesteps and noise at every step.
        if (TextNoiseSigma > 0) states = states + TextNoiseSigma * randn(states.shape, generator: generator, device: device);

        Tensor loss;
        // The forward's intermediates leave with this scope before backward: autograd holds its own references to what
        // backward needs and frees each as backward passes it, where our handles would keep every activation to the
        // end of the step (docs/performance.md, "Activation memory").
        using (var forward = NewDisposeScope())
            loss = (Group.Size == 1 ? DenoisingObjective.Loss(predict, schedule, x0, noise, t, states, mask, lossWeights)
                                    : ShareOfLoss(x0, noise, t, states, mask, lossWeights)).MoveToOuterDisposeScope();
        // With several ranks, the global batch's loss on every rank, so all take the same branch below.
        value = Group.Size == 1 ? loss.ToDouble() : Group.Sum(loss.ToDouble());
        gradNorm = double.NaN;
        if (!double.IsFinite(value))
        {
            if (opt.OnNonfinite == NonfinitePolicy.Skip) { optimizer.ZeroGrad(); return false; }
            throw new TrainingDivergedException($"Loss is {value} at step {step + 1}. The last checkpoint in {run.CheckpointsDir} is the last good state; lower training.learning_rate " +
                "or raise training.warmup_steps, or set training.on_nonfinite=skip to drop such batches.");
        }

        optimizer.ZeroGrad();
        loss.backward();
        if (Group.Size > 1) SumGradients();
        foreach (var h in hooks) h.AfterBackward(step);
        gradNorm = opt.GradClip > 0
            ? nn.utils.clip_grad_norm_(parameters.Select(p => p.Param), opt.GradClip)
            : TotalGradNorm();
        if (!double.IsFinite(gradNorm))
        {
            // Before any optimizer hook: the update is dropped whole (no optimizer or EMA step) and the bad gradients with it.
            if (opt.OnNonfinite == NonfinitePolicy.Skip) { optimizer.ZeroGrad(); return false; }
            throw new TrainingDivergedException($"Gradient norm is {gradNorm} at step {step + 1}. The last checkpoint in {run.CheckpointsDir} is the last good state; " +
                "set training.on_nonfinite=skip to drop such batches.");
        }
        foreach (var h in hooks) h.BeforeOptimizerStep(step);
        optimizer.Step(lr);
        foreach (var h in hooks) h.AfterOptimizerStep(step);
        if (ema is not null)
        {
            ema.Update();
            foreach (var h in hooks) h.AfterAverageUpdate(step, ema.Averages);
        }
        return true;
    }

    /// <summary>
    /// This rank's share of the global batch's loss: the loss of its slice of the batch (every rank drew the whole batch's
    /// examples, noise and timesteps exactly as one process does, and keeps rows [Rank·B/N, (Rank+1)·B/N)), scaled so that
    /// the shares of all ranks add up to the one-process mean. The mean's denominator is the batch's element count, or
    /// with a loss mask its kept pixels × channels (DenoisingObjective.MeanSquaredError), so the scale is this slice's
    /// denominator over the whole batch's.
    /// </summary>
    Tensor ShareOfLoss(Tensor x0, Tensor noise, Tensor t, Tensor states, Tensor? mask, Tensor? weights)
    {
        long batch = x0.shape[0];
        long start = batch * Group.Rank / Group.Size, count = batch * (Group.Rank + 1) / Group.Size - start;
        Tensor Slice(Tensor whole) => whole.narrow(0, start, count);
        var sliceWeights = weights is null ? null : Slice(weights);
        var loss = DenoisingObjective.Loss(predict, schedule, Slice(x0), Slice(noise), Slice(t), Slice(states), mask is null ? null : Slice(mask), sliceWeights);
        double Denominator(Tensor images, Tensor? kept) =>
            kept is null ? images.numel() : Math.Max(kept.sum().ToDouble() * images.shape[1], 1);
        return loss * (Denominator(Slice(x0), sliceWeights) / Denominator(x0, weights));
    }

    /// <summary>
    /// Replaces every gradient by its sum over the ranks: each rank's is the gradient of its share of the loss, so the
    /// sum is the gradient of the one-process mean loss, and clipping, the hooks (projection) and the optimizer act on it
    /// exactly as they do in one process. One flat buffer, one allreduce per step.
    /// </summary>
    void SumGradients()
    {
        var grads = parameters.Select(p => p.Param.grad).OfType<Tensor>().ToList();
        if (grads.Any(g => g.dtype != ScalarType.Float32))
            throw new NotSupportedException("Data-parallel training sums float32 gradients; this model has parameters of another type.");
        using var flat = cat(grads.Select(g => g.reshape(-1)).ToList(), 0).cpu();
        var buffer = flat.data<float>().ToArray();
        allreduceClock.Start();
        Group.SumInPlace(buffer);
        allreduceClock.Stop();
        using var summed = tensor(buffer, device: device);
        long offset = 0;
        foreach (var g in grads)
        {
            using (no_grad()) g.copy_(summed.narrow(0, offset, g.numel()).view_as(g));
            offset += g.numel();
        }
    }

    /// <summary>Stops the job when the ranks' weights differ (a cheap digest compared across ranks); nothing to check in one process.</summary>
    void RequireIdenticalReplicas()
    {
        if (Group.Size == 1) return;
        Group.RequireSameOnEveryRank(WeightDigest.Of(parameters.Select(p => (Tensor)p.Param)), $"weights after step {Step}");
    }

    double TotalGradNorm()
    {
        using var _ = NewDisposeScope();
        double sum = 0;
        foreach (var (_, p) in parameters) if (p.grad is { } g) sum += g.pow(2).sum().ToDouble();
        return Math.Sqrt(sum);
    }

    /// <param name="meanLoss">Mean loss of the applied steps since the last line; null when all of them were skipped.</param>
    void WriteMetrics(StreamWriter writer, double? meanLoss, double? lastLoss, double lr, double gradNorm, double secPerStep, TimeSpan elapsed)
    {
        new MetricsLine(Step, meanLoss, lastLoss, lr,
            double.IsFinite(gradNorm) ? gradNorm : null,   // JSON has no NaN
            SkippedSteps, secPerStep, secPerStep > 0 ? opt.BatchSize / secPerStep : 0,
            Environment.WorkingSet / (1024.0 * 1024.0), elapsed.TotalSeconds).AppendTo(writer);
    }

    public string SaveCheckpoint()
    {
        var state = new CheckpointState(Step, config.Hash(), optimizer.StepCount, ema?.Updates ?? 0, config.Seed,
            "per-step generators seeded from (seed, step); no state to restore", DateTimeOffset.UtcNow, new Dictionary<string, string>(ExtraState),
            SkippedSteps: SkippedSteps, ConsecutiveSkips: ConsecutiveSkips);
        return checkpoints.Save(state, model.state_dict(), ema?.Averages, optimizer.StateTensors(), opt.KeepCheckpoints);
    }

    void SaveFinalWeights()
    {
        var metadata = new Dictionary<string, string> { ["step"] = Step.ToString(), ["config_hash"] = config.Hash(), ["weights"] = ema is null ? "raw" : "ema" };
        SafetensorsFile.Save(run.ModelPath, SamplingWeights(), metadata);
    }

    /// <summary>The model's full state dict with the EMA values in place of the trained parameters when EMA is on.</summary>
    public IReadOnlyDictionary<string, Tensor> SamplingWeights()
    {
        var weights = new Dictionary<string, Tensor>(model.state_dict());
        if (ema is not null)
            foreach (var (name, t) in ema.Averages) weights[name] = t;
        return weights;
    }

    public void Dispose()
    {
        optimizer.Dispose();
        ema?.Dispose();
    }
}
