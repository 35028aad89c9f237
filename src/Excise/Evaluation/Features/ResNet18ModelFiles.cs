namespace Excise.Evaluation.Features;

/// <summary>
/// Finds the two ONNX files of the Microsoft.ML.DnnImageFeaturizer.ResNet18 package: ResNetPreprocess.onnx
/// (subtracts a per-pixel ImageNet mean image) and ResNet18.onnx (input [1,3,224,224], pooled output [1,512,1,1]).
/// The package's build props copy them to DnnImageModels/ beside the application, and they also stay in the
/// NuGet cache; both are searched so tests, the CLI and a library consumer all find them.
/// </summary>
public sealed record ResNet18ModelFiles(string PreprocessPath, string NetworkPath)
{
    public const string PackageId = "Microsoft.ML.DnnImageFeaturizer.ResNet18";
    public const string PackageVersion = "0.23.1";
    public const string DirectoryVariable = "EXCISE_RESNET18_DIR";
    private const string PreprocessRelative = "ResNetPrepOnnx/ResNetPreprocess.onnx";
    private const string NetworkRelative = "ResNet18Onnx/ResNet18.onnx";

    /// <param name="modelDirectory">A DnnImageModels folder to use instead of searching.</param>
    public static ResNet18ModelFiles Locate(string? modelDirectory = null)
    {
        var candidates = modelDirectory is not null ? new[] { modelDirectory } : CandidateDirectories().Distinct().ToArray();
        foreach (var directory in candidates)
        {
            var files = In(directory);
            if (File.Exists(files.PreprocessPath) && File.Exists(files.NetworkPath)) return files;
        }
        throw new FileNotFoundException(
            $"ResNet18 ONNX files ({PreprocessRelative}, {NetworkRelative}) not found in: {string.Join("; ", candidates)}. "
            + $"They come from the NuGet package {PackageId} {PackageVersion} (referenced by Excise.csproj, copied to DnnImageModels/ "
            + $"in the build output): run 'dotnet restore', or point {DirectoryVariable} at a DnnImageModels folder.");
    }

    public static ResNet18ModelFiles In(string directory) =>
        new(Path.Combine(directory, PreprocessRelative), Path.Combine(directory, NetworkRelative));

    private static IEnumerable<string> CandidateDirectories()
    {
        if (Environment.GetEnvironmentVariable(DirectoryVariable) is { Length: > 0 } configured) yield return configured;
        yield return Path.Combine(AppContext.BaseDirectory, "DnnImageModels");
        if (Path.GetDirectoryName(typeof(ResNet18ModelFiles).Assembly.Location) is { Length: > 0 } assemblyDirectory)
            yield return Path.Combine(assemblyDirectory, "DnnImageModels");
        var packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } root
            ? root
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        yield return Path.Combine(packages, PackageId.ToLowerInvariant(), PackageVersion, "tools", "DnnImageModels");
    }
}
