namespace Excise.Tests.Cli;

/// <summary>The exit codes the README documents: 0 done, 1 the job could not be done, 2 a usage error, 3 a failed certificate (SelectiveArmsTests runs <c>excise verify</c> on a run that fails it).</summary>
public sealed class ExitCodeTests
{
    static (int ExitCode, string Output) Run(params string[] args) => CliProcess.Run(args);

    // Every command, with what it requires pointing at nothing: a mistyped option is reported as such (exit 2) before
    // any file is read, so the user fixes the command line first.
    [Theory]
    [InlineData("train --config /no/such.json --out /no/run")]
    [InlineData("train --resume /no/run")]
    [InlineData("sample --run /no/run --prompt a --out /no/grid.png")]
    [InlineData("dataset export --config /no/such.json --out /no/dir")]
    [InlineData("concept --concept a --out /no/basis.safetensors")]
    [InlineData("verify --run /no/run")]
    [InlineData("judges train")]
    [InlineData("masks --config /no/such.json --out /no/dir")]
    [InlineData("attack --run /no/run --kind prompt --out /no/dir")]
    [InlineData("eval --run /no/run")]
    [InlineData("demo")]
    [InlineData("bench")]
    [InlineData("convert --from /no/model.pth --to /no/model.safetensors --allow-pickle")]
    [InlineData("base verify")]
    public void A_mistyped_option_is_a_usage_error_that_names_it(string command)
    {
        var (exit, output) = Run([.. command.Split(' '), "--stpes", "10"]);
        Assert.Equal(2, exit);
        Assert.Contains("--stpes", output);
    }

    [Fact]
    public void An_unknown_command_is_a_usage_error_and_a_missing_input_is_a_job_that_could_not_be_done()
    {
        var (exit, output) = Run("trian");
        Assert.Equal(2, exit);
        Assert.Contains("'trian'", output);
        Assert.Contains("Did you mean", output);
        Assert.Matches(@"(?m)^train\s*$", output);

        (exit, output) = Run("train", "--config", "/no/such.json", "--out", "/no/run");
        Assert.Equal(1, exit);
        Assert.Contains("/no/such.json", output);

        (exit, output) = Run("--version");
        Assert.Equal(0, exit);
        Assert.Matches(@"^\d+\.\d+\.\d+", output.Trim());
    }
}
