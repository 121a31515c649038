namespace AttnPortal.Web.Components.Shared;

/// <summary>
/// Between the photo as shown (CSS pixels inside the element laid over it, origin at its top left) and the original
/// image's pixels, in which marks are stored. The photo is shown whole and unrotated, so each axis scales on its own.
/// </summary>
public readonly record struct StageMapping(double ShownWidth, double ShownHeight, int ImageWidth, int ImageHeight)
{
    /// <summary>Drags shorter than this (shown pixels) in either direction are clicks, not boxes.</summary>
    public const double MinBoxShownPixels = 3;

    public (double X, double Y) ToImage(double shownX, double shownY) =>
        (Math.Clamp(shownX / ShownWidth * ImageWidth, 0, ImageWidth), Math.Clamp(shownY / ShownHeight * ImageHeight, 0, ImageHeight));

    public (double X, double Y) ToShown(double imageX, double imageY) => (imageX / ImageWidth * ShownWidth, imageY / ImageHeight * ShownHeight);

    /// <summary>The box spanned by a drag from one shown point to another (any direction, clipped to the image), or
    /// null for a drag too short to mean a box.</summary>
    public Services.MarkGeometry? Box((double X, double Y) from, (double X, double Y) to)
    {
        var (x0, y0) = ToImage(Math.Min(from.X, to.X), Math.Min(from.Y, to.Y));
        var (x1, y1) = ToImage(Math.Max(from.X, to.X), Math.Max(from.Y, to.Y));
        var (w, h) = ToShown(x1 - x0, y1 - y0);
        return w < MinBoxShownPixels || h < MinBoxShownPixels ? null : Services.MarkGeometry.Box(x0, y0, x1 - x0, y1 - y0);
    }

    public Services.MarkGeometry Point((double X, double Y) at)
    {
        var (x, y) = ToImage(at.X, at.Y);
        return Services.MarkGeometry.Point(x, y);
    }
}
