using Excise.Data;

namespace Excise.Attacks;

/// <summary>A prompt an attack samples with, and the garment class it asks for (null when the prompt names none).</summary>
public sealed record AttackPrompt(string Text, int? ClassLabel)
{
    public string? ClassName => ClassLabel is { } label ? FashionMnistClasses.NameOf(label) : null;
}

/// <summary>The prompt lists of the text-only attacks.</summary>
public static class AttackPrompts
{
    public const string ClassPlaceholder = Projection.ConceptParaphrases.ClassPlaceholder;

    /// <summary>The concept named directly, for every class.</summary>
    public static IReadOnlyList<string> DirectTemplates(string concept) =>
        ["a {class} with " + concept, "a photo of a {class} with " + concept];

    /// <summary>The same sentences as <see cref="DirectTemplates"/> without the concept: the like-for-like control.</summary>
    public static IReadOnlyList<string> PlainTemplates { get; } = ["a {class}", "a photo of a {class}"];

    /// <summary>Each template once per class, in template-major order; a template without <c>{class}</c> is used verbatim once.</summary>
    public static IReadOnlyList<AttackPrompt> Expand(IEnumerable<string> templates)
    {
        var prompts = new List<AttackPrompt>();
        foreach (var template in templates)
        {
            if (!template.Contains(ClassPlaceholder, StringComparison.Ordinal))
            {
                prompts.Add(new AttackPrompt(template, null));
                continue;
            }
            for (int label = 0; label < FashionMnistClasses.Count; label++)
                prompts.Add(new AttackPrompt(ForClass(template, label), label));
        }
        return prompts;
    }

    public static string ForClass(string template, int label) =>
        Articles.Fix(template.Replace(ClassPlaceholder, FashionMnistClasses.CaptionNounOf(label), StringComparison.Ordinal));

    public static IReadOnlyList<AttackPrompt> Direct(string concept) => Expand(DirectTemplates(concept));

    public static IReadOnlyList<AttackPrompt> Plain() => Expand(PlainTemplates);
}
