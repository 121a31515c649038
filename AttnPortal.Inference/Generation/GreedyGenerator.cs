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
/// <remarks>
/// Decoding is one static-shape step (<see cref="DecodeStep"/>) over fixed buffers (<see cref="DecodeWorkspace"/>),
/// run eagerly or, on CUDA with the graph shim, recorded once as a CUDA graph and replayed. The next step is launched
/// before the current step's token is read, so the GPU never idles while the host checks for EOS and reports progress;
/// when a run stops at EOS, that one speculative step's results are simply not read.
/// </remarks>
public sealed class GreedyGenerator(LlavaForConditionalGeneration model, RotaryTables rope, Device device) : IDisposable
{
    private DecodeWorkspace? _workspace;
    private readonly ShapeGraphs _vision = new(device);

    /// <summary>Device memory kept between runs besides the weights: the decoding workspace and the vision graphs.</summary>
    public long WorkingBytes => (_workspace?.DeviceBytes ?? 0) + _vision.DeviceBytes;

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
        var ws = Workspace(new DecodeWorkspace.Shape(DecodeWorkspace.CapacityFor(maxKeys), dtype, input.Schedule, input.SeedCompatibleDecoding, saveLogits));
        try
        {
            return Run(ws, input, maxNewTokens, eosIds, progress, cancel);
        }
        catch
        {
            // A failed run (out of memory, cancellation mid-step) may leave a step half-launched or a graph half-recorded.
            DropWorkspace();
            throw;
        }
    }

    private GenerationResult Run(DecodeWorkspace ws, GenerationInput input, int maxNewTokens, IReadOnlySet<long> eosIds,
        Action<StepProgress>? progress, CancellationToken cancel)
    {
        var text = model.Config.Text;
        int promptLength = input.InputIds.Length;
        var (hostRows, hostIds) = ws.HostBuffers(maxNewTokens);
        var logitsBuffer = ws.Key.SaveLogits ? torch.empty(maxNewTokens, text.VocabSize, ScalarType.Float32, device) : null;
        ws.Reset(input.ImagePositions);

        var clock = Stopwatch.StartNew();
        TimeSpan visionTime;
        using (var stepScope = torch.NewDisposeScope())
        {
            var ids = torch.tensor(input.InputIds, device: device).unsqueeze(0);
            var features = input.PixelValues is null ? null
                : model.Model.PackFeatures(_vision.Run(input.PixelValues.to(ws.Key.DType, device), model.Model.TileFeatures), input.Packing);
            visionTime = clock.Elapsed;
            long imageTokens = input.ImagePositions.Count(b => b);
            if (features is not null && features.shape[0] != imageTokens)
                throw new ArgumentException($"the image gives {features.shape[0]} features but the prompt has {imageTokens} image positions");
            var promptImage = ws.IsImage.narrow(0, 0, promptLength).unsqueeze(0);
            var embeds = model.Model.PromptEmbeddings(ids, imageTokens > 0 ? promptImage : null, features);
            // Eager, not recorded per prompt length: its large products keep the GPU busier than the host's launches
            // (a recorded pass gained nothing on a 7B model and cost ~0.1 s to record for each new question length).
            var logits = PromptLogits(ws, embeds);
            logitsBuffer?[0].copy_(logits);
            ws.NextId.copy_(logits.argmax().view(1, 1));
        }
        var prefillTime = clock.Elapsed - visionTime;

        // The rows are returned as float32 [steps, layers, heads, prompt + steps - 1]. Each step's rows are converted
        // into the array a run of maxNewTokens steps returns while the GPU runs the next step: writing a new array of
        // ~100 MB (a 7B run) costs ~9 ms, mostly first touches of its pages, which the host would otherwise pay after
        // the last step. A run that stops at EOS earlier has fewer keys per row and is copied once more at its end.
        int layers = text.NumHiddenLayers, heads = text.NumAttentionHeads, keysIfFull = promptLength + maxNewTokens - 1;
        var full = GC.AllocateUninitializedArray<float>(checked(maxNewTokens * layers * heads * keysIfFull));
        using var fullRows = torch.from_array(full).view(maxNewTokens, layers, heads, keysIfFull);

        // Step k's outputs are copied to the host and marked; step k+1 is launched; only then does the host wait for
        // the mark and read step k's token and rows.
        var generated = new List<long>(maxNewTokens);
        var hostId = hostIds.data<long>();
        for (int step = 0; ; step++)
        {
            hostRows[step].copy_(ws.Capture, true); // non-blocking into pinned memory
            hostIds.narrow(0, step, 1).copy_(ws.NextId.view(1), true);
            ws.Fence.Mark();
            bool more = step + 1 < maxNewTokens;
            if (more) Launch(ws, step + 1, logitsBuffer);
            ws.Fence.Wait();
            long next = hostId[step];
            generated.Add(next);
            progress?.Invoke(new StepProgress(step, maxNewTokens, (int)next));
            using (var stepRows = fullRows[step]) stepRows.copy_(hostRows[step].narrow(2, 0, keysIfFull));
            if (eosIds.Contains(next) || !more) break;
            cancel.ThrowIfCancellationRequested();
        }
        bool eos = eosIds.Contains(generated[^1]);

        int steps = generated.Count, keys = promptLength + steps - 1;
        // A run stopped at EOS leaves its speculative step running; nothing here waits for it: the rows read below
        // reached pinned memory before the fence of their step, and whatever touches the device buffers next (the
        // logits copy, the next run's reset, freed memory reused by the allocator) is ordered after it on the stream.
        var attention = full;
        if (steps < maxNewTokens)
        {
            attention = GC.AllocateUninitializedArray<float>(checked(steps * layers * heads * keys));
            using var rows = torch.from_array(attention).view(steps, layers, heads, keys);
            rows.copy_(hostRows.narrow(0, 0, steps).narrow(3, 0, keys));
        }
        float[]? stepLogits = logitsBuffer?.narrow(0, 0, steps).cpu().data<float>().ToArray();
        return new GenerationResult([.. generated], attention, steps, layers, heads, keys,
            stepLogits, text.VocabSize, visionTime, prefillTime, clock.Elapsed - visionTime - prefillTime, eos);
    }

    /// <summary>The prompt through the language model (filling the cache and the capture's prompt rows): the float32
    /// logits of its last position.</summary>
    private Tensor PromptLogits(DecodeWorkspace ws, Tensor embeds)
    {
        var hidden = model.Model.LanguageModel.Prefill(embeds, rope, ws.Cache, ws.Capture, ws.Masks);
        return model.Logits(hidden.narrow(1, embeds.shape[1] - 1, 1))[0, 0].to(ScalarType.Float32);
    }

    /// <summary>Enqueues decoding step <paramref name="step"/> (≥ 1): replayed when a graph was recorded; the first
    /// step of a new workspace is run while recording one.</summary>
    private void Launch(DecodeWorkspace ws, int step, Tensor? logitsBuffer)
    {
        if (ws.Graph is not null) ws.Graph.Replay();
        else if (CudaGraph.CanRecord(device)) ws.Graph = CudaGraph.Capture(device, () => DecodeStep(ws)); // runs the step, then records it
        else DecodeStep(ws);
        if (ws.Logits is not null) logitsBuffer![step].copy_(ws.Logits);
    }

    private void DecodeStep(DecodeWorkspace ws)
    {
        using var scope = torch.NewDisposeScope();
        var embeds = model.Model.PromptEmbeddings(ws.NextId, null, null);
        var hidden = model.Model.LanguageModel.Decode(embeds, ws.Position, rope, ws.Cache, ws.Capture, ws.Masks.DecodeMaskRows(ws.Position));
        var logits = model.Logits(hidden)[0, 0].to(ScalarType.Float32);
        ws.Logits?.copy_(logits);
        ws.NextId.copy_(logits.argmax().view(1, 1));
        ws.Position.add_(1);
    }

    private DecodeWorkspace Workspace(DecodeWorkspace.Shape shape)
    {
        // A workspace with room for more keys serves as well (keys beyond a run's own are masked), so questions of
        // varied lengths keep one workspace and its recorded step instead of recording again at each capacity step;
        // one with more than twice the room is replaced, so that one long run does not keep its cache for good.
        if (_workspace?.Key is { } key && key with { Capacity = shape.Capacity } == shape
            && key.Capacity >= shape.Capacity && key.Capacity <= 2 * shape.Capacity)
            return _workspace;
        DropWorkspace();
        return _workspace = new DecodeWorkspace(shape, model.Config.Text, device);
    }

    private void DropWorkspace()
    {
        if (_workspace is null) return;
        // A cancelled run may still have its speculative step on the GPU; its buffers and graph must outlive it.
        if (device.type == DeviceType.CUDA)
            try { torch.cuda.synchronize(); }
            catch (Exception) { /* the run's own error is the one to report */ }
        _workspace.Dispose();
        _workspace = null;
    }

    public void Dispose()
    {
        DropWorkspace();
        _vision.Dispose();
    }
}
