using Excise.Data;
using Excise.Models.Blocks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Excise.Models.Lora;

/// <summary>Adds, finds, merges, saves and loads LoRA adapters on the attention projections of a UNet.</summary>
public static partial class Lora
{
    /// <summary>
    /// Wraps every attention projection matched by <paramref name="options"/> in a <see cref="LoraLinear"/> and
    /// freezes every base parameter (requires_grad = false), so an optimizer over the trainable parameters
    /// (as <see cref="Training.Trainer"/> builds) updates only A and B. Base parameter names do not change.
    /// </summary>
    public static LoraAdapters Inject(UNet2DConditionModel model, LoraOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        var selected = Select(model, options);
        var existing = Find(model);
        if (existing.Count > 0)
            throw new InvalidOperationException($"The model already carries {existing.Count} LoRA adapter(s) (e.g. on {existing[0].ModuleName}); merge them or start from a fresh model.");

        foreach (var p in model.parameters()) p.requires_grad = false;
        var adapters = new List<LoraAdapter>();
        foreach (var projection in selected)
        {
            // Per-layer generator keyed by name: a layer's initial A does not depend on which other layers are adapted.
            var seed = StableDraw.Hash(options.Seed, projection.Name, "lora_A");
            var layer = new LoraLinear((Linear)projection.Layer, options.Rank, options.Alpha, seed);
            projection.Owner.ReplaceProjection(projection.Projection, layer);
            adapters.Add(new LoraAdapter(projection.Name, layer));
        }
        return new LoraAdapters(model.Config, options, adapters);
    }

    /// <summary>The adapters currently in <paramref name="model"/>; empty if it has none. Targets are the adapted
    /// module names (anchored), since the patterns that selected them are not stored in the model.</summary>
    public static LoraAdapters Adapters(UNet2DConditionModel model)
    {
        var found = Find(model);
        if (found.Count == 0) return new LoraAdapters(model.Config, new LoraOptions(), found);
        var first = found[0].Layer;
        var mixed = found.FirstOrDefault(a => a.Layer.Rank != first.Rank || a.Layer.Alpha != first.Alpha);
        if (mixed is not null)
            throw new InvalidOperationException($"LoRA adapters of the model differ in rank/alpha ({found[0].ModuleName}: r={first.Rank}, α={first.Alpha}; {mixed.ModuleName}: r={mixed.Layer.Rank}, α={mixed.Layer.Alpha}).");
        var targets = found.Select(a => "^" + System.Text.RegularExpressions.Regex.Escape(a.ModuleName) + "$").ToList();
        return new LoraAdapters(model.Config, new LoraOptions(first.Rank, first.Alpha, targets), found);
    }

    /// <summary>
    /// Folds (α/r)·B·A into each adapted base weight and puts the original Linear modules back, so the model's
    /// state dict has exactly a plain UNet's names and can be saved and loaded as base weights. Base parameters
    /// stay frozen as <see cref="Inject"/> left them.
    /// </summary>
    public static void Merge(UNet2DConditionModel model)
    {
        var projections = Projections(model).Where(p => p.Layer is LoraLinear).ToList();
        if (projections.Count == 0) throw new InvalidOperationException("The model has no LoRA adapters to merge.");
        foreach (var p in projections)
            p.Owner.ReplaceProjection(p.Projection, ((LoraLinear)p.Layer).MergeIntoBase());
    }

    internal sealed record ProjectionSite(string Name, Attention Owner, string Projection, nn.Module<Tensor, Tensor> Layer)
    {
        public Parameter Weight => Layer switch
        {
            Linear linear => linear.weight,
            LoraLinear lora => lora.BaseWeight,
            _ => throw new InvalidOperationException($"{Name} is a {Layer.GetType().Name}, not a linear projection."),
        };
    }

    /// <summary>Every attention q/k/v projection in state-dict order.</summary>
    internal static List<ProjectionSite> Projections(UNet2DConditionModel model) =>
        Walk(model, "").Where(m => m.Module is Attention)
            .SelectMany(m => Attention.ProjectionNames.Select(p => new ProjectionSite($"{m.Name}.{p}", (Attention)m.Module, p, ((Attention)m.Module).Projection(p))))
            .ToList();

    internal static List<LoraAdapter> Find(UNet2DConditionModel model) =>
        Projections(model).Where(p => p.Layer is LoraLinear).Select(p => new LoraAdapter(p.Name, (LoraLinear)p.Layer)).ToList();

    /// <summary>The projections <paramref name="options"/> selects, checked: each pattern matches something, the rank fits each layer.</summary>
    internal static List<ProjectionSite> Select(UNet2DConditionModel model, LoraOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var projections = Projections(model);
        var selected = new HashSet<string>();
        foreach (var pattern in options.TargetPatterns)
        {
            var regex = LoraOptions.TargetRegex(pattern);
            var matches = projections.Where(p => regex.IsMatch(p.Name)).ToList();
            if (matches.Count == 0)
                throw new ArgumentException($"LoRA target '{pattern}' matches no attention projection of the model. Only q/k/v projections can carry adapters; their names look like '{projections.FirstOrDefault()?.Name ?? "(the model has no attention)"}'.", nameof(options));
            selected.UnionWith(matches.Select(m => m.Name));
        }
        var result = projections.Where(p => selected.Contains(p.Name)).ToList();
        foreach (var p in result)
        {
            var (outFeatures, inFeatures) = (p.Weight.shape[0], p.Weight.shape[1]);
            if (options.Rank > Math.Min(inFeatures, outFeatures))
                throw new ArgumentException($"LoRA rank {options.Rank} is too large for {p.Name} ([{outFeatures}, {inFeatures}]); it must be at most {Math.Min(inFeatures, outFeatures)}.", nameof(options));
        }
        return result;
    }

    // Depth-first in registration order, which is state-dict order (named_modules lists children before grandchildren).
    private static IEnumerable<(string Name, nn.Module Module)> Walk(nn.Module module, string prefix)
    {
        foreach (var (name, child) in module.named_children())
        {
            var full = prefix.Length == 0 ? name : $"{prefix}.{name}";
            yield return (full, child);
            foreach (var descendant in Walk(child, full)) yield return descendant;
        }
    }
}
