using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Numerics;
using Excise.Configuration;

namespace Excise.Cli;

/// <summary>Raised for a command line the user must fix once parsing succeeded (two options that exclude each other, a missing file); exit 2.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>
/// The options every command builds from. Numbers are held to the rules config values are: NaN, infinities and values
/// outside the option's range are parse errors naming the option (exit 2), so no command has to think of them.
/// A default given here is what <c>--help</c> prints.
/// </summary>
static class CliOptions
{
    public static Option<string> Text(string name, string description, bool required = false, string? helpName = null, params string[] aliases) =>
        new(name, aliases) { Description = description, Required = required, HelpName = helpName ?? Placeholder(name) };

    public static Option<string> Text(string name, string description, string defaultValue, string? helpName = null) =>
        new(name) { Description = description, DefaultValueFactory = _ => defaultValue, HelpName = helpName ?? Placeholder(name) };

    /// <summary>An option that may be repeated: <c>--set a=1 --set b=2</c>.</summary>
    public static Option<string[]> Repeated(string name, string description, string? helpName = null) =>
        new(name) { Description = description, HelpName = helpName ?? Placeholder(name), Arity = ArgumentArity.OneOrMore, AllowMultipleArgumentsPerToken = false };

    public static Option<bool> Flag(string name, string description) => new(name) { Description = description };

    public static Option<int> Int(string name, string description, int defaultValue, int min = int.MinValue, int max = int.MaxValue, params string[] aliases)
    {
        var option = new Option<int>(name, aliases) { Description = description, DefaultValueFactory = _ => defaultValue, HelpName = "N" };
        option.Validators.Add(result => InRange(result, result.GetValueOrDefault<int>(), min, max));
        return option;
    }

    /// <summary>An integer with no default: null when the option is not given.</summary>
    public static Option<int?> OptionalInt(string name, string description, int min = int.MinValue, int max = int.MaxValue)
    {
        var option = new Option<int?>(name) { Description = description, HelpName = "N" };
        option.Validators.Add(result => { if (result.GetValueOrDefault<int?>() is { } v) InRange(result, v, min, max); });
        return option;
    }

    /// <summary>libtorch's intra-op threads for a command that runs the model; 0 lets libtorch take one per core.</summary>
    public static Option<int> Threads() => Int("--threads", "libtorch threads (0 = one per core).", 0, min: 0);

    public static Option<long> Long(string name, string description, long defaultValue, long min = long.MinValue)
    {
        var option = new Option<long>(name) { Description = description, DefaultValueFactory = _ => defaultValue, HelpName = "N" };
        option.Validators.Add(result => InRange(result, result.GetValueOrDefault<long>(), min, long.MaxValue));
        return option;
    }

    public static Option<double> Double(string name, string description, double defaultValue, double min = double.MinValue, double max = double.MaxValue)
    {
        var option = new Option<double>(name) { Description = description, DefaultValueFactory = _ => defaultValue, HelpName = "X" };
        option.Validators.Add(result => Finite(result, result.GetValueOrDefault<double>(), min, max));
        return option;
    }

    /// <summary>A number with no default: null when the option is not given.</summary>
    public static Option<double?> OptionalDouble(string name, string description, double min = double.MinValue, double max = double.MaxValue)
    {
        var option = new Option<double?>(name) { Description = description, HelpName = "X" };
        option.Validators.Add(result => { if (result.GetValueOrDefault<double?>() is { } v) Finite(result, v, min, max); });
        return option;
    }

    /// <summary>One of an enum's spellings (<see cref="EnumNames"/>); the help and the shell's completion list them. Read it with <see cref="GetChoice"/>.</summary>
    public static ChoiceOption<T> Choice<T>(string name, string description, T defaultValue) where T : struct, Enum => new(name, description, defaultValue);

    public static T GetChoice<T>(this ParseResult result, ChoiceOption<T> option) where T : struct, Enum => result.GetValue(option) ?? option.Default;

    /// <summary>One of an enum's spellings that the command cannot do without.</summary>
    public static Option<T> RequiredChoice<T>(string name, string description) where T : struct, Enum
    {
        var option = new Option<T>(name) { Description = description, Required = true, CustomParser = ParseChoice<T>, HelpName = EnumNames.AllNames<T>("|") };
        SpellingsOnly<T>(option.CompletionSources);
        return option;
    }

    /// <summary>An enum with no default: null when the option is not given.</summary>
    public static Option<T?> OptionalChoice<T>(string name, string description) where T : struct, Enum
    {
        var option = new Option<T?>(name) { Description = description, CustomParser = result => ParseChoice<T>(result), HelpName = EnumNames.AllNames<T>("|") };
        SpellingsOnly<T>(option.CompletionSources);
        return option;
    }

    /// <summary>A comma-separated list of an enum's spellings (<c>--arms standard,masked-loss</c>); null when not given.</summary>
    public static Option<IReadOnlyList<T>?> ChoiceList<T>(string name, string description) where T : struct, Enum =>
        new(name)
        {
            Description = description + $" Any of: {EnumNames.AllNames<T>()}.",
            HelpName = "a,b,…",
            CustomParser = result => SplitList(result).Select(text => EnumNames.TryParse<T>(text, out var value) ? value : Fail<T>(result, $"{OptionName(result)}: '{text}' is not one of {EnumNames.AllNames<T>()}.")).ToList(),
        };

    /// <summary>A comma-separated list of finite numbers (<c>--shares 0.01,0.1</c>); null when not given.</summary>
    public static Option<IReadOnlyList<double>?> NumberList(string name, string description, string helpName) =>
        new(name)
        {
            Description = description,
            HelpName = helpName,
            CustomParser = result => SplitList(result).Select(text =>
                double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var x) && double.IsFinite(x) ? x
                    : Fail<double>(result, $"{OptionName(result)} takes finite numbers such as {helpName} (got '{text}').")).ToList(),
        };

    /// <summary>A comma-separated list of words (<c>--only train,profile</c>); null when not given.</summary>
    public static Option<IReadOnlyList<string>?> WordList(string name, string description) =>
        new(name) { Description = description, HelpName = "a,b,…", CustomParser = result => SplitList(result).ToList() };

    /// <summary>Completion offers the spellings the option accepts, not the C# member names System.CommandLine adds for an enum.</summary>
    internal static void SpellingsOnly<T>(List<Func<System.CommandLine.Completions.CompletionContext, IEnumerable<System.CommandLine.Completions.CompletionItem>>> sources) where T : struct, Enum
    {
        sources.Clear();
        sources.Add(Enum.GetValues<T>().Select(v => v.ToName()).ToArray());
    }

    internal static T ParseChoice<T>(ArgumentResult result) where T : struct, Enum
    {
        var text = result.Tokens.Count > 0 ? result.Tokens[^1].Value : "";
        return EnumNames.TryParse<T>(text, out var value) ? value : Fail<T>(result, $"{OptionName(result)} must be one of {EnumNames.AllNames<T>()} (got '{text}').");
    }

    static IEnumerable<string> SplitList(ArgumentResult result) =>
        result.Tokens.SelectMany(t => t.Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    static T Fail<T>(ArgumentResult result, string message)
    {
        result.AddError(message);
        return default!;
    }

    static string OptionName(ArgumentResult result) => (result.Parent as OptionResult)?.Option.Name ?? "option";

    static void InRange<T>(OptionResult result, T value, T min, T max) where T : INumber<T>, IMinMaxValue<T>
    {
        if (value < min || value > max)
            result.AddError($"{result.Option.Name} must be {Range(min, max)}, got {value}.");
    }

    static void Finite(OptionResult result, double value, double min, double max)
    {
        if (!double.IsFinite(value)) result.AddError($"{result.Option.Name} expects a finite number, got {value.ToString(CultureInfo.InvariantCulture)}.");
        else if (value < min || value > max) result.AddError($"{result.Option.Name} must be {Range(min, max)}, got {value.ToString(CultureInfo.InvariantCulture)}.");
    }

    /// <summary>"at least 1", "at most 9" or "within [0, 1]": a bound at the type's extreme is no bound.</summary>
    static string Range<T>(T min, T max) where T : INumber<T>, IMinMaxValue<T> =>
        min == T.MinValue ? $"at most {max}" : max == T.MaxValue ? $"at least {min}" : $"within [{min}, {max}]";

    /// <summary>"--out" → "OUT", "--inversion-steps" → "INVERSION_STEPS": what help shows in place of the value.</summary>
    static string Placeholder(string name) => name.TrimStart('-').Replace('-', '_').ToUpperInvariant();
}

/// <summary>
/// An enum option with a default. Its help shows the default as the command line spells it ("ddim"); with a default
/// value factory System.CommandLine would print the C# member name ("Ddim"), which the option does not accept.
/// </summary>
sealed class ChoiceOption<T> : Option<T?> where T : struct, Enum
{
    public ChoiceOption(string name, string description, T defaultValue) : base(name)
    {
        Default = defaultValue;
        Description = $"{description} [default: {defaultValue.ToName()}]";
        HelpName = EnumNames.AllNames<T>("|");
        CustomParser = result => CliOptions.ParseChoice<T>(result);
        CliOptions.SpellingsOnly<T>(CompletionSources);
    }

    public T Default { get; }
}
