using AttnPortal.Inference.Model;

namespace AttnPortal.Inference.Images;

/// <summary>Turns a decoded image into the vision tower's input for a checkpoint: LLaVA-1.5's single CLIP frame, or
/// LLaVA-NeXT/OneVision anyres tiles with their feature packing; either way with the grids of image tokens laid on
/// the original image (<see cref="ImageGridView"/>).</summary>
public sealed class ImagePreparer
{
    private readonly LlavaConfig _config;
    private readonly ClipImageProcessor? _clip;
    private readonly AnyresImageProcessor? _anyres;

    private ImagePreparer(LlavaConfig config, ClipImageProcessor? clip, AnyresImageProcessor? anyres) =>
        (_config, _clip, _anyres) = (config, clip, anyres);

    public static ImagePreparer Load(string checkpointDir, LlavaConfig config)
    {
        if (!config.IsAnyres) return new ImagePreparer(config, new ClipImageProcessor(ClipPreprocessConfig.Load(checkpointDir)), null);
        string path = Path.Combine(checkpointDir, AnyresConfig.FileName);
        var anyres = File.Exists(path)
            ? AnyresConfig.FromJson(File.ReadAllText(path), path, config.ImageGridPinpoints)
            : TowerDefaults(config);
        if (anyres.TileSize != config.Vision.ImageSize)
            throw new InvalidDataException($"{path}: tiles of {anyres.TileSize} px, but the vision tower takes {config.Vision.ImageSize} px images");
        return new ImagePreparer(config, null, new AnyresImageProcessor(anyres));
    }

    /// <summary>Original-layout checkpoints may ship no preprocessor config: the tower's own values then (SigLIP
    /// normalises with 0.5/0.5, CLIP with OpenAI's mean and std; both resize bicubic).</summary>
    private static AnyresConfig TowerDefaults(LlavaConfig c) => c.Vision.IsSiglip
        ? new AnyresConfig(c.Vision.ImageSize, c.ImageGridPinpoints, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
        : new AnyresConfig(c.Vision.ImageSize, c.ImageGridPinpoints);

    /// <param name="aspect">LLaVA-1.5 only: pad or crop to a square. Anyres models keep the aspect ratio themselves.</param>
    public PreparedImage Prepare(RgbImage image, AspectMode aspect)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (_anyres is not null)
        {
            var tiles = _anyres.Process(image);
            var layout = Layout(_config, tiles.ImageSize);
            return new PreparedImage(tiles.PixelValues, tiles.Tiles, tiles.TileSize, image.Width, image.Height,
                layout.TokenCount, Packing(layout), Views(layout), null);
        }
        var frame = _clip!.Process(image, aspect);
        int size = _config.Vision.ImageSize, side = _config.Vision.PatchesPerSide;
        if (frame.PixelValues.Length != 3 * size * size)
            throw new InvalidDataException($"the image processor produced {frame.PixelValues.Length} values; the vision tower expects 3x{size}x{size} (check preprocessor_config.json against config.json)");
        var view = new ImageGridView("image", 0, side, side, side, frame.Geometry.Frame);
        return new PreparedImage(frame.PixelValues, 1, size, image.Width, image.Height, _config.ImageTokensPerImage, null, [view], frame.Geometry);
    }

    public static AnyresLayout Layout(LlavaConfig config, PixelSize image) =>
        new(image, config.ImageGridPinpoints, config.Vision.ImageSize, config.Vision.PatchSize, config.AnyresMaxTiles);

    /// <summary>What the model needs to pack the tile features as HF's pack_image_features does.</summary>
    public static FeaturePacking Packing(AnyresLayout layout) => new(
        layout.TilesHigh, layout.TilesWide, layout.KeptRows.Start, layout.KeptRows.End - layout.KeptRows.Start,
        layout.KeptCols.Start, layout.KeptCols.End - layout.KeptCols.Start, layout.Downscaled);

    /// <summary>
    /// The base view (the whole image squeezed into one tile), the stitched tiles after unpadding (and any downscale),
    /// and, when the grid was not downscaled, each tile's share of it. A view's frame is the union of its cells.
    /// </summary>
    public static IReadOnlyList<ImageGridView> Views(AnyresLayout layout)
    {
        int p = layout.PatchesPerSide, stride = layout.Cols + 1, gridStart = p * p;
        ImageGridView Grid(string name, int row0, int col0, int rows, int cols)
        {
            var first = layout.GridCell(row0, col0);
            var last = layout.GridCell(row0 + rows - 1, col0 + cols - 1);
            var frame = new ImageRect(first.X, first.Y, last.Right - first.X, last.Bottom - first.Y);
            return new ImageGridView(name, gridStart + row0 * stride + col0, rows, cols, stride, frame);
        }

        var views = new List<ImageGridView>
        {
            new("base", 0, p, p, p, new ImageRect(0, 0, layout.ImageSize.Width, layout.ImageSize.Height)),
        };
        if (layout.Rows == 0) return views; // a sliver of an image: unpadding kept no grid row (HF does the same)
        views.Add(Grid("tiles", 0, 0, layout.Rows, layout.Cols));
        if (layout.Downscaled is not null) return views;
        for (int r = 0; r < layout.TilesHigh; r++)
            for (int c = 0; c < layout.TilesWide; c++)
            {
                // The tile's patch rows and columns, clipped to what unpadding kept, in the stitched grid's coordinates.
                int r0 = Math.Max(r * p, layout.KeptRows.Start), r1 = Math.Min((r + 1) * p, layout.KeptRows.End);
                int c0 = Math.Max(c * p, layout.KeptCols.Start), c1 = Math.Min((c + 1) * p, layout.KeptCols.End);
                if (r1 > r0 && c1 > c0)
                    views.Add(Grid($"tile {r},{c}", r0 - layout.KeptRows.Start, c0 - layout.KeptCols.Start, r1 - r0, c1 - c0));
            }
        return views;
    }
}
