using System.Text.Json.Nodes;
using Excise.Serialization;
using Excise.Training;

namespace Excise.Tests.Training;

/// <summary>Checkpoint manifests: a damaged newest checkpoint is rejected, naming the file, and the previous good one is used.</summary>
public class CheckpointIntegrityTests
{
    /// <summary>A 6-step run with checkpoints at steps 3 and 6.</summary>
    static (CheckpointStore Store, string Step3, string Step6) TwoCheckpoints(TempDir dir)
    {
        TinyRun.Train(TinyRun.Config(), dir.Path);
        var store = new CheckpointStore(Path.Combine(dir.Path, "checkpoints"));
        var all = store.CompleteCheckpoints();
        Assert.Equal(new[] { 3, 6 }, all.Select(c => c.Step));
        return (store, all[0].Path, all[1].Path);
    }

    static void FlipLastByte(string path)
    {
        var bytes = File.ReadAllBytes(path);
        bytes[^1] ^= 0x01;
        File.WriteAllBytes(path, bytes);
    }

    [Fact]
    public void Every_checkpoint_has_a_manifest_that_matches_its_files()
    {
        using var dir = new TempDir();
        var (store, _, step6) = TwoCheckpoints(dir);
        var manifest = CheckpointManifest.Read(step6);
        Assert.Equal(6, manifest.Step);
        Assert.Equal(new[] { "model.safetensors", CheckpointStore.TrainingStateFile, "state.json" }, manifest.Files.Select(f => f.Name));
        Assert.All(manifest.Files, f => Assert.Equal(new FileInfo(Path.Combine(step6, f.Name)).Length, f.Size));
        Assert.Empty(manifest.Mismatches(step6));
        var search = store.FindLatestGood();
        Assert.Equal((step6, 6), (search.Path, search.Step));
        Assert.Empty(search.Rejections);
        Assert.Null(search.Warning);
    }

    [Fact]
    public void A_corrupt_byte_in_the_newest_model_file_makes_the_job_resume_from_the_previous_checkpoint_and_say_so()
    {
        using var dir = new TempDir();
        var run = new RunDirectory(dir.File("run"));
        var config = TinyRun.Config();
        TrainingJob.Run(config, run, resume: false);
        var uninterrupted = File.ReadAllBytes(run.ModelPath);
        var store = new CheckpointStore(run.CheckpointsDir);
        var step6 = store.CompleteCheckpoints()[^1].Path;
        FlipLastByte(Path.Combine(step6, "model.safetensors"));

        var log = new List<string>();
        var resumed = TrainingJob.Run(config, run, resume: true, log: log.Add);

        Assert.Equal(3, resumed.Summary.ResumedFrom);
        Assert.Contains(log, l => l.StartsWith("Rejected checkpoint") && l.Contains(Path.Combine(step6, "model.safetensors")) && l.Contains("SHA-256"));
        Assert.Contains(log, l => l.Contains("previous good checkpoint") && l.Contains("step 3"));
        // Steps 4–6 were redone exactly: the result is the uninterrupted run's, and step 6 is whole again.
        Assert.Equal(uninterrupted, File.ReadAllBytes(run.ModelPath));
        Assert.Equal(step6, store.Latest());
    }

    [Fact]
    public void A_truncated_file_is_rejected_with_its_size()
    {
        using var dir = new TempDir();
        var (store, step3, step6) = TwoCheckpoints(dir);
        var optimizerFile = Path.Combine(step6, CheckpointStore.TrainingStateFile);
        using (var f = new FileStream(optimizerFile, FileMode.Open)) f.SetLength(f.Length / 2);

        var search = store.FindLatestGood();
        Assert.Equal((step3, 3), (search.Path, search.Step));
        var rejection = Assert.Single(search.Rejections);
        Assert.Contains(optimizerFile, rejection);
        Assert.Contains("bytes, the manifest says", rejection);
        var e = Assert.Throws<InvalidDataException>(() => CheckpointStore.Verify(step6));
        Assert.Contains(optimizerFile, e.Message);
    }

    [Fact]
    public void A_checkpoint_whose_manifest_was_deleted_is_rejected()
    {
        using var dir = new TempDir();
        var (store, step3, step6) = TwoCheckpoints(dir);
        File.Delete(Path.Combine(step6, CheckpointManifest.FileName));

        var search = store.FindLatestGood();
        Assert.Equal(step3, search.Path);
        Assert.Contains("manifest.json is missing", Assert.Single(search.Rejections));
        Assert.Throws<InvalidDataException>(() => TinyRun.Train(TinyRun.Config("training.steps=8"), dir.Path, setup: t => t.Resume(step6)));
    }

    [Fact]
    public void A_checkpoint_from_before_manifests_is_accepted_with_a_warning_unless_it_is_truncated()
    {
        using var dir = new TempDir();
        var (store, step3, step6) = TwoCheckpoints(dir);
        foreach (var checkpoint in new[] { step3, step6 })
        {
            // What the previous version wrote: no manifest, and no "format" in state.json.
            File.Delete(Path.Combine(checkpoint, CheckpointManifest.FileName));
            var state = JsonNode.Parse(File.ReadAllText(Path.Combine(checkpoint, "state.json")))!.AsObject();
            state.Remove("format");
            File.WriteAllText(Path.Combine(checkpoint, "state.json"), state.ToJsonString());
        }
        var search = store.FindLatestGood();
        Assert.Equal(step6, search.Path);
        Assert.Contains("predates checkpoint manifests", search.Warning);

        // Structure is still checked: a truncated legacy model file sends the resume back to step 3, which loads.
        var model6 = Path.Combine(step6, "model.safetensors");
        using (var f = new FileStream(model6, FileMode.Open)) f.SetLength(f.Length - 4);
        search = store.FindLatestGood();
        Assert.Equal(3, search.Step);
        Assert.Contains(model6, Assert.Single(search.Rejections));
        var resumed = TinyRun.Train(TinyRun.Config("training.steps=4"), dir.Path, resume: true);
        Assert.Equal(3, resumed.ResumedFrom);
    }

    [Fact]
    public void Pruning_never_deletes_the_last_good_checkpoint()
    {
        using var dir = new TempDir();
        var (store, _, step6) = TwoCheckpoints(dir);
        FlipLastByte(Path.Combine(step6, "model.safetensors"));

        // Resume from step 3 keeping only one checkpoint: the corrupt step 6 is the "newest", so pruning by count
        // alone would delete every good checkpoint the resumed run writes.
        TinyRun.Train(TinyRun.Config("training.steps=5", "training.checkpoint_every=1", "training.keep_checkpoints=1"), dir.Path, resume: true);

        var search = store.FindLatestGood();
        Assert.Equal(5, search.Step);
        Assert.Contains(step6, Assert.Single(search.Rejections));
        Assert.Equal(new[] { 5, 6 }, store.CompleteCheckpoints().Select(c => c.Step));
    }

    [Fact]
    public void Atomic_writes_leave_no_temporary_files_and_keep_the_old_file_on_failure()
    {
        using var dir = new TempDir();
        var path = dir.File("a.txt");
        AtomicFile.WriteAllText(path, "old");
        var e = Assert.Throws<IOException>(() => AtomicFile.Write(path, s => { s.WriteByte(1); throw new IOException("No space left on device", 28); }));
        Assert.Contains("the disk is full", e.Message);
        Assert.Contains(path, e.Message);
        Assert.Equal("old", File.ReadAllText(path));
        Assert.Equal(new[] { path }, Directory.GetFiles(dir.Path));
    }
}
