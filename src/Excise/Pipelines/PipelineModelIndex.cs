using System.Text.Json;

namespace Excise.Pipelines;

/// <summary>One entry of <c>model_index.json</c>: a component's key (also its subfolder) and its <c>[library, class]</c> pair;
/// a component saved as None is <c>[null, null]</c>.</summary>
public sealed record PipelineComponent(string Name, string? Library, string? ClassName)
{
    public bool IsAbsent => Library is null && ClassName is null;
}

/// <summary>
/// A diffusers pipeline's <c>model_index.json</c> as Excise reads it: the pipeline class and its components. Only a
/// <c>StableDiffusionPipeline</c> with the five components Excise builds is accepted; the optional ones diffusers knows
/// (<c>safety_checker</c>, <c>feature_extractor</c>, <c>image_encoder</c>) are read and ignored, and any other component
/// is refused, naming the file and the key, because a pipeline with a part Excise does not load would be trained without it.
/// Non-component keys (<c>requires_safety_checker</c>, <c>_diffusers_version</c>) are ignored. The file is copied as it is
/// when a pipeline is written back, so nothing here is written.
/// </summary>
public sealed record PipelineModelIndex(string ClassName, IReadOnlyList<PipelineComponent> Components)
{
    public const string FileName = "model_index.json";
    public const string PipelineClass = "StableDiffusionPipeline";

    /// <summary>The components Excise loads, each with its library and the classes it builds, in model_index order.</summary>
    internal static readonly IReadOnlyList<(string Name, string Library, IReadOnlyList<string> Classes)> RequiredComponents =
    [
        ("vae", "diffusers", ["AutoencoderKL"]),
        ("text_encoder", "transformers", ["CLIPTextModel"]),
        ("tokenizer", "transformers", ["CLIPTokenizer", "CLIPTokenizerFast"]),
        ("unet", "diffusers", ["UNet2DConditionModel"]),
        ("scheduler", "diffusers", SchedulerConfig.SupportedClasses),
    ];

    /// <summary>diffusers' optional components: present, absent or <c>[null, null]</c>, Excise leaves them as they are.</summary>
    internal static readonly IReadOnlyList<string> OptionalComponents = ["safety_checker", "feature_extractor", "image_encoder"];

    /// <summary>Parses and checks a model_index.json; every refusal names <paramref name="source"/> and the key.</summary>
    public static PipelineModelIndex Parse(string json, string source)
    {
        JsonDocument document;
        try { document = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip }); }
        catch (JsonException e) { throw new InvalidDataException($"{source}: not valid JSON ({e.Message}).", e); }
        using var _ = document;
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{source}: must be a JSON object.");

        if (!root.TryGetProperty("_class_name", out var classElement) || classElement.ValueKind != JsonValueKind.String)
            throw new InvalidDataException($"{source} '_class_name': missing or not a string; diffusers writes the pipeline's class there.");
        var className = classElement.GetString()!;
        if (className != PipelineClass)
            throw new NotSupportedException($"{source} '_class_name': '{className}' is not supported (only {PipelineClass}).");

        var components = new List<PipelineComponent>();
        foreach (var property in root.EnumerateObject())
        {
            // Components are [library, class] pairs; everything else (_class_name, requires_safety_checker, …) is pipeline config.
            if (property.Name.StartsWith('_') || property.Value.ValueKind != JsonValueKind.Array) continue;
            var pair = property.Value.EnumerateArray().ToArray();
            if (pair.Length != 2 || pair.Any(e => e.ValueKind is not (JsonValueKind.String or JsonValueKind.Null)))
                throw new InvalidDataException($"{source} '{property.Name}': expected a [library, class] pair, got {property.Value.GetRawText()}.");
            components.Add(new PipelineComponent(property.Name, pair[0].GetString(), pair[1].GetString()));
        }

        foreach (var (name, library, classes) in RequiredComponents)
        {
            var component = components.FirstOrDefault(c => c.Name == name)
                            ?? throw new InvalidDataException($"{source} '{name}': missing; a Stable Diffusion pipeline needs {library} {classes[0]} there.");
            if (component.Library != library || component.ClassName is null || !classes.Contains(component.ClassName))
                throw new NotSupportedException(
                    $"{source} '{name}': [{Quote(component.Library)}, {Quote(component.ClassName)}] is not supported (only {library} {(classes.Count > 2 ? "one of " + string.Join(", ", classes) : string.Join(" or ", classes))}).");
        }
        foreach (var component in components)
            if (!component.IsAbsent && !RequiredComponents.Any(r => r.Name == component.Name) && !OptionalComponents.Contains(component.Name))
                throw new NotSupportedException(
                    $"{source} '{component.Name}': a component Excise does not load ([{Quote(component.Library)}, {Quote(component.ClassName)}]); " +
                    $"a Stable Diffusion 1.x/2.x pipeline has only {string.Join(", ", RequiredComponents.Select(r => r.Name).Concat(OptionalComponents))}.");
        return new PipelineModelIndex(className, components);
    }

    /// <summary>The class model_index.json names for a component (null if absent).</summary>
    public string? ClassOf(string component) => Components.FirstOrDefault(c => c.Name == component)?.ClassName;

    private static string Quote(string? value) => value is null ? "null" : $"\"{value}\"";
}
