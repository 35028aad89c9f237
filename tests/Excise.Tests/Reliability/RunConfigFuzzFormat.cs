using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Excise.Models;
using Excise.Projection;
using Excise.Serialization;
using Excise.Training;
using static TorchSharp.torch;

namespace Excise.Tests.Reliability;

/// <summary>
/// Run configs: the shipped smoke and base configs, a fine-tune that takes its UNet from an init run, a LoRA run with
/// a projection arm and a real concept basis, and an imagefolder run. Mutated as text, as JSON, and through
/// <c>--set</c> overrides; loaded with <see cref="RunConfig.Load"/>, which validates everything before any work.
/// </summary>
public sealed class RunConfigFuzzFormat : FuzzFormat
{
    static readonly string[] HostileOverrideValues =
        ["-1", "0", "NaN", "Infinity", "-Infinity", "1e400", "2147483648", "[1,2]", "{}", "null", "true", "\"x\"", "x", "", "{\"rank\":9999}", "[null]", "1.5", "-0.001"];

    readonly Dictionary<string, byte[]> seeds = new();

    public RunConfigFuzzFormat(string workspace) : base(workspace)
    {
        var smoke = File.ReadAllText(RepositoryPaths.Config("smoke"));
        seeds["smoke"] = Encoding.UTF8.GetBytes(smoke);
        seeds["base"] = File.ReadAllBytes(RepositoryPaths.Config("base"));

        var initRun = Path.Combine(workspace, "init-run");
        Directory.CreateDirectory(initRun);
        var smokeNode = Parse(smoke);
        var unet = UNetConfig.FromDiffusersJson(smokeNode["model"]!.ToJsonString());
        File.WriteAllText(new RunDirectory(initRun).UNetConfigPath, unet.ToDiffusersJson());
        using (var model = new UNet2DConditionModel(unet)) ModuleWeights.Save(model, new RunDirectory(initRun).ModelPath);
        var finetune = Parse(File.ReadAllText(RepositoryPaths.Config("finetune")));
        finetune["init"] = initRun;
        seeds["finetune from a run"] = Encoding.UTF8.GetBytes(JsonMutations.Serialize(finetune));

        var basisPath = Path.Combine(workspace, "concept.safetensors");
        using (var random = randn(384, 2, dtype: ScalarType.Float64, generator: new Generator(5)))
        {
            var (q, _) = linalg.qr(random);
            // Built for the encoder the seed configs encode with (a basis from another encoder is refused before any mutation).
            int maxLength = smokeNode["text"]?["max_length"]?.GetValue<int>() ?? 32;
            var info = new ConceptBasisInfo(["the Acme logo"], ["the Acme logo"], Excise.Text.MiniLmTextEncoder.IdFor(maxLength), SubspaceMode.ConceptTokens, 0.99, 2, [2.0, 1.0], 4, 4);
            using var basis = new ConceptBasis(q, info);
            basis.Save(basisPath);
        }
        var lora = Parse(smoke);
        lora["lora"] = new JsonObject { ["rank"] = 4, ["alpha"] = 4 };
        lora["selective"] = new JsonObject { ["arm"] = "update-projection", ["basis"] = basisPath, ["certificate_tolerance"] = 1e-4 };
        lora["data"]!["concept"] = new JsonObject { ["phrase"] = "the Acme logo", ["stamp_fraction"] = 0.3, ["placement"] = "random" };
        seeds["lora projection"] = Encoding.UTF8.GetBytes(JsonMutations.Serialize(lora));

        var folder = Path.Combine(workspace, "imagefolder");
        Directory.CreateDirectory(folder);
        var imagefolder = Parse(smoke);
        imagefolder["data"] = new JsonObject { ["source"] = "imagefolder", ["path"] = folder, ["image_size"] = 32 };
        imagefolder["preview"] = new JsonObject { ["prompts"] = new JsonArray("a shoe", "a bag"), ["per_prompt"] = 2 };
        seeds["imagefolder"] = Encoding.UTF8.GetBytes(JsonMutations.Serialize(imagefolder));
    }

    static JsonNode Parse(string text) =>
        JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true })!;

    public override string Name => "run config";
    public override IReadOnlyList<Type> RejectionTypes { get; } = [typeof(InvalidDataException), typeof(ArgumentException)];
    public override IReadOnlyList<string> MessageMustName(FuzzCase input) => [];

    string ConfigPath => Path.Combine(Workspace, "config.json");

    public override IEnumerable<FuzzCase> Seeds() => seeds.Select(kv => new FuzzCase(kv.Key, "none", "config.json", kv.Value));

    public override void Write(FuzzCase input) => File.WriteAllBytes(ConfigPath, input.Bytes);

    public override IReadOnlyList<FuzzLoader> Loaders(FuzzCase input) => [new("RunConfig.Load", () => RunConfig.Load(ConfigPath, input.Overrides))];

    public override FuzzCase Next(Random random)
    {
        var seed = random.Pick(seeds.Keys.ToList());
        var bytes = seeds[seed];
        switch (random.Next(10))
        {
            case < 3:
                var (mutated, what) = Generic(bytes, random);
                return new FuzzCase(seed, what, "config.json", mutated);
            case < 8:
                var (text, edit) = JsonMutations.Mutate(Parse(Encoding.UTF8.GetString(bytes)), random, SettingValue);
                return new FuzzCase(seed, edit, "config.json", Encoding.UTF8.GetBytes(text));
            default:
                var overrides = Enumerable.Range(0, 1 + random.Next(2)).Select(_ => HostileOverride(Parse(Encoding.UTF8.GetString(bytes)), random)).ToList();
                return new FuzzCase(seed, "--set " + string.Join(" --set ", overrides), "config.json", bytes, overrides);
        }
    }

    /// <summary>Values of the right JSON type for most settings, at or past their limits.</summary>
    static JsonNode? SettingValue(Random random) => random.Pick(new JsonNode?[]
    {
        0, -1, -0.001, 1e-300, 1e300, int.MaxValue, int.MinValue, "NaN", "Infinity", 385, 100_000, 7,
        "sideways", "Update-Projection", "STANDARD", "cuda:99", "gpu", "/nonexistent", "", " ",
    });

    static string HostileOverride(JsonNode seed, Random random)
    {
        var keys = JsonMutations.Slots(seed).Where(slot => slot.Slot is string).Select(slot => KeyOf(slot.Parent, (string)slot.Slot)).ToList();
        var key = random.Pick(keys);
        key = random.Next(6) switch
        {
            0 => key + ".deeper",
            1 => key.Replace('.', '_'),
            2 => key + "..x",
            3 => "." + key,
            _ => key,
        };
        return $"{key}={random.Pick(HostileOverrideValues)}";
    }

    static string KeyOf(JsonNode parent, string name) =>
        string.Join('.', parent.GetPath().TrimStart('$').Split('.', StringSplitOptions.RemoveEmptyEntries).Append(name).Select(part => part.Split('[')[0]));
}
