using System.Security.Claims;
using AttnPortal.Data;
using AttnPortal.Tests.Portal;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;

namespace AttnPortal.Tests.Review;

/// <summary>
/// A portal (real SQLite file, migrations, default labels seeded by start-up) with a finished run whose image is
/// wide.png (200 × 130) and whose artifact has 3 tokens, 2 layers, 3 heads and the anyres views; and a second researcher.
/// </summary>
public class ReviewHost : PortalHost
{
    public const string SecondResearcherEmail = "second@portal.test";
    public Guid RunId { get; private set; }
    public string ModelName { get; private set; } = "";

    protected override async Task SeedAsync()
    {
        RunId = await Factory.AddAnyresRunAsync();
        ModelName = Factory.WithDb(db => db.Runs.Single(r => r.Id == RunId).ModelName);
        using var scope = Factory.Services.CreateScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<PortalUser>>();
        var second = new PortalUser { UserName = SecondResearcherEmail, Email = SecondResearcherEmail, EmailConfirmed = true };
        Require(await users.CreateAsync(second, PortalFactory.Password));
        Require(await users.AddToRoleAsync(second, Roles.Researcher));
    }

    private static void Require(IdentityResult result)
    {
        if (!result.Succeeded) throw new InvalidOperationException(string.Join("; ", result.Errors.Select(e => e.Description)));
    }

    public T Service<T>() where T : notnull => Factory.Services.GetRequiredService<T>();

    /// <summary>The signed-in principal of a person as the cookie would carry it: id, user name, roles.</summary>
    public async Task<ClaimsPrincipal> PrincipalAsync(string email)
    {
        using var scope = Factory.Services.CreateScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<PortalUser>>();
        var user = await users.FindByEmailAsync(email) ?? throw new InvalidOperationException($"no user {email}");
        var claims = new List<Claim> { new(ClaimTypes.NameIdentifier, user.Id), new(ClaimTypes.Name, user.UserName!) };
        claims.AddRange((await users.GetRolesAsync(user)).Select(r => new Claim(ClaimTypes.Role, r)));
        return new ClaimsPrincipal(new ClaimsIdentity(claims, "test"));
    }
}
