namespace Excise.Data;

/// <summary>The ten Fashion-MNIST labels, as published and as nouns that read well inside a caption.</summary>
public static class FashionMnistClasses
{
    public const int Count = 10;

    public static IReadOnlyList<string> Names { get; } =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    public static IReadOnlyList<string> CaptionNouns { get; } =
        ["t-shirt", "pair of trousers", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"];

    public static string NameOf(int label) => Names[CheckLabel(label)];

    public static string CaptionNounOf(int label) => CaptionNouns[CheckLabel(label)];

    private static int CheckLabel(int label) => label is >= 0 and < Count
        ? label
        : throw new ArgumentOutOfRangeException(nameof(label), $"Fashion-MNIST labels are 0..9, got {label}.");
}
