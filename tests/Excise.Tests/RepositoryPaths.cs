namespace Excise.Tests;

/// <summary>Files of the repository the tests run from (configs/, tests/golden/).</summary>
public static class RepositoryPaths
{
    public static string Root { get; } = Locate();

    public static string Config(string name) => Path.Combine(Root, "configs", name + ".json");

    /// <summary>The `excise` executable of this build (the test project builds it without referencing it).</summary>
    public static string Cli => Path.Combine(Root, "src", "Excise.Cli", "bin",
#if DEBUG
        "Debug",
#else
        "Release",
#endif
        "net10.0", "linux-x64", OperatingSystem.IsWindows() ? "Excise.Cli.exe" : "Excise.Cli");

    static string Locate()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Excise.slnx"))) return dir.FullName;
        throw new DirectoryNotFoundException($"No Excise.slnx above {AppContext.BaseDirectory}.");
    }
}

/// <summary>A temporary directory deleted when the test ends.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("excise-test-").FullName;
    public string File(string name) => System.IO.Path.Combine(Path, name);
    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
