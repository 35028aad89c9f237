namespace Excise.Projection;

/// <summary>
/// Which text-encoder states of the concept prompts span the prohibited subspace. Cross-attention keys and values
/// are linear in the token states, so a weight update orthogonal to the subspace leaves the keys/values of every
/// state inside it unchanged. The modes trade how tightly the subspace hugs the concept against how much of the
/// concept's contextual spill-over it also blocks. Measured costs for "the Acme logo" are in docs/concept-subspaces.md.
/// </summary>
public enum SubspaceMode
{
    /// <summary>
    /// The states at the concept phrase's own token positions (the paper's reading). One vector per concept token
    /// per prompt (4 per prompt for "the Acme logo"). Tightest subspace; misses the concept's influence on the
    /// surrounding words, which a bidirectional encoder such as MiniLM spreads over the whole prompt.
    /// </summary>
    ConceptTokens,

    /// <summary>
    /// For each concept prompt, the same prompt with the concept removed (see <see cref="ConceptPrompt.WithoutConcept"/>);
    /// the differences of the states at every aligned position (position i in both, i below the shorter real length,
    /// [CLS] included) plus the difference of the masked-mean (pooled) states. Captures what the concept changes
    /// anywhere in the prompt, including its spill-over into other words. "Aligned" is purely positional: where the
    /// concept ends the prompt (every built-in template except "{concept} on a {class}") the positions before it hold the same
    /// words in both prompts and their difference is exactly the concept's contextual effect; at and after the
    /// removal point the two prompts hold different words, so those differences also carry word identity
    /// (e.g. "ac" minus [SEP]) and, for a concept in the middle, the shift of all later words.
    /// </summary>
    Contrastive,

    /// <summary>
    /// Every real (unpadded) token state of every concept prompt, [CLS] and [SEP] included. Widest subspace: it also
    /// contains the class nouns and template words, so projecting it out hampers learning of everything those prompts
    /// say, not only the concept. Useful as an upper bound.
    /// </summary>
    AllTokens,
}
