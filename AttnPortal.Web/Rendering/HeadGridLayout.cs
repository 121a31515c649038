namespace AttnPortal.Web.Rendering;

/// <summary>
/// Where each head's tile lies in a <see cref="HeatmapRenderer.HeadGridPng"/> sprite: rows are layers (layer 0 on
/// top), columns heads, tiles of <see cref="TileWidth"/> × <see cref="TileHeight"/> pixels (one view's
/// <see cref="Rows"/> × <see cref="Cols"/> cells) separated by <see cref="Gap"/> pixels, no outer margin. The run view
/// uses the same arithmetic to turn a click into (layer, head).
/// </summary>
public readonly record struct HeadGridLayout(int Layers, int Heads, int Rows, int Cols, int CellPixels, int Gap)
{
    public int TileWidth => Cols * CellPixels;
    public int TileHeight => Rows * CellPixels;
    public int Width => Heads * TileWidth + (Heads - 1) * Gap;
    public int Height => Layers * TileHeight + (Layers - 1) * Gap;

    /// <summary>The top-left pixel of the tile of (<paramref name="layer"/>, <paramref name="head"/>).</summary>
    public (int X, int Y) TileOrigin(int layer, int head)
    {
        if ((uint)layer >= (uint)Layers) throw new ArgumentOutOfRangeException(nameof(layer));
        if ((uint)head >= (uint)Heads) throw new ArgumentOutOfRangeException(nameof(head));
        return (head * (TileWidth + Gap), layer * (TileHeight + Gap));
    }

    /// <summary>The (layer, head) whose tile contains pixel (x, y), or null for a gap or outside the sprite.</summary>
    public (int Layer, int Head)? HitTest(int x, int y)
    {
        int pitchX = TileWidth + Gap, pitchY = TileHeight + Gap;
        if (x < 0 || y < 0 || x >= Width || y >= Height) return null;
        if (x % pitchX >= TileWidth || y % pitchY >= TileHeight) return null;
        return (y / pitchY, x / pitchX);
    }

    /// <summary>Checks the sizes and that the sprite stays within what a PNG viewer handles comfortably.</summary>
    public HeadGridLayout Validate()
    {
        if (Layers <= 0 || Heads <= 0 || Rows <= 0 || Cols <= 0)
            throw new ArgumentOutOfRangeException(nameof(Layers), $"layers, heads, rows and columns must be positive (got {Layers}, {Heads}, {Rows}, {Cols})");
        if (CellPixels <= 0 || CellPixels > 64) throw new ArgumentOutOfRangeException(nameof(CellPixels), CellPixels, "cell size must be 1 to 64 pixels");
        if (Gap < 0 || Gap > 64) throw new ArgumentOutOfRangeException(nameof(Gap), Gap, "gap must be 0 to 64 pixels");
        if ((long)Width * Height > 64L << 20)
            throw new ArgumentException($"a {Width}×{Height} sprite is too large");
        return this;
    }
}
