using Excise.Models;
using Excise.Models.Lora;
using Excise.Training;
using Excise.Tests.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Excise.Tests.Models;

/// <summary>LoRA under the real Trainer and AdamW on real Fashion-MNIST and MiniLM states. The two short runs
/// (adapters trained freely, and with A projected off a concept subspace) are shared by the tests.</summary>
public sealed class LoraTrainingTests(LoraTrainingTests.Runs runs) : IClassFixture<LoraTrainingTests.Runs>
{
    const int TextWidth = 384;
    const int ConceptRank = 8;
    const int Steps = 4;

    public sealed record Run(UNet2DConditionModel Model, LoraAdapters Adapters, TrainingSummary Summary, int ProjectedParameters);

    public sealed class Runs : IDisposable
    {
        readonly TempDir dir = new();

        public Runs()
        {
            U = RandomOrthonormalBasis();
            using var data = TrainingData.Prepare(Config, TinyRun.Encoder, 1);
            Free = Train(data, dir.File("free"), u: null);
            Projected = Train(data, dir.File("projected"), U);
        }

        public static RunConfig Config { get; } = TinyRun.Config($"training.steps={Steps}", "training.checkpoint_every=0",
            "training.learning_rate=0.003", "training.warmup_steps=1");

        public Tensor U { get; }
        public Run Free { get; }
        public Run Projected { get; }

        static Run Train(PreparedData data, string runDir, Tensor? u)
        {
            Directory.CreateDirectory(runDir);
            var model = TinyRun.Model(Config);
            var adapters = Lora.Inject(model, new LoraOptions(Rank: 4, Alpha: 4, Seed: 1));
            if (u is not null)
            {
                using var _ = no_grad();
                foreach (var (_, a) in adapters.Parameters().Where(p => p.Name.EndsWith(".lora_A.weight", StringComparison.Ordinal)))
                    a.sub_(a.matmul(u).matmul(u.t()));
            }
            using var trainer = new Trainer(Config, model, (x, t, s, m) => model.forward(x, t, s, m), data.Batches, new RunDirectory(runDir), CPU);
            var hook = u is null ? null : new ProjectLoraAUpdates(trainer.Parameters, u);
            if (hook is not null) trainer.AddHook(hook);
            return new Run(model, adapters, trainer.Train(), hook?.Selected ?? 0);
        }

        public void Dispose()
        {
            Free.Model.Dispose();
            Projected.Model.Dispose();
            dir.Dispose();
        }
    }

    /// <summary>
    /// The projector's contract, inlined: every parameter named <c>…lora_A.weight</c> keeps its rows in the
    /// complement of span(U), by removing the span(U) part of each optimizer step's change (A ← A − (A − A_before)·U·Uᵀ).
    /// </summary>
    sealed class ProjectLoraAUpdates(IReadOnlyList<(string Name, Parameter Param)> parameters, Tensor u) : ITrainingHook
    {
        readonly List<(Parameter Param, Tensor Before)> selected = parameters
            .Where(p => p.Name.EndsWith(".lora_A.weight", StringComparison.Ordinal))
            .Select(p => (p.Param, zeros_like(p.Param).DetachFromDisposeScope())).ToList();

        public int Selected => selected.Count;

        public void BeforeOptimizerStep(int step)
        {
            using var _ = no_grad();
            foreach (var (param, before) in selected) before.copy_(param);
        }

        public void AfterOptimizerStep(int step)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            foreach (var (param, before) in selected) param.sub_((param - before).matmul(u).matmul(u.t()));
        }
    }

    /// <summary>‖ΔW·U‖_F / ‖ΔW‖_F per adapted layer, in float64.</summary>
    static Dictionary<string, double> ConceptLeak(LoraAdapters adapters, Tensor u) => adapters.ModuleNames.ToDictionary(name => name, name =>
    {
        var delta = adapters.DeltaWeight(name);
        return delta.matmul(u.to(ScalarType.Float64)).norm().ToDouble() / delta.norm().ToDouble();
    });

    static Tensor RandomOrthonormalBasis()
    {
        using var generator = new Generator(2512);
        var (q, _) = linalg.qr(randn(new long[] { TextWidth, ConceptRank }, generator: generator));
        return q;
    }

    [Fact]
    public void The_trainer_updates_only_the_adapters_of_an_injected_model()
    {
        var (model, adapters, summary, _) = runs.Free;
        Assert.Equal(Steps, summary.Losses.Count);
        Assert.All(summary.Losses, loss => Assert.True(double.IsFinite(loss)));

        using var reference = TinyRun.Model(Runs.Config);
        var trained = model.state_dict();
        foreach (var (name, weight) in reference.state_dict()) Assert.True(trained[name].eq(weight).all().ToBoolean(), $"base parameter {name} changed");
        foreach (var adapter in adapters.Adapters)
        {
            Assert.True(adapter.Layer.B.abs().max().ToDouble() > 1e-4, $"{adapter.BName} did not train");
            Assert.True(adapter.Layer.DeltaWeight().norm().ToDouble() > 1e-4, $"{adapter.ModuleName} has no update");
        }
        // A moves too (from step 2, once B is non-zero): compare with a fresh injection's initial A.
        var initial = Lora.Inject(reference, new LoraOptions(Rank: 4, Alpha: 4, Seed: 1));
        foreach (var adapter in adapters.Adapters)
            Assert.False(initial[adapter.ModuleName].Layer.A.eq(adapter.Layer.A).all().ToBoolean(), $"{adapter.AName} did not train");
    }

    [Fact]
    public void Projecting_A_keeps_every_adapter_update_exactly_blind_to_the_concept_subspace()
    {
        var u = runs.U;
        Assert.True((u.t().matmul(u) - eye(ConceptRank)).abs().max().ToDouble() < 1e-5);
        var (projected, free) = (runs.Projected.Adapters, runs.Free.Adapters);
        Assert.Equal(projected.Adapters.Count, runs.Projected.ProjectedParameters);
        Assert.All(runs.Projected.Summary.Losses, loss => Assert.True(double.IsFinite(loss)));

        var projectedLeak = ConceptLeak(projected, u);
        var freeLeak = ConceptLeak(free, u);
        Assert.Equal(8, projectedLeak.Count);
        Assert.All(projectedLeak, kv => Assert.True(kv.Value < 1e-6, $"{kv.Key}: ‖ΔW·U‖/‖ΔW‖ = {kv.Value:E2} with projection"));
        Assert.All(freeLeak, kv => Assert.True(kv.Value > 1e-2, $"{kv.Key}: ‖ΔW·U‖/‖ΔW‖ = {kv.Value:E2} without projection"));
        // The projected run still learns: its updates are as large as the free run's, only pointed elsewhere.
        Assert.All(projected.ModuleNames, name => Assert.True(projected.DeltaWeight(name).norm().ToDouble() > 0.3 * free.DeltaWeight(name).norm().ToDouble(), name));
        Console.WriteLine($"LoRA concept leak: projected max {projectedLeak.Values.Max():E2}, free min {freeLeak.Values.Min():E2}");
    }
}
