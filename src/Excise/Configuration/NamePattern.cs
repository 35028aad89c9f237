using System.Text.RegularExpressions;

namespace Excise.Configuration;

/// <summary>
/// Patterns over parameter and module names (LoRA targets, projected weights): .NET regular expressions matched in
/// linear time (<see cref="RegexOptions.NonBacktracking"/>), so no pattern in a config can stall a run with
/// catastrophic backtracking. Constructs that need backtracking (backreferences, lookarounds) are refused.
/// </summary>
public static class NamePattern
{
    public static Regex Compile(string pattern, string what)
    {
        try { return new Regex(pattern, RegexOptions.CultureInvariant | RegexOptions.NonBacktracking); }
        catch (NotSupportedException e)
        {
            throw new ArgumentException($"{what} '{pattern}' uses a construct linear-time matching does not support (backreference, lookaround, atomic group): {e.Message}", e);
        }
        catch (ArgumentException e) { throw new ArgumentException($"{what} '{pattern}' is not a valid regular expression: {e.Message}", e); }
    }
}
