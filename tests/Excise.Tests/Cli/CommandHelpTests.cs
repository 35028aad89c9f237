namespace Excise.Tests.Cli;

/// <summary>Each command's <c>--help</c> is its own: usage, every option with its default, examples; typos get a suggestion.</summary>
public sealed class CommandHelpTests
{
    [Theory]
    [InlineData("demo", "--concept-kind", "[default: logo]")]
    [InlineData("train", "--resume", "--set")]
    [InlineData("sample", "--sampler", "[default: ddim]")]
    [InlineData("concept", "--mode", "[default: concept-tokens]")]
    [InlineData("verify", "--tolerance", "--basis")]
    [InlineData("masks", "--threshold", "[default: 0.3]")]
    [InlineData("attack", "--inversion-steps", "[default: 300]")]
    [InlineData("eval", "--resnet-images", "[default: 200]")]
    [InlineData("judges train", "--concept-config", "--quick")]
    [InlineData("dataset export", "--held-out", "--set")]
    [InlineData("base pack", "--command", "--run")]
    [InlineData("base verify", "--dir", "models/base")]
    [InlineData("bench", "--only", "[default: 10]")]
    [InlineData("bench export", "--config", "--seed")]
    [InlineData("convert", "--allow-pickle", "--from")]
    public void Every_command_has_help_of_its_own_with_its_options_defaults_and_an_example(string command, string option, string detail)
    {
        var (exit, output) = CliProcess.Run([.. command.Split(' '), "--help"]);
        Assert.Equal(0, exit);
        Assert.Matches($@"Usage:\n  excise {command} (\[command\] )?\[options\]", output.ReplaceLineEndings("\n"));
        Assert.Contains(option, output);
        Assert.Contains(detail, output);
        Assert.Matches($@"Examples:\n  excise {command}\b", output.ReplaceLineEndings("\n"));
        Assert.DoesNotContain("selective learning for text-to-image", output); // the command's help, not the global one
    }

    [Fact]
    public void Help_as_a_command_and_without_arguments_lists_every_command()
    {
        foreach (var args in new[] { Array.Empty<string>(), ["help"], ["--help"] })
        {
            var (exit, output) = CliProcess.Run(args);
            Assert.Equal(0, exit);
            foreach (var command in new[] { "demo", "train", "sample", "concept", "verify", "masks", "attack", "eval", "judges", "dataset", "base", "bench", "convert", "completion" })
                Assert.Matches($@"(?m)^  {command}\s", output);
        }
        var (_, sampleHelp) = CliProcess.Run("help", "sample");
        Assert.Contains("excise sample [options]", sampleHelp);
    }

    [Fact]
    public void A_mistyped_option_is_answered_with_the_one_it_was_probably_meant_to_be()
    {
        var (exit, output) = CliProcess.Run("sample", "--run", "r", "--prompt", "a", "--out", "g.png", "--stpes", "20");
        Assert.Equal(2, exit);
        Assert.Contains("'--stpes' was not matched. Did you mean", output);
        Assert.Matches(@"(?m)^--steps\s*$", output);
        Assert.Contains("excise sample --help", output);
    }

    [Fact]
    public void A_prompt_that_starts_with_an_at_sign_is_a_prompt_not_a_response_file()
    {
        // System.CommandLine reads "@file" tokens as files of arguments by default; a caption or prompt may start with '@'.
        var (exit, output) = CliProcess.Run("sample", "--run", "/no/run", "--prompt", "@acme on a bag", "--out", "/no/grid.png");
        Assert.Equal(1, exit); // the missing run, found after parsing; a response file would have been a usage error
        Assert.Contains("/no/run", output);
    }

    [Fact]
    public void Completion_offers_an_options_values_as_the_command_line_spells_them()
    {
        // What the script from `excise completion` asks for: the suggestions at the cursor of a partial line.
        var (exit, output) = CliProcess.Run("[suggest:26]", "./excise attack --kind inver");
        Assert.Equal(0, exit);
        Assert.Equal(["inversion", "inversion-control"], output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        (_, output) = CliProcess.Run("[suggest:26]", "./excise sample --sampler ");
        Assert.Equal(["ddim", "dpm++2m"], output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        (_, output) = CliProcess.Run("completion");
        Assert.Contains("complete -o default -F _excise_complete excise ./excise", output);
    }
}
