namespace Excise.Tests.Cli;

/// <summary>Numbers from the command line are held to the rules config values are: a typo stops with the option's name.</summary>
public sealed class CommandLineNumberTests
{
    static (int ExitCode, string Output) Run(params string[] args) => CliProcess.Run(args);

    [Theory]
    [InlineData("--guidance", "NaN", "finite")]
    [InlineData("--guidance", "Infinity", "finite")]
    [InlineData("--guidance", "-1", "within")]
    [InlineData("--eta", "2", "within")]
    public void Sample_refuses_a_number_that_would_write_black_images(string option, string value, string says)
    {
        using var dir = new TempDir();
        // Refused before the run is opened: the run directory does not even need to exist.
        var (exit, output) = Run("sample", "--run", dir.File("no-run"), "--prompt", "a sneaker", option, value, "--out", dir.File("grid.png"));
        Assert.Equal(2, exit);
        Assert.Contains(option, output);
        Assert.Contains(says, output);
        Assert.False(File.Exists(dir.File("grid.png")));
    }
}
