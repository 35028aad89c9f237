using System.Text.Json;
using Excise.Data;
using Excise.Training;

namespace Excise.Attacks;

/// <summary>
/// The adversary's material for textual inversion: images carrying the concept that the victim never trained on.
/// They are the held-out split of the victim's own dataset recipe (same logo, placement and size), which takes the
/// sources right after the training ones, and they are checked against the run's recorded training ids.
/// </summary>
public static class HeldOutConcept
{
    /// <summary>The concept definition used to stamp the held-out images: the run's data.concept, else the defaults with the given phrase.</summary>
    public static ConceptConfig ConceptFor(RunConfig config, string phrase) => config.DataOrDefault.Concept ?? new ConceptConfig(Phrase: phrase);

    public static IReadOnlyList<TrainingExample> Build(RunConfig config, string phrase, int count)
    {
        if (count < 1) throw new ArgumentException($"held-out image count must be ≥ 1 (got {count}).");
        var data = config.DataOrDefault with { Concept = ConceptFor(config, phrase) };
        var recipe = data.ToRecipe() with { HeldOutStampedCount = count };
        // With a limit the held-out sources follow the training ones; without one they are the last of the source,
        // which the victim only left out if it held out at least as many itself.
        int victimHeldOut = config.DataOrDefault.Concept?.HeldOut ?? 0;
        if (recipe.Limit is null && victimHeldOut < count)
            throw new InvalidOperationException(
                $"The victim trained on every image of its source (data.limit = 0) and held out only {victimHeldOut} (data.concept.held_out), " +
                $"so {count} held-out images cannot all be unseen. Ask for at most {victimHeldOut}, or train the victim with data.concept.held_out ≥ {count}.");
        var sources = ConceptDatasetBuilder.LoadSources(recipe);
        if (sources.Count < count)
            throw new InvalidDataException($"The victim's data source has {sources.Count} images; {count} held-out images were asked for.");
        // Only the held-out sources are composed: composition is per example id, so the result is the same as building everything.
        var heldOutSources = sources.Skip(sources.Count - count).ToList();
        var examples = ConceptDatasetBuilder.Build(heldOutSources, recipe).HeldOutStamped;

        return examples;
    }

    /// <summary>The ids a run trained on, from its ground_truth.jsonl; null when the run did not record them.</summary>
    public static IReadOnlySet<string>? TrainingIds(RunDirectory run)
    {
        if (!File.Exists(run.GroundTruthPath)) return null;
        var ids = new HashSet<string>(StringComparer.Ordinal);
        int lineNumber = 0;
        foreach (var line in File.ReadLines(run.GroundTruthPath))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                using var doc = JsonDocument.Parse(line);
                ids.Add(doc.RootElement.GetProperty("id").GetString() ?? throw new InvalidDataException("null id"));
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                throw new InvalidDataException($"{run.GroundTruthPath}:{lineNumber}: not a ground-truth record with an 'id' ({e.Message}).", e);
            }
        }
        return ids;
    }

    /// <summary>Refuses held-out images the victim trained on.</summary>
    public static void EnsureUnseen(IEnumerable<TrainingExample> heldOut, IReadOnlySet<string> trainingIds, string source)
    {
        var seen = heldOut.Select(e => e.Id).Where(trainingIds.Contains).ToList();
        if (seen.Count > 0)
            throw new InvalidOperationException(
                $"{source}: {seen.Count} held-out image(s) are among the victim's training images (e.g. {seen[0]}); inversion must learn from unseen images.");
    }
}
