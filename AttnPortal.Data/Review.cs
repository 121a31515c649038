namespace AttnPortal.Data;

// Team review: comparisons, annotations with comment threads, a team label set, head tags, galleries. Every editable
// row carries a Version (optimistic concurrency: an update names the version it read and fails if someone else moved
// it on) and soft deletion (DeletedUtc); every change also appends a Revision, so history can be shown and nothing is
// lost.

/// <summary>Two or more runs shown side by side, in order (typically standard vs alternating of one image and prompt).</summary>
public sealed class Comparison
{
    public Guid Id { get; set; }
    public string? Title { get; set; }
    public required string CreatedById { get; set; }
    public PortalUser? CreatedBy { get; set; }
    public DateTime CreatedUtc { get; set; }
    /// <summary>The runs' ids in pane order, e.g. "a,b" (also the unique key: one comparison per ordered set).</summary>
    public required string RunKey { get; set; }
    public List<ComparisonRun> Runs { get; set; } = [];
}

public sealed class ComparisonRun
{
    public Guid ComparisonId { get; set; }
    public Guid RunId { get; set; }
    public Run? Run { get; set; }
    public int Position { get; set; }
}

public enum AnnotationShape { Note = 0, Box = 1, Point = 2 }

/// <summary>
/// A mark on a run (or on a comparison as a whole): a box or point in original-image pixels, or a note without geometry;
/// Markdown text, an optional label, and the view it was made on (token, layer, head, image view) so it can be reopened.
/// </summary>
public sealed class Annotation
{
    public Guid Id { get; set; }
    public Guid? RunId { get; set; }
    public Run? Run { get; set; }
    public Guid? ComparisonId { get; set; }
    public Comparison? Comparison { get; set; }
    public AnnotationShape Shape { get; set; }
    /// <summary>Original-image pixels: the box's left/top and size, or the point (W = H = 0).</summary>
    public double X { get; set; }
    public double Y { get; set; }
    public double W { get; set; }
    public double H { get; set; }
    public string Body { get; set; } = "";
    public Guid? LabelId { get; set; }
    public Label? Label { get; set; }
    public int? Step { get; set; }
    public int? Layer { get; set; }
    public int? Head { get; set; }
    public string? ViewName { get; set; }
    public required string AuthorId { get; set; }
    public PortalUser? Author { get; set; }
    public DateTime CreatedUtc { get; set; }
    public string? UpdatedById { get; set; }
    public DateTime UpdatedUtc { get; set; }
    public int Version { get; set; }
    public DateTime? DeletedUtc { get; set; }
    public List<Comment> Comments { get; set; } = [];
}

/// <summary>One message in an annotation's thread (Markdown).</summary>
public sealed class Comment
{
    public Guid Id { get; set; }
    public Guid AnnotationId { get; set; }
    public Annotation? Annotation { get; set; }
    public string Body { get; set; } = "";
    public required string AuthorId { get; set; }
    public PortalUser? Author { get; set; }
    public DateTime CreatedUtc { get; set; }
    public DateTime UpdatedUtc { get; set; }
    public int Version { get; set; }
    public DateTime? DeletedUtc { get; set; }
}

/// <summary>A label of the team's label set (e.g. grounded, attention sink, spurious, object missed).</summary>
public sealed class Label
{
    public Guid Id { get; set; }
    public required string Name { get; set; }
    /// <summary>CSS colour, e.g. #1f77b4.</summary>
    public string Color { get; set; } = "#1f77b4";
    public string? Description { get; set; }
    public required string CreatedById { get; set; }
    public DateTime CreatedUtc { get; set; }
    public int Version { get; set; }
    public DateTime? DeletedUtc { get; set; }
}

/// <summary>A tag on one head of one model (e.g. "localization head"): shown on every run of that model.</summary>
public sealed class HeadTag
{
    public Guid Id { get; set; }
    public required string ModelName { get; set; }
    public int Layer { get; set; }
    public int Head { get; set; }
    public required string Tag { get; set; }
    public string? Note { get; set; }
    public required string AuthorId { get; set; }
    public PortalUser? Author { get; set; }
    public DateTime CreatedUtc { get; set; }
    public DateTime UpdatedUtc { get; set; }
    public int Version { get; set; }
    public DateTime? DeletedUtc { get; set; }
}

public enum GalleryVisibility { Private = 0, Team = 1, Public = 2 }

/// <summary>An ordered, captioned set of runs or comparisons, each pinned to a view.</summary>
public sealed class Gallery
{
    public Guid Id { get; set; }
    public required string Title { get; set; }
    public string? Description { get; set; }
    public required string OwnerId { get; set; }
    public PortalUser? Owner { get; set; }
    public GalleryVisibility Visibility { get; set; }
    /// <summary>The unguessable token of the public read-only link; null when there is none (never made, or revoked).</summary>
    public string? PublicToken { get; set; }
    public DateTime CreatedUtc { get; set; }
    public DateTime UpdatedUtc { get; set; }
    public int Version { get; set; }
    public DateTime? DeletedUtc { get; set; }
    public List<GalleryItem> Items { get; set; } = [];
}

/// <summary>A run or comparison in a gallery, pinned to a view: token (null = mean), layer/head (null = mean), image
/// view, colormap, opacity.</summary>
public sealed class GalleryItem
{
    public Guid Id { get; set; }
    public Guid GalleryId { get; set; }
    public Gallery? Gallery { get; set; }
    public int Position { get; set; }
    public Guid? RunId { get; set; }
    public Run? Run { get; set; }
    public Guid? ComparisonId { get; set; }
    public Comparison? Comparison { get; set; }
    public int? Step { get; set; }
    public int? Layer { get; set; }
    public int? Head { get; set; }
    public string? ViewName { get; set; }
    public string Colormap { get; set; } = "viridis";
    public double Opacity { get; set; } = 0.6;
    public string Caption { get; set; } = "";
    public required string AddedById { get; set; }
    public DateTime AddedUtc { get; set; }
    public int Version { get; set; }
}

public enum RevisionAction { Created = 0, Edited = 1, Deleted = 2, Restored = 3 }

/// <summary>One change to an annotation, comment, label, head tag, gallery or gallery item: who, when, and the row as it
/// was after the change (JSON), so history can be shown and any version restored.</summary>
public sealed class Revision
{
    public long Id { get; set; }
    /// <summary>nameof the entity: Annotation, Comment, Label, HeadTag, Gallery, GalleryItem.</summary>
    public required string EntityType { get; set; }
    public Guid EntityId { get; set; }
    public int Version { get; set; }
    public RevisionAction Action { get; set; }
    public required string Snapshot { get; set; }
    public required string AuthorId { get; set; }
    public PortalUser? Author { get; set; }
    public DateTime Utc { get; set; }
}
