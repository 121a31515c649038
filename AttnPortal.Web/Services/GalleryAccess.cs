using System.Security.Claims;
using AttnPortal.Data;

namespace AttnPortal.Web.Services;

/// <summary>
/// Who may see and change a gallery, the one rule for pages, endpoints and <see cref="GalleryService"/>: Team and Public
/// galleries are visible to every signed-in user, Private ones to their owner and Admins; the owner (while a writer) or
/// an Admin changes it; a Viewer never does. A deleted gallery is nobody's.
/// </summary>
public static class GalleryAccess
{
    public static bool IsWriter(this ClaimsPrincipal user) => user.IsInRole(Roles.Admin) || user.IsInRole(Roles.Researcher);

    public static bool MayView(this ClaimsPrincipal user, Gallery gallery) => gallery.DeletedUtc is null && user.WouldSee(gallery);

    /// <summary>Whether <paramref name="user"/> could see the gallery were it not deleted (to tell them who deleted it).</summary>
    internal static bool WouldSee(this ClaimsPrincipal user, Gallery gallery) =>
        user.Identity?.IsAuthenticated == true
        && (gallery.Visibility != GalleryVisibility.Private || gallery.OwnerId == user.UserId() || user.IsInRole(Roles.Admin));

    public static bool MayEdit(this ClaimsPrincipal user, Gallery gallery) =>
        user.MayView(gallery) && (user.IsInRole(Roles.Admin) || user.IsInRole(Roles.Researcher) && gallery.OwnerId == user.UserId());

    /// <summary>The galleries <paramref name="user"/> may see, as a query (the same rule as <see cref="MayView"/>).</summary>
    public static IQueryable<Gallery> VisibleTo(this IQueryable<Gallery> galleries, ClaimsPrincipal user)
    {
        if (user.Identity?.IsAuthenticated != true) return galleries.Where(_ => false);
        string? userId = user.UserId();
        bool admin = user.IsInRole(Roles.Admin);
        return galleries.Where(g => g.DeletedUtc == null && (admin || g.Visibility != GalleryVisibility.Private || g.OwnerId == userId));
    }
}
