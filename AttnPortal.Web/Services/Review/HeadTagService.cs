using System.Security.Claims;
using AttnPortal.Data;
using Microsoft.EntityFrameworkCore;

namespace AttnPortal.Web.Services;

/// <summary>
/// Tags on one head of one model (e.g. "localization head"), shown on every run of that model. Any writer adds or
/// edits; its author or an Admin deletes; every change is a revision, announced on the model's topic.
/// </summary>
public sealed class HeadTagService(ReviewStore store, ArtifactViews artifacts, PortalOptions options)
{
    private const string What = "head tag";
    public const int MaxTagChars = 64, MaxNoteChars = 2_000;

    /// <summary>The model's head tags by layer, head and tag.</summary>
    public Task<IReadOnlyList<HeadTagView>> ListAsync(string modelName, bool includeDeleted = false) => store.WithDbAsync<IReadOnlyList<HeadTagView>>(async db =>
    {
        var rows = await db.HeadTags.AsNoTracking().Where(t => t.ModelName == modelName && (includeDeleted || t.DeletedUtc == null)).ToListAsync();
        var names = await ReviewStore.NamesAsync(db, rows.Select(t => t.AuthorId));
        return rows.OrderBy(t => t.Layer).ThenBy(t => t.Head).ThenBy(t => t.Tag, StringComparer.OrdinalIgnoreCase)
            .Select(t => new HeadTagView(t.Id, t.ModelName, t.Layer, t.Head, t.Tag, t.Note, t.AuthorId, names.GetValueOrDefault(t.AuthorId, t.AuthorId),
                t.CreatedUtc, t.UpdatedUtc, t.Version, t.DeletedUtc)).ToList();
    });

    public Task<IReadOnlyList<RevisionView>> HistoryAsync(Guid id) => store.HistoryAsync(nameof(HeadTag), id);

    public async Task<Guid> AddAsync(ClaimsPrincipal user, string modelName, int layer, int head, string tag, string? note = null)
    {
        var actor = ReviewStore.Writer(user);
        var id = await store.WithDbAsync(async db =>
        {
            await CheckHeadAsync(db, modelName, layer, head);
            tag = Tag(tag);
            if (await db.HeadTags.AnyAsync(t => t.ModelName == modelName && t.Layer == layer && t.Head == head && t.Tag == tag && t.DeletedUtc == null))
                throw new ArgumentException($"Layer {layer}, head {head} is already tagged “{tag}”.");
            var now = DateTime.UtcNow;
            var row = new HeadTag
            {
                Id = Guid.NewGuid(), ModelName = modelName, Layer = layer, Head = head, Tag = tag, Note = Note(note),
                AuthorId = actor.Id, CreatedUtc = now, UpdatedUtc = now,
            };
            db.HeadTags.Add(row);
            await ReviewStore.SaveAsync(db, row, row.Id, RevisionAction.Created, null, actor, What, now);
            return row.Id;
        });
        store.Publish(ReviewEvents.ModelTopic(modelName), "headtag", id, actor);
        return id;
    }

    public Task UpdateAsync(ClaimsPrincipal user, Guid id, int version, string tag, string? note) =>
        ChangeAsync(user, id, version, RevisionAction.Edited, (row, _) =>
        {
            if (row.DeletedUtc is not null) throw new ArgumentException("This head tag is deleted; restore it before editing.");
            (row.Tag, row.Note) = (Tag(tag), Note(note));
        });

    public Task DeleteAsync(ClaimsPrincipal user, Guid id, int version) =>
        ChangeAsync(user, id, version, RevisionAction.Deleted, (row, now) =>
        {
            if (row.DeletedUtc is not null) throw new ArgumentException("This head tag is already deleted.");
            row.DeletedUtc = now;
        }, authorOrAdmin: true);

    public Task RestoreAsync(ClaimsPrincipal user, Guid id, int version) =>
        ChangeAsync(user, id, version, RevisionAction.Restored, (row, _) =>
        {
            if (row.DeletedUtc is null) throw new ArgumentException("This head tag is not deleted.");
            row.DeletedUtc = null;
        }, authorOrAdmin: true);

    private async Task ChangeAsync(ClaimsPrincipal user, Guid id, int version, RevisionAction action, Action<HeadTag, DateTime> change, bool authorOrAdmin = false)
    {
        var actor = ReviewStore.Writer(user);
        var model = await store.WithDbAsync(async db =>
        {
            var row = await db.HeadTags.SingleOrDefaultAsync(t => t.Id == id) ?? throw new ArgumentException($"There is no head tag {id}.");
            if (authorOrAdmin && !user.IsAuthorOrAdmin(row.AuthorId))
                throw new UnauthorizedAccessException("Only its author or an admin may delete or restore this head tag.");
            await ReviewStore.ExpectVersionAsync(db, row, id, version, What);
            var now = DateTime.UtcNow;
            change(row, now);
            row.UpdatedUtc = now;
            await ReviewStore.SaveAsync(db, row, id, action, version, actor, What, now);
            return row.ModelName;
        });
        store.Publish(ReviewEvents.ModelTopic(model), "headtag", id, actor);
    }

    /// <summary>The model must be one the portal knows (configured or run); the layer and head within its counts, read
    /// from its latest run with an artifact where there is one.</summary>
    private async Task CheckHeadAsync(PortalDbContext db, string modelName, int layer, int head)
    {
        var latest = await db.Runs.AsNoTracking().Where(r => r.ModelName == modelName && r.ArtifactPath != null)
            .OrderByDescending(r => r.FinishedUtc).Select(r => (Guid?)r.Id).FirstOrDefaultAsync();
        if (latest is null && options.Model(modelName) is null && !await db.Runs.AnyAsync(r => r.ModelName == modelName))
            throw new ArgumentException($"There is no model “{modelName}”.");
        var attention = latest is { } runId ? (await artifacts.OpenAsync(runId)).Attention : null;
        AnnotationRules.Index("layer", layer, attention is null ? [] : [attention.Layers]);
        AnnotationRules.Index("head", head, attention is null ? [] : [attention.Heads]);
    }

    private static string Tag(string? tag)
    {
        tag = tag?.Trim() ?? "";
        if (tag.Length == 0) throw new ArgumentException("A head tag needs some text.");
        if (tag.Length > MaxTagChars) throw new ArgumentException($"A head tag has at most {MaxTagChars} characters (got {tag.Length}).");
        return tag;
    }

    private static string? Note(string? note)
    {
        note = string.IsNullOrWhiteSpace(note) ? null : note.Trim();
        if (note?.Length > MaxNoteChars) throw new ArgumentException($"A head tag's note has at most {MaxNoteChars:N0} characters (got {note.Length:N0}).");
        return note;
    }
}
