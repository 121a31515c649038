using System.Diagnostics;
using AttnPortal.Inference.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnPortal.Inference.Generation;

public sealed record StepProgress(int Step, int MaxSteps, int TokenId);

/// <summary>What one greedy run produced; attention is [steps, layers, heads, keys] with keys = prompt + steps - 1.</summary>
public sealed record GenerationResult(
    long[] GeneratedIds, float[] Attention, int Steps, int Layers, int Heads, int Keys, float[]? StepLogits, int Vocab,
    TimeSpan VisionTime, TimeSpan PrefillTime, TimeSpan DecodeTime, bool StoppedAtEos);

/// <summary>One prompt for <see cref="GreedyGenerator"/>. Image positions hold image features (any placeholder id);
/// <paramref name="PixelValues"/> is [tiles, 3, size, size] and <paramref name="Packing"/> says how anyres tiles become
/// tokens (null: LLaVA-1.5, one image's features in order).</summary>
public sealed record GenerationInput(
    long[] InputIds, bool[] ImagePositions, Tensor? PixelValues, FeaturePacking? Packing,
    AttentionSchedule Schedule = AttentionSchedule.Standard, bool SeedCompatibleDecoding = false);

/// <summary>
/// Greedy decoding with a preallocated KV cache that records, for every step, every layer's attention row of the query
/// position: step 0 is the last prompt position, step k the k-th generated token fed back.
/// </summary>
public sealed class GreedyGenerator(LlavaForConditionalGeneration model, RotaryTables rope, Device device)
{
    public GenerationResult Generate(GenerationInput input, int maxNewTokens, IReadOnlySet<long> eosIds,
        bool saveLogits, Action<StepProgress>? progress = null, CancellationToken cancel = default)
    {
        var text = model.Config.Text;
        var inputIds = input.InputIds;
        if (input.ImagePositions.Length != inputIds.Length) throw new ArgumentException("one image-position flag per input id is required");
        int promptLength = inputIds.Length;
        if (maxNewTokens < 1) throw new ArgumentException("max new tokens must be at least 1");
        if (promptLength + maxNewTokens - 1 > text.MaxPositionEmbeddings)
            throw new ArgumentException($"the prompt has {promptLength} tokens and {maxNewTokens} new tokens were asked for, but the model supports {text.MaxPositionEmbeddings} positions");

        using var noGrad = torch.no_grad();
        using var runScope = torch.NewDisposeScope();
        var dtype = model.Model.LanguageModel.EmbedTokens.parameters().First().dtype;
        int maxKeys = promptLength + maxNewTokens - 1;
        // Zero-filled: decoding steps attend over the whole cache with the keys beyond the query masked, and a masked
        // key must contribute 0 · value = 0, which uninitialised memory (NaN) would not.
        var cache = Enumerable.Range(0, text.NumHiddenLayers).Select(_ => new LayerKvCache(
            torch.zeros(1, text.NumKeyValueHeads, maxKeys, text.HeadDim, dtype, device),
            torch.zeros(1, text.NumKeyValueHeads, maxKeys, text.HeadDim, dtype, device))).ToList();
        // Capture stays on the device until the run ends: one copy to the host instead of one per step. Reduced-precision
        // models keep it in float16 (half the memory; its 2^-11 step near 1 is 8x finer than bfloat16's); the softmax
        // itself is always float32.
        var captureType = dtype == ScalarType.Float32 ? ScalarType.Float32 : ScalarType.Float16;
        var capture = torch.zeros([maxNewTokens, text.NumHiddenLayers, text.NumAttentionHeads, maxKeys], captureType, device);
        var logitsBuffer = saveLogits ? torch.empty(maxNewTokens, text.VocabSize, ScalarType.Float32, device) : null;
        var isImage = torch.zeros(maxKeys, ScalarType.Bool, device);
        var promptImage = torch.tensor(input.ImagePositions, device: device);
        isImage.narrow(0, 0, promptLength).copy_(promptImage);
        var masks = new LayerMasks(input.Schedule, input.SeedCompatibleDecoding, text.NumHiddenLayers, text.SlidingWindow, isImage);
        var generated = new List<long>(maxNewTokens);

        var clock = Stopwatch.StartNew();
        long next;
        TimeSpan visionTime;
        using (var stepScope = torch.NewDisposeScope())
        {
            var ids = torch.tensor(inputIds, device: device).unsqueeze(0);
            var features = input.PixelValues is null ? null : model.Model.ImageFeatures(input.PixelValues.to(dtype, device), input.Packing);
            visionTime = clock.Elapsed;
            long imageTokens = input.ImagePositions.Count(b => b);
            if (features is not null && features.shape[0] != imageTokens)
                throw new ArgumentException($"the image gives {features.shape[0]} features but the prompt has {imageTokens} image positions");
            var embeds = model.Model.PromptEmbeddings(ids, imageTokens > 0 ? promptImage.unsqueeze(0) : null, features);
            var hidden = model.Model.LanguageModel.Prefill(embeds, rope, cache, capture[0], masks);
            next = Choose(hidden, logitsBuffer, 0);
        }
        var prefillTime = clock.Elapsed - visionTime;
        generated.Add(next);
        progress?.Invoke(new StepProgress(0, maxNewTokens, (int)next));

        // Decoding: one static-shape step (DecodeStep) whose inputs and outputs live in fixed device buffers, run
        // eagerly or, on CUDA when the graph shim is there, captured once and replayed; the only host synchronisation
        // per token is reading the greedy choice (EOS and progress need it).
        bool eos = eosIds.Contains(next);
        if (maxNewTokens > 1 && !eos)
        {
            var state = new DecodeState(
                torch.tensor(new[] { next }, device: device).view(1, 1), torch.tensor(new long[] { promptLength }, device: device),
                torch.zeros([text.NumHiddenLayers, text.NumAttentionHeads, maxKeys], captureType, device),
                torch.empty(text.VocabSize, ScalarType.Float32, device));
            void Step() => DecodeStep(state, cache, masks);
            using var graph = CudaGraph.TryCapture(device, Step); // when it captures, it has run step 1 already
            for (int step = 1; step < maxNewTokens && !eos; step++)
            {
                cancel.ThrowIfCancellationRequested();
                if (graph is null) Step();
                else if (step > 1) graph.Replay();
                capture[step].copy_(state.Capture);
                logitsBuffer?[step].copy_(state.Logits);
                next = state.NextId.item<long>();
                generated.Add(next);
                eos = eosIds.Contains(next);
                progress?.Invoke(new StepProgress(step, maxNewTokens, (int)next));
            }
        }

        int steps = generated.Count, keys = promptLength + steps - 1;
        float[] attention = capture.narrow(0, 0, steps).narrow(3, 0, keys).cpu().to(ScalarType.Float32).contiguous().data<float>().ToArray();
        float[]? logits = logitsBuffer?.narrow(0, 0, steps).cpu().data<float>().ToArray();
        return new GenerationResult([.. generated], attention, steps, text.NumHiddenLayers, text.NumAttentionHeads, keys,
            logits, text.VocabSize, visionTime, prefillTime, clock.Elapsed - visionTime - prefillTime, eos);
    }

    /// <summary>The fixed buffers of the decoding loop: the token fed in and its position (advanced by each step), the
    /// step's attention rows and logits.</summary>
    private sealed record DecodeState(Tensor NextId, Tensor Position, Tensor Capture, Tensor Logits);

    private void DecodeStep(DecodeState s, IReadOnlyList<LayerKvCache> cache, LayerMasks masks)
    {
        using var scope = torch.NewDisposeScope();
        var embeds = model.Model.PromptEmbeddings(s.NextId, null, null);
        var hidden = model.Model.LanguageModel.Decode(embeds, s.Position, rope, cache, s.Capture, masks.DecodeMaskRows(s.Position));
        var logits = model.Logits(hidden)[0, 0].to(ScalarType.Float32);
        s.Logits.copy_(logits);
        s.NextId.copy_(logits.argmax().view(1, 1));
        s.Position.add_(1);
    }

    private long Choose(Tensor hidden, Tensor? logitsBuffer, int step)
    {
        var logits = model.Logits(hidden.narrow(1, hidden.shape[1] - 1, 1))[0, 0].to(ScalarType.Float32);
        logitsBuffer?[step].copy_(logits);
        return logits.argmax().item<long>();
    }
}
