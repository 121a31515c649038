using System.Security.Claims;
using AttnPortal.Data;
using AttnPortal.Tests.Portal;
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
        await Factory.AddUserAsync(SecondResearcherEmail, Roles.Researcher);
    }

    public T Service<T>() where T : notnull => Factory.Services.GetRequiredService<T>();

    public Task<ClaimsPrincipal> PrincipalAsync(string email) => Factory.PrincipalAsync(email);
}
