using static TorchSharp.torch;

namespace AttnPortal.Inference.Generation;

/// <summary>Which mask each decoder layer uses (LLaVA-Alternating-Attn; layers numbered from 0).</summary>
public enum AttentionSchedule
{
    /// <summary>The causal mask on every layer.</summary>
    Standard,
    /// <summary>Odd layers except the last: causal AND same modality (text sees text, image sees image).</summary>
    Alternating,
    /// <summary>Odd layers except the last: causal AND (other modality OR itself).</summary>
    AlternatingCross,
}

public static class AttentionSchedules
{
    public static readonly IReadOnlyList<string> Names = ["standard", "alternating", "alternating-cross"];

    public static string Name(this AttentionSchedule s) => Names[(int)s];

    public static AttentionSchedule Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "standard" => AttentionSchedule.Standard,
        "alternating" => AttentionSchedule.Alternating,
        "alternating-cross" => AttentionSchedule.AlternatingCross,
        _ => throw new ArgumentException($"unknown attention schedule '{name}': use {string.Join(", ", Names)}"),
    };

    /// <summary>The seed's layer rule: even layers and the last layer keep the causal mask.</summary>
    public static bool UsesModalityMask(this AttentionSchedule s, int layer, int layers) =>
        s != AttentionSchedule.Standard && layer % 2 == 1 && layer != layers - 1;
}

/// <summary>
/// The boolean masks (true = may attend) of one run, per layer, for a forward over query positions
/// [start, start + n) against keys [0, start + n). Null means "plain causal": the caller uses the fused causal kernel.
/// </summary>
/// <remarks>
/// <para>Modality: a key or query is image when its position holds an image feature (including image_newline and
/// tile features); everything else, generated tokens included, is text.</para>
/// <para>Seed-compatible decoding: the seed builds the odd-layer mask of a cached decoding step from row 0 of its
/// modality mask instead of the current position's row. For <see cref="AttentionSchedule.Alternating"/> that is the
/// same row (position 0 is text, as is every generated token); for <see cref="AttentionSchedule.AlternatingCross"/>
/// a generated token then sees the image tokens and position 0, not itself. Reproduced when asked, so numbers can be
/// compared with the seed's; off by default.</para>
/// </remarks>
public sealed class LayerMasks
{
    private readonly AttentionSchedule _schedule;
    private readonly bool _seedDecoding;
    private readonly int _layers;
    private readonly int? _window;
    private readonly Tensor _isImage; // [capacity] bool on the model's device

    public LayerMasks(AttentionSchedule schedule, bool seedDecoding, int layers, int? slidingWindow, Tensor isImage)
    {
        (_schedule, _seedDecoding, _layers, _window, _isImage) = (schedule, seedDecoding, layers, slidingWindow, isImage);
    }

    public AttentionSchedule Schedule => _schedule;

    /// <summary>[n, start + n] for a forward over n query positions starting at <paramref name="start"/>; null when
    /// the plain causal mask applies.</summary>
    public Tensor? For(int layer, long start, long n)
    {
        long keys = start + n;
        bool modality = _schedule.UsesModalityMask(layer, _layers);
        bool window = _window is int w && keys > w;
        if (!modality && !window) return null;

        var device = _isImage.device;
        var q = arange(start, keys, dtype: ScalarType.Int64, device: device).unsqueeze(1);
        var k = arange(0, keys, dtype: ScalarType.Int64, device: device).unsqueeze(0);
        var allowed = k <= q;
        if (window) allowed = allowed.logical_and(k > q - _window!.Value);
        if (!modality) return allowed;

        var keyImage = _isImage.narrow(0, 0, keys).unsqueeze(0);
        // Seed decoding (n = 1 after the prompt): the row of position 0 instead of the query's own row.
        bool seedRow = _seedDecoding && start > 0 && n == 1;
        var queryPos = seedRow ? zeros_like(q) : q;
        var queryImage = _isImage.index_select(0, queryPos.squeeze(1)).unsqueeze(1);
        var rows = _schedule == AttentionSchedule.Alternating
            ? keyImage.eq(queryImage)
            : keyImage.ne(queryImage).logical_or(k.eq(queryPos));
        return allowed.logical_and(rows);
    }

    /// <summary>
    /// Per layer, the additive mask row [capacity] (float32: 0 where the query at <paramref name="position"/> ([1], on
    /// the device) may attend, −∞ elsewhere) of a decoding step: computed on the device from the position, so a
    /// captured CUDA graph stays right as it advances. Layers with the same rule share one row.
    /// </summary>
    public Tensor[] DecodeMaskRows(Tensor position)
    {
        var additive = new Dictionary<Tensor, Tensor>(ReferenceEqualityComparer.Instance);
        return DecodeRows(position).Select(r => additive.TryGetValue(r, out var a) ? a : additive[r] = Additive(r)).ToArray();
    }

    private static Tensor Additive(Tensor allowed) =>
        zeros(allowed.shape, ScalarType.Float32, allowed.device).masked_fill(allowed.logical_not(), double.NegativeInfinity);

    /// <summary>Per layer, the keys [0, capacity) the query at <paramref name="position"/> may attend to (bool).</summary>
    public Tensor[] DecodeRows(Tensor position)
    {
        long capacity = _isImage.shape[0];
        var k = arange(0, capacity, dtype: ScalarType.Int64, device: _isImage.device);
        var causal = k <= position;
        if (_window is int w) causal = causal.logical_and(k > position - w);
        Tensor? modal = null;
        var rows = new Tensor[_layers];
        for (int layer = 0; layer < _layers; layer++)
        {
            if (!_schedule.UsesModalityMask(layer, _layers)) { rows[layer] = causal; continue; }
            if (modal is null)
            {
                var rowPosition = _seedDecoding ? zeros_like(position) : position;
                var queryImage = _isImage.index_select(0, rowPosition);
                modal = causal.logical_and(_schedule == AttentionSchedule.Alternating
                    ? _isImage.eq(queryImage)
                    : _isImage.ne(queryImage).logical_or(k.eq(rowPosition)));
            }
            rows[layer] = modal;
        }
        return rows;
    }
}
