using System.Security.Claims;
using AttnPortal.Data;
using AttnPortal.Web.Components.Pages;
using AttnPortal.Web.Services;
using Microsoft.AspNetCore.Http.HttpResults;

namespace AttnPortal.Web.Endpoints;

/// <summary>
/// The pictures of gallery items and the export, for signed-in users who may see the gallery; and, without sign-in,
/// the page and pictures of the one gallery whose public token matches — nothing else of the portal.
/// </summary>
public static class GalleryEndpoints
{
    public static void MapGalleryEndpoints(this WebApplication app)
    {
        var galleries = app.MapGroup("/api/galleries/{id:guid}");
        galleries.MapGet("/items/{itemId:guid}/overlay.png", async (Guid id, Guid itemId, int? pane, ClaimsPrincipal user, GalleryService service, GalleryImages images, HttpContext http) =>
            await Overlay(await service.FindAsync(user, id, http.RequestAborted), itemId, pane, images, http));
        galleries.MapGet("/items/{itemId:guid}/photo", async (Guid id, Guid itemId, int? pane, ClaimsPrincipal user, GalleryService service, GalleryImages images, HttpContext http) =>
            Photo(await service.FindAsync(user, id, http.RequestAborted), itemId, pane, images, http));
        galleries.MapGet("/export.zip", async (Guid id, ClaimsPrincipal user, GalleryService service, GalleryExport export, HttpContext http) =>
        {
            if (await service.FindAsync(user, id, http.RequestAborted) is not { } gallery) return Results.NotFound();
            // Built in a temporary file (an export of many items can be large), which goes away when the response is sent.
            var file = new FileStream(Path.Combine(Path.GetTempPath(), $"attnportal-gallery-{Guid.NewGuid():N}.zip"), FileMode.CreateNew,
                FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose | FileOptions.Asynchronous);
            try
            {
                await export.WriteAsync(gallery, file, http.RequestAborted);
                file.Position = 0;
                return Results.File(file, "application/zip", GalleryExport.FileName(gallery));
            }
            catch
            {
                await file.DisposeAsync();
                throw;
            }
        });

        // The public read-only link: its page and its pictures. A wrong, revoked or deleted gallery's token, an item of
        // another gallery or a pane that does not exist all answer 404 alike. The page is a plain document rendered
        // here rather than a routed page, so that it neither passes through the portal's sign-in nor loads its app.
        app.MapGet("/g/{token}", async (string token, GalleryService service, HttpContext http) =>
        {
            var gallery = await service.FindPublicAsync(token, http.RequestAborted);
            return new RazorComponentResult<PublicGallery>(new Dictionary<string, object?> { ["Gallery"] = gallery, ["Token"] = token })
            {
                StatusCode = gallery is null ? StatusCodes.Status404NotFound : StatusCodes.Status200OK,
            };
        }).AllowAnonymous();
        var shared = app.MapGroup("/api/public/{token}").AllowAnonymous();
        shared.MapGet("/items/{itemId:guid}/overlay.png", async (string token, Guid itemId, int? pane, GalleryService service, GalleryImages images, HttpContext http) =>
            await Overlay(await service.FindPublicAsync(token, http.RequestAborted), itemId, pane, images, http));
        shared.MapGet("/items/{itemId:guid}/photo", async (string token, Guid itemId, int? pane, GalleryService service, GalleryImages images, HttpContext http) =>
            Photo(await service.FindPublicAsync(token, http.RequestAborted), itemId, pane, images, http));
    }

    private static Run? PaneOf(Gallery? gallery, Guid itemId, int? pane)
    {
        var item = gallery?.Items.FirstOrDefault(i => i.Id == itemId);
        var runs = item is null ? [] : GalleryImages.Panes(item);
        int p = pane ?? 0;
        return p >= 0 && p < runs.Count ? runs[p] : null;
    }

    private static async Task<IResult> Overlay(Gallery? gallery, Guid itemId, int? pane, GalleryImages images, HttpContext http)
    {
        if (PaneOf(gallery, itemId, pane) is not { } run) return Results.NotFound();
        var png = await images.OverlayAsync(run.Id, gallery!.Items.First(i => i.Id == itemId));
        if (png is null) return Results.NotFound();
        NotStored(http);
        return Results.File(png, "image/png");
    }

    private static IResult Photo(Gallery? gallery, Guid itemId, int? pane, GalleryImages images, HttpContext http)
    {
        if (PaneOf(gallery, itemId, pane) is not { } run || images.Photo(run) is not { } photo) return Results.NotFound();
        NotStored(http);
        return Results.File(photo.Path, photo.ContentType);
    }

    // An item's picture changes when its pin is edited, and a revoked link must stop showing anything: no caching
    // (the rendered PNGs are cached on the server, so serving them again is cheap).
    private static void NotStored(HttpContext http) => http.Response.Headers.CacheControl = "no-store";
}
