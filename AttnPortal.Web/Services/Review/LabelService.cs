using System.Security.Claims;
using System.Text.RegularExpressions;
using AttnPortal.Data;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace AttnPortal.Web.Services;

/// <summary>The team's label set: writers create, rename, recolour and (softly) delete labels; every change is a revision.</summary>
public sealed partial class LabelService(ReviewStore store)
{
    private const string What = "label";
    public const int MaxNameChars = 64, MaxDescriptionChars = 500;

    /// <summary>The set a new portal starts with.</summary>
    public static readonly (string Name, string Color, string Description)[] Defaults =
    [
        ("grounded", "#2ca02c", "Attention lies on the object the answer is about."),
        ("attention sink", "#9467bd", "Attention piles up on a few patches whatever the content."),
        ("spurious", "#d62728", "Attention on something that has nothing to do with the answer."),
        ("object missed", "#ff7f0e", "The object the answer needs gets little attention."),
    ];

    public Task<IReadOnlyList<LabelView>> ListAsync(bool includeDeleted = false) => store.WithDbAsync<IReadOnlyList<LabelView>>(async db =>
    {
        var rows = await db.Labels.AsNoTracking().Where(l => includeDeleted || l.DeletedUtc == null).ToListAsync();
        return rows.OrderBy(l => l.Name, StringComparer.OrdinalIgnoreCase).Select(l => ViewOf(l)!).ToList();
    });

    public Task<IReadOnlyList<RevisionView>> HistoryAsync(Guid id) => store.HistoryAsync(nameof(Label), id);

    public async Task<Guid> CreateAsync(ClaimsPrincipal user, string name, string color, string? description = null)
    {
        var actor = ReviewStore.Writer(user);
        var id = await store.WithDbAsync(async db =>
        {
            var now = DateTime.UtcNow;
            var row = new Label { Id = Guid.NewGuid(), Name = await NameAsync(db, name, null), CreatedById = actor.Id, CreatedUtc = now };
            (row.Color, row.Description) = (Color(color), Description(description));
            db.Labels.Add(row);
            await ReviewStore.SaveAsync(db, row, row.Id, RevisionAction.Created, null, actor, What, now);
            return row.Id;
        });
        store.Publish(ReviewEvents.LabelsTopic, "label", id, actor);
        return id;
    }

    /// <summary>Rename, recolour or redescribe; <paramref name="version"/> is the one the user saw.</summary>
    public Task UpdateAsync(ClaimsPrincipal user, Guid id, int version, string name, string color, string? description) =>
        ChangeAsync(user, id, version, RevisionAction.Edited, async (db, row, _) =>
        {
            if (row.DeletedUtc is not null) throw new ArgumentException("This label is deleted; restore it before editing.");
            row.Name = await NameAsync(db, name, row.Id);
            (row.Color, row.Description) = (Color(color), Description(description));
        });

    /// <summary>Soft delete: annotations keep showing the label, but it can no longer be chosen.</summary>
    public Task DeleteAsync(ClaimsPrincipal user, Guid id, int version) =>
        ChangeAsync(user, id, version, RevisionAction.Deleted, (_, row, now) =>
        {
            if (row.DeletedUtc is not null) throw new ArgumentException("This label is already deleted.");
            row.DeletedUtc = now;
            return Task.CompletedTask;
        });

    public Task RestoreAsync(ClaimsPrincipal user, Guid id, int version) =>
        ChangeAsync(user, id, version, RevisionAction.Restored, async (db, row, _) =>
        {
            if (row.DeletedUtc is null) throw new ArgumentException("This label is not deleted.");
            await NameAsync(db, row.Name, row.Id); // a live label may have taken its name meanwhile
            row.DeletedUtc = null;
        });

    private async Task ChangeAsync(ClaimsPrincipal user, Guid id, int version, RevisionAction action, Func<PortalDbContext, Label, DateTime, Task> change)
    {
        var actor = ReviewStore.Writer(user);
        await store.WithDbAsync(async db =>
        {
            var row = await db.Labels.SingleOrDefaultAsync(l => l.Id == id) ?? throw new ArgumentException($"There is no label {id}.");
            await ReviewStore.ExpectVersionAsync(db, row, id, version, What);
            var now = DateTime.UtcNow;
            await change(db, row, now);
            await ReviewStore.SaveAsync(db, row, id, action, version, actor, What, now);
            return true;
        });
        store.Publish(ReviewEvents.LabelsTopic, "label", id, actor);
    }

    /// <summary>A trimmed name of 1 to 64 characters that no other live label has (ignoring case).</summary>
    private static async Task<string> NameAsync(PortalDbContext db, string? name, Guid? self)
    {
        name = name?.Trim() ?? "";
        if (name.Length == 0) throw new ArgumentException("A label needs a name.");
        if (name.Length > MaxNameChars) throw new ArgumentException($"A label name has at most {MaxNameChars} characters (got {name.Length}).");
        var live = await db.Labels.AsNoTracking().Where(l => l.DeletedUtc == null && l.Id != self).Select(l => l.Name).ToListAsync();
        if (live.FirstOrDefault(n => string.Equals(n, name, StringComparison.OrdinalIgnoreCase)) is { } existing)
            throw new ArgumentException($"There is already a label “{existing}”.");
        return name;
    }

    /// <summary>Only #rgb or #rrggbb: the colour goes into SVG and CSS attributes as it is.</summary>
    private static string Color(string? color)
    {
        color = color?.Trim() ?? "";
        if (!HexColor().IsMatch(color)) throw new ArgumentException($"A label colour is #rgb or #rrggbb (got “{color}”).");
        return color.ToLowerInvariant();
    }

    private static string? Description(string? text)
    {
        text = string.IsNullOrWhiteSpace(text) ? null : text.Trim();
        if (text?.Length > MaxDescriptionChars) throw new ArgumentException($"A label description has at most {MaxDescriptionChars} characters (got {text.Length}).");
        return text;
    }

    [GeneratedRegex("^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")]
    private static partial Regex HexColor();

    internal static LabelView? ViewOf(Label? l) => l is null ? null : new LabelView(l.Id, l.Name, l.Color, l.Description, l.Version, l.DeletedUtc);

    /// <summary>
    /// At start-up: the default labels when the table is empty (never again once the team has any, deleted or not),
    /// created by the first admin, each with its revision. Without an admin yet there is nobody to credit: skipped until
    /// the next start.
    /// </summary>
    public static async Task SeedDefaultsAsync(PortalDbContext db, UserManager<PortalUser> users)
    {
        if (await db.Labels.AnyAsync()) return;
        if ((await users.GetUsersInRoleAsync(Roles.Admin)).OrderBy(u => u.Id).FirstOrDefault() is not { } admin) return;
        var now = DateTime.UtcNow;
        foreach (var (name, color, description) in Defaults)
        {
            var label = new Label { Id = Guid.NewGuid(), Name = name, Color = color, Description = description, CreatedById = admin.Id, CreatedUtc = now, Version = 1 };
            db.Revisions.Add(ReviewStore.Revision(db.Labels.Add(label), label.Id, RevisionAction.Created, admin.Id, now));
        }
        await db.SaveChangesAsync();
    }
}
