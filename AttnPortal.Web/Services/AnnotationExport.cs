using System.Text.Json;
using AttnPortal.Data;
using Microsoft.EntityFrameworkCore;

namespace AttnPortal.Web.Services;

/// <summary>
/// A run's live annotations and their live comments as a JSON document (format <see cref="Format"/>): geometry in
/// original-image pixels (x, y, width, height for a box; x, y for a point; none for a note), the label, the view the
/// mark was made on, authors, times (UTC) and versions.
/// </summary>
public static class AnnotationExport
{
    public const string Format = "attnportal.annotations/1";

    /// <summary>Snake case, like the artifact's metadata and COCO.</summary>
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = true };

    public sealed record Document(string Format, DateTime ExportedUtc, RunInfo Run, IReadOnlyList<AnnotationInfo> Annotations);
    public sealed record RunInfo(Guid Id, string Model, string Schedule, string Question, string? GeneratedText, ImageInfo Image);
    public sealed record ImageInfo(Guid Id, string FileName, int Width, int Height);
    public sealed record AnnotationInfo(Guid Id, string Shape, Geometry? Geometry, string Body, LabelInfo? Label, ViewInfo View,
        string Author, DateTime CreatedUtc, string? UpdatedBy, DateTime UpdatedUtc, int Version, IReadOnlyList<CommentInfo> Comments);
    public sealed record Geometry(double X, double Y, double? Width, double? Height);
    public sealed record LabelInfo(Guid Id, string Name, string Color);
    public sealed record ViewInfo(int? Step, int? Layer, int? Head, string? ImageView);
    public sealed record CommentInfo(Guid Id, string Body, string Author, DateTime CreatedUtc, DateTime UpdatedUtc, int Version);

    /// <summary>The document for run <paramref name="runId"/>, or null when there is no such run.</summary>
    public static async Task<Document?> ForRunAsync(PortalDbContext db, Guid runId, CancellationToken cancel = default)
    {
        var run = await db.Runs.AsNoTracking().Include(r => r.Image).SingleOrDefaultAsync(r => r.Id == runId, cancel);
        if (run is null) return null;
        var annotations = await db.Annotations.AsNoTracking()
            .Where(a => a.RunId == runId && a.DeletedUtc == null)
            .Include(a => a.Label).Include(a => a.Author)
            .Include(a => a.Comments.Where(c => c.DeletedUtc == null)).ThenInclude(c => c.Author)
            .OrderBy(a => a.CreatedUtc).ThenBy(a => a.Id)
            .AsSplitQuery().ToListAsync(cancel);
        var editorIds = annotations.Select(a => a.UpdatedById).OfType<string>().Distinct().ToList();
        var editors = await db.Users.Where(u => editorIds.Contains(u.Id)).ToDictionaryAsync(u => u.Id, u => u.UserName ?? u.Id, cancel);

        var image = run.Image!;
        return new Document(Format, DateTime.UtcNow,
            new RunInfo(run.Id, run.ModelName, run.Schedule, run.Question, run.GeneratedText, new ImageInfo(image.Id, image.FileName, image.Width, image.Height)),
            annotations.Select(a => new AnnotationInfo(
                a.Id, a.Shape.ToString().ToLowerInvariant(), GeometryOf(a), a.Body,
                a.Label is { } l ? new LabelInfo(l.Id, l.Name, l.Color) : null,
                new ViewInfo(a.Step, a.Layer, a.Head, a.ViewName),
                NameOf(a.Author, a.AuthorId), Utc(a.CreatedUtc),
                a.UpdatedById is { } by ? editors.GetValueOrDefault(by, by) : null, Utc(a.UpdatedUtc), a.Version,
                a.Comments.OrderBy(c => c.CreatedUtc).ThenBy(c => c.Id)
                    .Select(c => new CommentInfo(c.Id, c.Body, NameOf(c.Author, c.AuthorId), Utc(c.CreatedUtc), Utc(c.UpdatedUtc), c.Version)).ToList()))
                .ToList());
    }

    private static Geometry? GeometryOf(Annotation a) => a.Shape switch
    {
        AnnotationShape.Box => new Geometry(a.X, a.Y, a.W, a.H),
        AnnotationShape.Point => new Geometry(a.X, a.Y, null, null),
        _ => null,
    };

    private static string NameOf(PortalUser? user, string id) => user?.UserName ?? id;

    /// <summary>SQLite hands times back without a kind; they are UTC, and the JSON should say so.</summary>
    public static DateTime Utc(DateTime t) => DateTime.SpecifyKind(t, DateTimeKind.Utc);
}
