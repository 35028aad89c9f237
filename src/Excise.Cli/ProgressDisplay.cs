using Spectre.Console;

namespace Excise.Cli;

/// <summary>
/// A progress bar with a live status line when the terminal is interactive; plain periodic lines otherwise
/// (CI logs, pipes), so long jobs always show where they are and how long they have left.
/// </summary>
public static class ProgressDisplay
{
    public static T Run<T>(string title, double total, Func<Action<double, string>, T> work)
    {
        if (!AnsiConsole.Profile.Capabilities.Interactive)
        {
            var last = DateTime.MinValue;
            return work((value, status) =>
            {
                if (DateTime.UtcNow - last < TimeSpan.FromSeconds(10) && value < total) return;
                last = DateTime.UtcNow;
                AnsiConsole.MarkupLine($"[grey]{Markup.Escape(title)}[/] {value / total:P0} {Markup.Escape(status)}");
            });
        }
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(title), maxValue: total);
                result = work((value, status) =>
                {
                    task.Value = Math.Min(value, total);
                    task.Description = $"{Markup.Escape(title)} [grey]{Markup.Escape(status)}[/]";
                });
                task.Value = total;
            });
        return result;
    }

    public static string Duration(TimeSpan t) =>
        t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes:D2}m" : t.TotalMinutes >= 1 ? $"{(int)t.TotalMinutes}m{t.Seconds:D2}s" : $"{t.TotalSeconds:F0}s";
}
