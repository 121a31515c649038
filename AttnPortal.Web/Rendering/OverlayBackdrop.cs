using System.Runtime.InteropServices;
using AttnPortal.Inference.Images;
using SkiaSharp;

namespace AttnPortal.Web.Rendering;

/// <summary>
/// The original photo, upright and downscaled once to the overlay's output size, with the mapping from original-image
/// coordinates (where the views' frames are given) to output pixels. Build one per run and image and render every
/// token's and view's overlay onto it: decoding and resizing a large photo costs far more than the overlay. Immutable,
/// so it may be shared between threads.
/// </summary>
public sealed class OverlayBackdrop
{
    private readonly uint[] _pixels; // Width × Height, RGBA8888 words, opaque

    public int Width { get; }
    public int Height { get; }
    /// <summary>The size of the original image in the run's coordinates (frames are given in these).</summary>
    public int OriginalWidth { get; }
    public int OriginalHeight { get; }

    internal ReadOnlySpan<uint> Pixels => _pixels;

    private OverlayBackdrop(uint[] pixels, int width, int height, int originalWidth, int originalHeight) =>
        (_pixels, Width, Height, OriginalWidth, OriginalHeight) = (pixels, width, height, originalWidth, originalHeight);

    /// <summary>A rectangle of the original image (a view's frame) in output pixel coordinates (pixel edges; it may
    /// extend past the output where the model saw padding).</summary>
    public ImageRect ToOutput(ImageRect original)
    {
        double sx = (double)Width / OriginalWidth, sy = (double)Height / OriginalHeight;
        return new ImageRect(original.X * sx, original.Y * sy, original.Width * sx, original.Height * sy);
    }

    /// <summary>Decodes an image file the way the engine does (EXIF orientation applied, alpha dropped) and prepares it.</summary>
    public static OverlayBackdrop Create(byte[] originalImage, int originalWidth, int originalHeight, int maxOutputWidth = 1024, int? maxOutputHeight = null) =>
        Create(RgbImage.Decode(originalImage, "original image"), originalWidth, originalHeight, maxOutputWidth, maxOutputHeight);

    /// <summary>
    /// Downscales <paramref name="image"/> (never upscales) so that it is at most <paramref name="maxOutputWidth"/>
    /// wide (and <paramref name="maxOutputHeight"/> high, when given), keeping its aspect ratio.
    /// <paramref name="originalWidth"/> × <paramref name="originalHeight"/> is the image the run describes: this one or
    /// a uniformly scaled copy of it.
    /// </summary>
    public static OverlayBackdrop Create(RgbImage image, int originalWidth, int originalHeight, int maxOutputWidth = 1024, int? maxOutputHeight = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (originalWidth <= 0 || originalHeight <= 0)
            throw new ArgumentOutOfRangeException(nameof(originalWidth), $"the original size {originalWidth}×{originalHeight} must be positive");
        if (maxOutputWidth <= 0) throw new ArgumentOutOfRangeException(nameof(maxOutputWidth), maxOutputWidth, "must be positive");
        if (maxOutputHeight <= 0) throw new ArgumentOutOfRangeException(nameof(maxOutputHeight), maxOutputHeight, "must be positive");
        double imageAspect = (double)image.Width / image.Height;
        double runAspect = (double)originalWidth / originalHeight;
        if (Math.Abs(imageAspect / runAspect - 1) > 0.01)
            throw new ArgumentException($"the image is {image.Width}×{image.Height} but the run describes a {originalWidth}×{originalHeight} image");

        double scale = Math.Min(1, (double)maxOutputWidth / image.Width);
        if (maxOutputHeight is int mh) scale = Math.Min(scale, (double)mh / image.Height);
        int width = Math.Max(1, (int)Math.Round(image.Width * scale));
        int height = Math.Max(1, (int)Math.Round(image.Height * scale));

        var full = new uint[checked(image.Width * image.Height)];
        var rgb = image.Pixels;
        for (int i = 0, s = 0; i < full.Length; i++, s += 3)
            full[i] = rgb[s] | (uint)rgb[s + 1] << 8 | (uint)rgb[s + 2] << 16 | 0xFF000000u;
        if (width == image.Width && height == image.Height)
            return new OverlayBackdrop(full, width, height, originalWidth, originalHeight);

        var scaled = new uint[width * height];
        var source = GCHandle.Alloc(full, GCHandleType.Pinned);
        var target = GCHandle.Alloc(scaled, GCHandleType.Pinned);
        try
        {
            var srcInfo = new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Opaque);
            var dstInfo = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque);
            using var src = new SKPixmap(srcInfo, source.AddrOfPinnedObject(), srcInfo.RowBytes);
            using var dst = new SKPixmap(dstInfo, target.AddrOfPinnedObject(), dstInfo.RowBytes);
            // Trilinear (mipmapped) sampling: a large photo shrinks without aliasing.
            if (!src.ScalePixels(dst, new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear)))
                throw new InvalidOperationException($"SkiaSharp could not scale {image.Width}×{image.Height} to {width}×{height}");
        }
        finally
        {
            source.Free();
            target.Free();
        }
        return new OverlayBackdrop(scaled, width, height, originalWidth, originalHeight);
    }
}
