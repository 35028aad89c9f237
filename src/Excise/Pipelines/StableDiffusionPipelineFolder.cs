using Excise.Diffusion;
using Excise.Models;
using Excise.Models.Clip;
using Excise.Models.Vae;
using Excise.Serialization;
using Excise.Text;
using static TorchSharp.torch;

namespace Excise.Pipelines;

/// <summary>
/// Where a component's weights lie in its subfolder: the file Excise loads (<c>diffusion_pytorch_model.safetensors</c>, or its
/// fp16 variant <c>diffusion_pytorch_model.fp16.safetensors</c> when there is no full-precision file; <c>model…</c> for the
/// text encoder), its variant (null or "fp16"), and its tensors as the header lists them.
/// </summary>
public sealed record PipelineWeights(string Path, string? Variant, IReadOnlyList<SafetensorsEntry> Tensors);

/// <summary>
/// A Stable Diffusion 1.x/2.x pipeline in diffusers' folder layout (v0.31): <c>model_index.json</c> and the <c>unet/</c>,
/// <c>vae/</c>, <c>text_encoder/</c>, <c>tokenizer/</c> and <c>scheduler/</c> subfolders. <see cref="Open"/> reads and checks
/// every config and locates every weights file without loading a tensor, so a folder Excise cannot use is refused before
/// any work, each refusal naming the file and the key. Weights load on request, fp16 files into float32 modules.
/// <see cref="Save"/> writes a fine-tuned UNet back into a copy of the folder that diffusers loads unchanged.
/// </summary>
public sealed class StableDiffusionPipelineFolder
{
    public const string UNetFolder = "unet";
    public const string VaeFolder = "vae";
    public const string TextEncoderFolder = "text_encoder";
    public const string TokenizerFolder = "tokenizer";
    public const string SchedulerFolder = "scheduler";
    public const string ModelConfigFile = "config.json";
    public const string SchedulerConfigFile = "scheduler_config.json";
    public const string DiffusersWeightsName = "diffusion_pytorch_model";
    public const string TransformersWeightsName = "model";
    /// <summary>The one variant besides full precision that Stable Diffusion repositories publish.</summary>
    public const string HalfPrecisionVariant = "fp16";

    private StableDiffusionPipelineFolder(string path, PipelineModelIndex modelIndex, UNetConfig unet, VaeConfig vae,
        ClipTextConfig textEncoder, ClipTokenizer tokenizer, SchedulerConfig scheduler,
        PipelineWeights unetWeights, PipelineWeights vaeWeights, PipelineWeights textEncoderWeights)
    {
        Path = path;
        ModelIndex = modelIndex;
        UNetConfig = unet;
        VaeConfig = vae;
        TextEncoderConfig = textEncoder;
        Tokenizer = tokenizer;
        SchedulerConfig = scheduler;
        UNetWeights = unetWeights;
        VaeWeights = vaeWeights;
        TextEncoderWeights = textEncoderWeights;
    }

    public string Path { get; }
    public PipelineModelIndex ModelIndex { get; }
    public UNetConfig UNetConfig { get; }
    public VaeConfig VaeConfig { get; }
    public ClipTextConfig TextEncoderConfig { get; }
    public ClipTokenizer Tokenizer { get; }
    public SchedulerConfig SchedulerConfig { get; }
    public PipelineWeights UNetWeights { get; }
    public PipelineWeights VaeWeights { get; }
    public PipelineWeights TextEncoderWeights { get; }

    /// <summary>The side of the square RGB images the pipeline's UNet is trained on: its sample_size latents × the VAE's downsampling factor.</summary>
    public int PixelSize => UNetConfig.SampleSize * VaeConfig.DownsamplingFactor;

    /// <summary>
    /// The SHA-256 of the folder's content: of every file's relative path and SHA-256, in ordinal order of the paths. A run
    /// pins the pipeline it trains on by this (as it pins init weights by their hash), so a pipeline whose weights, configs
    /// or tokenizer changed since is refused on resume, and moving the folder changes nothing. The weight files' digests are
    /// remembered by path, size and modification time (<see cref="Digest.Sha256Remembered"/>): SD 1.5's folder holds
    /// about 5 GB, which every command on a run would otherwise read again.
    /// </summary>
    public string ContentHash()
    {
        var lines = Directory.EnumerateFiles(Path, "*", SearchOption.AllDirectories)
            .Select(file => System.IO.Path.GetRelativePath(Path, file).Replace('\\', '/'))
            .Order(StringComparer.Ordinal)
            .Select(relative => $"{Digest.Sha256Remembered(System.IO.Path.Combine(Path, relative))}  {relative}\n");
        return Digest.OfText(string.Concat(lines));
    }

    /// <summary>The beta schedule and prediction type of the pipeline's scheduler, as training and sampling use them.</summary>
    public NoiseScheduleOptions NoiseSchedule => SchedulerConfig.ToNoiseScheduleOptions();

    /// <summary>
    /// Reads a pipeline folder. Refuses, naming the file and the key: a pipeline or component class Excise does not build
    /// (another scheduler, another text encoder), a missing subfolder or config, components that do not fit each other
    /// (the UNet's cross-attention width and the text encoder's, the UNet's channels and the VAE's latents), weights that
    /// are only a pickle (<c>.bin</c>; convert them with <c>excise convert --allow-pickle</c>) or sharded, and corrupt
    /// safetensors headers. Unsupported parts are <see cref="NotSupportedException"/>s, missing or malformed files
    /// <see cref="InvalidDataException"/>s.
    /// </summary>
    public static StableDiffusionPipelineFolder Open(string path)
    {
        var root = System.IO.Path.GetFullPath(path);
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"{root}: no such pipeline folder.");
        var indexPath = System.IO.Path.Combine(root, PipelineModelIndex.FileName);
        if (!File.Exists(indexPath))
            throw new InvalidDataException($"{indexPath}: missing; a diffusers pipeline folder has a {PipelineModelIndex.FileName} at its top.");
        var index = PipelineModelIndex.Parse(File.ReadAllText(indexPath), indexPath);

        string Folder(string component)
        {
            var folder = System.IO.Path.Combine(root, component);
            return Directory.Exists(folder) ? folder
                : throw new InvalidDataException($"{folder}: missing; {PipelineModelIndex.FileName} '{component}' names {index.ClassOf(component)}, whose files live in that folder.");
        }
        string ConfigText(string component, string file)
        {
            var configPath = System.IO.Path.Combine(Folder(component), file);
            return File.Exists(configPath) ? File.ReadAllText(configPath)
                : throw new InvalidDataException($"{configPath}: missing; the {component} folder needs its {file}.");
        }

        var unet = ReadConfig(UNetFolder, ModelConfigFile, ConfigText(UNetFolder, ModelConfigFile), UNetConfig.FromDiffusersJson, root);
        var vae = ReadConfig(VaeFolder, ModelConfigFile, ConfigText(VaeFolder, ModelConfigFile), VaeConfig.FromDiffusersJson, root);
        var textEncoder = ReadConfig(TextEncoderFolder, ModelConfigFile, ConfigText(TextEncoderFolder, ModelConfigFile), ClipTextConfig.FromTransformersJson, root);
        var schedulerPath = System.IO.Path.Combine(Folder(SchedulerFolder), SchedulerConfigFile);
        var scheduler = SchedulerConfig.FromDiffusersJson(ConfigText(SchedulerFolder, SchedulerConfigFile), schedulerPath);
        if (scheduler.ClassName != index.ClassOf(SchedulerFolder))
            throw new InvalidDataException($"{schedulerPath} '_class_name': '{scheduler.ClassName}' disagrees with {PipelineModelIndex.FileName} 'scheduler' ('{index.ClassOf(SchedulerFolder)}').");
        var tokenizer = ClipTokenizer.FromFolder(Folder(TokenizerFolder));

        CheckFit(root, unet, vae, textEncoder, tokenizer);
        return new StableDiffusionPipelineFolder(root, index, unet, vae, textEncoder, tokenizer, scheduler,
            LocateWeights(Folder(UNetFolder), DiffusersWeightsName),
            LocateWeights(Folder(VaeFolder), DiffusersWeightsName),
            LocateWeights(Folder(TextEncoderFolder), TransformersWeightsName));
    }

    /// <summary>The UNet with the folder's weights (float32, whatever the file holds), in eval mode on the CPU.</summary>
    public UNet2DConditionModel LoadUNet()
    {
        var model = new UNet2DConditionModel(UNetConfig);
        model.LoadSafetensors(UNetWeights.Path);
        model.eval();
        return model;
    }

    /// <summary>The VAE with the folder's weights (float32), in eval mode on the CPU.</summary>
    public AutoencoderKL LoadVae()
    {
        var model = new AutoencoderKL(VaeConfig);
        model.LoadSafetensors(VaeWeights.Path);
        model.eval();
        return model;
    }

    /// <summary>The CLIP text model with the folder's weights (float32), in eval mode on the CPU.</summary>
    public ClipTextModel LoadTextModel()
    {
        var model = new ClipTextModel(TextEncoderConfig);
        model.LoadSafetensors(TextEncoderWeights.Path);
        model.eval();
        return model;
    }

    /// <summary>The tokenizer and text model as the trainer's text encoder (see <see cref="ClipTextEncoder"/> for its mask).</summary>
    public ClipTextEncoder LoadTextEncoder() => new(Tokenizer, LoadTextModel(), Digest.Sha256Remembered(TextEncoderWeights.Path));

    /// <summary>
    /// Writes this pipeline with <paramref name="unet"/>'s weights to <paramref name="target"/>, a folder that must not
    /// exist yet. Every file is copied byte for byte (model_index.json, configs, tokenizer, the VAE, the text encoder, and
    /// optional components such as safety_checker/) except the UNet's weights: each <c>diffusion_pytorch_model*.safetensors</c>
    /// in unet/ (the full-precision file and the fp16 variant alike, so no stale copy of the old weights stays behind) is
    /// rewritten with the model's tensors under diffusers' names, each in the dtype that file held, with its metadata.
    /// A pickled <c>diffusion_pytorch_model.bin</c> beside them would hold the old weights and is left out.
    /// Atomic: everything is written to a hidden sibling folder that is renamed to <paramref name="target"/> at the end;
    /// on failure it is removed and <paramref name="target"/> does not appear.
    /// </summary>
    public void Save(string target, UNet2DConditionModel unet)
    {
        if (!unet.Config.Equals(UNetConfig))
            throw new ArgumentException($"The UNet's config differs from {System.IO.Path.Combine(Path, UNetFolder, ModelConfigFile)}: only a fine-tune of this pipeline's UNet can be written into it.", nameof(unet));
        var destination = System.IO.Path.GetFullPath(target);
        if (Directory.Exists(destination) || File.Exists(destination))
            throw new IOException($"{destination} already exists; write the pipeline to a new folder (nothing was changed).");
        if (destination.StartsWith(Path + System.IO.Path.DirectorySeparatorChar, StringComparison.Ordinal))
            throw new IOException($"{destination} lies inside the pipeline folder being copied ({Path}); write it elsewhere (nothing was changed).");
        var parent = System.IO.Path.GetDirectoryName(destination)!;
        Directory.CreateDirectory(parent);
        var staging = System.IO.Path.Combine(parent, $".{System.IO.Path.GetFileName(destination)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            var state = unet.state_dict();
            var unetFolder = System.IO.Path.Combine(Path, UNetFolder);
            foreach (var source in Directory.EnumerateFiles(Path, "*", SearchOption.AllDirectories))
            {
                var relative = System.IO.Path.GetRelativePath(Path, source);
                var copy = System.IO.Path.Combine(staging, relative);
                Directory.CreateDirectory(System.IO.Path.GetDirectoryName(copy)!);
                var inUNet = System.IO.Path.GetDirectoryName(source) == unetFolder;
                var name = System.IO.Path.GetFileName(source);
                if (inUNet && IsWeightsFile(name, DiffusersWeightsName, ".safetensors")) WriteWeightsLike(source, copy, state);
                else if (inUNet && IsWeightsFile(name, DiffusersWeightsName, ".bin")) continue;
                else CopyDurably(source, copy);
            }
            foreach (var directory in Directory.EnumerateDirectories(staging, "*", SearchOption.AllDirectories).Append(staging))
                AtomicFile.SyncDirectory(directory);
            Directory.Move(staging, destination);
            AtomicFile.SyncDirectory(parent);
        }
        catch
        {
            try { if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true); }
            catch (IOException) { }
            throw;
        }
    }

    private static T ReadConfig<T>(string component, string file, string text, Func<string, T> read, string root)
    {
        var configPath = System.IO.Path.Combine(root, component, file);
        try { return read(text); }
        catch (NotSupportedException e) { throw new NotSupportedException($"{configPath}: {e.Message}", e); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{configPath}: {e.Message}", e); }
    }

    /// <summary>Components that load on their own but cannot run together are refused now, not at the first forward pass.</summary>
    private static void CheckFit(string root, UNetConfig unet, VaeConfig vae, ClipTextConfig textEncoder, ClipTokenizer tokenizer)
    {
        string ConfigOf(string component) => System.IO.Path.Combine(root, component, ModelConfigFile);
        if (unet.CrossAttentionDim != textEncoder.HiddenSize)
            throw new InvalidDataException($"{ConfigOf(UNetFolder)} 'cross_attention_dim' ({unet.CrossAttentionDim}) differs from {ConfigOf(TextEncoderFolder)} 'hidden_size' ({textEncoder.HiddenSize}): the UNet cannot read this text encoder's states.");
        if (unet.InChannels != vae.LatentChannels)
            throw new InvalidDataException($"{ConfigOf(UNetFolder)} 'in_channels' ({unet.InChannels}) differs from {ConfigOf(VaeFolder)} 'latent_channels' ({vae.LatentChannels}): the UNet cannot denoise this VAE's latents.");
        if (tokenizer.ModelMaxLength > textEncoder.MaxPositionEmbeddings)
            throw new InvalidDataException($"{System.IO.Path.Combine(root, TokenizerFolder, ClipTokenizer.ConfigFile)} 'model_max_length' ({tokenizer.ModelMaxLength}) exceeds {ConfigOf(TextEncoderFolder)} 'max_position_embeddings' ({textEncoder.MaxPositionEmbeddings}).");
    }

    /// <summary>
    /// The full-precision file if there is one, else the fp16 variant; pickles and sharded weights are refused with what to do.
    /// The header is read and checked now (a corrupt or disguised file fails here), the tensors later.
    /// </summary>
    private static PipelineWeights LocateWeights(string folder, string baseName)
    {
        foreach (var variant in new[] { null, HalfPrecisionVariant })
        {
            var file = System.IO.Path.Combine(folder, FileName(baseName, variant, ".safetensors"));
            if (File.Exists(file)) return new PipelineWeights(file, variant, SafetensorsFile.ReadHeader(file));
        }
        foreach (var variant in new[] { null, HalfPrecisionVariant })
        {
            var index = System.IO.Path.Combine(folder, FileName(baseName, variant, ".safetensors") + ".index.json");
            if (File.Exists(index))
                throw new NotSupportedException($"{index}: sharded weights are not read yet; merge the shards into one {FileName(baseName, variant, ".safetensors")} (safetensors.torch.save_file of the merged state dict).");
        }
        var weightsBaseName = baseName == TransformersWeightsName ? "pytorch_model" : baseName;
        foreach (var variant in new[] { null, HalfPrecisionVariant })
        {
            var pickle = System.IO.Path.Combine(folder, FileName(weightsBaseName, variant, ".bin"));
            if (File.Exists(pickle))
                throw new InvalidDataException(
                    $"{pickle}: the only weights here are a pickle, which Excise does not read (unpickling can run code). If you trust the file, " +
                    $"convert it once with 'excise convert --from {pickle} --to {System.IO.Path.Combine(folder, FileName(baseName, variant, ".safetensors"))} --allow-pickle' and open the folder again.");
        }
        throw new InvalidDataException($"{folder}: no weights; expected {FileName(baseName, null, ".safetensors")} or {FileName(baseName, HalfPrecisionVariant, ".safetensors")}.");
    }

    private static string FileName(string baseName, string? variant, string extension) =>
        variant is null ? baseName + extension : $"{baseName}.{variant}{extension}";

    /// <summary>A weights file of the component, any variant: base name, optionally ".variant", then the extension.</summary>
    private static bool IsWeightsFile(string name, string baseName, string extension) =>
        name.EndsWith(extension, StringComparison.Ordinal)
        && (name == baseName + extension || (name.StartsWith(baseName + ".", StringComparison.Ordinal) && !name[(baseName.Length + 1)..^extension.Length].Contains('.')));

    /// <summary>Writes <paramref name="state"/> in the layout of the weights file <paramref name="source"/>: the same tensor
    /// names in the same order, each in the dtype the file held, with the file's metadata.</summary>
    private static void WriteWeightsLike(string source, string copy, IReadOnlyDictionary<string, Tensor> state)
    {
        var entries = SafetensorsFile.ReadHeader(source);
        var names = entries.Select(e => e.Name).ToHashSet(StringComparer.Ordinal);
        var missing = entries.Where(e => !state.ContainsKey(e.Name)).Select(e => e.Name).Take(5).ToList();
        var extra = state.Keys.Where(k => !names.Contains(k)).Take(5).ToList();
        if (missing.Count > 0 || extra.Count > 0)
            throw new InvalidDataException($"{source}: its tensors do not match the UNet being written (in the file only: {string.Join(", ", missing)}; in the model only: {string.Join(", ", extra)}).");
        using var scope = NewDisposeScope();
        var tensors = entries.Select(e => KeyValuePair.Create(e.Name, state[e.Name].detach().to(e.DType))).ToList();
        SafetensorsFile.Save(copy, tensors, SafetensorsFile.ReadMetadata(source));
    }

    private static void CopyDurably(string source, string copy)
    {
        File.Copy(source, copy);
        using var stream = new FileStream(copy, FileMode.Open, FileAccess.ReadWrite);
        stream.Flush(flushToDisk: true);
    }
}
