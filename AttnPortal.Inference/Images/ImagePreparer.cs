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
