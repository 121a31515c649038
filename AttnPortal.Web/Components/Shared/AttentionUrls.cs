using System.Globalization;
using AttnPortal.Web.Rendering;

namespace AttnPortal.Web.Components.Shared;

/// <summary>The addresses of the rendered views (RunEndpoints, CompareEndpoints) for one selection.</summary>
public static class AttentionUrls
{
    /// <param name="normalization">Null: each map from its own min to max.</param>
    public static string Heatmap(Guid run, string view, AttentionSelection selection, string colormap, Normalization? normalization = null) =>
        $"/api/runs/{run}/heatmap.png?{Query(view, selection)}cmap={colormap}" +
        (normalization is { } n ? $"&norm={Uri.EscapeDataString(n.Key)}" : "");

    public static string Heads(Guid run, string view, int? step, string colormap) =>
        $"/api/runs/{run}/heads.png?{Query(view, new AttentionSelection(step, null, null))}cmap={colormap}";

    public static string Difference(Guid a, Guid b, string view, AttentionSelection selection) =>
        $"/api/compare/diff.png?a={a}&b={b}&{Query(view, selection).TrimEnd('&')}";

    private static string Query(string view, AttentionSelection s) =>
        $"view={Uri.EscapeDataString(view)}&{Part("step", s.Step)}{Part("layer", s.Layer)}{Part("head", s.Head)}";

    private static string Part(string name, int? value) => value is int v ? $"{name}={v.ToString(CultureInfo.InvariantCulture)}&" : "";
}
