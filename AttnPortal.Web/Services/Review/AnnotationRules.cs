using AttnPortal.Data;

namespace AttnPortal.Web.Services;

/// <summary>What a mark must fit: the original image of each run it is drawn on, and where known, the attention's shape.</summary>
internal sealed record MarkCanvas(IReadOnlyList<ImageSize> Images, IReadOnlyList<AttentionShape> Shapes);

internal readonly record struct ImageSize(int Width, int Height, string Name);

/// <summary>A run's attention: tokens, layers, heads and image views (known once the run has its artifact).</summary>
internal sealed record AttentionShape(int Steps, int Layers, int Heads, IReadOnlyList<string> Views);

/// <summary>Validation of an annotation's geometry, text and view; each refusal names the problem.</summary>
internal static class AnnotationRules
{
    // Drawn boxes are clamped to the image; sums of their doubles may miss the edge by a rounding error.
    private const double Slack = 1e-6;

    public static AnnotationDraft Check(AnnotationDraft draft, MarkCanvas canvas)
    {
        var g = draft.Geometry ?? throw new ArgumentException("An annotation needs a shape: note, box or point.");
        string body = ReviewStore.Body(draft.Body, g.Shape == AnnotationShape.Note ? "A note" : "An annotation", required: g.Shape == AnnotationShape.Note);
        var geometry = g.Shape switch
        {
            AnnotationShape.Note => MarkGeometry.Note,
            AnnotationShape.Box => CheckBox(g, canvas.Images),
            AnnotationShape.Point => CheckPoint(g, canvas.Images),
            _ => throw new ArgumentException($"Unknown annotation shape {g.Shape}."),
        };
        CheckView(draft.View ?? ViewState.None, canvas.Shapes);
        return draft with { Geometry = geometry, Body = body, View = draft.View ?? ViewState.None };
    }

    private static MarkGeometry CheckBox(MarkGeometry g, IReadOnlyList<ImageSize> images)
    {
        if (!AllFinite(g)) throw new ArgumentException("The box's position and size must be numbers.");
        if (g.W <= 0 || g.H <= 0) throw new ArgumentException($"A box needs a width and a height above 0 (got {g.W:0.##} × {g.H:0.##}).");
        foreach (var image in images)
            if (g.X < -Slack || g.Y < -Slack || g.X + g.W > image.Width + Slack || g.Y + g.H > image.Height + Slack)
                throw new ArgumentException($"The box at ({g.X:0.##}, {g.Y:0.##}) of {g.W:0.##} × {g.H:0.##} px reaches outside the {image.Width} × {image.Height} image {image.Name}.");
        return g;
    }

    private static MarkGeometry CheckPoint(MarkGeometry g, IReadOnlyList<ImageSize> images)
    {
        if (!AllFinite(g)) throw new ArgumentException("The point's position must be numbers.");
        foreach (var image in images)
            if (g.X < -Slack || g.Y < -Slack || g.X > image.Width + Slack || g.Y > image.Height + Slack)
                throw new ArgumentException($"The point ({g.X:0.##}, {g.Y:0.##}) lies outside the {image.Width} × {image.Height} image {image.Name}.");
        return MarkGeometry.Point(g.X, g.Y);
    }

    private static bool AllFinite(MarkGeometry g) => double.IsFinite(g.X) && double.IsFinite(g.Y) && double.IsFinite(g.W) && double.IsFinite(g.H);

    private static void CheckView(ViewState view, IReadOnlyList<AttentionShape> shapes)
    {
        Index("token", view.Step, shapes.Select(s => s.Steps));
        Index("layer", view.Layer, shapes.Select(s => s.Layers));
        Index("head", view.Head, shapes.Select(s => s.Heads));
        if (view.ViewName is { } name)
            foreach (var shape in shapes)
                if (!shape.Views.Contains(name))
                    throw new ArgumentException($"There is no image view “{name}”; the run has {string.Join(", ", shape.Views)}.");
    }

    /// <summary>A token, layer or head number: at least 0 and, where the count is known, below it.</summary>
    public static void Index(string what, int? value, IEnumerable<int> counts)
    {
        if (value is not { } v) return;
        if (v < 0) throw new ArgumentException($"The {what} number cannot be negative (got {v}).");
        foreach (int count in counts)
            if (v >= count) throw new ArgumentException($"There is no {what} {v}: there are {count} ({what} 0 to {count - 1}).");
    }
}
