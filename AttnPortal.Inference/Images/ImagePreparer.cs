using AttnPortal.Inference.Model;

namespace AttnPortal.Inference.Images;

/// <summary>Turns a decoded image into the vision tower's input for a checkpoint: LLaVA-1.5's single CLIP frame, or
/// LLaVA-NeXT/OneVision anyres tiles with their feature packing.</summary>
public sealed class ImagePreparer
{
    private readonly ClipImageProcessor? _clip;
    private readonly LlavaConfig _config;

    private ImagePreparer(LlavaConfig config, ClipImageProcessor? clip) => (_config, _clip) = (config, clip);

    public static ImagePreparer Load(string checkpointDir, LlavaConfig config)
    {
        if (config.IsAnyres) throw new NotImplementedException("anyres");
        return new ImagePreparer(config, new ClipImageProcessor(ClipPreprocessConfig.Load(checkpointDir)));
    }

    /// <summary>HF's select_best_resolution: the [height, width] pinpoint keeping the most of the image, then wasting
    /// the least.</summary>
    public static (int Height, int Width) BestResolution(int height, int width, IReadOnlyList<int[]> pinpoints)
    {
        (int, int) best = default;
        long bestEffective = 0, leastWaste = long.MaxValue;
        foreach (var p in pinpoints)
        {
            double scale = Math.Min((double)p[1] / width, (double)p[0] / height);
            long effective = Math.Min((long)(width * scale) * (long)(height * scale), (long)width * height);
            long waste = (long)p[0] * p[1] - effective;
            if (effective > bestEffective || (effective == bestEffective && waste < leastWaste))
                (best, bestEffective, leastWaste) = ((p[0], p[1]), effective, waste);
        }
        return best;
    }

    /// <summary>How HF's pack_image_features arranges an image of this size (see <see cref="FeaturePacking"/>):
    /// unpad_image's integer arithmetic and OneVision's downscale, reproduced exactly.</summary>
    public static FeaturePacking PackingFor(LlavaConfig config, int height, int width)
    {
        int tile = config.Vision.ImageSize, p = config.Vision.PatchesPerSide;
        var (bestH, bestW) = BestResolution(height, width, config.ImageGridPinpoints);
        int tilesHigh = bestH / tile, tilesWide = bestW / tile;
        int rows = tilesHigh * p, cols = tilesWide * p, rowStart = 0, colStart = 0;
        if ((double)width / height > (double)cols / rows)
        {
            int newRows = (int)Math.Round(height * ((double)cols / width), 7, MidpointRounding.ToEven);
            rowStart = (rows - newRows) / 2;
            rows -= 2 * rowStart;
        }
        else
        {
            int newCols = (int)Math.Round(width * ((double)rows / height), 7, MidpointRounding.ToEven);
            colStart = (cols - newCols) / 2;
            cols -= 2 * colStart;
        }
        (int, int)? downscaled = null;
        if (config.AnyresMaxTiles is int max)
        {
            double ratio = Math.Sqrt((double)rows * cols / (max * p * p));
            if (ratio > 1.1) downscaled = ((int)Math.Floor(rows / ratio), (int)Math.Floor(cols / ratio));
        }
        return new FeaturePacking(tilesHigh, tilesWide, rowStart, rows, colStart, cols, downscaled);
    }

    /// <summary>HF's get_patch_output_size: the image resized to fit the best resolution, keeping its aspect ratio.</summary>
    public static (int Height, int Width) FitWithin(int height, int width, int targetHeight, int targetWidth)
    {
        double scaleW = (double)targetWidth / width, scaleH = (double)targetHeight / height;
        return scaleW < scaleH
            ? (Math.Min((int)Math.Ceiling(height * scaleW), targetHeight), targetWidth)
            : (targetHeight, Math.Min((int)Math.Ceiling(width * scaleH), targetWidth));
    }

    /// <summary>
    /// Where an anyres image's tokens lie on the original image: the base view (the whole image squeezed into one
    /// tile), the stitched tiles after unpadding (and any downscale), and, when the grid was not downscaled, each tile.
    /// A feature of the stitched grid covers a patch of the padded best-resolution canvas; the canvas maps back to the
    /// original by the resize's scale and the centring offset.
    /// </summary>
    public static IReadOnlyList<ImageGridView> AnyresViews(LlavaConfig config, int height, int width, FeaturePacking packing)
    {
        int tile = config.Vision.ImageSize, p = config.Vision.PatchesPerSide;
        double patch = (double)tile / p;
        int bestH = packing.TilesHigh * tile, bestW = packing.TilesWide * tile;
        var (fitH, fitW) = FitWithin(height, width, bestH, bestW);
        double left = (bestW - fitW) / 2, top = (bestH - fitH) / 2, sx = (double)width / fitW, sy = (double)height / fitH;
        ImageRect Canvas(double row0, double col0, double rows, double cols) =>
            new((col0 * patch - left) * sx, (row0 * patch - top) * sy, cols * patch * sx, rows * patch * sy);

        var (rows, cols) = packing.Downscaled ?? (packing.Rows, packing.Cols);
        int stride = cols + 1, gridStart = p * p;
        var views = new List<ImageGridView>
        {
            new("base", 0, p, p, p, new ImageRect(0, 0, width, height)),
            new("tiles", gridStart, rows, cols, stride, Canvas(packing.RowStart, packing.ColStart, packing.Rows, packing.Cols)),
        };
        if (packing.Downscaled is null)
            for (int r = 0; r < packing.TilesHigh; r++)
                for (int c = 0; c < packing.TilesWide; c++)
                {
                    // The tile's patch rows/cols, clipped to what unpadding kept, in the stitched grid's coordinates.
                    int r0 = Math.Max(r * p, packing.RowStart), r1 = Math.Min((r + 1) * p, packing.RowStart + packing.Rows);
                    int c0 = Math.Max(c * p, packing.ColStart), c1 = Math.Min((c + 1) * p, packing.ColStart + packing.Cols);
                    if (r1 <= r0 || c1 <= c0) continue;
                    int offset = gridStart + (r0 - packing.RowStart) * stride + (c0 - packing.ColStart);
                    views.Add(new($"tile {r},{c}", offset, r1 - r0, c1 - c0, stride, Canvas(r0, c0, r1 - r0, c1 - c0)));
                }
        return views;
    }

    /// <summary>Image tokens of a packing: the base view's p², then each grid row and its newline.</summary>
    public static int TokenCount(LlavaConfig config, FeaturePacking packing)
    {
        var (rows, cols) = packing.Downscaled ?? (packing.Rows, packing.Cols);
        return config.Vision.NumPatches + rows * (cols + 1);
    }

    /// <param name="aspect">LLaVA-1.5 only: pad or crop to a square. Anyres models keep the aspect ratio themselves.</param>
    public PreparedImage Prepare(RgbImage image, AspectMode aspect)
    {
        ArgumentNullException.ThrowIfNull(image);
        var frame = _clip!.Process(image, aspect);
        int size = _config.Vision.ImageSize, side = _config.Vision.PatchesPerSide;
        if (frame.PixelValues.Length != 3 * size * size)
            throw new InvalidDataException($"the image processor produced {frame.PixelValues.Length} values; the vision tower expects 3x{size}x{size} (check preprocessor_config.json against config.json)");
        var view = new ImageGridView("image", 0, side, side, side, frame.Geometry.Frame);
        return new PreparedImage(frame.PixelValues, 1, size, image.Width, image.Height, _config.ImageTokensPerImage, null, [view], frame.Geometry);
    }
}
