namespace Excise.Tests.Cli;

/// <summary>Numbers from the command line are held to the rules config values are: a typo stops with the option's name.</summary>
public sealed class CommandLineNumberTests
{
    static (int ExitCode, string Output) Run(params string[] args) => CliProcess.Run(args);

    [Theory]
    [InlineData("--guidance", "NaN", "finite")]
    [InlineData("--guidance", "Infinity", "finite")]
    [InlineData("--guidance", "-1", "at least 0")]
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

    // Every command's numbers go through the same checks (CliOptions): each line is a value that once slipped through.
    [Theory]
    [InlineData("attack --run /no/run --kind prompt --out /no/dir --guidance NaN", "--guidance", "finite")]
    [InlineData("attack --run /no/run --kind inversion --out /no/dir --inversion-lr Infinity", "--inversion-lr", "finite")]
    [InlineData("attack --run /no/run --kind inversion --out /no/dir --inversion-t-high 1.5", "--inversion-t-high", "within [0, 1]")]
    [InlineData("eval --run /no/run -n 0", "-n", "at least 1")]
    [InlineData("masks --config /no/such.json --out /no/dir --threshold NaN", "--threshold", "finite")]
    [InlineData("concept --concept a --out /no/b.safetensors --energy 1.5", "--energy", "within [0, 1]")]
    [InlineData("verify --run /no/run --tolerance -1", "--tolerance", "within [0, 1]")]
    [InlineData("demo --seeds 0", "--seeds", "at least 1")]
    [InlineData("demo --shares 0.1,NaN", "--shares", "finite")]
    [InlineData("bench --steps 0", "--steps", "at least 1")]
    public void Every_command_refuses_a_number_out_of_range_naming_the_option(string command, string option, string says)
    {
        var (exit, output) = CliProcess.Run(command.Split(' '));
        Assert.Equal(2, exit);
        Assert.Contains(option, output);
        Assert.Contains(says, output);
    }
}
