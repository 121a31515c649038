using System.Globalization;
using System.Security.Claims;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using AttnPortal.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;

namespace AttnPortal.Web.Services;

/// <summary>The signed-in writer behind a change.</summary>
internal sealed record ReviewActor(string Id, string UserName, ClaimsPrincipal User);

/// <summary>
/// What every review write shares: a database context of its own (pages live long, writes are short), the writer check,
/// versioned saving with a revision in the same transaction, the conflict message, the live-change notice, history.
/// </summary>
public sealed class ReviewStore(IServiceScopeFactory scopes, ReviewEvents events, ILogger<ReviewStore> log)
{
    public const int MaxBodyChars = 20_000;
    private static readonly JsonSerializerOptions SnapshotJson = new() { Converters = { new JsonStringEnumConverter() } };

    internal static ReviewActor Writer(ClaimsPrincipal user)
    {
        if (user.UserId() is not { } id)
            throw new UnauthorizedAccessException("Sign in to change annotations, comments, labels or head tags.");
        if (!user.MayReview())
            throw new UnauthorizedAccessException("Viewers can read annotations, comments, labels and head tags but not change them; ask an admin for the Researcher role.");
        return new ReviewActor(id, user.Identity?.Name ?? id, user);
    }

    internal async Task<T> WithDbAsync<T>(Func<PortalDbContext, Task<T>> work)
    {
        await using var scope = scopes.CreateAsyncScope();
        return await work(scope.ServiceProvider.GetRequiredService<PortalDbContext>());
    }

    /// <summary>
    /// Saves <paramref name="row"/> (added or modified in <paramref name="db"/>) at the next version with its revision, in
    /// one SaveChanges. An edit names the version the user last saw: the UPDATE only matches the row at that version (the
    /// Version concurrency token), so of two writers who read the same version exactly one wins and the other gets a
    /// <see cref="ReviewConflictException"/> naming the winner; nothing of theirs is overwritten.
    /// </summary>
    internal static async Task SaveAsync(PortalDbContext db, object row, Guid id, RevisionAction action, int? expectedVersion, ReviewActor actor, string what, DateTime now)
    {
        var entry = db.Entry(row);
        var version = entry.Property("Version");
        if (expectedVersion is { } expected)
        {
            version.OriginalValue = expected;
            version.CurrentValue = expected + 1;
        }
        else version.CurrentValue = 1;
        db.Revisions.Add(Revision(entry, id, action, actor.Id, now));
        try { await db.SaveChangesAsync(); }
        catch (DbUpdateConcurrencyException) { throw await ConflictAsync(db, entry.Metadata.ClrType.Name, id, what); }
    }

    /// <summary>Refuses at once, before any validation, a change to a row that moved on since the user read it (the
    /// save still guards against a writer who gets in between).</summary>
    internal static async Task ExpectVersionAsync(PortalDbContext db, object row, Guid id, int expectedVersion, string what)
    {
        var entry = db.Entry(row);
        if ((int)entry.Property("Version").CurrentValue! != expectedVersion) throw await ConflictAsync(db, entry.Metadata.ClrType.Name, id, what);
    }

    /// <summary>The revision of a change: the row's columns as they are after it (enums by name).</summary>
    internal static Revision Revision(EntityEntry entry, Guid id, RevisionAction action, string authorId, DateTime now)
    {
        var values = entry.CurrentValues;
        var snapshot = values.Properties.ToDictionary(p => p.Name, p => values[p]);
        return new Revision
        {
            EntityType = entry.Metadata.ClrType.Name, EntityId = id, Version = (int)values["Version"]!, Action = action,
            Snapshot = JsonSerializer.Serialize(snapshot, SnapshotJson), AuthorId = authorId, Utc = now,
        };
    }

    private static async Task<ReviewConflictException> ConflictAsync(PortalDbContext db, string entityType, Guid id, string what)
    {
        var last = await db.Revisions.AsNoTracking().Where(r => r.EntityType == entityType && r.EntityId == id)
            .OrderByDescending(r => r.Version).ThenByDescending(r => r.Id)
            .Select(r => new { r.Action, r.Utc, Name = r.Author!.DisplayName ?? r.Author.UserName ?? r.AuthorId })
            .FirstOrDefaultAsync();
        if (last is null) return new ReviewConflictException($"Someone else changed this {what}; your change was not saved — reload to see theirs.");
        string verb = last.Action switch
        {
            RevisionAction.Created => "created", RevisionAction.Deleted => "deleted", RevisionAction.Restored => "restored", _ => "edited",
        };
        return new ReviewConflictException(
            $"{last.Name} {verb} this {what} at {last.Utc.ToString("HH:mm", CultureInfo.InvariantCulture)} UTC; your change was not saved — reload to see theirs.");
    }

    /// <summary>Tells open pages; the change is saved already, so a page that fails to hear it must not fail the write.</summary>
    internal void Publish(string topic, string kind, Guid id, ReviewActor actor)
    {
        try { events.Publish(new ReviewChange(topic, kind, id, actor.UserName)); }
        catch (Exception e) { log.LogWarning(e, "A page failed to take the {Kind} change {Id} on {Topic}", kind, id, topic); }
    }

    /// <summary>People's names by id (display name, else user name).</summary>
    internal static async Task<Dictionary<string, string>> NamesAsync(PortalDbContext db, IEnumerable<string?> ids)
    {
        var wanted = ids.OfType<string>().Distinct().ToList();
        return await db.Users.AsNoTracking().Where(u => wanted.Contains(u.Id))
            .ToDictionaryAsync(u => u.Id, u => u.DisplayName ?? u.UserName ?? u.Id);
    }

    /// <summary>Markdown text: at most <see cref="MaxBodyChars"/>; <paramref name="required"/> refuses blank text.</summary>
    internal static string Body(string? text, string what, bool required)
    {
        text ??= "";
        if (required && string.IsNullOrWhiteSpace(text)) throw new ArgumentException($"{what} needs some text.");
        if (text.Length > MaxBodyChars) throw new ArgumentException($"{what} is {text.Length:N0} characters long; at most {MaxBodyChars:N0} are allowed.");
        return text;
    }

    /// <summary>An item's revisions, newest first, with the authors' names.</summary>
    public Task<IReadOnlyList<RevisionView>> HistoryAsync(string entityType, Guid id) => WithDbAsync<IReadOnlyList<RevisionView>>(async db =>
    {
        var rows = await db.Revisions.AsNoTracking().Where(r => r.EntityType == entityType && r.EntityId == id)
            .OrderByDescending(r => r.Version).ThenByDescending(r => r.Id)
            .Select(r => new { r.Version, r.Action, r.Utc, r.Snapshot, Name = r.Author!.DisplayName ?? r.Author.UserName ?? r.AuthorId })
            .ToListAsync();
        return rows.Select(r => new RevisionView(r.Version, r.Action, r.Name, r.Utc, JsonNode.Parse(r.Snapshot)!.AsObject())).ToList();
    });
}

public static class ReviewServiceCollection
{
    /// <summary>The review services: singletons, each write on a database context of its own.</summary>
    public static IServiceCollection AddReview(this IServiceCollection services) =>
        services.AddSingleton<ReviewStore>().AddSingleton<AnnotationService>().AddSingleton<LabelService>().AddSingleton<HeadTagService>();
}
