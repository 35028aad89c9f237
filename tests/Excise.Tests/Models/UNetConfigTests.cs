using Excise.Models;

namespace Excise.Tests.Models;

public sealed class UNetConfigTests
{
    [Fact]
    public void Reads_the_golden_wrapper_and_the_attention_head_quirk()
    {
        var config = GoldenData.Config("sdtiny");
        Assert.Equal([32, 64, 64, 64], config.BlockOutChannels);
        Assert.Equal(2, config.LayersPerBlock);
        Assert.Equal(32, config.CrossAttentionDim);
        Assert.Equal(32, config.NormNumGroups);
        Assert.Equal(8, config.HeadsForDownBlock(0));  // attention_head_dim=8 means 8 heads
        Assert.Equal(128, config.TimeEmbedDim);
    }

    [Fact]
    public void Writes_diffusers_json_that_reads_back_equal_and_matches_the_reference_config()
    {
        var config = GoldenData.Config("mnist32");
        var json = config.ToDiffusersJson();
        Assert.Equal(config, UNetConfig.FromDiffusersJson(json));

        // Every key diffusers resolved for the reference model is written, with the same value.
        using var ours = System.Text.Json.JsonDocument.Parse(json);
        using var reference = System.Text.Json.JsonDocument.Parse(File.ReadAllText(GoldenData.ConfigPath("mnist32")));
        foreach (var property in reference.RootElement.GetProperty("config").EnumerateObject())
        {
            Assert.True(ours.RootElement.TryGetProperty(property.Name, out var written), $"'{property.Name}' not written");
            Assert.True(System.Text.Json.Nodes.JsonNode.DeepEquals(
                    System.Text.Json.Nodes.JsonNode.Parse(property.Value.GetRawText()),
                    System.Text.Json.Nodes.JsonNode.Parse(written.GetRawText()))
                || (property.Value.ValueKind == System.Text.Json.JsonValueKind.Number && property.Value.GetDouble() == written.GetDouble()),
                $"'{property.Name}': wrote {written.GetRawText()}, diffusers has {property.Value.GetRawText()}");
        }
    }

    [Fact]
    public void Bare_config_takes_diffusers_defaults_for_absent_keys_and_accepts_per_block_lists()
    {
        var config = UNetConfig.FromDiffusersJson("""
            { "block_out_channels": [32, 64], "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
              "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "attention_head_dim": [4, 8],
              "cross_attention_dim": 16, "norm_num_groups": 8, "some_future_key": {"x": 1} }
            """);
        Assert.Equal(4, config.InChannels);
        Assert.Equal(2, config.LayersPerBlock);
        Assert.Equal(4, config.HeadsForDownBlock(0));
        Assert.Equal(4, config.HeadsForUpBlock(1));   // up blocks mirror the down blocks
        Assert.Equal(8, config.HeadsForMidBlock);
    }

    [Theory]
    [InlineData("\"class_embed_type\": \"timestep\"", "class_embed_type")]
    [InlineData("\"addition_embed_type\": \"text_time\"", "addition_embed_type")]
    [InlineData("\"upcast_attention\": true", "upcast_attention")]
    [InlineData("\"act_fn\": \"gelu\"", "act_fn")]
    [InlineData("\"mid_block_type\": \"UNetMidBlock2DSimpleCrossAttn\"", "mid_block_type")]
    [InlineData("\"down_block_types\": [\"CrossAttnDownBlock2D\", \"AttnDownBlock2D\"]", "down_block_types")]
    [InlineData("\"resnet_time_scale_shift\": \"scale_shift\"", "resnet_time_scale_shift")]
    [InlineData("\"norm_num_groups\": 5", "norm_num_groups")]
    [InlineData("\"attention_head_dim\": 3", "attention_head_dim")]
    [InlineData("\"block_out_channels\": [32, 64, 64]", "down_block_types")]
    public void Refuses_unsupported_architecture_naming_the_key(string entry, string key)
    {
        var json = $$"""
            { "block_out_channels": [32, 64], "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
              "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "norm_num_groups": 8, "cross_attention_dim": 16, {{entry}} }
            """;
        var error = Assert.Throws<NotSupportedException>(() => UNetConfig.FromDiffusersJson(json));
        Assert.Contains($"'{key}'", error.Message);
    }

    [Fact]
    public void Malformed_values_are_reported_by_key()
    {
        var error = Assert.Throws<InvalidDataException>(() => UNetConfig.FromDiffusersJson("""{ "layers_per_block": "two" }"""));
        Assert.Contains("'layers_per_block'", error.Message);
        Assert.Throws<InvalidDataException>(() => UNetConfig.FromDiffusersJson("{ not json"));
    }
}
