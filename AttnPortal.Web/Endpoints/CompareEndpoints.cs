using AttnPortal.Web.Rendering;
using AttnPortal.Web.Services;

namespace AttnPortal.Web.Endpoints;

/// <summary>Rendered comparisons of two runs.</summary>
public static class CompareEndpoints
{
    public static void MapCompareEndpoints(this WebApplication app)
    {
        // A − B of one selection (?view= both runs' view of that name, default each run's first; &step=&layer=&head=,
        // absent = mean) over the view's grid, one pixel per cell, blue–white–red on ±max|A − B|. 400 when the grids
        // differ or the selection is outside a run; 404 when a run or its artifact is missing.
        app.MapGet("/api/compare/diff.png", async (HttpContext http, Guid? a, Guid? b, string? view, int? step, int? layer, int? head, ArtifactViews views) =>
        {
            if (a is not { } idA || b is not { } idB) return Results.BadRequest(new { error = "name the two runs: ?a=RUN&b=RUN" });
            if (await views.OpenAsync(idA) is not (not null, { } runA)) return Results.NotFound(new { error = $"run a ({idA}) has no attention artifact" });
            if (await views.OpenAsync(idB) is not (not null, { } runB)) return Results.NotFound(new { error = $"run b ({idB}) has no attention artifact" });
            try
            {
                var png = views.Difference(idA, new NamedRun("a", runA), idB, new NamedRun("b", runB), view, new AttentionSelection(step, layer, head));
                http.Response.Headers.CacheControl = "private, max-age=86400, immutable"; // finished runs never change
                return Results.File(png, "image/png");
            }
            catch (ArgumentException e) { return Results.BadRequest(new { error = e.Message }); }
        });
    }
}
