using System.Security.Claims;
using AttnPortal.Data;
using AttnPortal.Inference;
using AttnPortal.Inference.Images;
using AttnPortal.Web.Services;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace AttnPortal.Web.Endpoints;

/// <summary>The HTTP API: queueing (for scripts and tests), artifacts, images, rendered heatmaps.</summary>
public static class RunEndpoints
{
    public static void MapRunEndpoints(this WebApplication app)
    {
        var api = app.MapGroup("/api");

        api.MapPost("/images", async (IFormFileCollection files, ImageStore store, ClaimsPrincipal user, CancellationToken cancel) =>
        {
            var saved = new List<object>();
            foreach (var file in files)
            {
                try
                {
                    store.EnsureWithinSizeLimit(file.FileName, file.Length); // before buffering it
                    using var ms = new MemoryStream();
                    await file.CopyToAsync(ms, cancel);
                    var image = await store.SaveAsync(ms.ToArray(), file.FileName, user.UserId(), cancel);
                    saved.Add(new { image.Id, image.FileName, image.Width, image.Height, image.Sha256 });
                }
                catch (Exception e) when (InputErrors.IsInputError(e)) { return Results.BadRequest(new { error = InputErrors.Message(e) }); }
            }
            return Results.Ok(saved);
        }).RequireAuthorization(Policies.CanWrite).DisableAntiforgery();

        api.MapPost("/runs", async ([FromBody] QueueRequest request, RunQueue queue, ClaimsPrincipal user, CancellationToken cancel) =>
        {
            try { return Results.Ok((await queue.QueueAsync(request, user.UserId()!, cancel)).Select(r => r.Id)); }
            catch (ArgumentException e) { return Results.BadRequest(new { error = InputErrors.Message(e) }); }
        }).RequireAuthorization(Policies.CanWrite);

        api.MapGet("/runs/{id:guid}", async (Guid id, PortalDbContext db) =>
            await db.Runs.AsNoTracking().Where(r => r.Id == id)
                .Select(r => new { r.Id, Status = r.Status.ToString(), r.StepsDone, r.MaxNewTokens, r.Error, r.GeneratedText, r.ModelName, r.Schedule })
                .SingleOrDefaultAsync() is { } run ? Results.Ok(run) : Results.NotFound());

        api.MapPost("/runs/{id:guid}/cancel", async (Guid id, RunQueue queue, RunCancellation running, ClaimsPrincipal user) =>
            await queue.CancelAsync(id, user, running) switch
            {
                CancelOutcome.Canceled => Results.NoContent(),
                CancelOutcome.NotFound => Results.NotFound(),
                CancelOutcome.Forbidden => Results.StatusCode(StatusCodes.Status403Forbidden),
                _ => Results.Conflict(new { error = "the run has already finished" }),
            }).RequireAuthorization(Policies.CanWrite);

        api.MapGet("/runs/{id:guid}/artifact", async (Guid id, PortalDbContext db, PortalPaths paths) =>
            await db.Runs.AsNoTracking().SingleOrDefaultAsync(r => r.Id == id) is { ArtifactPath: { } path } && File.Exists(paths.Resolve(path))
                ? Results.File(paths.Resolve(path), "application/octet-stream", $"attnportal-{id}.safetensors")
                : Results.NotFound());

        // Rendered views of a finished run: ?view= (one of the run's image grids, default the first), &step=&layer=&head=
        // (absent = mean over that axis), &cmap=, &opacity=; the heatmap also takes &norm= (Normalization.Parse, e.g.
        // fixed:LOW:HIGH so that several maps share one colour scale; default: the map's own min to max).
        api.MapGet("/runs/{id:guid}/heatmap.png", async (HttpContext http, Guid id, string? view, int? step, int? layer, int? head, string? cmap, string? norm, ArtifactViews views) =>
        {
            Rendering.Normalization? normalization = null;
            try { if (norm is not null) normalization = Rendering.Normalization.Parse(norm); }
            catch (ArgumentException e) { return Results.BadRequest(new { error = e.Message }); }
            return await Render(http, id, views, view, cmap, (run, v, c) => views.Heatmap(id, run.Attention, v, new(step, layer, head), c, normalization));
        });
        api.MapGet("/runs/{id:guid}/heads.png", async (HttpContext http, Guid id, string? view, int? step, string? cmap, ArtifactViews views) =>
            await Render(http, id, views, view, cmap, (run, v, c) => views.HeadGrid(id, run.Attention, v, step, c)));
        api.MapGet("/runs/{id:guid}/overlay.png", async (HttpContext http, Guid id, string? view, int? step, int? layer, int? head, string? cmap, float? opacity, ArtifactViews views) =>
            await Render(http, id, views, view, cmap, (run, v, c) => views.Overlay(id, run.Run, run.Attention, v, new(step, layer, head), c, Math.Clamp(opacity ?? 0.6f, 0, 1))));

        api.MapGet("/images/{id:guid}", async (Guid id, PortalDbContext db, PortalPaths paths) =>
            await db.Images.AsNoTracking().SingleOrDefaultAsync(i => i.Id == id) is { } image
                ? Results.File(paths.Resolve(image.StoredPath), image.ContentType)
                : Results.NotFound());
    }

    private static async Task<IResult> Render(HttpContext http, Guid id, ArtifactViews views, string? viewName, string? cmap,
        Func<(Run Run, Rendering.AttentionRun Attention), ImageGridView, Rendering.Colormap, byte[]> render)
    {
        if (!Rendering.Colormap.TryParse(cmap ?? "viridis", out var colormap))
            return Results.BadRequest(new { error = $"unknown colormap '{cmap}' (use {string.Join(", ", Rendering.Colormap.Names)})" });
        if (await views.OpenAsync(id) is not ({ } record, { } attention)) return Results.NotFound();
        var view = viewName is null ? attention.Views[0] : attention.FindView(viewName);
        if (view is null)
            return Results.BadRequest(new { error = $"unknown view '{viewName}' (this run has {string.Join(", ", attention.Views.Select(v => $"'{v.Name}'"))})" });
        try
        {
            var png = render((record, attention), view, colormap);
            // A finished run never changes: let the browser keep its views (the run view preloads neighbouring tokens).
            http.Response.Headers.CacheControl = "private, max-age=86400, immutable";
            return Results.File(png, "image/png");
        }
        catch (ArgumentOutOfRangeException e) { return Results.BadRequest(new { error = e.Message }); }
    }
}
