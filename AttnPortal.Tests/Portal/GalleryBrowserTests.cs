using System.Diagnostics;
using System.Security.Claims;
using System.Text.RegularExpressions;
using AttnPortal.Data;
using AttnPortal.Web.Services;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace AttnPortal.Tests.Portal;

/// <summary>
/// Galleries in headless Chromium against the portal on Kestrel: the owner reorders by drag and drop, captions, and
/// shares a public link that a signed-out browser opens until it is revoked; a Viewer sees a team gallery, without
/// editing controls, change as a teammate edits it.
/// </summary>
[Collection(nameof(BrowserEndToEnd))]
public sealed class GalleryBrowserTests : IAsyncLifetime
{
    private BrowserPortal _portal = default!;
    private Guid _runA, _runB, _comparison;

    public async Task InitializeAsync()
    {
        _portal = await BrowserPortal.StartAsync();
        _runA = await _portal.Factory.AddAnyresRunAsync();
        _runB = await _portal.Factory.AddAnyresRunAsync();
        _comparison = Guid.NewGuid();
        using (var scope = _portal.Factory.Services.CreateScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<PortalDbContext>();
            db.Comparisons.Add(new Comparison
            {
                Id = _comparison, CreatedById = User(PortalFactory.ResearcherEmail, Roles.Researcher).UserId()!, CreatedUtc = DateTime.UtcNow, RunKey = $"{_runA},{_runB}",
                Runs = [new ComparisonRun { RunId = _runA, Position = 0 }, new ComparisonRun { RunId = _runB, Position = 1 }],
            });
            await db.SaveChangesAsync();
        }
    }

    public async Task DisposeAsync() => await _portal.DisposeAsync();

    private ClaimsPrincipal User(string email, string role)
    {
        var user = _portal.Factory.WithDb(db => db.Users.AsNoTracking().Single(u => u.Email == email));
        return GalleryHost.Principal(user.Id, user.UserName!, role);
    }

    private async Task<T> Galleries<T>(Func<GalleryService, Task<T>> operation)
    {
        using var scope = _portal.Factory.Services.CreateScope();
        return await operation(scope.ServiceProvider.GetRequiredService<GalleryService>());
    }

    /// <summary>The researcher's gallery: run A at the tiles view, the A/B comparison at tile 0,1, run B at the mean.</summary>
    private async Task<(Gallery Gallery, Guid[] Items)> SeedGalleryAsync(GalleryVisibility visibility)
    {
        var owner = User(PortalFactory.ResearcherEmail, Roles.Researcher);
        var gallery = await Galleries(s => s.CreateAsync(owner, "Where the heads look", "Three *pinned* views", visibility));
        var items = new[]
        {
            (GallerySubject.OfRun(_runA), new PinnedView(1, 1, 2, "tiles", "magma", 0.7), "Run A, **tiles**"),
            (GallerySubject.OfComparison(_comparison), new PinnedView(null, 0, null, "tile 0,1", "jet", 0.5), "A and B side by side"),
            (GallerySubject.OfRun(_runB), new PinnedView(null, null, null, null), "Run B, all means"),
        };
        var ids = new List<Guid>();
        foreach (var (subject, view, caption) in items)
            ids.Add((await Galleries(s => s.AddItemAsync(owner, gallery.Id, subject, view, caption))).Id);
        return (gallery, ids.ToArray());
    }

    private Task<IPage> NewPageAsync(List<string>? errors = null, int height = 1000) => _portal.NewPageAsync(errors, height);

    private static async Task SignInAsync(IPage page, string email, string returnUrl)
    {
        await page.GotoAsync($"/login?returnUrl={Uri.EscapeDataString(returnUrl)}");
        await page.FillAsync("input[name=email]", email);
        await page.FillAsync("input[name=password]", PortalFactory.Password);
        await page.ClickAsync("button[type=submit]");
        await page.WaitForURLAsync($"**{returnUrl}");
        await page.Locator("[data-interactive=true]").WaitForAsync(); // the circuit is up
    }

    private static async Task<ILocator> InputOf(ILocator field) =>
        await field.EvaluateAsync<bool>("e => e.matches('input, textarea')") ? field : field.Locator("textarea, input").First;

    /// <summary>Each overlay scrolled into view (they load lazily) and decoded, at the photo's 200 × 130.</summary>
    private static async Task AssertOverlaysLoadedAsync(IPage page, int count)
    {
        var images = page.Locator("[data-testid=item-overlay]");
        await Assertions.Expect(images).ToHaveCountAsync(count);
        for (int i = 0; i < count; i++)
        {
            var image = images.Nth(i);
            await image.ScrollIntoViewIfNeededAsync();
            var clock = Stopwatch.StartNew();
            while (await image.EvaluateAsync<int>("img => img.complete ? img.naturalWidth : 0") == 0)
            {
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"overlay {i} ({await image.GetAttributeAsync("src")}) did not load");
                await Task.Delay(50);
            }
            Assert.Equal(200, await image.EvaluateAsync<int>("img => img.naturalWidth"));
        }
    }

    private List<Guid> OrderInDb(Guid galleryId) =>
        _portal.Factory.WithDb(db => db.GalleryItems.AsNoTracking().Where(i => i.GalleryId == galleryId).OrderBy(i => i.Position).Select(i => i.Id).ToList());

    [Fact]
    public async Task OwnerReordersCaptionsAndSharesALinkThatWorksSignedOutUntilRevoked()
    {
        var (gallery, items) = await SeedGalleryAsync(GalleryVisibility.Team);
        var owner = await NewPageAsync(height: 2400);
        await SignInAsync(owner, PortalFactory.ResearcherEmail, $"/galleries/{gallery.Id}");
        var slots = owner.Locator("[data-testid=gallery-slot]");
        await Assertions.Expect(slots).ToHaveCountAsync(3);

        // Drag the third card onto the first: it becomes the first.
        // (The window is tall enough to show all three cards: a drag that has to scroll the page is not what is tested.)
        await slots.Nth(2).Locator("[draggable=true]").DragToAsync(slots.Nth(0));
        await Assertions.Expect(slots.Nth(0)).ToHaveAttributeAsync("data-item", items[2].ToString(), new() { Timeout = 15_000 });
        await Assertions.Expect(owner.Locator("[data-testid=gallery-item]").First).ToHaveAttributeAsync("data-item", items[2].ToString());
        Assert.Equal([items[2], items[0], items[1]], OrderInDb(gallery.Id));
        // And the arrow buttons: the (now) second card down one.
        await slots.Nth(1).Locator("[data-testid=move-down]").ClickAsync();
        await Assertions.Expect(slots.Nth(2)).ToHaveAttributeAsync("data-item", items[0].ToString());
        Assert.Equal([items[2], items[1], items[0]], OrderInDb(gallery.Id));

        // Edit the first card's caption in place.
        await slots.Nth(0).Locator("[data-testid=edit-caption]").ClickAsync();
        var editor = await InputOf(slots.Nth(0).Locator("[data-testid=caption-editor]"));
        await editor.FillAsync("Run B: *everything* averaged");
        await slots.Nth(0).Locator("[data-testid=save-caption]").ClickAsync();
        await Assertions.Expect(slots.Nth(0).Locator("[data-testid=item-caption] em")).ToHaveTextAsync("everything");
        Assert.Equal("Run B: *everything* averaged", _portal.Factory.WithDb(db => db.GalleryItems.Single(i => i.Id == items[2]).Caption));

        // Make the public link; the page shows it.
        await owner.Locator("[data-testid=make-link]").ClickAsync();
        var linkField = await InputOf(owner.Locator("[data-testid=public-link]"));
        await Assertions.Expect(linkField).ToHaveValueAsync(new Regex("/g/[A-Za-z0-9_-]{43}$"));
        string link = await linkField.InputValueAsync();
        string token = _portal.Factory.WithDb(db => db.Galleries.Single(g => g.Id == gallery.Id).PublicToken)!;
        Assert.Equal($"{_portal.BaseUrl}/g/{token}", link);

        // A fresh browser, never signed in, opens it: the gallery, its three cards in the new order, four overlays.
        var visitorErrors = new List<string>();
        var visitor = await NewPageAsync(visitorErrors);
        var response = await visitor.GotoAsync(link);
        Assert.Equal(200, response!.Status);
        Assert.Equal(link, visitor.Url); // not sent to the sign-in page
        await Assertions.Expect(visitor.Locator("[data-testid=gallery-title]")).ToHaveTextAsync("Where the heads look");
        var cards = visitor.Locator("[data-testid=gallery-item]");
        await Assertions.Expect(cards).ToHaveCountAsync(3);
        Assert.Equal([items[2], items[1], items[0]], (await cards.EvaluateAllAsync<string[]>("cs => cs.map(c => c.dataset.item)")).Select(Guid.Parse));
        await Assertions.Expect(cards.Nth(0).Locator("[data-testid=item-caption] em")).ToHaveTextAsync("everything");
        await AssertOverlaysLoadedAsync(visitor, 4); // the comparison shows both runs side by side
        Assert.Equal(0, await visitor.Locator("[data-testid=item-controls], [data-testid=gallery-owner-bar], a[href^='/runs/']").CountAsync());
        lock (visitorErrors) Assert.True(visitorErrors.Count == 0, "visitor errors:\n" + string.Join("\n", visitorErrors));

        // Revoked: the owner's page goes back to "Make public link" and the same address now finds nothing.
        await owner.Locator("[data-testid=revoke-link]").ClickAsync();
        await Assertions.Expect(owner.Locator("[data-testid=make-link]")).ToBeVisibleAsync();
        Assert.Null(_portal.Factory.WithDb(db => db.Galleries.Single(g => g.Id == gallery.Id).PublicToken));
        var after = await visitor.GotoAsync(link);
        Assert.Equal(404, after!.Status);
        await Assertions.Expect(visitor.Locator("[data-testid=gallery-not-found]")).ToHaveTextAsync("Not found");
        Assert.Equal(0, await visitor.Locator("[data-testid=gallery-item]").CountAsync());

        lock (_portal.Errors) Assert.True(_portal.Errors.Count == 0, "browser errors:\n" + string.Join("\n", _portal.Errors));
    }

    [Fact]
    public async Task AViewerSeesATeamGalleryChangeLiveButNoEditingControls()
    {
        var (gallery, items) = await SeedGalleryAsync(GalleryVisibility.Team);
        var viewer = await NewPageAsync();
        await SignInAsync(viewer, PortalFactory.ViewerEmail, $"/galleries/{gallery.Id}");
        await Assertions.Expect(viewer.Locator("[data-testid=gallery-item]")).ToHaveCountAsync(3);
        await AssertOverlaysLoadedAsync(viewer, 4);
        foreach (var control in new[] { "gallery-owner-bar", "item-controls", "edit-caption", "remove-item", "move-up", "make-link", "visibility" })
            Assert.Equal(0, await viewer.Locator($"[data-testid={control}]").CountAsync());
        Assert.Equal(0, await viewer.Locator("[draggable=true]").CountAsync());
        await Assertions.Expect(viewer.Locator("[data-testid=export]")).ToBeVisibleAsync();
        // The item links open the run at the pinned view.
        Assert.Equal($"/runs/{_runA}?step=1&layer=1&head=2&view=tiles&cmap=magma&opacity=0.7",
            await viewer.Locator($"[data-item='{items[0]}'] [data-testid=open-run]").GetAttributeAsync("href"));

        // The owner opens the gallery too: each sees the other among its viewers.
        var ownerPage = await NewPageAsync();
        await SignInAsync(ownerPage, PortalFactory.ResearcherEmail, $"/galleries/{gallery.Id}");
        await Assertions.Expect(viewer.Locator($"[data-testid=presence-user][data-user='{PortalFactory.ResearcherEmail}']")).ToHaveCountAsync(1);
        await Assertions.Expect(ownerPage.Locator($"[data-testid=presence-user][data-user='{PortalFactory.ViewerEmail}']")).ToHaveCountAsync(1);

        // A teammate (the owner) edits a caption and reorders: the viewer's page follows without reloading.
        var owner = User(PortalFactory.ResearcherEmail, Roles.Researcher);
        await Galleries(s => s.EditItemAsync(owner, items[1], 1, new PinnedView(null, 0, null, "tile 0,1", "jet", 0.5), "Edited while you watch"));
        await Assertions.Expect(viewer.Locator($"[data-item='{items[1]}'] [data-testid=item-caption]")).ToHaveTextAsync("Edited while you watch");
        await Galleries(async s => { await s.ReorderAsync(owner, gallery.Id, 4, [items[1], items[2], items[0]]); return true; });
        await Assertions.Expect(viewer.Locator("[data-testid=gallery-item]").First).ToHaveAttributeAsync("data-item", items[1].ToString());

        // The run view opens at a gallery item's pinned view.
        await viewer.Locator($"[data-item='{items[0]}'] [data-testid=open-run]").ClickAsync();
        await viewer.WaitForURLAsync($"**/runs/{_runA}?*");
        await Assertions.Expect(viewer.Locator("[data-testid=heatmap]")).ToHaveAttributeAsync("src", new Regex(@"\?view=tiles&step=1&layer=1&head=2&cmap=magma$"));
        await Assertions.Expect(viewer.Locator("[data-testid=add-to-gallery]")).ToHaveCountAsync(0); // a Viewer adds to no gallery

        lock (_portal.Errors) Assert.True(_portal.Errors.Count == 0, "browser errors:\n" + string.Join("\n", _portal.Errors));
    }

    [Fact]
    public async Task AWriterAddsTheViewTheyAreLookingAtToANewGallery()
    {
        var page = await NewPageAsync();
        // The run view opens at the view its address names (as a gallery item's link does).
        string view = $"/runs/{_runA}?step=2&layer=0&head=1&view={Uri.EscapeDataString("tile 0,0")}&cmap=jet&opacity=0.4";
        await page.GotoAsync(view);
        await page.FillAsync("input[name=email]", PortalFactory.ResearcherEmail);
        await page.FillAsync("input[name=password]", PortalFactory.Password);
        await page.ClickAsync("button[type=submit]");
        await page.WaitForURLAsync($"**/runs/{_runA}?*");
        await page.WaitForFunctionAsync("() => document.activeElement?.dataset?.testid === 'run-view'"); // interactive
        await Assertions.Expect(page.Locator("[data-testid=heatmap]")).ToHaveAttributeAsync("src", new Regex(@"\?view=tile%200%2C0&step=2&layer=0&head=1&cmap=jet$"));

        await page.Locator("[data-testid=add-to-gallery]").ClickAsync();
        // No gallery yet: "New gallery…" is chosen and asks for a title.
        await (await InputOf(page.Locator("[data-testid=new-gallery-title]"))).FillAsync("Tiles worth keeping");
        await (await InputOf(page.Locator("[data-testid=caption]"))).FillAsync("Tile 0,0 at the *last* token");
        await page.Locator("[data-testid=add-item]").ClickAsync();
        await Assertions.Expect(page.GetByText("Added to “Tiles worth keeping”.")).ToBeVisibleAsync();

        var gallery = _portal.Factory.WithDb(db => db.Galleries.AsNoTracking().Include(g => g.Items).Single());
        Assert.Equal(("Tiles worth keeping", GalleryVisibility.Private, User(PortalFactory.ResearcherEmail, Roles.Researcher).UserId()),
            (gallery.Title, gallery.Visibility, gallery.OwnerId));
        var item = Assert.Single(gallery.Items);
        Assert.Equal((_runA, 2, 0, 1, "tile 0,0", "jet", 0.4, "Tile 0,0 at the *last* token"),
            (item.RunId!.Value, item.Step!.Value, item.Layer!.Value, item.Head!.Value, item.ViewName, item.Colormap, item.Opacity, item.Caption));

        // Its gallery page links back to exactly that view.
        await page.GotoAsync($"/galleries/{gallery.Id}");
        await Assertions.Expect(page.Locator("[data-testid=open-run]")).ToHaveAttributeAsync("href", new Regex(Regex.Escape($"/runs/{_runA}?step=2&layer=0&head=1&view=tile%200%2C0&cmap=jet&opacity=0.4") + "$"));
        lock (_portal.Errors) Assert.True(_portal.Errors.Count == 0, "browser errors:\n" + string.Join("\n", _portal.Errors));
    }
}
