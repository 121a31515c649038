using System.Security.Claims;
using System.Text.Json;
using AttnPortal.Data;
using AttnPortal.Web.Services;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;

namespace AttnPortal.Tests.Portal;

/// <summary>GalleryService on the portal's real SQLite file: order, who may do what, public links, versions and history.</summary>
public sealed class GalleryServiceTests(GalleryServiceTests.Host host) : IClassFixture<GalleryServiceTests.Host>
{
    public sealed class Host : GalleryHost;

    private GallerySubject A => GallerySubject.OfRun(host.AnyresRunA);
    private GallerySubject B => GallerySubject.OfRun(host.AnyresRunB);
    private GallerySubject Pair => GallerySubject.OfComparison(host.ComparisonId);
    private static readonly PinnedView Mean = new(null, null, null, null);

    private List<GalleryItem> ItemsInOrder(Guid galleryId) =>
        host.Factory.WithDb(db => db.GalleryItems.AsNoTracking().Where(i => i.GalleryId == galleryId).OrderBy(i => i.Position).ToList());

    private Gallery Row(Guid galleryId) => host.Factory.WithDb(db => db.Galleries.AsNoTracking().Single(g => g.Id == galleryId));

    private List<Revision> RevisionsOf(Guid entityId) =>
        host.Factory.WithDb(db => db.Revisions.AsNoTracking().Where(r => r.EntityId == entityId).OrderBy(r => r.Id).ToList());

    [Fact]
    public async Task ItemsAreAddedAtTheEndAndReorderedIntoContiguousPositions()
    {
        var gallery = await host.GalleryWithAsync(GalleryVisibility.Team, A, B, Pair);
        var added = ItemsInOrder(gallery.Id);
        Assert.Equal([0, 1, 2], added.Select(i => i.Position));
        Assert.Equal([host.AnyresRunA, host.AnyresRunB, (Guid?)null], added.Select(i => i.RunId));
        Assert.Equal(host.ComparisonId, added[2].ComparisonId);
        Assert.Equal(4, Row(gallery.Id).Version); // created, then one version per item added

        Guid a = added[0].Id, b = added[1].Id, pair = added[2].Id;
        await host.Galleries(s => s.ReorderAsync(host.Owner, gallery.Id, 4, [pair, a, b]));
        Assert.Equal([pair, a, b], ItemsInOrder(gallery.Id).Select(i => i.Id));
        Assert.Equal([0, 1, 2], ItemsInOrder(gallery.Id).Select(i => i.Position));

        // Removing the middle item closes the gap.
        await host.Galleries(s => s.RemoveItemAsync(host.Owner, a, 5));
        Assert.Equal([(pair, 0), (b, 1)], ItemsInOrder(gallery.Id).Select(i => (i.Id, i.Position)));
        var found = await host.Galleries(s => s.FindAsync(host.Owner, gallery.Id));
        Assert.Equal([pair, b], found!.Items.Select(i => i.Id)); // read back in order, comparison runs loaded
        Assert.Equal([host.AnyresRunA, host.AnyresRunB], GalleryImages.Panes(found.Items[0]).Select(r => r.Id));
    }

    [Fact]
    public async Task ReorderNamingAForeignMissingOrRepeatedItemIsRefusedAndChangesNothing()
    {
        var gallery = await host.GalleryWithAsync(GalleryVisibility.Team, A, B, Pair);
        var other = await host.GalleryWithAsync(GalleryVisibility.Team, A);
        var ids = ItemsInOrder(gallery.Id).Select(i => i.Id).ToArray();
        Guid foreign = ItemsInOrder(other.Id).Single().Id;
        int version = Row(gallery.Id).Version, revisions = host.Factory.WithDb(db => db.Revisions.Count());

        var cases = new (Guid[] Order, string Message)[]
        {
            ([ids[2], ids[0], foreign], $"names 1 item that is not in this gallery: {foreign}"),
            ([ids[2], ids[0], ids[1], foreign], $"names 1 item that is not in this gallery: {foreign}"),
            ([ids[1], ids[0]], $"leaves out 1 item of this gallery: {ids[2]}"),
            ([ids[1], ids[0], ids[1], ids[2]], "names an item more than once"),
            ([], "leaves out 3 items of this gallery"),
        };
        foreach (var (order, message) in cases)
        {
            var e = await Assert.ThrowsAsync<ArgumentException>(() => host.Galleries(s => s.ReorderAsync(host.Owner, gallery.Id, version, order)));
            Assert.Contains(message, e.Message);
        }
        Assert.Equal(ids, ItemsInOrder(gallery.Id).Select(i => i.Id));
        Assert.Equal([0, 1, 2], ItemsInOrder(gallery.Id).Select(i => i.Position));
        Assert.Equal(version, Row(gallery.Id).Version);
        Assert.Equal(revisions, host.Factory.WithDb(db => db.Revisions.Count()));
        Assert.Equal(0, ItemsInOrder(other.Id).Single().Position);
    }

    [Fact]
    public async Task PrivateGalleriesAreTheOwnersAndAdminsTeamAndPublicOnesEveryones()
    {
        var mine = await host.GalleryWithAsync(GalleryVisibility.Private);
        var team = await host.GalleryWithAsync(GalleryVisibility.Team);
        var shared = await host.GalleryWithAsync(GalleryVisibility.Public);
        var cases = new (ClaimsPrincipal User, bool SeesPrivate)[] { (host.Owner, true), (host.Admin, true), (host.OtherResearcher, false), (host.Viewer, false) };
        foreach (var (user, seesPrivate) in cases)
        {
            string who = user.Identity!.Name!;
            Assert.True(seesPrivate == (await host.Galleries(s => s.FindAsync(user, mine.Id)) is not null), $"{who}: private");
            Assert.True(await host.Galleries(s => s.FindAsync(user, team.Id)) is not null, $"{who}: team");
            Assert.True(await host.Galleries(s => s.FindAsync(user, shared.Id)) is not null, $"{who}: public");
            var listed = (await host.Galleries(s => s.ListAsync(user))).Select(g => g.Id).ToList();
            Assert.True(seesPrivate == listed.Contains(mine.Id), $"{who}: private listed");
            Assert.Contains(team.Id, listed);
            Assert.Contains(shared.Id, listed);
        }
        // Signed out there is nothing to see but through a public link.
        var anonymous = new ClaimsPrincipal(new ClaimsIdentity());
        Assert.Null(await host.Galleries(s => s.FindAsync(anonymous, team.Id)));
        Assert.Empty(await host.Galleries(s => s.ListAsync(anonymous)));

        // Deleted: gone for everyone, the owner included, and from lists.
        await host.Galleries(s => s.DeleteAsync(host.Owner, team.Id, Row(team.Id).Version));
        Assert.Null(await host.Galleries(s => s.FindAsync(host.Owner, team.Id)));
        Assert.Null(await host.Galleries(s => s.FindAsync(host.Admin, team.Id)));
        Assert.DoesNotContain(team.Id, (await host.Galleries(s => s.ListAsync(host.Owner))).Select(g => g.Id));
        Assert.NotNull(Row(team.Id).DeletedUtc); // soft: the row stays
    }

    [Fact]
    public async Task ViewersAndOtherResearchersCannotChangeAGalleryTheOwnerAndAdminsCan()
    {
        var gallery = await host.GalleryWithAsync(GalleryVisibility.Team, A);
        var item = ItemsInOrder(gallery.Id).Single();
        int version = Row(gallery.Id).Version, revisions = host.Factory.WithDb(db => db.Revisions.Count());
        // The owner demoted to Viewer (same account, Viewer role) is a Viewer too.
        var demotedOwner = GalleryHost.Principal(host.Owner.UserId()!, host.Owner.Identity!.Name!, Roles.Viewer);

        foreach (var (user, message) in new[] { (host.Viewer, "Viewers cannot change galleries"), (demotedOwner, "Viewers cannot change galleries"),
                     (host.OtherResearcher, "only the gallery's owner or an Admin may change it") })
        {
            var attempts = new Func<GalleryService, Task>[]
            {
                s => s.EditAsync(user, gallery.Id, version, "Taken over", null, GalleryVisibility.Public),
                s => s.AddItemAsync(user, gallery.Id, B, Mean, "mine now"),
                s => s.EditItemAsync(user, item.Id, item.Version, Mean, "changed"),
                s => s.RemoveItemAsync(user, item.Id, version),
                s => s.ReorderAsync(user, gallery.Id, version, [item.Id]),
                s => s.MakePublicLinkAsync(user, gallery.Id, version),
                s => s.RevokePublicLinkAsync(user, gallery.Id, version),
                s => s.DeleteAsync(user, gallery.Id, version),
            };
            foreach (var attempt in attempts)
                Assert.Contains(message, (await Assert.ThrowsAsync<UnauthorizedAccessException>(() => host.Galleries(attempt))).Message);
        }
        Assert.Equal("Viewers cannot change galleries",
            (await Assert.ThrowsAsync<UnauthorizedAccessException>(() => host.Galleries(s => s.CreateAsync(host.Viewer, "A viewer's", null, GalleryVisibility.Team)))).Message);
        Assert.Empty(await host.Galleries(s => s.OwnEditableAsync(host.Viewer)));
        Assert.Equal(version, Row(gallery.Id).Version);
        Assert.Equal(revisions, host.Factory.WithDb(db => db.Revisions.Count()));
        Assert.Equal("Caption of " + A, ItemsInOrder(gallery.Id).Single().Caption);

        // An Admin may change anyone's gallery; the owner their own.
        await host.Galleries(s => s.EditAsync(host.Admin, gallery.Id, version, "Renamed by an admin", null, GalleryVisibility.Team));
        await host.Galleries(s => s.EditItemAsync(host.Owner, item.Id, item.Version, Mean, "The owner's caption"));
        Assert.Equal("Renamed by an admin", Row(gallery.Id).Title);
        Assert.Equal("The owner's caption", ItemsInOrder(gallery.Id).Single().Caption);
    }

    [Fact]
    public async Task APublicLinkIsUnguessableRevocableAndNeverComesBack()
    {
        var gallery = await host.GalleryWithAsync(GalleryVisibility.Private, A);
        string first = await host.Galleries(s => s.MakePublicLinkAsync(host.Owner, gallery.Id, Row(gallery.Id).Version));
        Assert.Matches("^[A-Za-z0-9_-]{43}$", first); // 32 random bytes, base64url
        Assert.Equal(32, Convert.FromBase64String(first.Replace('-', '+').Replace('_', '/') + "=").Length);
        Assert.Equal(GalleryVisibility.Public, Row(gallery.Id).Visibility);
        Assert.Equal(gallery.Id, (await host.Galleries(s => s.FindPublicAsync(first)))?.Id);

        await host.Galleries(s => s.RevokePublicLinkAsync(host.Owner, gallery.Id, Row(gallery.Id).Version));
        Assert.Null(Row(gallery.Id).PublicToken);
        Assert.Equal(GalleryVisibility.Team, Row(gallery.Id).Visibility); // still the team's
        Assert.Null(await host.Galleries(s => s.FindPublicAsync(first)));

        string second = await host.Galleries(s => s.MakePublicLinkAsync(host.Owner, gallery.Id, Row(gallery.Id).Version));
        Assert.NotEqual(first, second);
        Assert.Null(await host.Galleries(s => s.FindPublicAsync(first)));
        Assert.Equal(gallery.Id, (await host.Galleries(s => s.FindPublicAsync(second)))?.Id);
        // A new link while one exists replaces it.
        string third = await host.Galleries(s => s.MakePublicLinkAsync(host.Owner, gallery.Id, Row(gallery.Id).Version));
        Assert.Null(await host.Galleries(s => s.FindPublicAsync(second)));

        // Back to Private (or Team) through the visibility: no link; deleted: no link either.
        var row = Row(gallery.Id);
        await host.Galleries(s => s.EditAsync(host.Owner, gallery.Id, row.Version, row.Title, row.Description, GalleryVisibility.Private));
        Assert.Null(await host.Galleries(s => s.FindPublicAsync(third)));
        string fourth = await host.Galleries(s => s.MakePublicLinkAsync(host.Owner, gallery.Id, Row(gallery.Id).Version));
        await host.Galleries(s => s.DeleteAsync(host.Owner, gallery.Id, Row(gallery.Id).Version));
        Assert.Null(await host.Galleries(s => s.FindPublicAsync(fourth)));
        // The lookup itself asks for a live Public gallery, whatever token a row may still carry.
        var stale = await host.GalleryWithAsync(GalleryVisibility.Public);
        host.Factory.WithDb(db => db.Galleries.Where(g => g.Id == stale.Id).ExecuteUpdate(u => u.SetProperty(g => g.Visibility, GalleryVisibility.Team)));
        Assert.Null(await host.Galleries(s => s.FindPublicAsync(stale.PublicToken)));
        host.Factory.WithDb(db => db.Galleries.Where(g => g.Id == stale.Id).ExecuteUpdate(u => u.SetProperty(g => g.Visibility, GalleryVisibility.Public).SetProperty(g => g.DeletedUtc, DateTime.UtcNow)));
        Assert.Null(await host.Galleries(s => s.FindPublicAsync(stale.PublicToken)));
        Assert.Null(await host.Galleries(s => s.FindPublicAsync("")));
        Assert.Null(await host.Galleries(s => s.FindPublicAsync(new string('A', 43))));
    }

    [Fact]
    public async Task AChangeToAVersionSomeoneElseMovedOnFailsNamingThem()
    {
        var gallery = await host.GalleryWithAsync(GalleryVisibility.Team, A);
        int seen = Row(gallery.Id).Version;
        await host.Galleries(s => s.EditAsync(host.Admin, gallery.Id, seen, "The admin's title", null, GalleryVisibility.Team));

        var e = await Assert.ThrowsAsync<ReviewConflictException>(() => host.Galleries(s => s.EditAsync(host.Owner, gallery.Id, seen, "The owner's title", null, GalleryVisibility.Team)));
        Assert.StartsWith("Administrator changed this gallery at ", e.Message); // the admin's display name
        Assert.EndsWith("your change was not saved — reload to see theirs.", e.Message);
        var reorder = await Assert.ThrowsAsync<ReviewConflictException>(() => host.Galleries(s => s.ReorderAsync(host.Owner, gallery.Id, seen, [ItemsInOrder(gallery.Id).Single().Id])));
        Assert.StartsWith("Administrator changed this gallery", reorder.Message);
        Assert.Equal(("The admin's title", seen + 1), (Row(gallery.Id).Title, Row(gallery.Id).Version));

        // Items have their own versions: a caption over a newer caption is refused the same way.
        var item = ItemsInOrder(gallery.Id).Single();
        await host.Galleries(s => s.EditItemAsync(host.Admin, item.Id, item.Version, Mean, "The admin's caption"));
        var itemConflict = await Assert.ThrowsAsync<ReviewConflictException>(() => host.Galleries(s => s.EditItemAsync(host.Owner, item.Id, item.Version, Mean, "The owner's caption")));
        Assert.StartsWith("Administrator changed this gallery item at ", itemConflict.Message);
        Assert.Equal("The admin's caption", ItemsInOrder(gallery.Id).Single().Caption);

        // Deleted meanwhile: the conflict says so and who did it.
        int now = Row(gallery.Id).Version;
        await host.Galleries(s => s.DeleteAsync(host.Admin, gallery.Id, now));
        Assert.StartsWith("Administrator deleted this gallery at ",
            (await Assert.ThrowsAsync<ReviewConflictException>(() => host.Galleries(s => s.EditAsync(host.Owner, gallery.Id, now, "Too late", null, GalleryVisibility.Team)))).Message);
    }

    /// <summary>
    /// The race the version check alone cannot see: both read version v, the admin commits between the owner's read
    /// and the owner's write. The Version concurrency token makes the owner's UPDATE match no row.
    /// </summary>
    [Fact]
    public async Task TwoWritersRacingOnOneVersionCannotBothWin()
    {
        var gallery = await host.GalleryWithAsync(GalleryVisibility.Team, A);
        int seen = Row(gallery.Id).Version;
        var racer = new CommitFirst(() => host.Galleries(s => s.EditAsync(host.Admin, gallery.Id, seen, "The admin won", null, GalleryVisibility.Team)));
        var options = new DbContextOptionsBuilder<PortalDbContext>()
            .UseSqlite($"Data Source={host.Factory.DatabaseFile}").AddInterceptors(racer).Options;
        await using (var db = new PortalDbContext(options))
        {
            var owners = new GalleryService(db, host.Factory.Services.GetRequiredService<ArtifactViews>(), host.Factory.Services.GetRequiredService<ReviewEvents>());
            var e = await Assert.ThrowsAsync<ReviewConflictException>(() => owners.EditAsync(host.Owner, gallery.Id, seen, "The owner won", null, GalleryVisibility.Team));
            Assert.StartsWith("Administrator changed this gallery at ", e.Message);
        }
        Assert.True(racer.Ran);
        var row = Row(gallery.Id);
        Assert.Equal(("The admin won", seen + 1), (row.Title, row.Version));
        Assert.Equal([RevisionAction.Edited], RevisionsOf(gallery.Id).Where(r => r.Version == seen + 1).Select(r => r.Action)); // one winner, one revision

        // Adding (no version seen) retries instead: the item lands after a concurrent change.
        var adder = new CommitFirst(() => host.Galleries(s => s.EditAsync(host.Admin, gallery.Id, seen + 1, "Renamed while adding", null, GalleryVisibility.Team)));
        await using (var db = new PortalDbContext(new DbContextOptionsBuilder<PortalDbContext>().UseSqlite($"Data Source={host.Factory.DatabaseFile}").AddInterceptors(adder).Options))
        {
            var owners = new GalleryService(db, host.Factory.Services.GetRequiredService<ArtifactViews>(), host.Factory.Services.GetRequiredService<ReviewEvents>());
            await owners.AddItemAsync(host.Owner, gallery.Id, B, Mean, "added during a rename");
        }
        Assert.True(adder.Ran);
        Assert.Equal(("Renamed while adding", seen + 3), (Row(gallery.Id).Title, Row(gallery.Id).Version));
        Assert.Equal(["Caption of " + A, "added during a rename"], ItemsInOrder(gallery.Id).Select(i => i.Caption));
    }

    /// <summary>Commits another change just before the first SaveChanges of the context it watches.</summary>
    private sealed class CommitFirst(Func<Task> other) : SaveChangesInterceptor
    {
        public bool Ran { get; private set; }

        public override async ValueTask<InterceptionResult<int>> SavingChangesAsync(DbContextEventData eventData, InterceptionResult<int> result,
            CancellationToken cancellationToken = default)
        {
            if (!Ran)
            {
                Ran = true;
                await other();
            }
            return result;
        }
    }

    [Fact]
    public async Task EveryChangeIsVersionedWithARevisionOfWhoAndWhat()
    {
        var created = await host.Galleries(s => s.CreateAsync(host.Owner, "  History  ", "first", GalleryVisibility.Private));
        Assert.Equal(("History", 1), (created.Title, created.Version)); // trimmed
        await host.Galleries(s => s.EditAsync(host.Owner, created.Id, 1, "History, edited", "second", GalleryVisibility.Team));
        var item = await host.Galleries(s => s.AddItemAsync(host.Owner, created.Id, A, new PinnedView(2, 0, 1, "tile 1,2", "Grey", 0.25), "first caption"));
        await host.Galleries(s => s.AddItemAsync(host.Owner, created.Id, Pair, Mean, ""));
        await host.Galleries(s => s.EditItemAsync(host.Admin, item.Id, 1, new PinnedView(null, null, null, "base", "magma", 1), "second caption"));
        var second = ItemsInOrder(created.Id)[1];
        await host.Galleries(s => s.ReorderAsync(host.Owner, created.Id, 4, [second.Id, item.Id]));
        await host.Galleries(s => s.RemoveItemAsync(host.Owner, item.Id, 5));
        await host.Galleries(s => s.DeleteAsync(host.Admin, created.Id, 6));

        var galleryHistory = RevisionsOf(created.Id);
        Assert.Equal([1, 2, 3, 4, 5, 6, 7], galleryHistory.Select(r => r.Version));
        Assert.Equal([RevisionAction.Created, RevisionAction.Edited, RevisionAction.Edited, RevisionAction.Edited, RevisionAction.Edited, RevisionAction.Edited, RevisionAction.Deleted],
            galleryHistory.Select(r => r.Action));
        Assert.All(galleryHistory, r => Assert.Equal(nameof(Gallery), r.EntityType));
        Assert.Equal(host.Admin.UserId(), galleryHistory[^1].AuthorId);
        Assert.All(galleryHistory.SkipLast(1), r => Assert.Equal(host.Owner.UserId(), r.AuthorId));
        using (var edited = JsonDocument.Parse(galleryHistory[1].Snapshot))
        {
            Assert.Equal("History, edited", edited.RootElement.GetProperty("Title").GetString());
            Assert.Equal("Team", edited.RootElement.GetProperty("Visibility").GetString());
        }
        using (var reordered = JsonDocument.Parse(galleryHistory[4].Snapshot))
            Assert.Equal([second.Id, item.Id], reordered.RootElement.GetProperty("Items").EnumerateArray().Select(e => e.GetGuid()));
        using (var removed = JsonDocument.Parse(galleryHistory[5].Snapshot))
            Assert.Equal([second.Id], removed.RootElement.GetProperty("Items").EnumerateArray().Select(e => e.GetGuid()));

        var itemHistory = RevisionsOf(item.Id);
        Assert.Equal([(1, RevisionAction.Created), (2, RevisionAction.Edited), (3, RevisionAction.Deleted)], itemHistory.Select(r => (r.Version, r.Action)));
        Assert.Equal([host.Owner.UserId(), host.Admin.UserId(), host.Owner.UserId()], itemHistory.Select(r => r.AuthorId));
        using (var first = JsonDocument.Parse(itemHistory[0].Snapshot))
        {
            var pin = first.RootElement;
            Assert.Equal((2, 0, 1, "tile 1,2", "gray", 0.25, "first caption"), (pin.GetProperty("Step").GetInt32(), pin.GetProperty("Layer").GetInt32(),
                pin.GetProperty("Head").GetInt32(), pin.GetProperty("ViewName").GetString(), pin.GetProperty("Colormap").GetString(),
                pin.GetProperty("Opacity").GetDouble(), pin.GetProperty("Caption").GetString()));
        }
        using (var last = JsonDocument.Parse(itemHistory[2].Snapshot))
        {
            // The removed item's last state survives in its history.
            Assert.Equal("second caption", last.RootElement.GetProperty("Caption").GetString());
            Assert.Equal(JsonValueKind.Null, last.RootElement.GetProperty("Step").ValueKind);
            Assert.Equal("magma", last.RootElement.GetProperty("Colormap").GetString());
        }
        Assert.DoesNotContain(host.Factory.WithDb(db => db.GalleryItems.Select(i => i.Id).ToList()), id => id == item.Id);
    }

    [Fact]
    public async Task APinMustExistInEveryRunItShowsAndBadInputIsRefusedByName()
    {
        var gallery = await host.GalleryWithAsync(GalleryVisibility.Team);
        var cases = new (GallerySubject Subject, PinnedView View, string? Caption, string Message)[]
        {
            (GallerySubject.OfRun(Guid.Empty), Mean, null, $"there is no run {Guid.Empty}"),
            (GallerySubject.OfRun(host.QueuedRunId), Mean, null, $"run {host.QueuedRunId} has no attention artifact (Queued)"),
            (GallerySubject.OfComparison(Guid.Empty), Mean, null, $"there is no saved comparison {Guid.Empty}"),
            (new GallerySubject(null, null), Mean, null, "an item shows either a run or a saved comparison"),
            (new GallerySubject(host.AnyresRunA, host.ComparisonId), Mean, null, "an item shows either a run or a saved comparison"),
            (A, Mean with { Step = 3 }, null, "token 3 does not exist: the run generated 3 (tokens 0 to 2)"),
            (A, Mean with { Layer = 2 }, null, "layer 2 does not exist: the model has 2 (layers 0 to 1)"),
            (Pair, Mean with { Head = -1 }, null, "head -1 does not exist"),
            (A, Mean with { ViewName = "image" }, null, $"run {host.AnyresRunA} has no image view 'image' (it has 'base', 'tiles', 'tile 0,0'"),
            (GallerySubject.OfRun(host.DemoRunId), Mean with { ViewName = "tiles" }, null, "has no image view 'tiles' (it has 'image')"),
            (A, Mean with { Colormap = "rainbow" }, null, "unknown colormap 'rainbow' (use viridis, magma, jet, gray)"),
            (A, Mean with { Opacity = 1.5 }, null, "the opacity must be between 0 and 1, not 1.5"),
            (A, Mean with { Opacity = double.NaN }, null, "the opacity must be between 0 and 1"),
            (A, Mean, new string('x', GalleryService.MaxCaptionChars + 1), "the caption is 5001 characters long; the limit is 5000"),
        };
        foreach (var (subject, view, caption, message) in cases)
        {
            var e = await Assert.ThrowsAsync<ArgumentException>(() => host.Galleries(s => s.AddItemAsync(host.Owner, gallery.Id, subject, view, caption)));
            Assert.Contains(message, e.Message);
        }
        Assert.Empty(ItemsInOrder(gallery.Id));
        Assert.Equal(1, Row(gallery.Id).Version);

        foreach (var (title, message) in new[] { ("", "a gallery needs a title"), ("   ", "a gallery needs a title"),
                     (new string('t', 201), "the title is 201 characters long; the limit is 200") })
            Assert.Equal(message, (await Assert.ThrowsAsync<ArgumentException>(() => host.Galleries(s => s.CreateAsync(host.Owner, title, null, GalleryVisibility.Team)))).Message);
        Assert.Equal(200, (await host.Galleries(s => s.CreateAsync(host.Owner, new string('t', 200), null, GalleryVisibility.Team))).Title.Length);
        await Assert.ThrowsAsync<KeyNotFoundException>(() => host.Galleries(s => s.AddItemAsync(host.Owner, Guid.NewGuid(), A, Mean, null)));

        // What is stored: the colormap's own name, and a run's view resolved (the anyres run prefers its tiles);
        // a comparison item may leave the view to each run, and a view every run has is accepted.
        var run = await host.Galleries(s => s.AddItemAsync(host.Owner, gallery.Id, A, Mean with { Colormap = " JET " }, "  a caption  "));
        Assert.Equal(("jet", "tiles", "a caption"), (run.Colormap, run.ViewName, run.Caption));
        var pair = await host.Galleries(s => s.AddItemAsync(host.Owner, gallery.Id, Pair, Mean, null));
        Assert.Null(pair.ViewName);
        var tile = await host.Galleries(s => s.AddItemAsync(host.Owner, gallery.Id, Pair, Mean with { ViewName = "tile 0,2", Step = 2, Layer = 1, Head = 2 }, null));
        Assert.Equal("tile 0,2", tile.ViewName);
        var demo = await host.Galleries(s => s.AddItemAsync(host.Owner, gallery.Id, GallerySubject.OfRun(host.DemoRunId), Mean, null));
        Assert.Equal("image", demo.ViewName);
    }

    [Fact]
    public async Task EachCommittedChangeIsPublishedToTheGallerysTopicAndARefusedOneIsNot()
    {
        var gallery = await host.GalleryWithAsync(GalleryVisibility.Team);
        var events = host.Factory.Services.GetRequiredService<ReviewEvents>();
        var seen = new List<ReviewChange>();
        var whenTold = new List<(int Items, int Version, string Caption)>(); // what a subscriber reading the database then finds
        void Collect(ReviewChange c)
        {
            if (c.Topic != ReviewEvents.GalleryTopic(gallery.Id)) return;
            lock (seen)
            {
                seen.Add(c);
                whenTold.Add(host.Factory.WithDb(db => (db.GalleryItems.Count(i => i.GalleryId == gallery.Id), db.Galleries.Single(g => g.Id == gallery.Id).Version,
                    db.GalleryItems.Where(i => i.GalleryId == gallery.Id).Select(i => i.Caption).FirstOrDefault() ?? "")));
            }
        }
        events.Changed += Collect;
        try
        {
            var item = await host.Galleries(s => s.AddItemAsync(host.Owner, gallery.Id, A, Mean, "one"));
            // Published after the commit: a subscriber that reads the database then sees the change.
            Assert.Single(seen);
            Assert.Equal(("gallery", item.Id, PortalFactory.ResearcherEmail), (seen[0].Kind, seen[0].EntityId, seen[0].ByUser));
            Assert.Equal([(1, 2, "one")], whenTold);

            await Assert.ThrowsAsync<UnauthorizedAccessException>(() => host.Galleries(s => s.EditItemAsync(host.Viewer, item.Id, 1, Mean, "no")));
            await Assert.ThrowsAsync<ReviewConflictException>(() => host.Galleries(s => s.EditAsync(host.Owner, gallery.Id, 1, "stale", null, GalleryVisibility.Team)));
            Assert.Single(seen);

            await host.Galleries(s => s.EditItemAsync(host.Owner, item.Id, 1, Mean, "two"));
            await host.Galleries(s => s.MakePublicLinkAsync(host.Owner, gallery.Id, 2));
            Assert.Equal([item.Id, item.Id, gallery.Id], seen.Select(c => c.EntityId));
            Assert.Equal([(1, 2, "one"), (1, 2, "two"), (1, 3, "two")], whenTold);
        }
        finally { events.Changed -= Collect; }
    }
}
