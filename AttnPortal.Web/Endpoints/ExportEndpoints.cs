using System.Text;
using System.Text.Json;
using AttnPortal.Data;
using AttnPortal.Web.Rendering;
using AttnPortal.Web.Services;
using Microsoft.EntityFrameworkCore;

namespace AttnPortal.Web.Endpoints;

/// <summary>
/// Downloads for any signed-in user: a run's annotations (JSON), its boxes (COCO; also for every run a search matches),
/// and per-head statistics (CSV). The heatmap PNGs and the raw attention artifact are served by <see cref="RunEndpoints"/>.
/// </summary>
public static class ExportEndpoints
{
    public static void MapExportEndpoints(this WebApplication app)
    {
        var api = app.MapGroup("/api");

        api.MapGet("/runs/{id:guid}/annotations.json", async (Guid id, PortalDbContext db, CancellationToken cancel) =>
            await AnnotationExport.ForRunAsync(db, id, cancel) is { } document
                ? JsonFile(document, $"attnportal-{id}-annotations.json")
                : Results.NotFound());

        api.MapGet("/runs/{id:guid}/annotations.coco.json", async (HttpContext http, Guid id, PortalDbContext db, CancellationToken cancel) =>
        {
            var run = db.Runs.Where(r => r.Id == id);
            if (!await run.AnyAsync(cancel)) return Results.NotFound();
            return JsonFile(await CocoExport.ForRunsAsync(db, run, ImageUrl(http), cancel), $"attnportal-{id}-coco.json");
        });

        // The same filter parameters as the Runs page (/runs?model=&schedule=&q=&label=&tag=&owner=&from=&to=&status=).
        api.MapGet("/annotations.coco.json", async (HttpContext http, RunSearch search, PortalDbContext db, CancellationToken cancel) =>
        {
            RunFilter filter;
            try { filter = RunQuery.Parse(http.Request.QueryString.Value ?? "").Filter; }
            catch (FormatException e) { return Results.BadRequest(new { error = e.Message }); }
            return JsonFile(await CocoExport.ForRunsAsync(db, search.Matching(filter), ImageUrl(http), cancel), "attnportal-coco.json");
        });

        // ?view= names the image view whose cells the max_image_* columns refer to (default: the run view's first choice).
        api.MapGet("/runs/{id:guid}/heads.csv", async (Guid id, string? view, ArtifactViews views) =>
        {
            var (record, attention) = await views.OpenAsync(id);
            if (record is null) return Results.NotFound();
            if (attention is null) return Results.NotFound(new { error = $"run {id} has no attention artifact ({record.Status})" });
            var grid = view is null ? attention.PreferredView : attention.FindView(view);
            if (grid is null)
                return Results.BadRequest(new { error = $"unknown view '{view}' (this run has {string.Join(", ", attention.Views.Select(v => $"'{v.Name}'"))})" });
            return Results.Stream(async stream =>
            {
                await using var writer = new StreamWriter(stream, new UTF8Encoding(false), 1 << 16);
                await HeadStatistics.WriteCsvAsync(writer, HeadStatistics.Of(attention, grid));
            }, "text/csv; charset=utf-8", $"attnportal-{id}-heads.csv");
        });
    }

    private static IResult JsonFile<T>(T document, string fileName) =>
        Results.File(JsonSerializer.SerializeToUtf8Bytes(document, AnnotationExport.Json), "application/json", fileName);

    private static Func<Guid, string> ImageUrl(HttpContext http) =>
        imageId => $"{http.Request.Scheme}://{http.Request.Host}{http.Request.PathBase}/api/images/{imageId}";
}
