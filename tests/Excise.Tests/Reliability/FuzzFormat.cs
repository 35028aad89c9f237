namespace Excise.Tests.Reliability;

/// <summary>One mutated input: which seed it came from, what was done to it, and the bytes to put in <see cref="FileName"/>.</summary>
/// <param name="Overrides">For configs: <c>--set</c> assignments applied on top of the file.</param>
public sealed record FuzzCase(string Seed, string Mutation, string FileName, byte[] Bytes, IReadOnlyList<string>? Overrides = null);

/// <summary>One real code path that reads the input.</summary>
public sealed record FuzzLoader(string Name, Action Run);

/// <summary>
/// A file format under fuzz: valid seed files written by our own code (or the real dataset), a generator of
/// mutated copies, and the real loader(s) a user's file would go through. Each format works in its own directory.
/// </summary>
public abstract class FuzzFormat : IDisposable
{
    protected FuzzFormat(string workspace)
    {
        Workspace = workspace;
        Directory.CreateDirectory(workspace);
    }

    public string Workspace { get; }
    public abstract string Name { get; }

    /// <summary>The exception types (exact, not subclasses) a rejection may use: the ones the CLI reports as a message.</summary>
    public abstract IReadOnlyList<Type> RejectionTypes { get; }

    /// <summary>Text a rejection message must contain (any one of them): the file's name, so the user knows which file is bad.
    /// Empty when the message names a setting instead.</summary>
    public abstract IReadOnlyList<string> MessageMustName(FuzzCase input);

    /// <summary>The unmutated seeds, each of which the loader must accept.</summary>
    public abstract IEnumerable<FuzzCase> Seeds();

    /// <summary>A mutated copy of a randomly chosen seed.</summary>
    public abstract FuzzCase Next(Random random);

    /// <summary>Writes the input where the loaders expect it.</summary>
    public abstract void Write(FuzzCase input);

    /// <summary>The real loaders a user's file goes through, each judged on its own: accepted, or rejected as documented.</summary>
    public abstract IReadOnlyList<FuzzLoader> Loaders(FuzzCase input);

    /// <summary>Applies one to three generic byte mutations.</summary>
    protected static (byte[] Bytes, string What) Generic(byte[] seed, Random random)
    {
        var bytes = seed;
        var steps = new List<string>();
        int count = 1 + (random.Next(4) == 0 ? random.Next(3) : 0);
        for (int i = 0; i < count; i++)
        {
            var (mutated, what) = Mutations.AnyGeneric(bytes, random);
            bytes = mutated;
            steps.Add(what);
        }
        return (bytes, string.Join("; ", steps));
    }

    public virtual void Dispose() { }
}
