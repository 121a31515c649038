using System.Globalization;
using AttnPortal.Data;

namespace AttnPortal.Web.Services;

/// <summary>How a gallery item's pinned view is spoken of, and the run-view address that reopens it.</summary>
public static class PinnedViewText
{
    /// <summary>"token 3 · layer 2 · mean over heads · view tiles · viridis, opacity 0.6".</summary>
    /// <param name="viewName">The view actually drawn, when known (an item may leave it to each run's preferred view).</param>
    public static string Describe(GalleryItem pin, string? viewName = null) =>
        Describe(pin.Step, pin.Layer, pin.Head, viewName ?? pin.ViewName, pin.Colormap, pin.Opacity);

    public static string Describe(int? step, int? layer, int? head, string? viewName, string colormap, double opacity) =>
        string.Join(" · ",
            step is { } s ? $"token {s}" : "mean over tokens",
            layer is { } l ? $"layer {l}" : "mean over layers",
            head is { } h ? $"head {h}" : "mean over heads",
            viewName is { } v ? $"view {v}" : "preferred view",
            $"{colormap}, opacity {opacity.ToString("0.##", CultureInfo.InvariantCulture)}");

    /// <summary>/runs/{id}?step=…&amp;layer=…&amp;head=…&amp;view=…&amp;cmap=…&amp;opacity=… (step=mean for the mean over tokens).</summary>
    public static string RunViewUrl(Guid runId, GalleryItem pin) =>
        $"/runs/{runId}?step={(pin.Step?.ToString(CultureInfo.InvariantCulture) ?? "mean")}"
        + (pin.Layer is { } l ? $"&layer={l}" : "") + (pin.Head is { } h ? $"&head={h}" : "")
        + (pin.ViewName is { } v ? $"&view={Uri.EscapeDataString(v)}" : "")
        + $"&cmap={Uri.EscapeDataString(pin.Colormap)}&opacity={pin.Opacity.ToString("0.###", CultureInfo.InvariantCulture)}";

    /// <summary>A step, layer or head from an address: "mean" is null (the mean over the axis), an index below
    /// <paramref name="count"/> is itself, and anything else (absent, unknown, out of range) leaves <paramref name="current"/>.</summary>
    public static int? ParseAxis(string? text, int count, int? current) =>
        string.Equals(text, "mean", StringComparison.OrdinalIgnoreCase) ? null
        : int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int i) && i < count ? i
        : current;
}
