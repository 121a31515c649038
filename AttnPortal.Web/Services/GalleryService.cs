using System.Buffers.Text;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text.Json;
using AttnPortal.Data;
using AttnPortal.Web.Rendering;
using Microsoft.EntityFrameworkCore;

namespace AttnPortal.Web.Services;

/// <summary>The view an item is pinned to: token (null = mean over tokens), layer and head (null = mean), image view
/// (null = each run's preferred view), colormap and heatmap opacity.</summary>
public sealed record PinnedView(int? Step, int? Layer, int? Head, string? ViewName, string Colormap = "viridis", double Opacity = 0.6);

/// <summary>What a gallery item shows: one run, or one saved comparison.</summary>
public readonly record struct GallerySubject(Guid? RunId, Guid? ComparisonId)
{
    public static GallerySubject OfRun(Guid runId) => new(runId, null);
    public static GallerySubject OfComparison(Guid comparisonId) => new(null, comparisonId);
}

/// <summary>A gallery as the list page shows it.</summary>
public sealed record GallerySummary(Guid Id, string Title, string? Description, string OwnerId, string OwnerName,
    GalleryVisibility Visibility, int ItemCount, DateTime UpdatedUtc);

/// <summary>
/// Galleries: ordered, captioned runs and comparisons, each pinned to a view. Every change checks who may make it
/// (<see cref="GalleryAccess"/>; a Viewer is refused here, not only in the UI), moves the row's Version on and appends a
/// <see cref="Revision"/> in the same SaveChanges, and is published to the gallery's topic once committed. Changes to
/// the gallery itself or to its list of items (details, visibility, link, add, remove, reorder, delete) move the
/// gallery's Version; caption and view edits move only the item's, so two people captioning different items do not
/// collide.
/// </summary>
/// <remarks>
/// Errors: <see cref="ArgumentException"/> for bad input, <see cref="KeyNotFoundException"/> for a gallery or item the
/// user cannot see, <see cref="UnauthorizedAccessException"/> for one they cannot change, and
/// <see cref="ReviewConflictException"/> when the version the user saw is no longer the current one.
/// </remarks>
public sealed class GalleryService(PortalDbContext db, ArtifactViews views, ReviewEvents events)
{
    public const int MaxTitleChars = 200, MaxCaptionChars = 5000, MaxDescriptionChars = 5000;
    private const int AddAttempts = 3;

    // ---- reading ----

    /// <summary>The gallery with its owner and items in order (runs with their images, comparisons with their runs), or
    /// null when it does not exist, is deleted or is not <paramref name="user"/>'s to see.</summary>
    public Task<Gallery?> FindAsync(ClaimsPrincipal user, Guid id, CancellationToken cancel = default) =>
        WithItems(db.Galleries.VisibleTo(user)).SingleOrDefaultAsync(g => g.Id == id, cancel);

    /// <summary>The gallery whose public link carries <paramref name="token"/>, or null (unknown, revoked, deleted).</summary>
    public async Task<Gallery?> FindPublicAsync(string? token, CancellationToken cancel = default)
    {
        if (!LooksLikeToken(token)) return null;
        return await WithItems(db.Galleries.Where(g => g.DeletedUtc == null && g.Visibility == GalleryVisibility.Public))
            .SingleOrDefaultAsync(g => g.PublicToken == token, cancel);
    }

    /// <summary>Every gallery <paramref name="user"/> may see, most recently changed first.</summary>
    public async Task<IReadOnlyList<GallerySummary>> ListAsync(ClaimsPrincipal user, CancellationToken cancel = default) =>
        await db.Galleries.VisibleTo(user).AsNoTracking()
            .OrderByDescending(g => g.UpdatedUtc)
            .Select(g => new GallerySummary(g.Id, g.Title, g.Description, g.OwnerId, g.Owner!.DisplayName ?? g.Owner.UserName ?? g.OwnerId,
                g.Visibility, g.Items.Count, g.UpdatedUtc))
            .ToListAsync(cancel);

    /// <summary>The galleries <paramref name="user"/> owns and may add to (none for a Viewer), by title.</summary>
    public async Task<IReadOnlyList<GallerySummary>> OwnEditableAsync(ClaimsPrincipal user, CancellationToken cancel = default)
    {
        if (!user.IsWriter()) return [];
        string? userId = user.UserId();
        return (await ListAsync(user, cancel)).Where(g => g.OwnerId == userId).OrderBy(g => g.Title, StringComparer.CurrentCultureIgnoreCase).ToList();
    }

    private static IQueryable<Gallery> WithItems(IQueryable<Gallery> galleries) =>
        galleries.AsNoTracking().AsSplitQuery()
            .Include(g => g.Owner)
            .Include(g => g.Items.OrderBy(i => i.Position)).ThenInclude(i => i.Run!).ThenInclude(r => r.Image)
            .Include(g => g.Items).ThenInclude(i => i.Comparison!).ThenInclude(c => c.Runs.OrderBy(p => p.Position)).ThenInclude(p => p.Run!).ThenInclude(r => r.Image);

    // ---- the gallery ----

    public async Task<Gallery> CreateAsync(ClaimsPrincipal user, string title, string? description, GalleryVisibility visibility,
        CancellationToken cancel = default)
    {
        string userId = RequireWriter(user);
        var now = DateTime.UtcNow;
        var gallery = new Gallery
        {
            Id = Guid.NewGuid(), Title = CheckTitle(title), Description = CheckDescription(description), OwnerId = userId,
            Visibility = CheckVisibility(visibility), CreatedUtc = now, UpdatedUtc = now, Version = 1,
        };
        if (gallery.Visibility == GalleryVisibility.Public) gallery.PublicToken = NewToken();
        db.Galleries.Add(gallery);
        Record(gallery, RevisionAction.Created, userId, now);
        await SaveAsync(cancel);
        Publish(user, gallery.Id, gallery.Id);
        return gallery;
    }

    /// <summary>Title, description and visibility. Making it Public creates a public link; making it Private or Team
    /// removes the link.</summary>
    public async Task<Gallery> EditAsync(ClaimsPrincipal user, Guid id, int expectedVersion, string title, string? description,
        GalleryVisibility visibility, CancellationToken cancel = default)
    {
        var gallery = await EditableAsync(user, id, expectedVersion, cancel);
        gallery.Title = CheckTitle(title);
        gallery.Description = CheckDescription(description);
        if (CheckVisibility(visibility) != gallery.Visibility)
        {
            gallery.Visibility = visibility;
            gallery.PublicToken = visibility == GalleryVisibility.Public ? NewToken() : null;
        }
        return await CommitAsync(user, gallery, RevisionAction.Edited, gallery.Id, cancel);
    }

    /// <summary>Soft delete: the row, its items and its history stay; it disappears from every list and its link dies.</summary>
    public async Task DeleteAsync(ClaimsPrincipal user, Guid id, int expectedVersion, CancellationToken cancel = default)
    {
        var gallery = await EditableAsync(user, id, expectedVersion, cancel);
        gallery.DeletedUtc = DateTime.UtcNow;
        gallery.PublicToken = null;
        await CommitAsync(user, gallery, RevisionAction.Deleted, gallery.Id, cancel);
    }

    /// <summary>A new public read-only link (Visibility becomes Public); any earlier link stops working. Returns the token.</summary>
    public async Task<string> MakePublicLinkAsync(ClaimsPrincipal user, Guid id, int expectedVersion, CancellationToken cancel = default)
    {
        var gallery = await EditableAsync(user, id, expectedVersion, cancel);
        gallery.PublicToken = NewToken();
        gallery.Visibility = GalleryVisibility.Public;
        await CommitAsync(user, gallery, RevisionAction.Edited, gallery.Id, cancel);
        return gallery.PublicToken;
    }

    /// <summary>Kills the public link; the gallery stays visible to the team (Visibility becomes Team).</summary>
    public async Task<Gallery> RevokePublicLinkAsync(ClaimsPrincipal user, Guid id, int expectedVersion, CancellationToken cancel = default)
    {
        var gallery = await EditableAsync(user, id, expectedVersion, cancel);
        if (gallery.PublicToken is null && gallery.Visibility != GalleryVisibility.Public) return gallery;
        gallery.PublicToken = null;
        gallery.Visibility = GalleryVisibility.Team;
        return await CommitAsync(user, gallery, RevisionAction.Edited, gallery.Id, cancel);
    }

    // ---- items ----

    /// <summary>Adds a run (with an artifact) or a saved comparison, pinned to <paramref name="view"/>, at the end.</summary>
    /// <remarks>The user saw no version of the gallery from a run page, and appending commutes, so a concurrent change
    /// of the gallery is retried rather than refused.</remarks>
    public async Task<GalleryItem> AddItemAsync(ClaimsPrincipal user, Guid galleryId, GallerySubject subject, PinnedView view, string? caption,
        CancellationToken cancel = default)
    {
        string userId = RequireWriter(user);
        string text = CheckCaption(caption);
        var pin = await CheckPinAsync(subject, view, cancel);
        for (int attempt = 1; ; attempt++)
        {
            var gallery = await EditableAsync(user, galleryId, expectedVersion: null, cancel);
            var now = DateTime.UtcNow;
            var item = new GalleryItem
            {
                Id = Guid.NewGuid(), GalleryId = gallery.Id, Position = gallery.Items.Count == 0 ? 0 : gallery.Items.Max(i => i.Position) + 1,
                RunId = subject.RunId, ComparisonId = subject.ComparisonId, Caption = text, AddedById = userId, AddedUtc = now, Version = 1,
            };
            Apply(item, pin);
            db.GalleryItems.Add(item); // explicitly: found through the navigation with its key set, EF would take it for an existing row
            gallery.Items.Add(item);
            Record(item, RevisionAction.Created, userId, now);
            Touch(gallery, RevisionAction.Edited, userId, now);
            try
            {
                await db.SaveChangesAsync(cancel);
                Publish(user, gallery.Id, item.Id);
                return item;
            }
            catch (DbUpdateConcurrencyException) when (attempt < AddAttempts)
            {
                db.ChangeTracker.Clear();
            }
            catch (DbUpdateConcurrencyException e)
            {
                throw await ConflictAsync(e);
            }
        }
    }

    /// <summary>A new caption and pinned view for an item; <paramref name="expectedVersion"/> is the item's.</summary>
    public async Task<GalleryItem> EditItemAsync(ClaimsPrincipal user, Guid itemId, int expectedVersion, PinnedView view, string? caption,
        CancellationToken cancel = default)
    {
        string userId = RequireWriter(user);
        var item = await db.GalleryItems.Include(i => i.Gallery).SingleOrDefaultAsync(i => i.Id == itemId, cancel);
        if (item?.Gallery is not { } gallery || !user.MayView(gallery)) throw new KeyNotFoundException("no such gallery item");
        RequireEditor(user, gallery);
        if (item.Version != expectedVersion) throw await ConflictAsync(nameof(GalleryItem), item.Id);
        string text = CheckCaption(caption);
        Apply(item, await CheckPinAsync(new GallerySubject(item.RunId, item.ComparisonId), view, cancel));
        item.Caption = text;
        item.Version++;
        Record(item, RevisionAction.Edited, userId, DateTime.UtcNow);
        await SaveAsync(cancel);
        Publish(user, gallery.Id, item.Id);
        return item;
    }

    /// <summary>Takes an item out (the items after it move up); <paramref name="expectedGalleryVersion"/> is the
    /// gallery's. The item's last state stays in its revisions.</summary>
    public async Task RemoveItemAsync(ClaimsPrincipal user, Guid itemId, int expectedGalleryVersion, CancellationToken cancel = default)
    {
        var galleryId = await db.GalleryItems.Where(i => i.Id == itemId).Select(i => (Guid?)i.GalleryId).SingleOrDefaultAsync(cancel)
            ?? throw new KeyNotFoundException("no such gallery item (it may have been removed already)");
        var gallery = await EditableAsync(user, galleryId, expectedGalleryVersion, cancel);
        var item = gallery.Items.Single(i => i.Id == itemId);
        var now = DateTime.UtcNow;
        gallery.Items.Remove(item);
        db.GalleryItems.Remove(item);
        Renumber(gallery.Items.OrderBy(i => i.Position));
        item.Version++;
        Record(item, RevisionAction.Deleted, user.UserId()!, now);
        await CommitAsync(user, gallery, RevisionAction.Edited, item.Id, cancel, now);
    }

    /// <summary>Puts the items in <paramref name="order"/>, which must name each of the gallery's items exactly once.</summary>
    public async Task ReorderAsync(ClaimsPrincipal user, Guid galleryId, int expectedVersion, IReadOnlyList<Guid> order, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(order);
        var gallery = await EditableAsync(user, galleryId, expectedVersion, cancel);
        var items = gallery.Items.ToDictionary(i => i.Id);
        if (order.Distinct().Count() != order.Count)
            throw new ArgumentException("the new order names an item more than once");
        if (order.Where(id => !items.ContainsKey(id)).ToList() is { Count: > 0 } foreign)
            throw new ArgumentException($"the new order names {Count(foreign.Count, "item")} that {(foreign.Count == 1 ? "is" : "are")} not in this gallery: {string.Join(", ", foreign)}");
        if (items.Keys.Except(order).ToList() is { Count: > 0 } missing)
            throw new ArgumentException($"the new order leaves out {Count(missing.Count, "item")} of this gallery: {string.Join(", ", missing)}");
        Renumber(order.Select(id => items[id]));
        await CommitAsync(user, gallery, RevisionAction.Edited, gallery.Id, cancel);
    }

    // ---- rules and checks ----

    private static string RequireWriter(ClaimsPrincipal user)
    {
        if (user.Identity?.IsAuthenticated != true || user.UserId() is not { } id) throw new UnauthorizedAccessException("sign in to change galleries");
        if (!user.IsWriter()) throw new UnauthorizedAccessException("Viewers cannot change galleries");
        return id;
    }

    private static void RequireEditor(ClaimsPrincipal user, Gallery gallery)
    {
        if (!user.MayEdit(gallery)) throw new UnauthorizedAccessException("only the gallery's owner or an Admin may change it");
    }

    /// <summary>The gallery, tracked with its items, after checking that <paramref name="user"/> may change it and (when
    /// given) that it is still at the version they saw.</summary>
    private async Task<Gallery> EditableAsync(ClaimsPrincipal user, Guid id, int? expectedVersion, CancellationToken cancel)
    {
        RequireWriter(user);
        var gallery = await db.Galleries.Include(g => g.Items).SingleOrDefaultAsync(g => g.Id == id, cancel);
        if (gallery is null || !user.MayView(gallery))
        {
            // Deleted under the eyes of someone who could see it: say who did it rather than "not found".
            if (gallery?.DeletedUtc is not null && expectedVersion is not null && user.WouldSee(gallery)) throw await ConflictAsync(nameof(Gallery), id);
            throw new KeyNotFoundException("no such gallery");
        }
        RequireEditor(user, gallery);
        if (expectedVersion is { } v && gallery.Version != v) throw await ConflictAsync(nameof(Gallery), id);
        return gallery;
    }

    private static string CheckTitle(string? title)
    {
        string t = (title ?? "").Trim();
        if (t.Length == 0) throw new ArgumentException("a gallery needs a title");
        if (t.Length > MaxTitleChars) throw new ArgumentException($"the title is {t.Length} characters long; the limit is {MaxTitleChars}");
        return t;
    }

    private static string? CheckDescription(string? description)
    {
        string d = (description ?? "").Trim();
        if (d.Length > MaxDescriptionChars) throw new ArgumentException($"the description is {d.Length} characters long; the limit is {MaxDescriptionChars}");
        return d.Length == 0 ? null : d;
    }

    private static string CheckCaption(string? caption)
    {
        string c = (caption ?? "").Trim();
        if (c.Length > MaxCaptionChars) throw new ArgumentException($"the caption is {c.Length} characters long; the limit is {MaxCaptionChars}");
        return c;
    }

    private static GalleryVisibility CheckVisibility(GalleryVisibility visibility) =>
        Enum.IsDefined(visibility) ? visibility : throw new ArgumentException($"unknown visibility {(int)visibility} (Private, Team or Public)");

    /// <summary>The pin, checked against every run the item shows (the token, layer, head and view must exist in each),
    /// with the colormap's canonical name and, for a single run, the view resolved to a name.</summary>
    private async Task<PinnedView> CheckPinAsync(GallerySubject subject, PinnedView view, CancellationToken cancel)
    {
        if ((subject.RunId is null) == (subject.ComparisonId is null)) throw new ArgumentException("an item shows either a run or a saved comparison");
        if (!Colormap.TryParse(view.Colormap, out var colormap))
            throw new ArgumentException($"unknown colormap '{view.Colormap}' (use {string.Join(", ", Colormap.Names)})");
        if (!(view.Opacity >= 0 && view.Opacity <= 1)) throw new ArgumentException($"the opacity must be between 0 and 1, not {view.Opacity}");

        IReadOnlyList<Guid> runIds;
        if (subject.RunId is { } runId) runIds = [runId];
        else
        {
            var comparisonId = subject.ComparisonId!.Value;
            runIds = await db.ComparisonRuns.Where(c => c.ComparisonId == comparisonId).OrderBy(c => c.Position).Select(c => c.RunId).ToListAsync(cancel);
            if (runIds.Count == 0) throw new ArgumentException($"there is no saved comparison {comparisonId}");
        }

        string? viewName = view.ViewName;
        foreach (var id in runIds)
        {
            var (run, attention) = await views.OpenAsync(id);
            if (run is null) throw new ArgumentException($"there is no run {id}");
            if (attention is null) throw new ArgumentException($"run {id} has no attention artifact ({run.Status}): only finished runs can be pinned");
            CheckIndex(view.Step, attention.Steps, "token", "the run generated");
            CheckIndex(view.Layer, attention.Layers, "layer", "the model has");
            CheckIndex(view.Head, attention.Heads, "head", "the model has");
            if (view.ViewName is { } name && attention.FindView(name) is null)
                throw new ArgumentException($"run {id} has no image view '{name}' (it has {string.Join(", ", attention.Views.Select(v => $"'{v.Name}'"))})");
            if (subject.RunId is not null) viewName ??= attention.PreferredView.Name;
        }
        return view with { ViewName = viewName, Colormap = colormap.Name };

        static void CheckIndex(int? value, int count, string what, string has)
        {
            if (value is { } v && (v < 0 || v >= count))
                throw new ArgumentException($"{what} {v} does not exist: {has} {count} ({what}s 0 to {count - 1})");
        }
    }

    private static void Apply(GalleryItem item, PinnedView pin)
    {
        (item.Step, item.Layer, item.Head, item.ViewName, item.Colormap, item.Opacity) = (pin.Step, pin.Layer, pin.Head, pin.ViewName, pin.Colormap, pin.Opacity);
    }

    private static void Renumber(IEnumerable<GalleryItem> inOrder)
    {
        int position = 0;
        foreach (var item in inOrder) item.Position = position++;
    }

    /// <summary>32 random bytes, base64url: 43 characters, unguessable.</summary>
    private static string NewToken() => Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));

    private static bool LooksLikeToken(string? token) => token is { Length: 43 } && Base64Url.IsValid(token);

    private static string Count(int n, string noun) => n == 1 ? $"1 {noun}" : $"{n} {noun}s";

    // ---- versions, revisions, events ----

    private async Task<Gallery> CommitAsync(ClaimsPrincipal user, Gallery gallery, RevisionAction action, Guid changed, CancellationToken cancel,
        DateTime? now = null)
    {
        Touch(gallery, action, user.UserId()!, now ?? DateTime.UtcNow);
        await SaveAsync(cancel);
        Publish(user, gallery.Id, changed);
        return gallery;
    }

    private void Touch(Gallery gallery, RevisionAction action, string userId, DateTime now)
    {
        gallery.Version++;
        gallery.UpdatedUtc = now;
        Record(gallery, action, userId, now);
    }

    private void Record(Gallery g, RevisionAction action, string userId, DateTime now) =>
        db.Revisions.Add(new Revision
        {
            EntityType = nameof(Gallery), EntityId = g.Id, Version = g.Version, Action = action, AuthorId = userId, Utc = now,
            // Whether there is a public link, never the token itself: history is readable by more people than the link is.
            Snapshot = JsonSerializer.Serialize(new
            {
                g.Title, g.Description, Visibility = g.Visibility.ToString(), PublicLink = g.PublicToken is not null, g.OwnerId, g.DeletedUtc,
                Items = g.Items.OrderBy(i => i.Position).Select(i => i.Id),
            }),
        });

    private void Record(GalleryItem i, RevisionAction action, string userId, DateTime now) =>
        db.Revisions.Add(new Revision
        {
            EntityType = nameof(GalleryItem), EntityId = i.Id, Version = i.Version, Action = action, AuthorId = userId, Utc = now,
            Snapshot = JsonSerializer.Serialize(new
            {
                i.GalleryId, i.Position, i.RunId, i.ComparisonId, i.Step, i.Layer, i.Head, i.ViewName, i.Colormap, i.Opacity, i.Caption, i.AddedById,
            }),
        });

    private async Task SaveAsync(CancellationToken cancel)
    {
        try { await db.SaveChangesAsync(cancel); }
        catch (DbUpdateConcurrencyException e) { throw await ConflictAsync(e); }
    }

    /// <summary>Someone committed between our read and our write: the Version tokens made the write fail.</summary>
    private async Task<ReviewConflictException> ConflictAsync(DbUpdateConcurrencyException e)
    {
        db.ChangeTracker.Clear();
        return e.Entries.FirstOrDefault()?.Entity switch
        {
            GalleryItem item => await ConflictAsync(nameof(GalleryItem), item.Id),
            Gallery gallery => await ConflictAsync(nameof(Gallery), gallery.Id),
            _ => new ReviewConflictException("Someone else changed this gallery at the same moment; your change was not saved — reload to see theirs."),
        };
    }

    /// <summary>"Ada deleted this gallery item at 14:02 UTC; …", from the entity's latest revision.</summary>
    private async Task<ReviewConflictException> ConflictAsync(string entityType, Guid id)
    {
        var last = await db.Revisions.AsNoTracking().Where(r => r.EntityType == entityType && r.EntityId == id)
            .OrderByDescending(r => r.Version).ThenByDescending(r => r.Id)
            .Select(r => new { r.Action, r.Utc, Name = r.Author!.DisplayName ?? r.Author.UserName })
            .FirstOrDefaultAsync();
        string what = entityType == nameof(GalleryItem) ? "this gallery item" : "this gallery";
        string verb = last?.Action switch { RevisionAction.Deleted => "deleted", RevisionAction.Created => "created", RevisionAction.Restored => "restored", _ => "changed" };
        return new ReviewConflictException(last is null
            ? $"Someone else changed {what}; your change was not saved — reload to see theirs."
            : $"{last.Name ?? "Someone"} {verb} {what} at {last.Utc:HH:mm} UTC; your change was not saved — reload to see theirs.");
    }

    private void Publish(ClaimsPrincipal user, Guid galleryId, Guid changed) =>
        events.Publish(new ReviewChange(ReviewEvents.GalleryTopic(galleryId), "gallery", changed, user.Identity?.Name ?? ""));
}
