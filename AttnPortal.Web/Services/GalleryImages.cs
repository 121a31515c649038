using AttnPortal.Data;
using AttnPortal.Inference.Images;
using AttnPortal.Web.Rendering;

namespace AttnPortal.Web.Services;

/// <summary>
/// The pictures of a gallery item's pinned view, per pane (the item's run, or each run of its comparison in order),
/// drawn by <see cref="ArtifactViews"/> so that they share its caches: the one renderer behind the gallery page, the
/// public link and the export.
/// </summary>
public sealed class GalleryImages(ArtifactViews views, PortalPaths paths)
{
    /// <summary>The runs an item shows, in pane order (load the item's Run, or its Comparison's Runs with their Run).</summary>
    public static IReadOnlyList<Run> Panes(GalleryItem item) =>
        item.Run is { } run ? [run] : item.Comparison?.Runs.OrderBy(p => p.Position).Select(p => p.Run).OfType<Run>().ToList() ?? [];

    /// <summary>The photo with the pinned heatmap laid over it, or null when the run has no artifact (or photo) any more.</summary>
    public Task<byte[]?> OverlayAsync(Guid runId, GalleryItem pin) =>
        RenderAsync(runId, pin, (run, attention, view, selection, colormap) =>
            views.Overlay(runId, run, attention, view, selection, colormap, (float)Math.Clamp(pin.Opacity, 0, 1)));

    /// <summary>The pinned heatmap alone, one pixel per image token of the view.</summary>
    public Task<byte[]?> HeatmapAsync(Guid runId, GalleryItem pin) =>
        RenderAsync(runId, pin, (_, attention, view, selection, colormap) => views.Heatmap(runId, attention, view, selection, colormap));

    /// <summary>The run's original photo file and its content type, or null when it is gone (load the run's Image).</summary>
    public (string Path, string ContentType)? Photo(Run run) =>
        run.Image is { } image && File.Exists(paths.Resolve(image.StoredPath)) ? (paths.Resolve(image.StoredPath), image.ContentType) : null;

    /// <summary>The view drawn for this run and the token the pin shows (null for the mean over tokens), or null when
    /// the run has no artifact.</summary>
    public async Task<(string ViewName, string? Token)?> DescribeAsync(Guid runId, GalleryItem pin)
    {
        var (_, attention) = await views.OpenAsync(runId);
        if (attention is null) return null;
        string? token = pin.Step is { } s && s >= 0 && s < attention.GeneratedTokens.Count ? attention.GeneratedTokens[s] : null;
        return (ViewOf(attention, pin).Name, token);
    }

    /// <summary>The image view the item is pinned to in this run: its name, else the run's preferred view.</summary>
    public static ImageGridView ViewOf(AttentionRun attention, GalleryItem pin) =>
        (pin.ViewName is { } name ? attention.FindView(name) : null) ?? attention.PreferredView;

    private async Task<byte[]?> RenderAsync(Guid runId, GalleryItem pin, Func<Run, AttentionRun, ImageGridView, AttentionSelection, Colormap, byte[]> draw)
    {
        var (run, attention) = await views.OpenAsync(runId);
        if (run is null || attention is null) return null;
        var colormap = Colormap.TryParse(pin.Colormap, out var c) ? c : Colormap.Viridis;
        try
        {
            return draw(run, attention, ViewOf(attention, pin), new AttentionSelection(pin.Step, pin.Layer, pin.Head), colormap);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or ArgumentOutOfRangeException)
        {
            return null; // the photo file is gone, or the pin no longer fits the artifact: the item shows its caption alone
        }
    }
}
