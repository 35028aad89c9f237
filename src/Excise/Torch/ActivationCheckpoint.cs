using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Torch;

/// <summary>
/// Gradient (activation) checkpointing, which TorchSharp 0.107 does not ship: a segment of a network runs forward
/// without keeping its intermediate activations, and backward runs it again from its saved inputs to get them. Memory
/// falls from every intermediate of the segment to its inputs and one output-sized buffer (TorchSharp's custom function
/// keeps one per output); time rises by one more forward of the segment. This is PyTorch's reentrant checkpoint
/// (<c>torch.utils.checkpoint</c> with <c>use_reentrant=True</c>): the recomputation's own backward accumulates the
/// gradients of the segment's parameters into their <c>.grad</c>, and the gradients of its inputs flow on.
/// The segment must compute the same values twice: no dropout or other random draw inside it.
/// </summary>
public static class ActivationCheckpoint
{
    /// <summary>
    /// <paramref name="segment"/>(<paramref name="inputs"/>), recomputed in backward instead of remembered. With gradients
    /// off (sampling, evaluation) it is a plain call. A null input reaches the segment as null.
    /// </summary>
    public static Tensor Run(Func<Tensor?[], Tensor> segment, params Tensor?[] inputs)
    {
        if (!is_grad_enabled()) return segment(inputs);
        // A custom function joins the graph only when an input needs a gradient. When none does (LoRA: the layers below
        // are frozen), the parameters inside the segment would silently get none; an anchor input that needs one keeps the
        // segment in the graph, as PyTorch's reentrant checkpoint asks its users to arrange.
        var anchor = inputs.Any(t => t is not null && t.requires_grad)
            ? null
            : zeros(1, device: inputs.First(t => t is not null)!.device, requires_grad: true);
        var arguments = new object?[inputs.Length + 2];
        arguments[0] = segment;
        for (int i = 0; i < inputs.Length; i++) arguments[i + 1] = inputs[i];
        arguments[^1] = anchor;
        return RecomputedSegment.apply(arguments!);
    }

    private sealed class RecomputedSegment : autograd.SingleTensorFunction<RecomputedSegment>
    {
        private const string SegmentKey = "segment", NeedsGradientKey = "needs-gradient", OutputKey = "output";

        public override string Name => nameof(RecomputedSegment);

        // arguments: the segment, its inputs, the anchor (or null).
        public override Tensor forward(autograd.AutogradContext ctx, params object[] arguments)
        {
            var inputs = Inputs(arguments);
            ctx.save_data(SegmentKey, arguments[0]);
            ctx.save_data(NeedsGradientKey, inputs.Select(t => t is not null && t.requires_grad).ToArray());
            ctx.save_for_backward(inputs.ToList()!);
            // Gradients are off here (TorchSharp's apply); the segment's intermediates go with this scope at once. The
            // output leaves every scope: TorchSharp wraps it in a handle of its own for the graph, and ours, held by the
            // step's scope, would keep each segment's output alive after backward has passed it. This node's backward
            // releases it (a step whose backward never runs leaves it to the garbage collector).
            using var scope = NewDisposeScope();
            var output = ((Func<Tensor?[], Tensor>)arguments[0]).Invoke(inputs).DetachFromDisposeScope();
            ctx.save_data(OutputKey, new Handle(output));
            return output;
        }

        /// <summary>A tensor kept as context data (TorchSharp warns when a tensor itself is saved that way).</summary>
        private sealed record Handle(Tensor Tensor);

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
        {
            // Our handles on this segment's output and on the gradients the previous backward on this thread returned:
            // libtorch holds its own references to both by now, so each is freed as soon as the graph is done with it
            // rather than with the step's dispose scope.
            ((Handle)ctx.get_data(OutputKey)).Tensor.Dispose();
            ReleaseReturned();
            var segment = (Func<Tensor?[], Tensor>)ctx.get_data(SegmentKey);
            var needsGradient = (bool[])ctx.get_data(NeedsGradientKey);
            var saved = ctx.get_saved_variables();
            var gradients = new List<Tensor> { null! };
            using (var scope = NewDisposeScope())
            {
                var inputs = saved.Select((t, i) => t?.detach().requires_grad_(needsGradient[i])).ToArray();
                Tensor output;
                using (enable_grad()) output = segment(inputs);
                // A segment with nothing trainable inside and behind it (a frozen resnet under LoRA) has no gradient to give.
                if (output.requires_grad) autograd.backward([output], [gradOutput]);
                foreach (var input in inputs)
                    if (input?.grad is { } gradient)
                    {
                        gradients.Add(gradient.DetachFromDisposeScope());
                        Returned.Add(gradient);
                    }
                    else gradients.Add(null!);
            }
            // TorchSharp hands the output's gradient over in the caller's scope, which lasts the whole step: every
            // segment's would pile up there (the activation memory checkpointing is meant to save). It is spent now.
            gradOutput.Dispose();
            gradients.Add(null!); // the anchor's: nothing depends on it
            return gradients;
        }

        /// <summary>Our handles on the gradients the last backward on this thread returned (a CPU backward and its
        /// re-entries run on the caller's thread, a GPU's on the device's; either way each thread releases its own).</summary>
        [ThreadStatic] private static List<Tensor>? ReturnedOnThisThread;

        private static List<Tensor> Returned => ReturnedOnThisThread ??= [];

        private static void ReleaseReturned()
        {
            foreach (var gradient in Returned) gradient.Dispose();
            Returned.Clear();
        }

        private static Tensor?[] Inputs(object[] arguments) =>
            arguments.Skip(1).Take(arguments.Length - 2).Select(a => a as Tensor).ToArray();
    }
}
