using Excise.Diffusion;
using Excise.Models;

namespace Excise.Pipelines;

/// <summary>
/// A Stable Diffusion pipeline's <c>scheduler/scheduler_config.json</c> (diffusers v0.31), read into the keys that decide
/// training — the beta schedule and what the UNet predicts, which become a <see cref="NoiseScheduleOptions"/> — and the keys
/// that only sampling uses, kept for it. Every scheduler class accepted here computes its betas and ᾱ the same way
/// (diffusers' shared <c>betas_for_alpha_bar</c> / linear / scaled-linear code), so they all map onto one noise schedule.
/// A key missing from the file takes diffusers' default.
/// </summary>
/// <param name="SetAlphaToOne">Null when the file does not say (the class default applies: true for DDIM, false for PNDM).</param>
/// <param name="ClipSample">Null when the file does not say (DDPM and DDIM default to true; the other classes never clip).</param>
/// <param name="TimestepSpacing">diffusers' <c>timestep_spacing</c> ("leading", "linspace", "trailing"); null when absent.</param>
public sealed record SchedulerConfig(
    string ClassName,
    int NumTrainTimesteps,
    double BetaStart,
    double BetaEnd,
    BetaSchedule BetaSchedule,
    PredictionType PredictionType,
    int StepsOffset,
    bool? SetAlphaToOne,
    bool? ClipSample,
    string? TimestepSpacing)
{
    /// <summary>The scheduler classes whose training noise Excise reproduces (all share diffusers' beta code).</summary>
    public static readonly IReadOnlyList<string> SupportedClasses =
    [
        "DDPMScheduler", "DDIMScheduler", "PNDMScheduler", "EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler",
        "LMSDiscreteScheduler", "HeunDiscreteScheduler", "DPMSolverMultistepScheduler", "UniPCMultistepScheduler",
    ];

    /// <summary>diffusers' <c>beta_schedule</c> spellings.</summary>
    private static readonly Dictionary<string, BetaSchedule> BetaSchedules = new(StringComparer.Ordinal)
    {
        ["linear"] = BetaSchedule.Linear,
        ["scaled_linear"] = BetaSchedule.ScaledLinear,
        ["squaredcos_cap_v2"] = BetaSchedule.Cosine,
    };

    private static readonly Dictionary<string, Diffusion.TimestepSpacing> TimestepSpacings = new(StringComparer.Ordinal)
    {
        ["leading"] = Diffusion.TimestepSpacing.Leading,
        ["linspace"] = Diffusion.TimestepSpacing.Linspace,
        ["trailing"] = Diffusion.TimestepSpacing.Trailing,
    };

    private static readonly Dictionary<string, PredictionType> PredictionTypes = new(StringComparer.Ordinal)
    {
        ["epsilon"] = PredictionType.Epsilon,
        ["v_prediction"] = PredictionType.VPrediction,
    };

    /// <summary>The noise schedule training and sampling use for this pipeline.</summary>
    public NoiseScheduleOptions ToNoiseScheduleOptions() => new(BetaSchedule, NumTrainTimesteps, BetaStart, BetaEnd, PredictionType);

    /// <summary>
    /// What sampling a run of this pipeline follows, with the class's own default for a key the file leaves out:
    /// clip_sample (DDPM and DDIM clip by default, the other classes never do), timestep_spacing, steps_offset and
    /// set_alpha_to_one (PNDM's default is false, DDIM's true; the other classes end on a clean sample, ᾱ = 1).
    /// </summary>
    public SchedulerSampling Sampling => new(
        ClipSample ?? ClassName is "DDPMScheduler" or "DDIMScheduler",
        TimestepSpacing is null ? null : TimestepSpacings[TimestepSpacing],
        StepsOffset,
        SetAlphaToOne ?? ClassName != "PNDMScheduler");

    /// <summary>
    /// Reads a <c>scheduler_config.json</c>. A class outside <see cref="SupportedClasses"/>, a beta schedule or prediction
    /// type Excise does not build, explicit <c>trained_betas</c> or <c>rescale_betas_zero_snr</c> (both change the training
    /// noise) are <see cref="NotSupportedException"/>s naming <paramref name="source"/> and the key; malformed values
    /// <see cref="InvalidDataException"/>s.
    /// </summary>
    public static SchedulerConfig FromDiffusersJson(string text, string source)
    {
        using var json = new HuggingFaceConfigJson(text, source);
        var className = json.ReadString("_class_name") ?? throw new InvalidDataException($"{source} '_class_name': missing; diffusers writes the scheduler's class there.");
        if (!SupportedClasses.Contains(className))
            throw Unsupported(source, "_class_name", $"'{className}'", $"one of {string.Join(", ", SupportedClasses)}");
        if (json.TryGetNonNull("trained_betas", out _))
            throw Unsupported(source, "trained_betas", "an explicit list of betas", "null, with the betas from beta_schedule");
        if (json.ReadBool("rescale_betas_zero_snr") == true)
            throw Unsupported(source, "rescale_betas_zero_snr", "true", "false");

        var scheduleName = json.ReadString("beta_schedule") ?? "linear";
        if (!BetaSchedules.TryGetValue(scheduleName, out var schedule))
            throw Unsupported(source, "beta_schedule", $"'{scheduleName}'", string.Join(", ", BetaSchedules.Keys));
        var predictionName = json.ReadString("prediction_type") ?? "epsilon";
        if (!PredictionTypes.TryGetValue(predictionName, out var prediction))
            throw Unsupported(source, "prediction_type", $"'{predictionName}'", string.Join(", ", PredictionTypes.Keys));

        var config = new SchedulerConfig(
            className,
            json.ReadInt("num_train_timesteps") ?? 1000,
            json.ReadDouble("beta_start") ?? 1e-4,
            json.ReadDouble("beta_end") ?? 0.02,
            schedule,
            prediction,
            json.ReadInt("steps_offset") ?? 0,
            json.ReadBool("set_alpha_to_one"),
            json.ReadBool("clip_sample"),
            json.ReadString("timestep_spacing"));
        if (config.NumTrainTimesteps < 2)
            throw new InvalidDataException($"{source} 'num_train_timesteps': must be at least 2; got {config.NumTrainTimesteps}.");
        if (schedule != BetaSchedule.Cosine && !(config.BetaStart > 0 && config.BetaEnd > config.BetaStart && config.BetaEnd < 1))
            throw new InvalidDataException($"{source} 'beta_start', 'beta_end': must satisfy 0 < beta_start < beta_end < 1; got {config.BetaStart}, {config.BetaEnd}.");
        if (config.StepsOffset < 0) throw new InvalidDataException($"{source} 'steps_offset': must not be negative; got {config.StepsOffset}.");
        if (config.TimestepSpacing is { } spacing && !TimestepSpacings.ContainsKey(spacing))
            throw Unsupported(source, "timestep_spacing", $"'{spacing}'", string.Join(", ", TimestepSpacings.Keys));
        return config;
    }

    private static NotSupportedException Unsupported(string source, string key, string value, string supported) =>
        new($"{source} '{key}': {value} is not supported (only {supported}).");
}
