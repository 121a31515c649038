using System.Security.Claims;
using System.Text.Json.Nodes;
using AttnPortal.Data;

namespace AttnPortal.Web.Services;

/// <summary>What an annotation belongs to: one run, or a comparison as a whole.</summary>
public readonly record struct AnnotationTarget(Guid? RunId, Guid? ComparisonId)
{
    public static AnnotationTarget Run(Guid id) => new(id, null);
    public static AnnotationTarget Comparison(Guid id) => new(null, id);

    /// <summary>The live-change topic of the run or comparison.</summary>
    public string Topic => RunId is { } run ? ReviewEvents.RunTopic(run) : ReviewEvents.ComparisonTopic(ComparisonId!.Value);
}

/// <summary>The view a mark was made on (token, layer, head, image view; null = mean / the run's preferred view).</summary>
public sealed record ViewState(int? Step, int? Layer, int? Head, string? ViewName)
{
    public static readonly ViewState None = new(null, null, null, null);

    public string Describe() =>
        $"{(Step is { } s ? $"token {s}" : "all tokens")} · {(Layer is { } l ? $"layer {l}" : "mean layers")} · " +
        $"{(Head is { } h ? $"head {h}" : "mean heads")}{(ViewName is { } v ? $" · {v}" : "")}";
}

/// <summary>Where a mark lies, in original-image pixels: a box (left, top, width, height), a point (W = H = 0), or a
/// note without geometry.</summary>
public sealed record MarkGeometry(AnnotationShape Shape, double X, double Y, double W, double H)
{
    public static readonly MarkGeometry Note = new(AnnotationShape.Note, 0, 0, 0, 0);
    public static MarkGeometry Box(double x, double y, double w, double h) => new(AnnotationShape.Box, x, y, w, h);
    public static MarkGeometry Point(double x, double y) => new(AnnotationShape.Point, x, y, 0, 0);
}

/// <summary>What a writer submits for a new annotation or an edit.</summary>
public sealed record AnnotationDraft(MarkGeometry Geometry, string Body, Guid? LabelId, ViewState View);

public sealed record LabelView(Guid Id, string Name, string Color, string? Description, int Version, DateTime? DeletedUtc)
{
    public bool IsDeleted => DeletedUtc is not null;
}

public sealed record CommentView(Guid Id, Guid AnnotationId, string Body, string AuthorId, string AuthorName,
    DateTime CreatedUtc, DateTime UpdatedUtc, int Version, DateTime? DeletedUtc)
{
    public bool IsDeleted => DeletedUtc is not null;
    public bool Edited => Version > 1;
}

public sealed record AnnotationView(Guid Id, AnnotationTarget Target, MarkGeometry Geometry, string Body, LabelView? Label,
    ViewState View, string AuthorId, string AuthorName, DateTime CreatedUtc, string? UpdatedByName, DateTime UpdatedUtc,
    int Version, DateTime? DeletedUtc, IReadOnlyList<CommentView> Comments)
{
    public bool IsDeleted => DeletedUtc is not null;
    public bool Edited => Version > 1;
    public AnnotationDraft ToDraft() => new(Geometry, Body, Label?.Id, View);
}

public sealed record HeadTagView(Guid Id, string ModelName, int Layer, int Head, string Tag, string? Note, string AuthorId,
    string AuthorName, DateTime CreatedUtc, DateTime UpdatedUtc, int Version, DateTime? DeletedUtc)
{
    public bool IsDeleted => DeletedUtc is not null;
}

/// <summary>One entry of an item's history: the row as it was after the change.</summary>
public sealed record RevisionView(int Version, RevisionAction Action, string AuthorName, DateTime Utc, JsonObject Snapshot);

/// <summary>Who may change review items: the one rule for the services and the pages.</summary>
public static class ReviewAccess
{
    /// <summary>Admins and Researchers write annotations, comments, labels and head tags; Viewers read.</summary>
    public static bool MayReview(this ClaimsPrincipal user) => user.IsInRole(Roles.Admin) || user.IsInRole(Roles.Researcher);

    /// <summary>Deleting an annotation or a head tag, editing or deleting a comment: its author (a writer) or an Admin.</summary>
    public static bool IsAuthorOrAdmin(this ClaimsPrincipal user, string authorId) =>
        user.IsInRole(Roles.Admin) || user.IsInRole(Roles.Researcher) && user.UserId() == authorId;
}
