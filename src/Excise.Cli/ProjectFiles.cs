namespace Excise.Cli;

/// <summary>Finds the repository's own files (configs/, runs/) from wherever the binary was built.</summary>
static class ProjectFiles
{
    static readonly Lazy<string> FoundRoot = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (Directory.Exists(Path.Combine(dir.FullName, "configs")) && File.Exists(Path.Combine(dir.FullName, "Excise.slnx")))
                return dir.FullName;
        return Directory.GetCurrentDirectory();
    });

    public static string Root => FoundRoot.Value;
    public static string RunsRoot => Environment.GetEnvironmentVariable("EXCISE_RUNS") ?? Path.Combine(Root, "runs");

    /// <summary>Where the judges are cached unless a command is told otherwise: shared by demo, eval, judges and masks.</summary>
    public static string JudgeCache => Path.Combine(RunsRoot, "judges");

    public static string Config(string name)
    {
        var path = Path.Combine(Root, "configs", name + ".json");
        return File.Exists(path) ? path : throw new FileNotFoundException($"Built-in config '{name}' not found at {path}.", path);
    }
}
