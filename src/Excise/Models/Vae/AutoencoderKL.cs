using System.Text.RegularExpressions;
using Excise.Serialization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Excise.Models.Vae;

/// <summary>
/// The diagonal Gaussian an <see cref="AutoencoderKL"/> encodes an image to (diffusers' <c>DiagonalGaussianDistribution</c>):
/// [B, latent_channels, h, w] mean and log-variance, the latter clamped to [−30, 20]. Neither is multiplied by the
/// scaling factor; its mode is <see cref="Mean"/>.
/// </summary>
public sealed record VaePosterior(Tensor Mean, Tensor LogVariance)
{
    /// <summary>
    /// Draws mean + exp(½·log-variance)·ε with ε ~ N(0, 1) from <paramref name="generator"/> (on the latents' device),
    /// so a sample is reproducible from the generator's seed and independent of torch's global RNG, as diffusers'
    /// <c>latent_dist.sample(generator)</c>. The noise stream is torch's, not NumPy's: numbers match PyTorch's only
    /// where TorchSharp's generator does.
    /// </summary>
    public Tensor Sample(Generator generator)
    {
        using var scope = NewDisposeScope();
        var noise = randn(Mean.shape, dtype: Mean.dtype, device: Mean.device, generator: generator);
        return Mean.add(LogVariance.mul(0.5).exp_().mul_(noise)).MoveToOuterDisposeScope();
    }

    /// <summary>Splits encoder moments [B, 2·C, h, w] into the first half (mean) and the clamped second half (log-variance).</summary>
    internal static VaePosterior FromMoments(Tensor moments)
    {
        var halves = moments.chunk(2, dim: 1);
        return new VaePosterior(halves[0], halves[1].clamp(AutoencoderKL.MinLogVariance, AutoencoderKL.MaxLogVariance));
    }
}

/// <summary>
/// diffusers' <c>AutoencoderKL</c> (v0.31 semantics), the Stable Diffusion VAE, in TorchSharp with diffusers' parameter
/// names so a pipeline's <c>vae/diffusion_pytorch_model.safetensors</c> loads by name. Images are [B, C, H, W] in [−1, 1];
/// latents are [B, latent_channels, H/f, W/f] with f = <see cref="VaeConfig.DownsamplingFactor"/>. The model does not
/// apply <see cref="ScalingFactor"/>: pipelines multiply encoded latents by it and divide by it before decoding.
/// </summary>
public sealed class AutoencoderKL : nn.Module
{
    /// <summary>Every GroupNorm of diffusers' VAE (resnets, attention, both conv_norm_out) uses this, not the UNet's 1e-5.</summary>
    internal const double NormEps = 1e-6;
    internal const double MinLogVariance = -30;
    internal const double MaxLogVariance = 20;

    /// <summary>
    /// Older diffusers-format checkpoints name the mid-block attention weights query/key/value/proj_attn; diffusers
    /// renames them on load (<c>ModelMixin._convert_deprecated_attention_blocks</c>), and so does <see cref="LoadSafetensors"/>.
    /// </summary>
    private static readonly Regex LegacyAttentionName =
        new(@"^(?<block>(encoder|decoder)\.mid_block\.attentions\.\d+)\.(?<projection>query|key|value|proj_attn)\.(?<kind>weight|bias)$", RegexOptions.CultureInvariant);

    private static readonly Dictionary<string, string> LegacyProjections = new(StringComparer.Ordinal)
    {
        ["query"] = "to_q",
        ["key"] = "to_k",
        ["value"] = "to_v",
        ["proj_attn"] = "to_out.0",
    };

#pragma warning disable IDE1006 // snake_case: these names become the state_dict keys
    private readonly VaeEncoder encoder;
    private readonly VaeDecoder decoder;
    private readonly Conv2d? quant_conv;
    private readonly Conv2d? post_quant_conv;
#pragma warning restore IDE1006

    public AutoencoderKL(VaeConfig config) : base(nameof(AutoencoderKL))
    {
        Config = config.Validate();
        encoder = new VaeEncoder(config);
        decoder = new VaeDecoder(config);
        var moments = 2 * config.LatentChannels;
        if (config.UseQuantConv) quant_conv = nn.Conv2d(moments, moments, 1);
        if (config.UsePostQuantConv) post_quant_conv = nn.Conv2d(config.LatentChannels, config.LatentChannels, 1);
        RegisterComponents();
    }

    public VaeConfig Config { get; }

    /// <summary>The config's <c>scaling_factor</c>: latents the UNet sees are <c>sample · ScalingFactor</c>.</summary>
    public double ScalingFactor => Config.ScalingFactor;

    /// <summary>
    /// Loads weights by diffusers name through the validating reader, strictly: a missing, unexpected or misshapen tensor
    /// is an <see cref="InvalidDataException"/> naming it. Legacy attention names (query/key/value/proj_attn) are renamed
    /// to to_q/to_k/to_v/to_out.0 first; original LDM/CompVis checkpoints (a different naming scheme) are not converted.
    /// </summary>
    public void LoadSafetensors(string path)
    {
        Digest.VerifyPin(path);
        using var contents = SafetensorsFile.Load(path);
        ModuleWeights.Load(this, WithCurrentAttentionNames(contents.Tensors, path), path, strict: true);
    }

    /// <summary>
    /// Encodes images [B, in_channels, H, W] in [−1, 1]. <paramref name="observer"/> receives the block outputs under
    /// the module names of the golden data (<c>encoder.conv_in</c>, <c>encoder.down_blocks.i</c>,
    /// <c>encoder.mid_block.attentions.0</c>, <c>encoder.mid_block</c>, <c>encoder.conv_out</c>, <c>quant_conv</c>).
    /// </summary>
    /// <remarks>Results and observed tensors land in the caller's dispose scope; each block frees its own temporaries.</remarks>
    public VaePosterior Encode(Tensor image, Action<string, Tensor>? observer = null)
    {
        CheckShape(image, Config.InChannels, nameof(image), "in_channels");
        var moments = encoder.Forward(image, observer);
        if (quant_conv is not null)
        {
            moments = quant_conv.call(moments);
            observer?.Invoke("quant_conv", moments);
        }
        return VaePosterior.FromMoments(moments);
    }

    /// <summary>
    /// Decodes latents [B, latent_channels, h, w] — unscaled: divide a pipeline's latents by <see cref="ScalingFactor"/>
    /// first — to images [B, out_channels, h·f, w·f] in about [−1, 1]. <paramref name="observer"/> receives
    /// <c>post_quant_conv</c>, <c>decoder.conv_in</c>, <c>decoder.mid_block.attentions.0</c>, <c>decoder.mid_block</c>
    /// and <c>decoder.up_blocks.i</c>.
    /// </summary>
    public Tensor Decode(Tensor latents, Action<string, Tensor>? observer = null)
    {
        CheckShape(latents, Config.LatentChannels, nameof(latents), "latent_channels");
        if (post_quant_conv is not null)
        {
            latents = post_quant_conv.call(latents);
            observer?.Invoke("post_quant_conv", latents);
        }
        return decoder.Forward(latents, observer);
    }

    /// <summary>
    /// diffusers' <c>forward</c>: encodes, then decodes the posterior's mean, or a sample drawn with
    /// <paramref name="samplingGenerator"/> when one is given (<c>sample_posterior=True</c>).
    /// </summary>
    public Tensor Forward(Tensor image, Generator? samplingGenerator = null, Action<string, Tensor>? observer = null)
    {
        var posterior = Encode(image, observer);
        return Decode(samplingGenerator is null ? posterior.Mean : posterior.Sample(samplingGenerator), observer);
    }

    /// <summary>The file's tensors with legacy attention names replaced by diffusers' current ones.</summary>
    private static Dictionary<string, Tensor> WithCurrentAttentionNames(IReadOnlyDictionary<string, Tensor> tensors, string source)
    {
        var renamed = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, tensor) in tensors)
        {
            var legacy = LegacyAttentionName.Match(name);
            var current = legacy.Success
                ? $"{legacy.Groups["block"].Value}.{LegacyProjections[legacy.Groups["projection"].Value]}.{legacy.Groups["kind"].Value}"
                : name;
            if (legacy.Success && tensors.ContainsKey(current))
                throw new InvalidDataException($"{source}: holds both the legacy '{name}' and the current '{current}'; one of them must go.");
            renamed[current] = tensor;
        }
        return renamed;
    }

    private static void CheckShape(Tensor input, int channels, string parameter, string key)
    {
        if (input.dim() != 4 || input.shape[1] != channels)
            throw new ArgumentException($"{parameter} must be [B, {channels}, H, W] ({key} {channels}); got [{string.Join(", ", input.shape)}].", parameter);
        if (!input.is_floating_point())
            throw new ArgumentException($"{parameter} must be a floating-point tensor; got {input.dtype}.", parameter);
    }
}
