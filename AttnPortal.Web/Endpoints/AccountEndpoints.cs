using AttnPortal.Data;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;

namespace AttnPortal.Web.Endpoints;

/// <summary>Cookie sign-in and sign-out as plain form posts (antiforgery-checked), so the cookie is set on a real HTTP response.</summary>
public static class AccountEndpoints
{
    public static void MapAccountEndpoints(this WebApplication app)
    {
        app.MapPost("/account/login", async ([FromForm] string email, [FromForm] string password, [FromForm] string? returnUrl,
            SignInManager<PortalUser> signIn) =>
        {
            var result = await signIn.PasswordSignInAsync(email, password, isPersistent: true, lockoutOnFailure: true);
            string target = IsLocal(returnUrl) ? returnUrl! : "/";
            return result.Succeeded
                ? Results.LocalRedirect(target)
                : Results.LocalRedirect($"/login?error={(result.IsLockedOut ? "locked" : "invalid")}&returnUrl={Uri.EscapeDataString(target)}");
        }).AllowAnonymous();

        app.MapPost("/account/logout", async (SignInManager<PortalUser> signIn) =>
        {
            await signIn.SignOutAsync();
            return Results.LocalRedirect("/login");
        });
    }

    private static bool IsLocal(string? url) => !string.IsNullOrEmpty(url) && url.StartsWith('/') && !url.StartsWith("//") && !url.StartsWith("/\\");
}
