using System.Security.Claims;
using AttnPortal.Data;
using AttnPortal.Web.Services;
using Microsoft.Extensions.DependencyInjection;

namespace AttnPortal.Tests.Portal;

/// <summary>
/// A portal with what galleries are made of: a real run of the demo model (LLaVA-1.5 shape, one "image" view), two
/// runs with the hand-made anyres artifact (views base, tiles, tile r,c) saved as a comparison, a queued run without an
/// artifact; and a second researcher, so that owner, another writer, a Viewer and an Admin can all be tried.
/// </summary>
public class GalleryHost : PortalHost
{
    public const string OtherResearcherEmail = "researcher2@portal.test";
    public Guid DemoRunId { get; private set; }
    public Guid AnyresRunA { get; private set; }
    public Guid AnyresRunB { get; private set; }
    public Guid QueuedRunId { get; private set; }
    public Guid ComparisonId { get; private set; }
    public ClaimsPrincipal Owner { get; private set; } = default!;
    public ClaimsPrincipal OtherResearcher { get; private set; } = default!;
    public ClaimsPrincipal Viewer { get; private set; } = default!;
    public ClaimsPrincipal Admin { get; private set; } = default!;

    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?> { ["Portal:Models:0:MaxNewTokens"] = "4" };

    protected override async Task SeedAsync()
    {
        using var researcher = await Factory.SignInAsync(PortalFactory.ResearcherEmail);
        var image = (await PortalHttp.UploadAsync(researcher, ("wide.png", File.ReadAllBytes(Fixture.Image("wide.png"))))).Single();
        DemoRunId = (await PortalHttp.QueueAsync(researcher, PortalHttp.Queue([image.Id], "Where is the red square?", [PortalFactory.DemoModel]))).Single();
        var run = await PortalHttp.WaitFinishedAsync(researcher, DemoRunId);
        if (run.Status != "Succeeded") throw new InvalidOperationException($"setup run {run.Status}: {run.Error}");
        AnyresRunA = await Factory.AddAnyresRunAsync();
        AnyresRunB = await Factory.AddAnyresRunAsync();

        await Factory.AddUserAsync(OtherResearcherEmail, Roles.Researcher);
        Owner = await Factory.PrincipalAsync(PortalFactory.ResearcherEmail);
        OtherResearcher = await Factory.PrincipalAsync(OtherResearcherEmail);
        Viewer = await Factory.PrincipalAsync(PortalFactory.ViewerEmail);
        Admin = await Factory.PrincipalAsync(PortalFactory.AdminEmail);

        using var scope = Factory.Services.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<PortalDbContext>();
        var now = DateTime.UtcNow;
        QueuedRunId = Guid.NewGuid();
        db.Runs.Add(new Run
        {
            Id = QueuedRunId, ImageId = image.Id, ModelName = "not-configured", Schedule = "standard", Question = "Still waiting?", Aspect = "pad",
            MaxNewTokens = 4, Status = RunStatus.Queued, OwnerId = Owner.UserId()!, BatchId = Guid.NewGuid(), CreatedUtc = now,
        });
        ComparisonId = Guid.NewGuid();
        db.Comparisons.Add(new Comparison
        {
            Id = ComparisonId, Title = "anyres A vs B", CreatedById = Owner.UserId()!, CreatedUtc = now, RunKey = $"{AnyresRunA},{AnyresRunB}",
            Runs = [new ComparisonRun { RunId = AnyresRunA, Position = 0 }, new ComparisonRun { RunId = AnyresRunB, Position = 1 }],
        });
        await db.SaveChangesAsync();
    }

    /// <summary>What the cookie sign-in gives a page: the user's id, name and role.</summary>
    public static ClaimsPrincipal Principal(string userId, string userName, string role) =>
        new(new ClaimsIdentity([new Claim(ClaimTypes.NameIdentifier, userId), new Claim(ClaimTypes.Name, userName), new Claim(ClaimTypes.Role, role)], "test"));

    /// <summary>One operation through a fresh scope's <see cref="GalleryService"/>, as a page or an endpoint makes it.</summary>
    public async Task<T> Galleries<T>(Func<GalleryService, Task<T>> operation)
    {
        using var scope = Factory.Services.CreateScope();
        return await operation(scope.ServiceProvider.GetRequiredService<GalleryService>());
    }

    public async Task Galleries(Func<GalleryService, Task> operation)
    {
        using var scope = Factory.Services.CreateScope();
        await operation(scope.ServiceProvider.GetRequiredService<GalleryService>());
    }

    /// <summary>A gallery of the owner's with the given items (runs pinned to token 1, layer 1, head 2, viridis 0.5).</summary>
    public async Task<Gallery> GalleryWithAsync(GalleryVisibility visibility, params GallerySubject[] subjects)
    {
        var gallery = await Galleries(s => s.CreateAsync(Owner, $"Gallery {Guid.NewGuid():N}", "What the heads look at", visibility));
        foreach (var subject in subjects)
            await Galleries(s => s.AddItemAsync(Owner, gallery.Id, subject, new PinnedView(1, 1, 2, null, "viridis", 0.5), $"Caption of {subject}"));
        return (await Galleries(s => s.FindAsync(Owner, gallery.Id)))!;
    }
}
