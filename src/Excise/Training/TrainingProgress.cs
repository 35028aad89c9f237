namespace Excise.Training;

public sealed record TrainingProgress(int Step, int TotalSteps, double Loss, double LearningRate, double GradNorm,
                                      double SecondsPerStep, TimeSpan Elapsed, TimeSpan Remaining);

/// <param name="Losses">The loss of every step whose update was applied (skipped non-finite steps are left out).</param>
/// <param name="SkippedSteps">Steps whose update was dropped for a non-finite loss or gradient since step 0, resumed runs included.</param>
public sealed record TrainingSummary(int Steps, int ResumedFrom, double FinalLoss, double MeanLossLast100, TimeSpan Elapsed,
                                     double MedianSecondsPerStep, double ImagesPerSecond, long PeakRssBytes, IReadOnlyList<double> Losses,
                                     IReadOnlyList<double>? StepSeconds = null, long SkippedSteps = 0, TimeSpan AllreduceTime = default);

/// <summary>
/// Points where a training arm may change the update: after backward (the gradients), and after the
/// optimizer step (the weights). The projection arms of selective learning plug in here.
/// </summary>
public interface ITrainingHook
{
    void AfterBackward(int step) { }
    void BeforeOptimizerStep(int step) { }
    void AfterOptimizerStep(int step) { }
    /// <summary>After the moving average of the weights (EMA) took this step's weights in, by parameter name.</summary>
    void AfterAverageUpdate(int step, IReadOnlyDictionary<string, TorchSharp.torch.Tensor> averages) { }
}

/// <summary>The projection arms in the trainer: the projector's operations at the points where each acts.</summary>
public sealed class ProjectionHook(Projection.ConceptProjector projector) : ITrainingHook
{
    public void AfterBackward(int step) => projector.ProjectGradients();
    public void AfterOptimizerStep(int step) => projector.ProjectUpdate();
    public void AfterAverageUpdate(int step, IReadOnlyDictionary<string, TorchSharp.torch.Tensor> averages) => projector.ProjectAverages(averages);
}

/// <summary>Loss or gradients became NaN/Inf; the last checkpoint on disk is the last good state.</summary>
public sealed class TrainingDivergedException(string message) : Exception(message);
