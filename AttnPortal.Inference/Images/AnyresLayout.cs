namespace AttnPortal.Inference.Images;

/// <summary>A size in pixels, height first like transformers' <c>image_grid_pinpoints</c> and <c>image_sizes</c>.</summary>
public readonly record struct PixelSize(int Height, int Width)
{
    public override string ToString() => $"{Height}x{Width} (height x width)";
}

public enum AnyresTokenKind
{
    /// <summary>A patch of the base view: the whole image squashed to one tile.</summary>
    Base,
    /// <summary>A cell of the high-resolution grid (unpadded, possibly downscaled).</summary>
    Grid,
    /// <summary>The <c>image_newline</c> feature that ends each grid row; it covers no part of the image.</summary>
    Newline,
}

/// <summary>One image token, in the order the model packs them.</summary>
/// <param name="Row">Row in the base view's p × p grid, or in the final grid (for a newline: the row it ends).</param>
/// <param name="Col">Column likewise; for a newline, the final grid's column count.</param>
/// <param name="Rect">The part of the original image the token covers (original pixel coordinates, pixel edges);
/// it may reach beyond the image where the canvas is padding. Null for newlines.</param>
public readonly record struct AnyresToken(AnyresTokenKind Kind, int Row, int Col, ImageRect? Rect);

/// <summary>
/// Where each image token of a LLaVA-NeXT / LLaVA-OneVision "anyres" image lies, by transformers' arithmetic
/// (<c>select_best_resolution</c>, <c>get_patch_output_size</c>, <c>pack_image_features</c> with <c>unpad_image</c>
/// and OneVision's <c>anyres_max_N</c> downscale). Pure arithmetic: no pixels.
/// </summary>
/// <remarks>
/// The model packs p² base-view features (row-major, no newlines), then the grid of the padded best-resolution canvas
/// (TilesHigh·p rows by TilesWide·p columns), trimmed by <c>unpad_image</c> to <see cref="KeptRows"/> ×
/// <see cref="KeptCols"/>, optionally bilinearly downscaled to <see cref="Downscaled"/>, each row followed by a newline.
/// A grid cell is a patch-size square of the canvas, mapped back through the centred padding and the resize (Pillow's
/// resize maps pixel edges linearly, see <see cref="ImageGeometry"/>). Cells on the border may reach into the padding,
/// i.e. beyond the image. Conversely, unpad works in whole cells and truncates, so up to half a cell of the image at
/// a trimmed edge may be covered by no grid token (the base tokens still cover it). After a downscale each token is
/// given the proportional share of the kept region; the bilinear filter (align_corners=False) mixes the 2 × 2 source
/// cells nearest to that share's centre. An anyres image always has a tile besides the base view, so the single-view
/// branch of pack_image_features (p² features and one newline: OneVision's multi-image mode) never applies here.
/// </remarks>
public sealed class AnyresLayout
{
    public PixelSize ImageSize { get; }
    /// <summary>The chosen grid pinpoint: the canvas the image is resized and padded onto.</summary>
    public PixelSize BestResolution { get; }
    /// <summary>The image resized to fit <see cref="BestResolution"/>, aspect kept (<c>get_patch_output_size</c>).</summary>
    public PixelSize ResizedSize { get; }
    /// <summary>Offset of the resized image on the canvas (np.pad puts the odd pixel after it).</summary>
    public int PadTop { get; }
    public int PadLeft { get; }
    public int TileSize { get; }
    /// <summary>Side of a vision patch in pixels (14).</summary>
    public int PatchSize { get; }
    /// <summary>p: patches per side of a tile, the base view's grid side.</summary>
    public int PatchesPerSide { get; }
    public int TilesHigh { get; }
    public int TilesWide { get; }
    /// <summary>Grid rows and columns before unpadding.</summary>
    public int GridRows => TilesHigh * PatchesPerSide;
    public int GridCols => TilesWide * PatchesPerSide;
    /// <summary>The rows [Start, End) and columns of the grid that <c>unpad_image</c> keeps.</summary>
    public (int Start, int End) KeptRows { get; }
    public (int Start, int End) KeptCols { get; }
    /// <summary>The grid size after OneVision's bilinear downscale, or null when there is none.</summary>
    public (int Rows, int Cols)? Downscaled { get; }
    /// <summary>Rows and columns of the final grid (the kept region, downscaled if it was).</summary>
    public int Rows { get; }
    public int Cols { get; }

    /// <summary>Vision tower inputs: the base view plus one per tile (HF's <c>image_size_to_num_patches</c>).</summary>
    public int Tiles => TilesHigh * TilesWide + 1;
    /// <summary>p² base tokens, then each final grid row and its newline.</summary>
    public int TokenCount => PatchesPerSide * PatchesPerSide + Rows * (Cols + 1);

    /// <param name="tileSize">The vision tower's input size (<c>vision_config.image_size</c>, = <see cref="AnyresConfig.TileSize"/>).</param>
    /// <param name="patchSize">The vision tower's <c>patch_size</c>.</param>
    /// <param name="maxTiles">N of OneVision's <c>anyres_max_N</c> (LlavaConfig.AnyresMaxTiles); null for LLaVA-NeXT, which never downscales.</param>
    public AnyresLayout(PixelSize image, IReadOnlyList<PixelSize> gridPinpoints, int tileSize, int patchSize, int? maxTiles = null)
    {
        if (image.Height <= 0 || image.Width <= 0) throw new ArgumentOutOfRangeException(nameof(image), $"image size {image} is not positive");
        // Not necessarily a multiple: SigLIP-so400m/384 (OneVision) has 14-pixel patches, and its stride-14 convolution
        // sees 27 of them per side, the last 6 pixels unused; transformers likewise floors image_size // patch_size.
        if (patchSize <= 0 || tileSize < patchSize)
            throw new ArgumentException($"the tile size {tileSize} must be at least the patch size {patchSize}, both positive");
        if (maxTiles is <= 0) throw new ArgumentOutOfRangeException(nameof(maxTiles), $"anyres_max_{maxTiles} is not positive");
        ValidatePinpoints(gridPinpoints, tileSize);

        ImageSize = image;
        TileSize = tileSize;
        PatchSize = patchSize;
        PatchesPerSide = tileSize / patchSize;
        BestResolution = SelectBestResolution(image, gridPinpoints);
        ResizedSize = FitInside(image, BestResolution);
        PadTop = (BestResolution.Height - ResizedSize.Height) / 2;
        PadLeft = (BestResolution.Width - ResizedSize.Width) / 2;
        TilesHigh = BestResolution.Height / tileSize;
        TilesWide = BestResolution.Width / tileSize;

        (KeptRows, KeptCols) = Unpad(image, GridRows, GridCols);
        int rows = KeptRows.End - KeptRows.Start, cols = KeptCols.End - KeptCols.Start;
        if (maxTiles is int n)
        {
            // ints divided in Python are correctly rounded, as is this double division of exact values
            double ratio = Math.Sqrt((double)((long)rows * cols) / ((long)n * PatchesPerSide * PatchesPerSide));
            if (ratio > 1.1)
            {
                (rows, cols) = ((int)PyFloorDiv(rows, ratio), (int)PyFloorDiv(cols, ratio));
                Downscaled = (rows, cols);
            }
        }
        (Rows, Cols) = (rows, cols);
    }

    /// <summary>
    /// transformers' <c>select_best_resolution</c>: the pinpoint that keeps the most image pixels when the image is
    /// scaled to fit it (never counting more than the original has), then the one wasting the least; the first wins ties.
    /// </summary>
    public static PixelSize SelectBestResolution(PixelSize image, IReadOnlyList<PixelSize> gridPinpoints)
    {
        PixelSize? best = null;
        long maxEffective = 0, minWasted = long.MaxValue;
        long original = (long)image.Width * image.Height;
        foreach (var pin in gridPinpoints)
        {
            double scale = Math.Min((double)pin.Width / image.Width, (double)pin.Height / image.Height);
            long effective = Math.Min((long)(image.Width * scale) * (long)(image.Height * scale), original);
            long wasted = (long)pin.Width * pin.Height - effective;
            if (effective > maxEffective || (effective == maxEffective && wasted < minWasted))
                (maxEffective, minWasted, best) = (effective, wasted, pin);
        }
        return best ?? throw new ArgumentException("no grid pinpoint keeps any pixel of the image", nameof(gridPinpoints));
    }

    /// <summary>transformers' <c>get_patch_output_size</c>: the image scaled to fit <paramref name="target"/>, the other side rounded up.</summary>
    public static PixelSize FitInside(PixelSize image, PixelSize target)
    {
        double scaleW = (double)target.Width / image.Width, scaleH = (double)target.Height / image.Height;
        return scaleW < scaleH
            ? new PixelSize(Math.Min((int)Math.Ceiling(image.Height * scaleW), target.Height), target.Width)
            : new PixelSize(target.Height, Math.Min((int)Math.Ceiling(image.Width * scaleH), target.Width));
    }

    /// <summary>The rectangle of the original image covered by patch (<paramref name="row"/>, <paramref name="col"/>) of the base view.</summary>
    public ImageRect BaseCell(int row, int col)
    {
        CheckIndex(row, col, PatchesPerSide, PatchesPerSide);
        double w = (double)ImageSize.Width / PatchesPerSide, h = (double)ImageSize.Height / PatchesPerSide;
        return new ImageRect(col * w, row * h, w, h);
    }

    /// <summary>The rectangle of the original image covered by cell (<paramref name="row"/>, <paramref name="col"/>) of the final grid.</summary>
    public ImageRect GridCell(int row, int col)
    {
        CheckIndex(row, col, Rows, Cols);
        // Canvas pixels of the kept region, split evenly among the final cells (exactly one patch each without a downscale).
        double cellH = (double)(KeptRows.End - KeptRows.Start) * PatchSize / Rows;
        double cellW = (double)(KeptCols.End - KeptCols.Start) * PatchSize / Cols;
        double y = KeptRows.Start * PatchSize + row * cellH, x = KeptCols.Start * PatchSize + col * cellW;
        double sy = (double)ImageSize.Height / ResizedSize.Height, sx = (double)ImageSize.Width / ResizedSize.Width;
        return new ImageRect((x - PadLeft) * sx, (y - PadTop) * sy, cellW * sx, cellH * sy);
    }

    /// <summary>The padded canvas in original-image coordinates: every token's rectangle lies within it.</summary>
    public ImageRect Canvas
    {
        get
        {
            double sy = (double)ImageSize.Height / ResizedSize.Height, sx = (double)ImageSize.Width / ResizedSize.Width;
            return new ImageRect(-PadLeft * sx, -PadTop * sy, BestResolution.Width * sx, BestResolution.Height * sy);
        }
    }

    /// <summary>All <see cref="TokenCount"/> tokens in the order the model packs them.</summary>
    public AnyresToken[] Tokens()
    {
        var tokens = new AnyresToken[TokenCount];
        int i = 0;
        for (int r = 0; r < PatchesPerSide; r++)
            for (int c = 0; c < PatchesPerSide; c++)
                tokens[i++] = new AnyresToken(AnyresTokenKind.Base, r, c, BaseCell(r, c));
        for (int r = 0; r < Rows; r++)
        {
            for (int c = 0; c < Cols; c++)
                tokens[i++] = new AnyresToken(AnyresTokenKind.Grid, r, c, GridCell(r, c));
            tokens[i++] = new AnyresToken(AnyresTokenKind.Newline, r, Cols, null);
        }
        return tokens;
    }

    internal static void ValidatePinpoints(IReadOnlyList<PixelSize> gridPinpoints, int tileSize)
    {
        if (gridPinpoints.Count == 0) throw new ArgumentException("there are no grid pinpoints", nameof(gridPinpoints));
        foreach (var pin in gridPinpoints)
            if (pin.Height <= 0 || pin.Width <= 0 || pin.Height % tileSize != 0 || pin.Width % tileSize != 0)
                throw new ArgumentException($"grid pinpoint [{pin.Height}, {pin.Width}] is not a positive multiple of the tile size {tileSize}", nameof(gridPinpoints));
    }

    /// <summary>
    /// <c>unpad_image</c> on a rows × cols feature grid: the side that the aspect ratio leaves padded loses
    /// (current - int(round(original * scale, 7))) // 2 cells at each end.
    /// </summary>
    private static ((int, int) Rows, (int, int) Cols) Unpad(PixelSize image, int rows, int cols)
    {
        if ((double)image.Width / image.Height > (double)cols / rows)
        {
            int newRows = TruncRound7(image.Height * ((double)cols / image.Width));
            int pad = (rows - newRows) / 2;
            return ((pad, rows - pad), (0, cols));
        }
        int newCols = TruncRound7(image.Width * ((double)rows / image.Height));
        int padCols = (cols - newCols) / 2;
        return ((0, rows), (padCols, cols - padCols));
    }

    /// <summary>
    /// Python's <c>int(round(x, 7))</c> for x ≥ 0. round(x, 7) is correctly rounded in decimal, so the result exceeds
    /// floor(x) exactly when x ≥ n - 5e-8 with n = floor(x) + 1 (no double equals that bound, so there is no tie);
    /// the comparison is made on x's exact binary value, as 2e8·m·2^e ≥ 2e8·n - 10.
    /// </summary>
    internal static int TruncRound7(double x)
    {
        double floor = Math.Floor(x);
        if (floor + 1 - x > 1e-7) return (int)floor; // far from the next integer: no rounding question
        long n = (long)floor + 1;
        int e = Math.ILogB(x) - 52;
        var m = (Int128)(long)Math.ScaleB(x, -e); // x = m · 2^e exactly, m < 2^53
        Int128 lhs = m * 200_000_000, rhs = (Int128)n * 200_000_000 - 10;
        bool up = e >= 0 ? lhs << e >= rhs : lhs >= rhs << -e;
        return (int)(up ? n : floor);
    }

    /// <summary>Python's float floor division <c>a // b</c> (CPython's float_floor_div), for a ≥ 0 and b > 0.</summary>
    internal static double PyFloorDiv(double a, double b)
    {
        double mod = a % b; // C fmod; it has b's sign here, so CPython's sign fix-up does not apply
        double div = (a - mod) / b;
        if (div == 0) return 0;
        double floor = Math.Floor(div);
        return div - floor > 0.5 ? floor + 1 : floor;
    }

    private static void CheckIndex(int row, int col, int rows, int cols)
    {
        if ((uint)row >= (uint)rows) throw new ArgumentOutOfRangeException(nameof(row), $"row {row} is outside 0..{rows - 1}");
        if ((uint)col >= (uint)cols) throw new ArgumentOutOfRangeException(nameof(col), $"column {col} is outside 0..{cols - 1}");
    }
}
