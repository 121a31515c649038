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
/// The masks of one run, per layer: boolean [n, n] for the prompt (true = may attend; null means "plain causal", and
/// the caller uses the fused causal kernel), and additive rows for each decoding step.
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

    /// <summary>[n, n] for the prompt's n positions; null when the plain causal mask applies.</summary>
    public Tensor? For(int layer, long n)
    {
        bool modality = _schedule.UsesModalityMask(layer, _layers);
        bool window = _window is int w && n > w;
        if (!modality && !window) return null;

        var q = arange(0, n, dtype: ScalarType.Int64, device: _isImage.device).unsqueeze(1);
        var k = arange(0, n, dtype: ScalarType.Int64, device: _isImage.device).unsqueeze(0);
        var allowed = Causal(k, q);
        if (!modality) return allowed;
        var queryImage = _isImage.narrow(0, 0, n).unsqueeze(1);
        return allowed.logical_and(ModalityRule(_isImage.narrow(0, 0, n).unsqueeze(0), queryImage, k, q));
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
        var causal = Causal(k, position);
        Tensor? modal = null;
        var rows = new Tensor[_layers];
        for (int layer = 0; layer < _layers; layer++)
        {
            if (!_schedule.UsesModalityMask(layer, _layers)) { rows[layer] = causal; continue; }
            if (modal is null)
            {
                // Seed decoding: the row of position 0 instead of the query's own row.
                var rowPosition = _seedDecoding ? zeros_like(position) : position;
                modal = causal.logical_and(ModalityRule(_isImage, _isImage.index_select(0, rowPosition), k, rowPosition));
            }
            rows[layer] = modal;
        }
        return rows;
    }

    /// <summary>Keys at or before the query (and within the sliding window, if any).</summary>
    private Tensor Causal(Tensor key, Tensor query)
    {
        var allowed = key <= query;
        return _window is int w ? allowed.logical_and(key > query - w) : allowed;
    }

    /// <summary>The odd layers' rule: same modality (alternating), or other modality or the query itself (cross).</summary>
    private Tensor ModalityRule(Tensor keyImage, Tensor queryImage, Tensor key, Tensor query) =>
        _schedule == AttentionSchedule.Alternating
            ? keyImage.eq(queryImage)
            : keyImage.ne(queryImage).logical_or(key.eq(query));
}
