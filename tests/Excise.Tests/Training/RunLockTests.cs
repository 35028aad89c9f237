using Excise.Training;

namespace Excise.Tests.Training;

public class RunLockTests
{
    [Fact]
    public void A_second_job_on_a_locked_directory_fails_fast_naming_the_holder()
    {
        using var dir = new TempDir();
        using (RunLock.Acquire(dir.Path))
        {
            var e = Assert.Throws<InvalidOperationException>(() => RunLock.Acquire(dir.Path));
            Assert.Contains(dir.Path, e.Message);
            Assert.Contains($"pid {Environment.ProcessId}", e.Message);
        }
        using var again = RunLock.Acquire(dir.Path); // released on dispose (and by the OS when a process dies)
    }

    [Fact]
    public void Training_refuses_a_run_directory_another_job_holds_and_writes_nothing()
    {
        using var dir = new TempDir();
        var run = new RunDirectory(dir.File("run"));
        using var held = RunLock.Acquire(run.Root, "training run");
        var e = Assert.Throws<InvalidOperationException>(() => TrainingJob.Run(TinyRun.Config("training.steps=1"), run, resume: false));
        Assert.Contains("in use", e.Message);
        Assert.False(File.Exists(run.ConfigPath));
    }
}
