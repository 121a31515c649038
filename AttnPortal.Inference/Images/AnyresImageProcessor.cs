using System.Buffers;

namespace AttnPortal.Inference.Images;

/// <summary>The vision tower's input for one anyres image.</summary>
/// <param name="PixelValues">Normalised float32 values, [Tiles, 3, TileSize, TileSize]: the base view, then the tiles row-major.</param>
/// <param name="ImageSize">The image's size, transformers' <c>image_sizes</c> entry.</param>
public sealed record AnyresImage(float[] PixelValues, int Tiles, int TileSize, PixelSize BestResolution, PixelSize ImageSize);

/// <summary>
/// transformers' LlavaNextImageProcessorPil / LlavaOnevisionImageProcessorPil for one image, bit for bit: pick the
/// best grid pinpoint, resize the image with Pillow to fit it (aspect kept), pad it centred with zeros (black), cut it
/// into tiles, put the whole image squashed to one tile first, then rescale and normalise every view in float32.
/// </summary>
/// <remarks>
/// The per-view resize and centre crop that transformers applies next leave a tile unchanged (Pillow returns a copy
/// when the size does not change); <see cref="AnyresConfig"/> only accepts configurations for which that holds.
/// </remarks>
public sealed class AnyresImageProcessor
{
    private readonly float[] _lookup;

    public AnyresConfig Config { get; }

    public AnyresImageProcessor(AnyresConfig config)
    {
        Config = config ?? throw new ArgumentNullException(nameof(config));
        _lookup = ClipImageProcessor.BuildLookup(ClipPreprocessConfig.Default with
        {
            ImageMean = config.ImageMean,
            ImageStd = config.ImageStd,
            RescaleFactor = config.RescaleFactor,
            DoRescale = config.DoRescale,
            DoNormalize = config.DoNormalize,
        });
    }

    public AnyresImage Process(RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        int tile = Config.TileSize, w = image.Width, h = image.Height;
        var size = new PixelSize(h, w);
        var best = AnyresLayout.SelectBestResolution(size, Config.GridPinpoints);
        var fit = AnyresLayout.FitInside(size, best);
        int top = (best.Height - fit.Height) / 2, left = (best.Width - fit.Width) / 2;
        int tilesHigh = best.Height / tile, tilesWide = best.Width / tile;
        int views = tilesHigh * tilesWide + 1, plane = 3 * tile * tile;
        // Every value is written below; the resized images are pooled (fresh pages cost more than the resize).
        var pixels = GC.AllocateUninitializedArray<float>(checked(views * plane));
        var pool = ArrayPool<byte>.Shared;
        byte[] baseView = pool.Rent(plane), resized = pool.Rent(checked(fit.Width * fit.Height * 3)), block = pool.Rent(plane);
        try
        {
            Resize(image, tile, tile, baseView);
            ClipImageProcessor.Normalise(baseView.AsSpan(0, plane), _lookup, pixels.AsSpan(0, plane));

            Resize(image, fit.Width, fit.Height, resized);
            for (int ty = 0; ty < tilesHigh; ty++)
                for (int tx = 0; tx < tilesWide; tx++)
                {
                    // The tile's window on the canvas, less the resized image's offset, gives its rows and columns in the image.
                    int y0 = ty * tile - top, x0 = tx * tile - left;
                    int xFrom = Math.Max(0, -x0), xTo = Math.Min(tile, fit.Width - x0);
                    Array.Clear(block, 0, plane);
                    for (int y = Math.Max(0, -y0); y < Math.Min(tile, fit.Height - y0) && xTo > xFrom; y++)
                        resized.AsSpan(((y0 + y) * fit.Width + x0 + xFrom) * 3, (xTo - xFrom) * 3)
                            .CopyTo(block.AsSpan((y * tile + xFrom) * 3));
                    ClipImageProcessor.Normalise(block.AsSpan(0, plane), _lookup, pixels.AsSpan((1 + ty * tilesWide + tx) * plane, plane));
                }
        }
        finally
        {
            pool.Return(baseView);
            pool.Return(resized);
            pool.Return(block);
        }
        return new AnyresImage(pixels, views, tile, best, size);
    }

    private void Resize(RgbImage image, int width, int height, byte[] output) =>
        PillowResampler.Resize(new RgbCanvas(image.Pixels, image.Width, image.Height), width, height, Config.Resample,
            new PixelWindow(0, 0, width, height), output);
}
