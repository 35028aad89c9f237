using Excise.Text;

namespace Excise.Projection;

/// <summary>Encodes concept prompts and extracts the state vectors of one <see cref="SubspaceMode"/>.</summary>
public static class ConceptVectorCollector
{
    /// <summary>One row per collected vector, each <see cref="ITextEncoder.Width"/> long, in prompt order.</summary>
    public static IReadOnlyList<double[]> Collect(ITextEncoder encoder, IReadOnlyList<ConceptPrompt> prompts, SubspaceMode mode)
    {
        if (prompts.Count == 0) throw new ArgumentException("No concept prompts to collect vectors from.");
        var states = encoder.Encode(prompts.Select(p => p.Text).ToList());
        return mode switch
        {
            SubspaceMode.ConceptTokens => ConceptTokens(encoder, prompts, states),
            SubspaceMode.AllTokens => AllTokens(prompts, states),
            SubspaceMode.Contrastive => Contrastive(encoder, prompts, states),
            _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, "Unknown subspace mode."),
        };
    }

    static List<double[]> ConceptTokens(ITextEncoder encoder, IReadOnlyList<ConceptPrompt> prompts, TextStates states)
    {
        var vectors = new List<double[]>();
        for (int p = 0; p < prompts.Count; p++)
            foreach (int position in ConceptTokenLocator.Positions(encoder.Tokenizer, prompts[p], encoder.MaxLength))
                vectors.Add(StateAt(states, p, position));
        return vectors;
    }

    static List<double[]> AllTokens(IReadOnlyList<ConceptPrompt> prompts, TextStates states)
    {
        var vectors = new List<double[]>();
        for (int p = 0; p < prompts.Count; p++)
        {
            var mask = states.MaskOf(p);
            for (int t = 0; t < states.Length; t++)
                if (mask[t] != 0) vectors.Add(StateAt(states, p, t));
        }
        return vectors;
    }

    static List<double[]> Contrastive(ITextEncoder encoder, IReadOnlyList<ConceptPrompt> prompts, TextStates states)
    {
        var without = encoder.Encode(prompts.Select(p => p.WithoutConcept).ToList());
        var vectors = new List<double[]>();
        for (int p = 0; p < prompts.Count; p++)
        {
            int aligned = Math.Min(RealLength(states, p), RealLength(without, p));
            for (int t = 0; t < aligned; t++)
                vectors.Add(Subtract(StateAt(states, p, t), StateAt(without, p, t)));
            vectors.Add(Subtract(Array.ConvertAll(states.MaskedMean(p), v => (double)v), Array.ConvertAll(without.MaskedMean(p), v => (double)v)));
        }
        return vectors;
    }

    static int RealLength(TextStates states, int index)
    {
        var mask = states.MaskOf(index);
        int length = 0;
        while (length < mask.Length && mask[length] != 0) length++;
        return length;
    }

    static double[] StateAt(TextStates states, int index, int position)
    {
        var state = states.StatesOf(index).Slice(position * states.Width, states.Width);
        var vector = new double[states.Width];
        for (int d = 0; d < vector.Length; d++) vector[d] = state[d];
        return vector;
    }

    static double[] Subtract(double[] a, double[] b)
    {
        var difference = new double[a.Length];
        for (int d = 0; d < a.Length; d++) difference[d] = a[d] - b[d];
        return difference;
    }
}
