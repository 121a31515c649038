using AttnPortal.Inference.Images;

namespace AttnPortal.Web.Components.Shared;

/// <summary>Where a viewer stands in attention: token step, layer and head (null = the mean over that axis) and the image view shown.</summary>
public readonly record struct AttentionCursor(int? Step, int? Layer, int? Head, string? View);

/// <summary>
/// The keyboard of the run view and the comparison: ←/→ token (left of token 0 is the mean over tokens), ↑/↓ layer,
/// [ / ] head (above 0 is the mean), l / h the mean over layers / heads, v the next image view.
/// </summary>
public static class AttentionKeys
{
    public const string Help = "←/→ token · ↑/↓ layer · [ / ] head · l / h mean over layers / heads";

    /// <summary>The cursor after <paramref name="key"/> (a <c>KeyboardEventArgs.Key</c>); unchanged for other keys.</summary>
    public static AttentionCursor Apply(string key, AttentionCursor at, int steps, int layers, int heads, IReadOnlyList<ImageGridView> views) => key switch
    {
        "ArrowRight" => at with { Step = Next(at.Step, steps) },
        "ArrowLeft" => at with { Step = Previous(at.Step) },
        "ArrowDown" => at with { Layer = Next(at.Layer, layers) },
        "ArrowUp" => at with { Layer = Previous(at.Layer) },
        "]" => at with { Head = Next(at.Head, heads) },
        "[" => at with { Head = Previous(at.Head) },
        "l" => at with { Layer = null },
        "h" => at with { Head = null },
        "v" when views.Count > 0 => at with { View = ViewPicker.Next(views, at.View) },
        _ => at,
    };

    private static int? Next(int? v, int count) => v is null ? 0 : Math.Min(v.Value + 1, count - 1);
    private static int? Previous(int? v) => v is null or 0 ? null : v - 1;
}
