namespace Excise.Cli;

/// <summary>Raised for a command line the user must fix; printed without a stack trace.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>
/// A small parser for "verb [subverb] --option value --flag -n 16 --set a.b=c --set d=e" command lines.
/// Options are consumed as they are read, so unknown leftovers can be reported by name.
/// </summary>
public sealed class CommandLine
{
    readonly List<string> positionals = new();
    readonly Dictionary<string, List<string>> options = new(StringComparer.Ordinal);
    readonly HashSet<string> used = new(StringComparer.Ordinal);

    public CommandLine(IEnumerable<string> args, IReadOnlySet<string>? flags = null)
    {
        var list = args.ToList();
        for (int i = 0; i < list.Count; i++)
        {
            var a = list[i];
            if (a.StartsWith('-') && a.Length > 1 && !double.TryParse(a, out _))
            {
                var name = a.TrimStart('-');
                string? inline = null;
                int eq = name.IndexOf('=');
                if (eq > 0 && name[..eq] != "set") { inline = name[(eq + 1)..]; name = name[..eq]; }
                string value;
                if (inline is not null) value = inline;
                else if (flags?.Contains(name) == true) value = "true";
                else if (i + 1 < list.Count) value = list[++i];
                else throw new UsageException($"Option --{name} needs a value.");
                if (!options.TryGetValue(name, out var values)) options[name] = values = new List<string>();
                values.Add(value);
            }
            else positionals.Add(a);
        }
    }

    public IReadOnlyList<string> Positionals => positionals;

    public string? Option(string name, params string[] aliases)
    {
        foreach (var n in aliases.Prepend(name))
            if (options.TryGetValue(n, out var v)) { used.Add(n); return v[^1]; }
        return null;
    }

    public string Required(string name, string what)
        => Option(name) ?? throw new UsageException($"Missing --{name} ({what}).");

    public IReadOnlyList<string> All(string name)
    {
        used.Add(name);
        return options.TryGetValue(name, out var v) ? v : [];
    }

    public bool Flag(string name) => Option(name) is { } v && v != "false";

    public int Int(string name, int fallback, params string[] aliases) => Option(name, aliases) is { } v
        ? int.TryParse(v, out var x) ? x : throw new UsageException($"--{name} expects an integer, got '{v}'.")
        : fallback;

    public long Long(string name, long fallback) => Option(name) is { } v
        ? long.TryParse(v, out var x) ? x : throw new UsageException($"--{name} expects an integer, got '{v}'.")
        : fallback;

    /// <summary>A finite number (NaN and infinities are refused here, so no command has to think of them), optionally within [min, max].</summary>
    public double Double(string name, double fallback, double min = double.MinValue, double max = double.MaxValue)
    {
        if (Option(name) is not { } v) return fallback;
        if (!double.TryParse(v, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var x) || !double.IsFinite(x))
            throw new UsageException($"--{name} expects a finite number, got '{v}'.");
        if (x < min || x > max) throw new UsageException($"--{name} must be within [{min}, {max}], got {v}.");
        return x;
    }

    /// <summary>Fails on options nobody asked for, so a typo is not silently ignored.</summary>
    public void EnsureAllUsed()
    {
        var unknown = options.Keys.Where(k => !used.Contains(k)).ToList();
        if (unknown.Count > 0) throw new UsageException($"Unknown option(s): {string.Join(", ", unknown.Select(u => "--" + u))}. Run 'excise help'.");
    }
}
