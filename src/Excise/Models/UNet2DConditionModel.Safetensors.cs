using Excise.Serialization;

namespace Excise.Models;

public sealed partial class UNet2DConditionModel
{
    /// <summary>Loads weights by diffusers name through the validating reader; see <see cref="ModuleWeights.Load(TorchSharp.torch.nn.Module, string, bool)"/>.</summary>
    public void LoadSafetensors(string path, bool strict = true) => ModuleWeights.Load(this, path, strict);

    /// <summary>Writes every parameter under its diffusers name (readable by diffusers / safetensors), atomically.</summary>
    public void SaveSafetensors(string path) => ModuleWeights.Save(this, path);
}
