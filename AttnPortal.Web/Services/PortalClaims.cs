using System.Security.Claims;
using AttnPortal.Data;

namespace AttnPortal.Web.Services;

public static class PortalClaims
{
    public static string? UserId(this ClaimsPrincipal user) => user.FindFirstValue(ClaimTypes.NameIdentifier);

    /// <summary>Admins may cancel any run, Researchers their own, Viewers none: the one rule for the page and the API.</summary>
    public static bool MayCancel(this ClaimsPrincipal user, Run run) =>
        user.IsInRole(Roles.Admin) || user.IsInRole(Roles.Researcher) && run.OwnerId == user.UserId();
}
