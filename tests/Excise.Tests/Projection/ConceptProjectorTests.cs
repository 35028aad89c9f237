using Excise.Projection;
using Excise.Serialization;
using Excise.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Excise.Tests.Projection;

public class ConceptProjectorTests(Xunit.Abstractions.ITestOutputHelper output)
{
    static Tensor RandomBasis(int d, int k, long seed)
    {
        var g = new Generator((ulong)seed);
        var (q, _) = linalg.qr(randn(new long[] { d, k }, generator: g));
        return q;
    }

    static double ShareInConcept(Tensor delta, Tensor u)
    {
        using var _ = NewDisposeScope();
        var d64 = delta.to(ScalarType.Float64);
        return d64.matmul(u.to(ScalarType.Float64)).norm().ToDouble() / d64.norm().ToDouble();
    }

    [Fact]
    public void Projection_is_idempotent_and_removes_the_concept_component()
    {
        using var u = RandomBasis(384, 8, 1);
        Assert.True((u.t().matmul(u) - eye(8)).abs().max().ToDouble() < 1e-5, "U must be orthonormal");
        using var w = new Parameter(randn(64, 384));
        using var projector = new ConceptProjector(u, [("w", w)], ProjectionMode.Gradient);

        using var g = randn(64, 384);
        var once = g.clone();
        projector.ProjectRowsInPlace(once);
        var twice = once.clone();
        projector.ProjectRowsInPlace(twice);
        Assert.True(once.matmul(u).abs().max().ToDouble() < 1e-5);
        Assert.True((twice - once).abs().max().ToDouble() < 1e-6);
        // What is orthogonal to U is untouched: G − P(G) lies in span(U).
        var removed = g - once;
        Assert.True((removed - removed.matmul(u).matmul(u.t())).abs().max().ToDouble() < 1e-5);
    }

    [Fact]
    public void The_projector_never_forms_a_d_by_d_matrix_so_a_very_wide_weight_projects_in_both_modes()
    {
        // d = 200,000: a d×d projector would need 160 GB and the allocation would fail; U Uᵀ applied as two thin
        // products needs a few megabytes. This holds the memory rule without a clock.
        const int d = 200_000;
        using var u = RandomBasis(d, 4, 7);
        using var gradientTarget = new Parameter(randn(4, d));
        using (var projector = new ConceptProjector(u, [("w", gradientTarget)], ProjectionMode.Gradient))
        {
            gradientTarget.matmul(randn(d, 3)).pow(2).sum().backward();
            projector.ProjectGradients();
            Assert.True(gradientTarget.grad!.matmul(u).abs().max().ToDouble() < 1e-4 * gradientTarget.grad!.abs().max().ToDouble());
        }
        using var updateTarget = new Parameter(randn(4, d));
        using var before = updateTarget.detach().clone();
        using (var projector = new ConceptProjector(u, [("w", updateTarget)], ProjectionMode.Update))
        {
            using (no_grad()) updateTarget.add_(randn(4, d));
            projector.ProjectUpdate();
        }
        Assert.True(ShareInConcept(updateTarget.detach() - before, u) < 1e-5);
    }

    [Fact]
    public void Update_mode_keeps_float32_rounding_from_piling_up_along_the_concept_over_many_small_steps()
    {
        // Steps of 1e-5 on weights of size ~1, as Adam moves Stable Diffusion's weights at its usual learning rate: each
        // step's result is rounded to float32 in every direction. Projecting each step's change alone leaves every step's
        // rounding behind (about √400 = 20 roundings' worth here, several times the floor); projecting the change since
        // the start leaves only the last step's, within the floor the certificate allows.
        using var u = RandomBasis(64, 16, 11);
        using var w = new Parameter(randn(32, 64, generator: new Generator(12)));
        using var start = w.detach().clone();
        using var projector = new ConceptProjector(u, [("w", w)], ProjectionMode.Update);
        var g = new Generator(13);
        for (int step = 0; step < 400; step++)
        {
            using var _ = NewDisposeScope();
            using (no_grad()) w.add_(randn(new long[] { 32, 64 }, generator: g).mul_(1e-5));
            projector.ProjectUpdate();
        }
        double conceptChange = (w.detach().to(ScalarType.Float64) - start.to(ScalarType.Float64)).matmul(u.to(ScalarType.Float64)).norm().ToDouble();
        double floor = ProjectionCertificate.RoundingFloor(w.detach());
        output.WriteLine($"‖ΔW U‖ = {conceptChange:E2}, float32 floor {floor:E2}");
        Assert.True(conceptChange < floor, $"‖ΔW U‖ = {conceptChange:E2} exceeds the float32 floor {floor:E2}");
    }

    [Fact]
    public void Update_mode_projects_the_moving_averages_of_its_targets_and_nothing_else()
    {
        using var u = RandomBasis(64, 4, 14);
        using var w = new Parameter(randn(8, 64, generator: new Generator(15)));
        using var start = w.detach().clone();
        using var projector = new ConceptProjector(u, [("w", w)], ProjectionMode.Update);
        using var drift = randn(new long[] { 8, 4 }, generator: new Generator(16)).matmul(u.t()).mul_(1e-3);
        using var average = start + drift + 1e-3 * randn(new long[] { 8, 64 }, generator: new Generator(17));
        using var other = randn(8, 64);
        using var otherBefore = other.clone();
        projector.ProjectAverages(new Dictionary<string, Tensor> { ["w"] = average, ["not_a_target"] = other });
        Assert.True((average - start).matmul(u).abs().max().ToDouble() < 1e-7);
        Assert.True(other.eq(otherBefore).all().item<bool>());
    }

    [Fact]
    public void Gradient_mode_projects_the_gradient_after_backward()
    {
        using var u = RandomBasis(384, 4, 2);
        var w = new Parameter(randn(16, 384));
        using var projector = new ConceptProjector(u, [("w", w)], ProjectionMode.Gradient);
        w.matmul(randn(384, 5)).pow(2).sum().backward();
        double scale = w.grad!.abs().max().ToDouble();
        Assert.True(w.grad!.matmul(u).abs().max().ToDouble() > 1e-2 * scale);
        projector.ProjectGradients();
        Assert.True(w.grad!.matmul(u).abs().max().ToDouble() < 1e-6 * scale, "G·U must vanish up to float32 rounding");
    }

    [Fact]
    public void Refuses_a_weight_whose_input_width_is_not_the_basis_dimension()
    {
        using var u = RandomBasis(384, 4, 3);
        var e = Assert.Throws<ArgumentException>(() => new ConceptProjector(u, [("to_q.weight", new Parameter(randn(8, 32)))], ProjectionMode.Update));
        Assert.Contains("to_q.weight", e.Message);
    }

    [Fact]
    public void Selects_cross_attention_key_value_weights_by_default_and_refuses_bad_patterns()
    {
        using var model = new Excise.Models.UNet2DConditionModel(Excise.Models.UNetConfig.FromDiffusersJson(
            File.ReadAllText(Path.Combine(RepositoryPaths.Root, "tests", "golden", "mnist32.config.json"))));
        var selected = ConceptProjector.SelectParameters(model, ConceptProjector.DefaultPatterns, 384);
        Assert.Equal(model.CrossAttentionKeyValueWeights().Select(p => p.Name).Order(), selected.Select(p => p.Name).Order());
        Assert.Equal(8, selected.Count);

        var wrongWidth = Assert.Throws<ArgumentException>(() => ConceptProjector.SelectParameters(model, [@"attn2\.to_q\.weight$"], 384));
        Assert.Contains("attn2.to_q.weight", wrongWidth.Message);
        var nothing = Assert.Throws<ArgumentException>(() => ConceptProjector.SelectParameters(model, [@"attn3\.to_k"], 384));
        Assert.Contains("matches no parameter", nothing.Message);
    }

    /// <summary>
    /// 500 optimizer steps on the real UNet's cross-attention key/value weights (the golden mnist32 weights),
    /// driven by a regression loss on random text-width inputs, in float32, with weight decay.
    /// </summary>
    static double WorstShareAfterTraining(ProjectionMode mode, OptimizerKind kind, double weightDecay)
    {
        using var scope = NewDisposeScope();
        using var weights = SafetensorsFile.Load(Path.Combine(RepositoryPaths.Root, "tests", "golden", "mnist32.weights.safetensors"));
        var targets = weights.Names.Where(n => n.Contains("attn2.to_k.weight") || n.Contains("attn2.to_v.weight"))
            .Select(n => (Name: n, Param: new Parameter(weights[n].clone()))).ToList();
        var initial = targets.Select(t => t.Param.detach().clone()).ToList();
        var u = RandomBasis(384, 16, 4);
        var g = new Generator(5);
        var inputs = randn(new long[] { 384, 64 }, generator: g);
        var goals = targets.Select(t => randn(new long[] { t.Param.shape[0], 64 }, generator: g)).ToList();

        using var projector = new ConceptProjector(u, targets, mode);
        using IOptimizer optimizer = kind == OptimizerKind.Sgd
            ? new Sgd(targets, momentum: 0.9, weightDecay: weightDecay)
            : new Excise.Training.AdamW(targets, weightDecay: weightDecay);
        for (int step = 0; step < 500; step++)
        {
            using var stepScope = NewDisposeScope();
            optimizer.ZeroGrad();
            var loss = targets.Select((t, i) => (t.Param.matmul(inputs) - goals[i]).pow(2).mean()).Aggregate((a, b) => a + b);
            loss.backward();
            projector.ProjectGradients();
            optimizer.Step(kind == OptimizerKind.Sgd ? 0.05 : 1e-3);
            projector.ProjectUpdate();
        }
        return targets.Select((t, i) => ShareInConcept(t.Param.detach() - initial[i], u)).Max();
    }

    [Fact]
    public void Update_mode_keeps_AdamW_changes_out_of_the_concept_over_500_steps()
    {
        double share = WorstShareAfterTraining(ProjectionMode.Update, OptimizerKind.Adamw, weightDecay: 0.01);
        output.WriteLine($"update projection, AdamW wd 0.01: worst share {share:E2}");
        Assert.True(share < 1e-5, $"update projection with AdamW: worst ‖ΔW U‖/‖ΔW‖ = {share:E2}");
    }

    [Fact]
    public void Gradient_mode_leaks_with_AdamW_but_not_with_SGD()
    {
        double adam = WorstShareAfterTraining(ProjectionMode.Gradient, OptimizerKind.Adamw, weightDecay: 0.01);
        double sgd = WorstShareAfterTraining(ProjectionMode.Gradient, OptimizerKind.Sgd, weightDecay: 0);
        double none = WorstShareAfterTraining(ProjectionMode.Off, OptimizerKind.Adamw, weightDecay: 0.01);
        output.WriteLine($"no projection, AdamW: {none:E2}; gradient projection, AdamW wd 0.01: {adam:E2}; gradient projection, SGD: {sgd:E2}");
        Assert.True(adam > 1e-3, $"gradient projection with AdamW should leak; worst share {adam:E2}");
        Assert.True(sgd < 1e-5, $"gradient projection with SGD should be exact; worst share {sgd:E2}");
        Assert.True(none > adam, $"no projection ({none:E2}) should leak more than gradient projection ({adam:E2})");
    }
}
