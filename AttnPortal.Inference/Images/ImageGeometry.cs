namespace AttnPortal.Inference.Images;

/// <summary>How a non-square image is made square for the vision tower.</summary>
public enum AspectMode
{
    /// <summary>Original LLaVA-1.5 <c>expand2square</c>: pad to a square with the mean colour, keeping the whole image.</summary>
    Pad,
    /// <summary>Hugging Face CLIPImageProcessor: resize the shortest edge, then centre-crop (the long sides are cut off).</summary>
    Crop,
}

/// <summary>An axis-aligned rectangle in original-image pixel coordinates (pixel edges: pixel i spans [i, i + 1)).</summary>
public readonly record struct ImageRect(double X, double Y, double Width, double Height)
{
    public double Right => X + Width;
    public double Bottom => Y + Height;

    /// <summary>The overlap with <paramref name="other"/>, or null when they do not overlap.</summary>
    public ImageRect? Intersect(ImageRect other)
    {
        double x = Math.Max(X, other.X), y = Math.Max(Y, other.Y);
        double r = Math.Min(Right, other.Right), b = Math.Min(Bottom, other.Bottom);
        return r > x && b > y ? new ImageRect(x, y, r - x, b - y) : null;
    }
}

/// <summary>
/// Where the model frame (the <see cref="FramePixelWidth"/> × <see cref="FramePixelHeight"/> image the vision tower sees)
/// lies on the original image.
/// </summary>
/// <remarks>
/// Every step between the original image and the model frame maps coordinates by an axis-aligned scale and shift:
/// padding shifts, Pillow's resize maps output pixel edges linearly onto input edges (output pixel i covers input
/// [i * in / out, (i + 1) * in / out), which is where its filter is centred), and cropping (or the zero padding of a
/// crop larger than the image) shifts again. A composition of such maps is itself one scale and shift per axis, and
/// it is fixed by where the frame's corners land on the original: the frame rectangle. So that rectangle is all a
/// renderer needs to lay a patch heatmap exactly over the original picture, whatever the mode, rounding of the resize
/// dimensions or crop offsets. Parts of it may lie outside the image (padding); clip with <see cref="ImageBounds"/>.
/// </remarks>
public sealed record ImageGeometry(
    int OriginalWidth,
    int OriginalHeight,
    AspectMode Mode,
    int FramePixelWidth,
    int FramePixelHeight,
    double FrameX,
    double FrameY,
    double FrameWidth,
    double FrameHeight)
{
    /// <summary>Side of the square model frame (336 for LLaVA-1.5); 0 for the non-square frames some configs give.</summary>
    public int FrameSize => FramePixelWidth == FramePixelHeight ? FramePixelWidth : 0;

    /// <summary>The frame rectangle in original-image coordinates.</summary>
    public ImageRect Frame => new(FrameX, FrameY, FrameWidth, FrameHeight);

    /// <summary>The original image, [0, width) × [0, height).</summary>
    public ImageRect ImageBounds => new(0, 0, OriginalWidth, OriginalHeight);

    /// <summary>Maps a point of the model frame (in frame pixels, edges) to original-image coordinates.</summary>
    public (double X, double Y) FrameToOriginal(double frameX, double frameY) =>
        (FrameX + frameX * FrameWidth / FramePixelWidth, FrameY + frameY * FrameHeight / FramePixelHeight);

    /// <summary>
    /// The original-image rectangle covered by cell (<paramref name="row"/>, <paramref name="col"/>) of a
    /// <paramref name="gridSize"/> × <paramref name="gridSize"/> patch grid over the frame (24 for a 336-px frame of
    /// 14-px patches). It may extend beyond the image where the frame is padding.
    /// </summary>
    public ImageRect PatchCell(int row, int col, int gridSize)
    {
        if (gridSize <= 0) throw new ArgumentOutOfRangeException(nameof(gridSize));
        if ((uint)row >= (uint)gridSize) throw new ArgumentOutOfRangeException(nameof(row));
        if ((uint)col >= (uint)gridSize) throw new ArgumentOutOfRangeException(nameof(col));
        double cellW = FrameWidth / gridSize, cellH = FrameHeight / gridSize;
        return new ImageRect(FrameX + col * cellW, FrameY + row * cellH, cellW, cellH);
    }
}
