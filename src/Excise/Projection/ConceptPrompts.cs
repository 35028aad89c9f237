using Excise.Data;

namespace Excise.Projection;

/// <summary>The prompts a concept subspace is collected from: built-in templates plus optional user prompts.</summary>
public static class ConceptPrompts
{
    const string ClassSlot = "{0}", ConceptSlot = "{1}";

    /// <summary>Templates with a Fashion-MNIST class ({0}) and the concept ({1}); each is instantiated for all ten classes.</summary>
    public static IReadOnlyList<string> ClassTemplates { get; } =
    [
        "a {0} with {1}",
        "a photo of a {0} with {1}",
        "a {0} bearing {1}",
        "{1} on a {0}",
        "a black and white picture of a {0} featuring {1}",
        "a {0} featuring {1}",
        "a picture of a {0} marked with {1}",
        "a grayscale photo of a {0} with {1}",
        "a product photo of a {0} showing {1}",
        "a low resolution photo of a {0} with {1}",
    ];

    /// <summary>Templates with the concept ({1}) alone.</summary>
    public static IReadOnlyList<string> ConceptOnlyTemplates { get; } =
    [
        "{1}",
        "a picture of {1}",
        "a photo of {1}",
        "an image of {1}",
        "a close-up of {1}",
        "a drawing of {1}",
    ];

    /// <summary>Placeholders a user prompt may use instead of spelling out the concept.</summary>
    public static IReadOnlyList<string> Placeholders { get; } = ["{concept}", "{}"];

    public static IReadOnlyList<ConceptPrompt> BuiltIn(string concept)
    {
        ValidateConcept(concept);
        var prompts = new List<ConceptPrompt>();
        foreach (var template in ClassTemplates)
            foreach (var noun in FashionMnistClasses.CaptionNouns)
                prompts.Add(Instantiate(template.Replace(ClassSlot, noun), concept));
        foreach (var template in ConceptOnlyTemplates)
            prompts.Add(Instantiate(template, concept));
        return prompts;
    }

    // Articles are fixed while the concept is still a placeholder, so a concept that itself starts with "a"/"an"
    // is never rewritten and its span stays exact.
    static ConceptPrompt Instantiate(string template, string concept) =>
        ConceptPrompt.FromPlaceholder(Articles.Fix(template), ConceptSlot, concept);

    /// <summary>
    /// Turns user prompt lines into concept prompts. A line containing a placeholder ({concept} or {}) yields one
    /// prompt per concept; any other line must contain at least one concept phrase (case-insensitive) and yields a
    /// prompt for each concept it contains. Blank lines and lines starting with '#' are skipped.
    /// </summary>
    /// <param name="source">Names the lines' origin in error messages, e.g. the file path.</param>
    public static IReadOnlyList<ConceptPrompt> FromLines(IReadOnlyList<string> concepts, IEnumerable<string> lines, string source)
    {
        foreach (var concept in concepts) ValidateConcept(concept);
        var prompts = new List<ConceptPrompt>();
        int lineNumber = 0;
        foreach (var raw in lines)
        {
            lineNumber++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            var placeholder = Placeholders.FirstOrDefault(p => line.Contains(p, StringComparison.Ordinal));
            if (placeholder is not null)
            {
                if (Placeholders.Count(p => line.Contains(p, StringComparison.Ordinal)) > 1)
                    throw new ArgumentException($"{source}: line {lineNumber} (\"{line}\") mixes the placeholders {string.Join(" and ", Placeholders)}; use one.");
                prompts.AddRange(concepts.Select(c => ConceptPrompt.FromPlaceholder(line, placeholder, c)));
                continue;
            }
            var literal = concepts.Select(c => ConceptPrompt.FromLiteral(line, c)).OfType<ConceptPrompt>().ToList();
            if (literal.Count == 0)
                throw new ArgumentException(
                    $"{source}: line {lineNumber} (\"{line}\") contains neither the concept phrase ({string.Join(", ", concepts.Select(c => $"\"{c}\""))}) " +
                    $"nor a placeholder ({string.Join(" or ", Placeholders)}) to put it in.");
            prompts.AddRange(literal);
        }
        return prompts;
    }

    /// <summary>Reads and validates a prompt file (one prompt per line); returns its usable lines.</summary>
    public static IReadOnlyList<string> ReadFile(string path, IReadOnlyList<string> concepts)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Prompt file not found: {path}", path);
        var lines = File.ReadAllLines(path);
        if (FromLines(concepts, lines, path).Count == 0) throw new InvalidDataException($"{path}: no prompts (only blank or '#' lines).");
        return lines.Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
    }

    internal static void ValidateConcept(string concept)
    {
        if (string.IsNullOrWhiteSpace(concept)) throw new ArgumentException("A concept phrase must not be empty.");
        if (concept != concept.Trim()) throw new ArgumentException($"Concept \"{concept}\" has leading or trailing spaces.");
        if (Placeholders.Any(p => concept.Contains(p, StringComparison.Ordinal)) || concept.Contains(ConceptSlot))
            throw new ArgumentException($"Concept \"{concept}\" contains a placeholder.");
    }
}
