using System.Diagnostics;

namespace Excise.Training;

/// <summary>
/// An exclusive lock on a directory that a job writes to (a training run, an experiment's output), so a second job
/// on the same directory fails at once with a clear message instead of interleaving checkpoints. It is an OS file
/// lock (flock on Linux, taken by .NET for FileShare.None), so a killed process releases it: no stale locks to clean.
/// </summary>
public sealed class RunLock : IDisposable
{
    public const string FileName = ".lock";
    /// <summary>Who holds the lock, for the message a second job gets (the locked file itself cannot be read while held).</summary>
    public const string OwnerFileName = ".lock.owner";
    readonly FileStream stream;

    RunLock(FileStream stream) => this.stream = stream;

    /// <exception cref="InvalidOperationException">Another process (or job in this one) holds the directory.</exception>
    public static RunLock Acquire(string directory, string what = "run")
    {
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, FileName);
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            string holder = "";
            try { holder = File.ReadAllText(Path.Combine(directory, OwnerFileName)).Trim(); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw new InvalidOperationException(
                $"{directory} is in use by another {what}{(holder.Length > 0 ? $" ({holder})" : "")}. Wait for it to finish, stop it, or choose another output directory.");
        }
        File.WriteAllText(Path.Combine(directory, OwnerFileName),
            $"pid {Environment.ProcessId} on {Environment.MachineName} since {DateTime.UtcNow:yyyy-MM-dd HH:mm:ss} UTC");
        return new RunLock(stream);
    }

    public void Dispose() => stream.Dispose();
}
