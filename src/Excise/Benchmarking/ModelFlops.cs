using Excise.Models;

namespace Excise.Benchmarking;

/// <summary>Floating-point operations of one part of the UNet (a diffusers block name, e.g. <c>down_blocks.1</c>).</summary>
public sealed record BlockFlops(string Block, double ForwardFlops, double AttentionShare);

/// <summary>
/// Analytic FLOPs of a <see cref="UNet2DConditionModel"/> forward, per top-level block, counted from the config the
/// way the model is built. Convention (as in MFU reporting): a multiply-add is 2 FLOPs, and only convolutions,
/// linear layers and the two attention matmuls are counted; norms, activations and element-wise ops are memory-bound
/// and left out. A training step is 3× the forward (forward, gradient with respect to inputs, gradient with respect
/// to weights).
/// </summary>
public static class ModelFlops
{
    public const double TrainingStepMultiplier = 3.0;

    public static IReadOnlyList<BlockFlops> Forward(UNetConfig config, int batch, int textTokens)
    {
        var counter = new Counter(config, batch, textTokens);
        return counter.Count();
    }

    public static double ForwardTotal(UNetConfig config, int batch, int textTokens) => Forward(config, batch, textTokens).Sum(b => b.ForwardFlops);

    sealed class Counter(UNetConfig config, int batch, int textTokens)
    {
        readonly List<BlockFlops> blocks = new();
        double current, attention;

        public IReadOnlyList<BlockFlops> Count()
        {
            int c0 = config.BlockOutChannels[0], temb = config.TimeEmbedDim;
            Linear(config.TimestepFeatureDim, temb, batch); Linear(temb, temb, batch);
            Close("time_embedding");

            int size = config.SampleSize;
            Conv(config.InChannels, c0, 3, size);
            Close("conv_in");

            var skipSizes = new List<(int Channels, int Size)> { (c0, size) };
            for (int b = 0; b < config.BlockCount; b++)
            {
                int inC = b == 0 ? c0 : config.BlockOutChannels[b - 1], outC = config.BlockOutChannels[b];
                bool attends = config.DownBlockTypes[b] == UNetConfig.CrossAttnDownBlock;
                for (int l = 0; l < config.LayersPerBlock; l++)
                {
                    Resnet(l == 0 ? inC : outC, outC, size);
                    if (attends) Transformer(outC, size, config.TransformerLayersForDownBlock(b));
                    skipSizes.Add((outC, size));
                }
                if (b < config.BlockCount - 1)
                {
                    size = (size + 1) / 2;
                    Conv(outC, outC, 3, size);
                    skipSizes.Add((outC, size));
                }
                Close($"down_blocks.{b}");
            }

            int last = config.BlockOutChannels[^1];
            Resnet(last, last, size);
            Transformer(last, size, config.TransformerLayersForMidBlock);
            Resnet(last, last, size);
            Close("mid_block");

            var reversed = config.BlockOutChannels.Reverse().ToArray();
            int hiddenC = last;
            for (int b = 0; b < config.BlockCount; b++)
            {
                int outC = reversed[b];
                bool attends = config.UpBlockTypes[b] == UNetConfig.CrossAttnUpBlock;
                for (int l = 0; l < config.LayersPerBlock + 1; l++)
                {
                    var skip = skipSizes[^1];
                    skipSizes.RemoveAt(skipSizes.Count - 1);
                    Resnet(hiddenC + skip.Channels, outC, size);
                    hiddenC = outC;
                    if (attends) Transformer(outC, size, config.TransformerLayersForUpBlock(b));
                }
                if (b < config.BlockCount - 1)
                {
                    size = skipSizes[^1].Size;
                    Conv(outC, outC, 3, size);
                }
                Close($"up_blocks.{b}");
            }

            Conv(c0, config.OutChannels, 3, size);
            Close("conv_out");
            return blocks;
        }

        void Close(string name)
        {
            blocks.Add(new BlockFlops(name, current, current > 0 ? attention / current : 0));
            current = 0; attention = 0;
        }

        /// <param name="outSize">The output's side (square maps).</param>
        void Conv(int inC, int outC, int kernel, int outSize) => current += 2.0 * batch * outC * outSize * outSize * inC * kernel * kernel;

        void Linear(int inF, int outF, double rows) => current += 2.0 * rows * inF * outF;

        void Resnet(int inC, int outC, int size)
        {
            Conv(inC, outC, 3, size);
            Linear(config.TimeEmbedDim, outC, batch);
            Conv(outC, outC, 3, size);
            if (inC != outC) Conv(inC, outC, 1, size);
        }

        void Transformer(int channels, int size, int layers)
        {
            double tokens = (double)size * size, rows = batch * tokens;
            Conv(channels, channels, 1, size);
            for (int l = 0; l < layers; l++)
            {
                // Self-attention: q, k, v, out projections, then scores and the weighted sum over all tokens.
                Linear(channels, channels, rows * 4);
                Attend(rows, tokens, channels);
                // Cross-attention: q and out over image tokens, k and v over the text tokens.
                Linear(channels, channels, rows * 2);
                Linear(config.CrossAttentionDim, channels, (double)batch * textTokens * 2);
                Attend(rows, textTokens, channels);
                // GEGLU feed-forward: C → 2·4C, then 4C → C.
                Linear(channels, channels * 8, rows);
                Linear(channels * 4, channels, rows);
            }
            Conv(channels, channels, 1, size);
        }

        void Attend(double queryRows, double keys, int channels)
        {
            double flops = 2 * 2.0 * queryRows * keys * channels;
            current += flops;
            attention += flops;
        }
    }
}
