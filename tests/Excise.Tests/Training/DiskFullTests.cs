using System.Diagnostics;
using Excise.Training;
using Xunit.Abstractions;

namespace Excise.Tests.Training;

/// <summary>Runs only where a tmpfs can be mounted (root with CAP_SYS_ADMIN): a real full disk, not a simulated one.</summary>
public sealed class TmpfsFactAttribute : FactAttribute
{
    static readonly Lazy<bool> CanMount = new(() =>
    {
        if (!OperatingSystem.IsLinux() || Environment.UserName != "root") return false;
        using var probe = new TempDir();
        if (!Tmpfs.TryRun("mount", $"-t tmpfs -o size=64k tmpfs {probe.Path}")) return false;
        Tmpfs.TryRun("umount", probe.Path);
        return true;
    });

    public TmpfsFactAttribute()
    {
        if (!CanMount.Value) Skip = "needs root and permission to mount a tmpfs (mount -t tmpfs)";
    }
}

/// <summary>A size-limited tmpfs mounted on a temporary directory for the length of a test.</summary>
internal sealed class Tmpfs : IDisposable
{
    readonly TempDir mountPoint = new();
    public string Path => mountPoint.Path;

    public Tmpfs(string size)
    {
        if (!TryRun("mount", $"-t tmpfs -o size={size} tmpfs {Path}")) throw new InvalidOperationException($"could not mount a tmpfs on {Path}");
    }

    /// <summary>Shrinks (or grows) the file system in place; files already on it stay.</summary>
    public void Resize(long bytes) => Assert.True(TryRun("mount", $"-o remount,size={bytes} {Path}"), "remount");

    public long UsedBytes()
    {
        var psi = new ProcessStartInfo("df", $"-B1 --output=used {Path}") { RedirectStandardOutput = true };
        using var df = Process.Start(psi)!;
        var lines = df.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        df.WaitForExit();
        return long.Parse(lines[^1].Trim());
    }

    public static bool TryRun(string file, string arguments)
    {
        var psi = new ProcessStartInfo(file, arguments) { RedirectStandardError = true, RedirectStandardOutput = true };
        try
        {
            using var p = Process.Start(psi)!;
            p.WaitForExit();
            return p.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception) { return false; }
    }

    public void Dispose()
    {
        TryRun("umount", Path);
        mountPoint.Dispose();
    }
}

public class DiskFullTests(ITestOutputHelper output)
{
    [TmpfsFact]
    public void A_disk_that_fills_during_a_checkpoint_leaves_the_previous_one_intact_and_says_so()
    {
        using var disk = new Tmpfs("256m");
        var runDir = System.IO.Path.Combine(disk.Path, "run");
        TinyRun.Train(TinyRun.Config("training.steps=3"), runDir);
        var store = new CheckpointStore(System.IO.Path.Combine(runDir, "checkpoints"));
        var step3 = store.Latest()!;
        long checkpointBytes = Directory.GetFiles(step3).Sum(f => new FileInfo(f).Length);

        // Room for about half a checkpoint: the step-6 write runs out of space part way through.
        disk.Resize(disk.UsedBytes() + checkpointBytes / 2);
        var e = Assert.Throws<CheckpointWriteException>(() => TinyRun.Train(TinyRun.Config(), runDir, resume: true));

        output.WriteLine(e.Message);
        Assert.True(e.DiskFull);
        Assert.Equal((6, 3), (e.Step, e.PreviousStep));
        Assert.Contains("Could not write the checkpoint for step 6: the disk is full while writing", e.Message);
        Assert.Contains(".safetensors", e.Message);
        Assert.Contains($"The previous checkpoint, step 3 in {step3}, is intact", e.Message);
        // And it is: it verifies against its manifest, nothing half-written is left behind, and a resume can use it.
        var search = store.FindLatestGood();
        Assert.Equal((step3, 3), (search.Path, search.Step));
        Assert.Empty(search.Rejections);
        Assert.Equal(new[] { step3 }, Directory.GetDirectories(System.IO.Path.Combine(runDir, "checkpoints")));
        Assert.Empty(Directory.GetFiles(System.IO.Path.Combine(runDir, "checkpoints"), "*.tmp"));
    }
}
