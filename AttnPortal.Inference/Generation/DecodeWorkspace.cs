using AttnPortal.Inference.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnPortal.Inference.Generation;

/// <summary>
/// The device state of a run's decoding, kept from run to run of one engine: the KV cache, the fixed inputs and
/// outputs of the decoding step, its CUDA graph, and the host buffers the steps' attention rows are copied into. A
/// graph replays fixed addresses, so everything it touches must outlive the run; recording a step
/// (~0.1 s for a 7B model) and pinning host memory are paid once per <see cref="Shape"/>, not per run.
/// </summary>
internal sealed class DecodeWorkspace : IDisposable
{
    /// <summary>What the recorded step depends on. Key capacity is rounded up so that prompts of similar length
    /// (another image size, another question) share one workspace, and a run may use one with more room (up to twice
    /// its own); keys beyond a run's own are masked.</summary>
    public sealed record Shape(long Capacity, ScalarType DType, AttentionSchedule Schedule, bool SeedDecoding, bool SaveLogits);

    public const long CapacityStep = 128;

    public Shape Key { get; }
    public IReadOnlyList<LayerKvCache> Cache { get; }
    public LayerMasks Masks { get; }
    /// <summary>[capacity] bool: which positions hold image features (the run's prompt; generated tokens are text).</summary>
    public Tensor IsImage { get; }
    /// <summary>[1, 1]: the token the next step feeds in (written by the previous step's greedy choice).</summary>
    public Tensor NextId { get; }
    /// <summary>[1]: the position of that token; each step advances it.</summary>
    public Tensor Position { get; }
    /// <summary>[layers, heads, capacity]: the attention rows of the last step (prefill or decoding).</summary>
    public Tensor Capture { get; }
    /// <summary>[vocab] float32: the logits of the last decoding step; null unless <see cref="Shape.SaveLogits"/>.</summary>
    public Tensor? Logits { get; }
    /// <summary>The recorded step; null until the first decoding step on CUDA with the shim (always null elsewhere).</summary>
    public CudaGraph? Graph { get; set; }
    public StepFence Fence { get; }

    private Tensor? _hostCapture, _hostIds;

    /// <summary>Device memory held from run to run: the cache, the step's buffers, the graphs (pinned host buffers are
    /// not device memory).</summary>
    public long DeviceBytes =>
        Cache.Sum(l => l.Keys.Bytes() + l.Values.Bytes())
        + new[] { IsImage, NextId, Position, Capture, Logits }.Sum(t => t?.Bytes() ?? 0)
        + (Graph?.PoolBytes ?? 0);

    public DecodeWorkspace(Shape key, LlamaConfig text, Device device)
    {
        Key = key;
        Cache = Enumerable.Range(0, text.NumHiddenLayers).Select(_ => new LayerKvCache(
            Keep(torch.zeros(1, text.NumKeyValueHeads, key.Capacity, text.HeadDim, key.DType, device)),
            Keep(torch.zeros(1, text.NumKeyValueHeads, key.Capacity, text.HeadDim, key.DType, device)))).ToList();
        IsImage = Keep(torch.zeros(key.Capacity, ScalarType.Bool, device));
        Masks = new LayerMasks(key.Schedule, key.SeedDecoding, text.NumHiddenLayers, text.SlidingWindow, IsImage);
        NextId = Keep(torch.zeros([1, 1], ScalarType.Int64, device));
        Position = Keep(torch.zeros(1, ScalarType.Int64, device));
        Capture = Keep(torch.zeros([text.NumHiddenLayers, text.NumAttentionHeads, key.Capacity], CaptureType(key.DType), device));
        Logits = key.SaveLogits ? Keep(torch.zeros(text.VocabSize, ScalarType.Float32, device)) : null;
        Fence = new StepFence(device);
    }

    /// <summary>
    /// Reduced-precision models keep captured rows in float16 (half the memory; its 2^-11 step near 1 is 8x finer than
    /// bfloat16's); the softmax itself is always float32.
    /// </summary>
    public static ScalarType CaptureType(ScalarType modelType) => modelType == ScalarType.Float32 ? ScalarType.Float32 : ScalarType.Float16;

    public static long CapacityFor(long keys) => (keys + CapacityStep - 1) / CapacityStep * CapacityStep;

    /// <summary>Host buffers for <paramref name="steps"/> steps: [steps, layers, heads, capacity] rows and [steps] ids,
    /// pinned on CUDA so the per-step copies are asynchronous. Grown when a run asks for more steps.</summary>
    public (Tensor Rows, Tensor Ids) HostBuffers(int steps)
    {
        if (_hostCapture is null || _hostCapture.shape[0] < steps)
        {
            _hostCapture?.Dispose();
            _hostIds?.Dispose();
            _hostCapture = Host(torch.empty([steps, .. Capture.shape], Capture.dtype));
            _hostIds = Host(torch.empty(steps, ScalarType.Int64));
        }
        return (_hostCapture, _hostIds!);
    }

    private Tensor Host(Tensor pageable)
    {
        if (Capture.device_type != DeviceType.CUDA) return Keep(pageable);
        using (pageable) return Keep(pageable.pin_memory());
    }

    /// <summary>Takes a tensor out of the caller's dispose scope (runs are wrapped in one): the workspace owns it.</summary>
    private static Tensor Keep(Tensor t) => t.DetachFromDisposeScope();

    /// <summary>Clears what a previous run left: the cache (a masked key must contribute 0 · value, and stale values
    /// could be anything a model overflowed to) and the capture row (a prompt row leaves the keys beyond it untouched).</summary>
    public void Reset(bool[] promptImage)
    {
        foreach (var layer in Cache)
        {
            layer.Keys.zero_();
            layer.Values.zero_();
        }
        Capture.zero_();
        IsImage.zero_();
        using var flags = torch.tensor(promptImage, device: IsImage.device);
        IsImage.narrow(0, 0, promptImage.Length).copy_(flags);
        Position.fill_(promptImage.Length);
    }

    public void Dispose()
    {
        Graph?.Dispose();
        Fence.Dispose();
        foreach (var layer in Cache) layer.Dispose();
        foreach (var t in new[] { IsImage, NextId, Position, Capture, Logits, _hostCapture, _hostIds }) t?.Dispose();
    }
}
