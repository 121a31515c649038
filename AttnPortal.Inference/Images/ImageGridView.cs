namespace AttnPortal.Inference.Images;

/// <summary>
/// A regular grid of image tokens laid over a rectangle of the original image: LLaVA-1.5's 24 × 24 patches over its
/// frame; for anyres models the base view (whole image), the stitched tiles (after unpadding and any downscale),
/// and each tile. Token (row, col) is image token <c>TokenOffset + row · RowStride + col</c>, counted from the first
/// image token; a row stride larger than <see cref="Cols"/> skips the image_newline tokens.
/// </summary>
/// <param name="Frame">Where the grid lies in original-image pixel coordinates; it may extend past the image where the
/// model saw padding.</param>
public sealed record ImageGridView(string Name, int TokenOffset, int Rows, int Cols, int RowStride, ImageRect Frame)
{
    public int TokenIndex(int row, int col) => TokenOffset + row * RowStride + col;
}

/// <summary>An image ready for the vision tower: [Tiles, 3, TileSize, TileSize] pixel values, how the tile features
/// become image tokens, and where those tokens lie on the original image.</summary>
/// <param name="Packing">Null for LLaVA-1.5 (one tile, its features in order).</param>
/// <param name="Geometry">LLaVA-1.5's model frame on the original image; null for anyres.</param>
public sealed record PreparedImage(
    float[] PixelValues, int Tiles, int TileSize, int OriginalWidth, int OriginalHeight, int TokenCount,
    Model.FeaturePacking? Packing, IReadOnlyList<ImageGridView> Views, ImageGeometry? Geometry);
