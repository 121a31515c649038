using System.IO.Compression;
using System.Text;
using System.Text.Json;
using AttnPortal.Data;
using static System.Net.WebUtility;

namespace AttnPortal.Web.Services;

/// <summary>
/// A gallery as a self-contained static site in a zip that opens offline: <c>index.html</c> (inline CSS, no script, no
/// address outside the zip), <c>images/</c> (each original photo once), <c>heatmaps/</c> (per item, and per pane of a
/// comparison, the pinned overlay and the plain heatmap) and <c>gallery.json</c> (the manifest: items, pinned views,
/// run metadata, captions as Markdown). Every name in the zip is made here from positions and ids, never from user text.
/// </summary>
public sealed class GalleryExport(GalleryImages images)
{
    public const string Format = "attnportal-gallery/1";

    private sealed record Pane(Run Run, string? ViewName, string? Token, string? Photo, string? Overlay, string? Heatmap);
    private sealed record Item(int Number, GalleryItem Source, IReadOnlyList<Pane> Panes);

    /// <summary>Writes the zip to <paramref name="output"/> (left open). <paramref name="gallery"/> comes from
    /// <see cref="GalleryService.FindAsync"/> or <see cref="GalleryService.FindPublicAsync"/> (items, runs, images loaded).</summary>
    public async Task WriteAsync(Gallery gallery, Stream output, CancellationToken cancel = default)
    {
        using var zip = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true);
        var photos = new Dictionary<Guid, string?>();
        var items = new List<Item>();
        int number = 0;
        foreach (var source in gallery.Items.OrderBy(i => i.Position))
        {
            cancel.ThrowIfCancellationRequested();
            number++;
            var runs = GalleryImages.Panes(source);
            var panes = new List<Pane>();
            for (int p = 0; p < runs.Count; p++)
            {
                var run = runs[p];
                string stem = runs.Count == 1 ? $"heatmaps/{number:D3}" : $"heatmaps/{number:D3}-pane{p + 1}";
                var described = await images.DescribeAsync(run.Id, source);
                panes.Add(new Pane(run, described?.ViewName, described?.Token, AddPhoto(zip, run, photos),
                    await AddAsync(zip, $"{stem}-overlay.png", await images.OverlayAsync(run.Id, source), cancel),
                    await AddAsync(zip, $"{stem}-heatmap.png", await images.HeatmapAsync(run.Id, source), cancel)));
            }
            items.Add(new Item(number, source, panes));
        }
        await AddAsync(zip, "index.html", Encoding.UTF8.GetBytes(IndexHtml(gallery, items)), cancel, CompressionLevel.Optimal);
        await AddAsync(zip, "gallery.json", JsonSerializer.SerializeToUtf8Bytes(Manifest(gallery, items), Json), cancel, CompressionLevel.Optimal);
    }

    /// <summary>A file name for the download, from the title: lower-case ASCII letters, digits and dashes.</summary>
    public static string FileName(Gallery gallery)
    {
        var slug = new StringBuilder();
        foreach (char c in gallery.Title.ToLowerInvariant())
        {
            if (char.IsAsciiLetterOrDigit(c)) slug.Append(c);
            else if (slug.Length > 0 && slug[^1] != '-') slug.Append('-');
            if (slug.Length >= 60) break;
        }
        string name = slug.ToString().Trim('-');
        return (name.Length == 0 ? "gallery" : name) + ".zip";
    }

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    private static async Task<string?> AddAsync(ZipArchive zip, string name, byte[]? data, CancellationToken cancel,
        CompressionLevel level = CompressionLevel.NoCompression) // PNGs are compressed already
    {
        if (data is null) return null;
        await using var entry = await zip.CreateEntry(name, level).OpenAsync(cancel);
        await entry.WriteAsync(data, cancel);
        return name;
    }

    private string? AddPhoto(ZipArchive zip, Run run, Dictionary<Guid, string?> photos)
    {
        if (photos.TryGetValue(run.ImageId, out var known)) return known;
        string? name = null;
        if (images.Photo(run) is { } photo)
        {
            name = $"images/{run.ImageId:N}{photo.ContentType switch { "image/jpeg" => ".jpg", "image/webp" => ".webp", _ => ".png" }}";
            zip.CreateEntryFromFile(photo.Path, name, CompressionLevel.NoCompression);
        }
        return photos[run.ImageId] = name;
    }

    private static object Manifest(Gallery gallery, IReadOnlyList<Item> items) => new
    {
        format = Format,
        gallery.Title,
        gallery.Description,
        Owner = OwnerName(gallery),
        Visibility = gallery.Visibility.ToString(),
        ExportedUtc = DateTime.UtcNow,
        Items = items.Select(i => new
        {
            Position = i.Number,
            Kind = i.Source.ComparisonId is null ? "run" : "comparison",
            i.Source.ComparisonId,
            i.Source.Caption,
            View = new { i.Source.Step, i.Source.Layer, i.Source.Head, i.Source.ViewName, i.Source.Colormap, i.Source.Opacity },
            Panes = i.Panes.Select(p => new
            {
                RunId = p.Run.Id, Model = p.Run.ModelName, p.Run.Schedule, p.Run.Question, p.Run.Aspect, p.Run.GeneratedText,
                p.ViewName, p.Token, p.Photo, p.Overlay, p.Heatmap,
            }),
        }),
    };

    private static string OwnerName(Gallery gallery) => gallery.Owner?.DisplayName ?? gallery.Owner?.UserName ?? "";

    private static string IndexHtml(Gallery gallery, IReadOnlyList<Item> items)
    {
        var html = new StringBuilder();
        html.Append($"""
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>{HtmlEncode(gallery.Title)}</title>
            <style>{Css}</style>
            </head>
            <body>
            <header>
            <h1>{HtmlEncode(gallery.Title)}</h1>
            {(gallery.Description is { } d ? $"<div class=\"description\">{SafeMarkdown.ToHtml(d, offline: true)}</div>" : "")}
            <p class="meta">{Plural(items.Count, "item")} · by {HtmlEncode(OwnerName(gallery))} · exported from AttnPortal {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC</p>
            </header>
            <main>

            """);
        foreach (var item in items)
        {
            var first = item.Panes.FirstOrDefault()?.Run;
            html.Append($"<article class=\"item\" id=\"item-{item.Number}\">\n<h2>{item.Number}. {HtmlEncode(first?.Question ?? "")}</h2>\n<div class=\"panes\">\n");
            foreach (var pane in item.Panes)
            {
                html.Append("<figure>");
                html.Append(pane.Overlay is { } overlay
                    ? $"<img class=\"overlay\" src=\"{overlay}\" alt=\"{HtmlEncode($"{pane.Run.ModelName}, {pane.Run.Schedule}: attention over the photo")}\">"
                    : "<p class=\"missing\">This run's attention is no longer available.</p>");
                html.Append($"<figcaption><strong>{HtmlEncode(pane.Run.ModelName)}</strong> · {HtmlEncode(pane.Run.Schedule)}");
                if (pane.Token is { } token) html.Append($" · token “{HtmlEncode(token)}”");
                if (pane.Heatmap is { } heatmap) html.Append($" · <a href=\"{heatmap}\"><img class=\"heat\" src=\"{heatmap}\" alt=\"heatmap\"> heatmap</a>");
                if (pane.Photo is { } photo) html.Append($" · <a href=\"{photo}\">photo</a>");
                if (pane.Run.GeneratedText is { Length: > 0 } text) html.Append($"<br><span class=\"answer\">“{HtmlEncode(text)}”</span>");
                html.Append("</figcaption></figure>\n");
            }
            html.Append("</div>\n");
            if (item.Source.Caption.Length > 0) html.Append($"<div class=\"caption\">{SafeMarkdown.ToHtml(item.Source.Caption, offline: true)}</div>\n");
            html.Append($"<p class=\"view\">{HtmlEncode(PinnedViewText.Describe(item.Source, item.Panes.Count == 1 ? item.Panes[0].ViewName : null))}</p>\n</article>\n");
        }
        html.Append("</main>\n</body>\n</html>\n");
        return html.ToString();
    }

    private static string Plural(int n, string noun) => n == 1 ? $"1 {noun}" : $"{n} {noun}s";

    private const string Css = """
        body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 24px; color: #222; }
        header { border-bottom: 1px solid #ddd; margin-bottom: 24px; }
        .meta, .view, figcaption { color: #666; font-size: 14px; }
        .item { margin-bottom: 40px; }
        .panes { display: flex; flex-wrap: wrap; gap: 16px; }
        figure { margin: 0; flex: 1 1 320px; max-width: 100%; }
        img.overlay { width: 100%; height: auto; display: block; border-radius: 4px; }
        img.heat { height: 1.4em; width: auto; vertical-align: middle; image-rendering: pixelated; }
        .caption { font-size: 16px; line-height: 1.5; }
        .answer { font-style: italic; }
        .missing { padding: 32px; background: #f4f4f4; text-align: center; }
        """;
}
