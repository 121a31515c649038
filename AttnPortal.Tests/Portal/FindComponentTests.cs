using System.Security.Claims;
using AngleSharp.Dom;
using AttnPortal.Data;
using AttnPortal.Web.Components.Shared;
using AttnPortal.Web.Services;
using Bunit;
using Bunit.TestDoubles;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using MudBlazor;
using MudBlazor.Services;

namespace AttnPortal.Tests.Portal;

/// <summary>bUnit: the runs filter bar (URL in, URL out) and the run page's links to comparisons and galleries.</summary>
public sealed class FindComponentTests : BunitContext, IAsyncLifetime
{
    private readonly Fixture.TempDir _dir = new();

    Task IAsyncLifetime.InitializeAsync() => Task.CompletedTask;
    async Task IAsyncLifetime.DisposeAsync()
    {
        await DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _dir.Dispose();
    }

    public FindComponentTests()
    {
        Services.AddMudServices();
        JSInterop.Mode = JSRuntimeMode.Loose;
    }

    private static readonly RunFilterChoices Choices = new(["llava-1.5-7b", "onevision-7b"], ["standard", "alternating"], ["grounded", "attention sink"],
        ["localization head"], ["alice", "bob"]);

    private const string SharedLink = "/runs?model=onevision-7b&schedule=alternating&q=red%20square&label=attention%20sink&tag=localization%20head" +
        "&owner=bob&from=2026-11-01&to=2026-11-03&status=Failed&page=o123-abc-def";

    private static IElement Input(IRenderedComponent<RunFilterBar> bar, string testId)
    {
        var e = bar.Find($"[data-testid={testId}]");
        return e.TagName == "INPUT" ? e : e.QuerySelector("input")!;
    }

    private static string? SelectValue(IRenderedComponent<RunFilterBar> bar, string label) =>
        bar.FindComponents<MudSelect<string>>().Single(s => s.Instance.Label == label).Instance.Value;

    [Fact]
    public void FilterBarShowsTheFilterOfTheLink()
    {
        Services.GetRequiredService<BunitNavigationManager>().NavigateTo(SharedLink);
        var bar = Render<RunFilterBar>(p => p.Add(c => c.Choices, Choices));
        Assert.Equal("red square", Input(bar, "filter-text").GetAttribute("value"));
        Assert.Equal("onevision-7b", SelectValue(bar, "Model"));
        Assert.Equal("alternating", SelectValue(bar, "Schedule"));
        Assert.Equal("attention sink", SelectValue(bar, "Label"));
        Assert.Equal("localization head", SelectValue(bar, "Head tag"));
        Assert.Equal("bob", SelectValue(bar, "Author"));
        Assert.Equal("Failed", SelectValue(bar, "Status"));
        Assert.Equal("2026-11-01", Input(bar, "filter-from").GetAttribute("value"));
        Assert.Equal("2026-11-03", Input(bar, "filter-to").GetAttribute("value"));
        Assert.Empty(bar.FindAll("[data-testid=filter-error]"));
    }

    [Fact]
    public async Task FilterBarChangesGoIntoTheUrlFromTheFirstPageAndBackComesBack()
    {
        var nav = Services.GetRequiredService<BunitNavigationManager>();
        nav.NavigateTo(SharedLink);
        var linked = RunQuery.Parse(SharedLink);
        var bar = Render<RunFilterBar>(p => p.Add(c => c.Choices, Choices));

        // A select: the rest of the filter stays, the page position goes (page one of the new result).
        var model = bar.FindComponents<MudSelect<string>>().Single(s => s.Instance.Label == "Model");
        await bar.InvokeAsync(() => model.Instance.ValueChanged.InvokeAsync("llava-1.5-7b"));
        var query = RunQuery.Parse(nav.Uri);
        Assert.Equal(linked.Filter with { Model = "llava-1.5-7b" }, query.Filter);
        Assert.Null(query.Cursor);

        // The text and a date, as typed into their inputs.
        Input(bar, "filter-text").Change("zebra");
        Assert.Equal(linked.Filter with { Model = "llava-1.5-7b", Text = "zebra" }, RunQuery.Parse(nav.Uri).Filter);
        Input(bar, "filter-from").Change("2026-10-30");
        Assert.Equal(new DateOnly(2026, 10, 30), RunQuery.Parse(nav.Uri).Filter.From);
        Assert.Contains("from=2026-10-30", nav.Uri);

        // Clearing a select removes its parameter.
        var status = bar.FindComponents<MudSelect<string>>().Single(s => s.Instance.Label == "Status");
        await bar.InvokeAsync(() => status.Instance.ValueChanged.InvokeAsync(null));
        Assert.DoesNotContain("status=", nav.Uri);

        // Back to the shared link: the bar shows its filter again.
        nav.NavigateTo(SharedLink);
        bar.WaitForAssertion(() => Assert.Equal("onevision-7b", SelectValue(bar, "Model")));
        Assert.Equal("red square", Input(bar, "filter-text").GetAttribute("value"));
        Assert.Equal("2026-11-01", Input(bar, "filter-from").GetAttribute("value"));

        bar.Find("[data-testid=filter-clear]").Click();
        Assert.Equal("http://localhost/runs", nav.Uri);
    }

    [Fact]
    public void FilterBarRefusesABadDateAndShowsABadLinkAsNoFilter()
    {
        var nav = Services.GetRequiredService<BunitNavigationManager>();
        nav.NavigateTo("/runs?from=31.12.2026&model=x"); // the page says what is wrong with the link
        var bar = Render<RunFilterBar>(p => p.Add(c => c.Choices, Choices));
        Assert.Null(SelectValue(bar, "Model"));
        Assert.Empty(bar.FindAll("[data-testid=filter-error]"));

        nav.NavigateTo("/runs?model=x");
        bar.WaitForAssertion(() => Assert.Equal("x", SelectValue(bar, "Model"))); // a value the choices lack is still shown (and offered)
        int before = nav.History.Count;
        Input(bar, "filter-to").Change("tomorrow");
        Assert.Contains("to 'tomorrow' is not a date (use yyyy-MM-dd)", bar.Find("[data-testid=filter-error]").TextContent);
        Assert.Equal(before, nav.History.Count); // nothing navigated
        Input(bar, "filter-to").Change("2026-11-30");
        Assert.Empty(bar.FindAll("[data-testid=filter-error]"));
        Assert.Equal(new RunFilter { Model = "x", To = new DateOnly(2026, 11, 30) }, RunQuery.Parse(nav.Uri).Filter);
    }

    /// <summary>
    /// Run R is in saved comparison C1 (with R2; untitled) and in "Mine": a private gallery of mine holding C1. It is
    /// also an item of bob's team gallery, of bob's private gallery and of a deleted public one; a comparison and a
    /// gallery without R are there too.
    /// </summary>
    private async Task<(Guid Run, string Me, string Bob)> SeedLinksAsync()
    {
        string file = _dir["links.db"];
        Services.AddDbContext<PortalDbContext>(o => o.UseSqlite($"Data Source={file}"));
        await using var db = new PortalDbContext(new DbContextOptionsBuilder<PortalDbContext>().UseSqlite($"Data Source={file}").Options);
        await db.Database.MigrateAsync();
        var me = new PortalUser { UserName = "me" };
        var bob = new PortalUser { UserName = "bob" };
        db.Users.AddRange(me, bob);
        var image = new ImageAsset { Id = Guid.NewGuid(), Sha256 = new string('a', 64), FileName = "a.png", ContentType = "image/png", StoredPath = "images/a.png" };
        db.Images.Add(image);
        Run NewRun(string schedule) => new()
        {
            Id = Guid.NewGuid(), ImageId = image.Id, ModelName = "m", Schedule = schedule, Question = "q", Aspect = "pad", OwnerId = me.Id, Status = RunStatus.Succeeded,
        };
        Run r = NewRun("standard"), r2 = NewRun("alternating"), r3 = NewRun("alternating-cross");
        db.Runs.AddRange(r, r2, r3);
        Comparison Compare(string? title, params Run[] runs)
        {
            var c = new Comparison { Id = Guid.NewGuid(), Title = title, CreatedById = me.Id, RunKey = string.Join(",", runs.Select(x => x.Id)) };
            c.Runs.AddRange(runs.Select((x, i) => new ComparisonRun { RunId = x.Id, Position = i }));
            db.Comparisons.Add(c);
            return c;
        }
        var c1 = Compare(null, r, r2);
        Compare("elsewhere", r2, r3);
        void Gallery(string title, PortalUser owner, GalleryVisibility visibility, Run? run, Comparison? comparison = null, bool deleted = false)
        {
            var g = new Gallery { Id = Guid.NewGuid(), Title = title, OwnerId = owner.Id, Visibility = visibility, DeletedUtc = deleted ? DateTime.UtcNow : null };
            g.Items.Add(new GalleryItem { Id = Guid.NewGuid(), RunId = run?.Id, ComparisonId = comparison?.Id, AddedById = owner.Id });
            db.Galleries.Add(g);
        }
        Gallery("Mine", me, GalleryVisibility.Private, null, c1);
        Gallery("Team picks", bob, GalleryVisibility.Team, r);
        Gallery("Bob's private", bob, GalleryVisibility.Private, r);
        Gallery("Gone", bob, GalleryVisibility.Public, r, deleted: true);
        Gallery("Other runs", bob, GalleryVisibility.Public, r3);
        await db.SaveChangesAsync();
        return (r.Id, me.Id, bob.Id);
    }

    [Fact]
    public async Task RunLinksListTheComparisonsAndTheGalleriesTheViewerMayOpen()
    {
        var (run, me, _) = await SeedLinksAsync();
        // Roles first: bUnit rebuilds the principal from its roles, dropping claims set before them.
        AddAuthorization().SetAuthorized("me").SetRoles(Roles.Researcher).SetClaims(new Claim(ClaimTypes.NameIdentifier, me));
        var links = Render<RunLinks>(p => p.Add(c => c.RunId, run));
        links.WaitForAssertion(() => Assert.NotEmpty(links.FindAll("[data-testid=run-comparison]")));

        var comparison = Assert.Single(links.FindAll("[data-testid=run-comparison]"));
        Assert.Equal("standard vs alternating", comparison.TextContent.Trim());
        Assert.Matches("^/compare/[0-9a-f-]{36}$", comparison.GetAttribute("href") ?? comparison.QuerySelector("a")?.GetAttribute("href"));
        var galleries = links.FindAll("[data-testid=run-gallery]");
        Assert.Equal(["Mine", "Team picks"], galleries.Select(g => g.TextContent.Trim()));
        Assert.All(galleries, g => Assert.Matches("^/galleries/[0-9a-f-]{36}$", g.GetAttribute("href") ?? g.QuerySelector("a")?.GetAttribute("href")));
    }

    [Fact]
    public async Task AnAdminAlsoSeesPrivateGalleriesAndARunWithoutAppearancesShowsNothing()
    {
        var (run, _, _) = await SeedLinksAsync();
        AddAuthorization().SetAuthorized("root").SetRoles(Roles.Admin).SetClaims(new Claim(ClaimTypes.NameIdentifier, "someone-else"));
        var links = Render<RunLinks>(p => p.Add(c => c.RunId, run));
        links.WaitForAssertion(() => Assert.NotEmpty(links.FindAll("[data-testid=run-gallery]")));
        Assert.Equal(["Bob's private", "Mine", "Team picks"], links.FindAll("[data-testid=run-gallery]").Select(g => g.TextContent.Trim()));

        var alone = Render<RunLinks>(p => p.Add(c => c.RunId, Guid.NewGuid()));
        Assert.Equal("", alone.Markup.Trim());
    }
}
