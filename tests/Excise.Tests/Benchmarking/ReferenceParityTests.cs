using System.Diagnostics;
using Excise.Benchmarking;
using Excise.Models;
using Excise.Serialization;
using Excise.Training;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Excise.Tests.Benchmarking;

/// <summary>Runs when Debian's python3-torch is installed (the launcher installs it for `./excise test` as root).</summary>
public sealed class PyTorchReferenceFactAttribute : FactAttribute
{
    public const string Python = "/usr/bin/python3";
    static readonly Lazy<bool> Available = new(() =>
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo(Python, ["-c", "import torch"]) { RedirectStandardError = true, RedirectStandardOutput = true });
            if (process is null) return false;
            process.WaitForExit(60_000);
            return process.HasExited && process.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception) { return false; }
    });

    public PyTorchReferenceFactAttribute()
    {
        if (!Available.Value) Skip = $"{Python} cannot import torch: apt-get install -y python3-torch libopenblas0-openmp";
    }
}

/// <summary>The C# UNet and training step against the plain-PyTorch peer in bench/reference, on identical weights and inputs.</summary>
public class ReferenceParityTests(ITestOutputHelper output)
{
    const int AdamWSteps = 3;

    [PyTorchReferenceFact]
    public void Same_weights_and_batch_give_the_same_loss_gradients_and_AdamW_trajectory_as_PyTorch()
    {
        var config = RunConfig.Load(RepositoryPaths.Config("base")).ResolveUNetConfig();
        using var dir = new TempDir();
        manual_seed(5);
        using var model = new UNet2DConditionModel(config);
        using var batch = new SyntheticBatch(config, batch: 4, tokens: 12, seed: 6);
        File.WriteAllText(dir.File("unet_config.json"), config.ToDiffusersJson());
        ModuleWeights.Save(model, dir.File("model.safetensors"));
        batch.Save(dir.File("inputs.safetensors"));

        RunReference(dir);
        using var reference = SafetensorsFile.Load(dir.File("reference.safetensors"));
        var expected = reference.Tensors;

        using var loop = new TrainingStepLoop(model, batch, learningRate: 1e-3);
        double loss;
        using (NewDisposeScope())
        {
            var prediction = model.forward(batch.Sample, batch.Timesteps, batch.TextStates, batch.TextMask);
            var mse = nn.functional.mse_loss(prediction, batch.Target);
            loss = mse.ToDouble();
            mse.backward();
        }
        double referenceLoss = expected["loss"].ToDouble();
        output.WriteLine($"loss: Excise {loss:R}, PyTorch {referenceLoss:R}, relative difference {Math.Abs(loss - referenceLoss) / referenceLoss:E2}");
        Assert.True(Math.Abs(loss - referenceLoss) <= 1e-5 * referenceLoss, $"loss {loss} vs PyTorch {referenceLoss}");

        var kv = model.CrossAttentionKeyValueWeights().ToList();
        Assert.Equal(expected.Keys.Count(k => k.StartsWith("grad.", StringComparison.Ordinal)), kv.Count);
        foreach (var (name, p) in kv)
        {
            var g = expected[$"grad.{name}"];
            double scale = g.abs().max().ToDouble();
            double diff = (p.grad! - g).abs().max().ToDouble();
            Assert.True(diff <= 1e-4 * scale, $"{name}: gradient max |Δ| {diff:E2} vs max |g| {scale:E2}");
        }
        foreach (var (_, p) in loop.Parameters) p.grad?.zero_();

        var losses = Enumerable.Range(0, AdamWSteps).Select(_ => loop.Step().Loss).ToArray();
        var referenceLosses = expected["loss_after"].data<float>().ToArray();
        output.WriteLine($"AdamW losses: Excise {string.Join(", ", losses.Select(l => l.ToString("G7")))}; PyTorch {string.Join(", ", referenceLosses.Select(l => l.ToString("G7")))}");
        for (int i = 0; i < AdamWSteps; i++)
            Assert.True(Math.Abs(losses[i] - referenceLosses[i]) <= 1e-5 * referenceLosses[i], $"step {i + 1}: loss {losses[i]} vs PyTorch {referenceLosses[i]}");

        // Elementwise, AdamW divides by √v: where a gradient entry is ~0, float rounding can flip the sign of its update
        // (±lr per step), so single weights may differ by up to 2·lr·steps. The whole update must still agree.
        using var initial = SafetensorsFile.Load(dir.File("model.safetensors"));
        double differenceSquared = 0, updateSquared = 0;
        foreach (var (name, p) in loop.Parameters)
        {
            var final = expected[$"final.{name}"];
            differenceSquared += (p.detach() - final).pow(2).sum().ToDouble();
            updateSquared += (final - initial.Tensors[name]).pow(2).sum().ToDouble();
        }
        double relative = Math.Sqrt(differenceSquared / updateSquared);
        output.WriteLine($"after {AdamWSteps} AdamW steps: ‖θ_Excise − θ_PyTorch‖ / ‖θ_PyTorch − θ_0‖ = {relative:E2}");
        Assert.True(relative < 1e-3, $"the weights after {AdamWSteps} AdamW steps differ by {relative:E2} of the update");
    }

    static void RunReference(TempDir dir)
    {
        var script = Path.Combine(RepositoryPaths.Root, "bench", "reference", "train_step.py");
        var start = new ProcessStartInfo(PyTorchReferenceFactAttribute.Python,
        [
            script, "--config", dir.File("unet_config.json"), "--weights", dir.File("model.safetensors"), "--inputs", dir.File("inputs.safetensors"),
            "--parity", dir.File("reference.safetensors"), "--adamw-steps", AdamWSteps.ToString(), "--lr", "1e-3", "--weight-decay", "0.01",
            "--grad-clip", "1.0", "--threads", "1",
        ]) { RedirectStandardError = true, RedirectStandardOutput = true };
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"the PyTorch reference failed ({process.ExitCode}): {stderr.Result}{stdout}");
    }
}
