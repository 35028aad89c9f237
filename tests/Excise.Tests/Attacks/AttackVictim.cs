using Excise.Attacks;
using Excise.Tests.Training;
using Excise.Training;

namespace Excise.Tests.Attacks;

/// <summary>
/// A tiny victim fine-tuned a few steps on data where half the images carry the Acme logo and name it, trained once
/// and opened once for every attack test (opening loads the text encoder, which costs more than a cheap attack).
/// </summary>
public sealed class AttackVictim : IDisposable
{
    public TempDir Dir { get; } = new();
    public RunDirectory Run { get; }
    public Victim Victim { get; }

    public AttackVictim()
    {
        Run = new RunDirectory(Dir.File("victim"));
        TrainingJob.Run(TinyRun.Config("data.concept={\"phrase\":\"the Acme logo\",\"stamp_fraction\":0.5}", "training.checkpoint_every=0"), Run, resume: false);
        Victim = Victim.Open(Run);
    }

    public string Out(string name) => Dir.File(name + "-" + Guid.NewGuid().ToString("N")[..6]);

    public AttackResult Attack(AttackSettings settings, string? outputDirectory = null) =>
        AttackRunner.Run(Victim, "the Acme logo", settings, outputDirectory);

    public void Dispose()
    {
        Victim.Dispose();
        Dir.Dispose();
    }
}

[CollectionDefinition(Name)]
public sealed class AttackVictimCollection : ICollectionFixture<AttackVictim>
{
    public const string Name = "attack victim";
}
