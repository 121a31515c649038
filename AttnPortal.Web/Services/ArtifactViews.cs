using AttnPortal.Data;
using AttnPortal.Inference.Images;
using AttnPortal.Web.Rendering;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Caching.Memory;

namespace AttnPortal.Web.Services;

/// <summary>
/// Loaded attention artifacts and the PNGs drawn from them. A 7B run is ~80 MB of attention, read once and kept
/// (bounded by size) so that moving between tokens, layers and heads only renders; rendered overlays go to a disk cache.
/// </summary>
public sealed class ArtifactViews(IServiceScopeFactory scopes, PortalPaths paths)
{
    private readonly MemoryCache _runs = new(new MemoryCacheOptions { SizeLimit = 2L << 30 });
    private readonly PngCache _pngs = new(paths.Cache);

    /// <summary>The run (null if there is none) and its attention (null while the run has no artifact).</summary>
    public async Task<(Run? Run, AttentionRun? Attention)> OpenAsync(Guid runId)
    {
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<PortalDbContext>();
        var run = await db.Runs.AsNoTracking().Include(r => r.Image).Include(r => r.Owner).SingleOrDefaultAsync(r => r.Id == runId);
        if (run?.ArtifactPath is null) return (run, null);
        var attention = await _runs.GetOrCreateAsync(runId, entry =>
        {
            var loaded = AttentionRun.Open(paths.Resolve(run.ArtifactPath));
            entry.Size = loaded.AttentionBytes;
            entry.SlidingExpiration = TimeSpan.FromMinutes(30);
            return Task.FromResult(loaded);
        });
        return (run, attention);
    }

    /// <summary>The other runs of the comparison pair <paramref name="run"/> belongs to (none when it was queued alone).</summary>
    public async Task<IReadOnlyList<Run>> PairedAsync(Run run)
    {
        if (run.PairId is not { } pair) return [];
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<PortalDbContext>();
        return await db.Runs.AsNoTracking().Where(r => r.PairId == pair && r.Id != run.Id).OrderBy(r => r.Schedule).ToListAsync();
    }

    /// <param name="normalization">Each map from its own minimum to maximum when null; a fixed range colours several maps alike.</param>
    public byte[] Heatmap(Guid runId, AttentionRun run, ImageGridView view, AttentionSelection selection, Colormap colormap, Normalization? normalization = null) =>
        _pngs.GetOrAdd(new PngCacheKey(runId.ToString(), "heatmap", view.Name, selection, colormap.Name, 1f, normalization?.Key),
            () => HeatmapRenderer.HeatmapPng(run.ImageGrid(selection, view), view.Rows, view.Cols, colormap, scale: 1, normalization));

    /// <summary>A − B (<see cref="ComparisonStats.Difference"/>) in the diverging colormap, kept with A's PNGs.</summary>
    /// <exception cref="ArgumentException">The runs cannot be subtracted for this view and selection (the message says why).</exception>
    public byte[] Difference(Guid a, NamedRun runA, Guid b, NamedRun runB, string? viewName, AttentionSelection selection)
    {
        var (viewA, viewB) = ComparisonStats.DifferenceViews(runA, runB, viewName);
        ComparisonStats.CheckSelection(runA, runB, selection);
        return _pngs.GetOrAdd(new PngCacheKey(a.ToString(), "difference", viewA.Name, selection, Colormap.Diverging.Name, 1f, $"minus {b} {viewB.Name}"),
            () =>
            {
                var diff = ComparisonStats.Difference(runA, runB, viewName, selection);
                return HeatmapRenderer.DifferencePng(diff.Values, viewA.Rows, viewA.Cols, diff.Scale);
            });
    }

    public byte[] HeadGrid(Guid runId, AttentionRun run, ImageGridView view, int? step, Colormap colormap) =>
        _pngs.GetOrAdd(new PngCacheKey(runId.ToString(), "heads", view.Name, new AttentionSelection(step, null, null), colormap.Name, 1f),
            () => HeatmapRenderer.HeadGridPng(run.AllHeads(step, view), run.Layers, run.Heads, view.Rows, view.Cols, colormap,
                cellPixels: HeadGridCellPixels, gap: HeadGridGap));

    public byte[] Overlay(Guid runId, Run record, AttentionRun run, ImageGridView view, AttentionSelection selection, Colormap colormap, float opacity) =>
        _pngs.GetOrAdd(new PngCacheKey(runId.ToString(), "overlay", view.Name, selection, colormap.Name, opacity),
            () => HeatmapRenderer.OverlayPng(Backdrop(runId, record, run), run, selection, view, colormap, opacity, Normalization.MinMax));

    /// <summary>The photo decoded and downscaled once per run (a 12 MP photo costs ~0.3 s), reused for every overlay of every view.</summary>
    private OverlayBackdrop Backdrop(Guid runId, Run record, AttentionRun run) =>
        _runs.GetOrCreate((runId, "backdrop"), entry =>
        {
            var backdrop = OverlayBackdrop.Create(File.ReadAllBytes(paths.Resolve(record.Image!.StoredPath)), run.OriginalWidth, run.OriginalHeight);
            entry.Size = 4L * backdrop.Width * backdrop.Height;
            entry.SlidingExpiration = TimeSpan.FromMinutes(30);
            return backdrop;
        })!;

    // One pixel per cell keeps a 32 x 32 x 24 x 24 grid at ~0.6 MB (an anyres tiles view of 48 x 48 at ~2.4 MB); the page
    // scales it up with crisp (pixelated) edges.
    public const int HeadGridCellPixels = 1, HeadGridGap = 1;
}
