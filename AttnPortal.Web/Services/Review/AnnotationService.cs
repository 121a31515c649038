using System.Security.Claims;
using AttnPortal.Data;
using Microsoft.EntityFrameworkCore;

namespace AttnPortal.Web.Services;

/// <summary>
/// Annotations on runs and comparisons and their comment threads. Every write is by a signed-in writer, versioned, kept
/// as a revision and announced on the run's (or comparison's) topic; deletions are soft.
/// </summary>
public sealed class AnnotationService(ReviewStore store, ArtifactViews artifacts)
{
    private const string What = "annotation", CommentWhat = "comment";

    /// <summary>The annotations of a run or comparison, newest first, each with its comments (oldest first).</summary>
    public Task<IReadOnlyList<AnnotationView>> ListAsync(AnnotationTarget target, bool includeDeleted = false) => store.WithDbAsync(async db =>
    {
        var query = db.Annotations.AsNoTracking().Include(a => a.Label)
            .Include(a => a.Comments.Where(c => includeDeleted || c.DeletedUtc == null))
            .Where(a => target.RunId != null ? a.RunId == target.RunId : a.ComparisonId == target.ComparisonId);
        if (!includeDeleted) query = query.Where(a => a.DeletedUtc == null);
        return await ViewsAsync(db, await query.ToListAsync());
    });

    /// <summary>One annotation, deleted or not (null when there is none).</summary>
    public Task<AnnotationView?> GetAsync(Guid id) => store.WithDbAsync(async db =>
    {
        var rows = await db.Annotations.AsNoTracking().Include(a => a.Label).Include(a => a.Comments).Where(a => a.Id == id).ToListAsync();
        return (await ViewsAsync(db, rows)).SingleOrDefault();
    });

    public Task<IReadOnlyList<RevisionView>> HistoryAsync(Guid id) => store.HistoryAsync(nameof(Annotation), id);
    public Task<IReadOnlyList<RevisionView>> CommentHistoryAsync(Guid id) => store.HistoryAsync(nameof(Comment), id);

    public async Task<Guid> CreateAsync(ClaimsPrincipal user, AnnotationTarget target, AnnotationDraft draft)
    {
        var actor = ReviewStore.Writer(user);
        var id = await store.WithDbAsync(async db =>
        {
            var clean = AnnotationRules.Check(draft, await CanvasAsync(db, target));
            await CheckLabelAsync(db, clean.LabelId, keeping: null);
            var now = DateTime.UtcNow;
            var row = new Annotation
            {
                Id = Guid.NewGuid(), RunId = target.RunId, ComparisonId = target.ComparisonId, AuthorId = actor.Id,
                CreatedUtc = now, UpdatedById = actor.Id, UpdatedUtc = now,
            };
            Apply(row, clean);
            db.Annotations.Add(row);
            await ReviewStore.SaveAsync(db, row, row.Id, RevisionAction.Created, null, actor, What, now);
            return row.Id;
        });
        store.Publish(target.Topic, "annotation", id, actor);
        return id;
    }

    /// <summary>Any writer may edit any annotation (every version is kept); <paramref name="version"/> is the one the user saw.</summary>
    public Task UpdateAsync(ClaimsPrincipal user, Guid id, int version, AnnotationDraft draft) =>
        ChangeAsync(user, id, version, RevisionAction.Edited, async (db, row, _) =>
        {
            if (row.DeletedUtc is not null) throw new ArgumentException("This annotation is deleted; restore it before editing.");
            var clean = AnnotationRules.Check(draft, await CanvasAsync(db, TargetOf(row)));
            await CheckLabelAsync(db, clean.LabelId, keeping: row.LabelId);
            Apply(row, clean);
        });

    /// <summary>Soft delete (its author or an Admin): hidden from lists, kept with its history and comments.</summary>
    public Task DeleteAsync(ClaimsPrincipal user, Guid id, int version) =>
        ChangeAsync(user, id, version, RevisionAction.Deleted, (_, row, now) =>
        {
            if (row.DeletedUtc is not null) throw new ArgumentException("This annotation is already deleted.");
            row.DeletedUtc = now;
            return Task.CompletedTask;
        }, authorOrAdmin: "delete or restore this annotation");

    public Task RestoreAsync(ClaimsPrincipal user, Guid id, int version) =>
        ChangeAsync(user, id, version, RevisionAction.Restored, (_, row, _) =>
        {
            if (row.DeletedUtc is null) throw new ArgumentException("This annotation is not deleted.");
            row.DeletedUtc = null;
            return Task.CompletedTask;
        }, authorOrAdmin: "delete or restore this annotation");

    /// <param name="authorOrAdmin">Set when only the author or an Admin may do this: what they would be doing.</param>
    private async Task ChangeAsync(ClaimsPrincipal user, Guid id, int version, RevisionAction action,
        Func<PortalDbContext, Annotation, DateTime, Task> change, string? authorOrAdmin = null)
    {
        var actor = ReviewStore.Writer(user);
        var topic = await store.WithDbAsync(async db =>
        {
            var row = await db.Annotations.SingleOrDefaultAsync(a => a.Id == id) ?? throw new ArgumentException($"There is no annotation {id}.");
            if (authorOrAdmin is not null) MustBeAuthorOrAdmin(user, row.AuthorId, authorOrAdmin);
            await ReviewStore.ExpectVersionAsync(db, row, id, version, What);
            var now = DateTime.UtcNow;
            await change(db, row, now);
            (row.UpdatedById, row.UpdatedUtc) = (actor.Id, now);
            await ReviewStore.SaveAsync(db, row, id, action, version, actor, What, now);
            return TargetOf(row).Topic;
        });
        store.Publish(topic, "annotation", id, actor);
    }

    public async Task<Guid> AddCommentAsync(ClaimsPrincipal user, Guid annotationId, string body)
    {
        var actor = ReviewStore.Writer(user);
        var (id, topic) = await store.WithDbAsync(async db =>
        {
            var annotation = await db.Annotations.AsNoTracking().SingleOrDefaultAsync(a => a.Id == annotationId)
                ?? throw new ArgumentException($"There is no annotation {annotationId}.");
            if (annotation.DeletedUtc is not null) throw new ArgumentException("This annotation is deleted; restore it before commenting.");
            var now = DateTime.UtcNow;
            var row = new Comment
            {
                Id = Guid.NewGuid(), AnnotationId = annotationId, Body = ReviewStore.Body(body, "A comment", required: true),
                AuthorId = actor.Id, CreatedUtc = now, UpdatedUtc = now,
            };
            db.Comments.Add(row);
            await ReviewStore.SaveAsync(db, row, row.Id, RevisionAction.Created, null, actor, CommentWhat, now);
            return (row.Id, TargetOf(annotation).Topic);
        });
        store.Publish(topic, "comment", id, actor);
        return id;
    }

    /// <summary>A comment is edited, deleted or restored by its author or an Admin.</summary>
    public Task EditCommentAsync(ClaimsPrincipal user, Guid id, int version, string body) =>
        ChangeCommentAsync(user, id, version, RevisionAction.Edited, (row, _) =>
        {
            if (row.DeletedUtc is not null) throw new ArgumentException("This comment is deleted; restore it before editing.");
            row.Body = ReviewStore.Body(body, "A comment", required: true);
        });

    public Task DeleteCommentAsync(ClaimsPrincipal user, Guid id, int version) =>
        ChangeCommentAsync(user, id, version, RevisionAction.Deleted, (row, now) =>
        {
            if (row.DeletedUtc is not null) throw new ArgumentException("This comment is already deleted.");
            row.DeletedUtc = now;
        });

    public Task RestoreCommentAsync(ClaimsPrincipal user, Guid id, int version) =>
        ChangeCommentAsync(user, id, version, RevisionAction.Restored, (row, _) =>
        {
            if (row.DeletedUtc is null) throw new ArgumentException("This comment is not deleted.");
            row.DeletedUtc = null;
        });

    private async Task ChangeCommentAsync(ClaimsPrincipal user, Guid id, int version, RevisionAction action, Action<Comment, DateTime> change)
    {
        var actor = ReviewStore.Writer(user);
        var topic = await store.WithDbAsync(async db =>
        {
            var row = await db.Comments.Include(c => c.Annotation).SingleOrDefaultAsync(c => c.Id == id) ?? throw new ArgumentException($"There is no comment {id}.");
            MustBeAuthorOrAdmin(user, row.AuthorId, "edit, delete or restore this comment");
            await ReviewStore.ExpectVersionAsync(db, row, id, version, CommentWhat);
            var now = DateTime.UtcNow;
            change(row, now);
            row.UpdatedUtc = now;
            await ReviewStore.SaveAsync(db, row, id, action, version, actor, CommentWhat, now);
            return TargetOf(row.Annotation!).Topic;
        });
        store.Publish(topic, "comment", id, actor);
    }

    private static void MustBeAuthorOrAdmin(ClaimsPrincipal user, string authorId, string doing)
    {
        if (!user.IsAuthorOrAdmin(authorId)) throw new UnauthorizedAccessException($"Only its author or an admin may {doing}.");
    }

    private static AnnotationTarget TargetOf(Annotation a) => new(a.RunId, a.ComparisonId);

    private static void Apply(Annotation row, AnnotationDraft d)
    {
        (row.Shape, row.X, row.Y, row.W, row.H) = (d.Geometry.Shape, d.Geometry.X, d.Geometry.Y, d.Geometry.W, d.Geometry.H);
        (row.Body, row.LabelId) = (d.Body, d.LabelId);
        (row.Step, row.Layer, row.Head, row.ViewName) = (d.View.Step, d.View.Layer, d.View.Head, d.View.ViewName);
    }

    /// <summary>A new label must be one of the live set; an edit may keep the label it has even if that was deleted since.</summary>
    private static async Task CheckLabelAsync(PortalDbContext db, Guid? labelId, Guid? keeping)
    {
        if (labelId is not { } id || id == keeping) return;
        var label = await db.Labels.AsNoTracking().SingleOrDefaultAsync(l => l.Id == id) ?? throw new ArgumentException($"There is no label {id}.");
        if (label.DeletedUtc is not null) throw new ArgumentException($"The label “{label.Name}” was deleted; pick another.");
    }

    /// <summary>The images (and where known the attention shapes) a mark on the target must fit.</summary>
    private async Task<MarkCanvas> CanvasAsync(PortalDbContext db, AnnotationTarget target)
    {
        List<Run> runs;
        if (target.RunId is { } runId)
            runs = await db.Runs.AsNoTracking().Include(r => r.Image).Where(r => r.Id == runId).ToListAsync() is { Count: 1 } one
                ? one : throw new ArgumentException($"There is no run {runId}.");
        else
        {
            var comparisonId = target.ComparisonId ?? throw new ArgumentException("An annotation belongs to a run or a comparison.");
            if (!await db.Comparisons.AnyAsync(c => c.Id == comparisonId)) throw new ArgumentException($"There is no comparison {comparisonId}.");
            runs = await db.ComparisonRuns.AsNoTracking().Where(c => c.ComparisonId == comparisonId).OrderBy(c => c.Position)
                .Select(c => c.Run!).Include(r => r.Image).ToListAsync();
        }
        var images = runs.Select(r => new ImageSize(r.Image!.Width, r.Image.Height, r.Image.FileName)).Distinct().ToList();
        var shapes = new List<AttentionShape>();
        foreach (var run in runs.Where(r => r.ArtifactPath is not null))
            if ((await artifacts.OpenAsync(run.Id)).Attention is { } a)
                shapes.Add(new AttentionShape(a.Steps, a.Layers, a.Heads, a.Views.Select(v => v.Name).ToList()));
        return new MarkCanvas(images, shapes);
    }

    private static async Task<IReadOnlyList<AnnotationView>> ViewsAsync(PortalDbContext db, List<Annotation> rows)
    {
        var names = await ReviewStore.NamesAsync(db, rows.SelectMany(a => a.Comments.Select(c => c.AuthorId).Append(a.AuthorId).Append(a.UpdatedById)));
        string Name(string? id) => id is null ? "" : names.GetValueOrDefault(id, id);
        return rows.OrderByDescending(a => a.CreatedUtc).Select(a => new AnnotationView(
            a.Id, TargetOf(a), new MarkGeometry(a.Shape, a.X, a.Y, a.W, a.H), a.Body, LabelService.ViewOf(a.Label),
            new ViewState(a.Step, a.Layer, a.Head, a.ViewName), a.AuthorId, Name(a.AuthorId), a.CreatedUtc,
            a.UpdatedById is null ? null : Name(a.UpdatedById), a.UpdatedUtc, a.Version, a.DeletedUtc,
            a.Comments.OrderBy(c => c.CreatedUtc).Select(c => new CommentView(c.Id, c.AnnotationId, c.Body, c.AuthorId, Name(c.AuthorId),
                c.CreatedUtc, c.UpdatedUtc, c.Version, c.DeletedUtc)).ToList())).ToList();
    }
}
