using SkiaSharp;

namespace AttnPortal.Inference.Images;

/// <summary>
/// An upright 8-bit RGB image (HWC, row-major), decoded the way the Hugging Face LLaVA pipeline sees a file:
/// first frame, EXIF orientation applied (<c>ImageOps.exif_transpose</c>, as transformers' <c>load_image</c> does),
/// alpha dropped by default as transformers and LLaVA do (or composited over white, see <see cref="AlphaHandling"/>), no colour management (Pillow
/// ignores ICC profiles and gAMA).
/// </summary>
public sealed class RgbImage
{
    /// <summary>Default ceiling on width × height, checked before any pixel is decoded.</summary>
    public const long DefaultMaxPixels = 100_000_000;

    public int Width { get; }
    public int Height { get; }
    /// <summary>Width × Height × 3 bytes, R, G, B per pixel, rows top to bottom.</summary>
    public byte[] Pixels { get; }

    public RgbImage(int width, int height, byte[] pixels)
    {
        if (width <= 0 || height <= 0)
            throw new ArgumentOutOfRangeException(nameof(width), $"image size {width}×{height} is not positive");
        ArgumentNullException.ThrowIfNull(pixels);
        if (pixels.LongLength != 3L * width * height)
            throw new ArgumentException($"expected {3L * width * height} bytes for {width}×{height} RGB, got {pixels.Length}", nameof(pixels));
        Width = width;
        Height = height;
        Pixels = pixels;
    }

    /// <summary>Reads and decodes an image file; problems with its content throw <see cref="InvalidDataException"/>.</summary>
    public static RgbImage Load(string path, AlphaHandling alpha = AlphaHandling.Drop,
        long maxPixels = DefaultMaxPixels) =>
        Decode(File.ReadAllBytes(path), Path.GetFileName(path), alpha, maxPixels);

    /// <inheritdoc cref="Decode(ReadOnlySpan{byte}, string, AlphaHandling, long)"/>
    public static RgbImage Decode(byte[] data, string sourceName, AlphaHandling alpha = AlphaHandling.Drop,
        long maxPixels = DefaultMaxPixels) =>
        Decode(data.AsSpan(), sourceName, alpha, maxPixels);

    /// <summary>
    /// Decodes PNG, JPEG, WebP, BMP or GIF (first frame). <paramref name="sourceName"/> names the data in error
    /// messages. Throws <see cref="InvalidDataException"/> for data that is not such an image, is truncated or
    /// corrupt, is empty, or has more than <paramref name="maxPixels"/> pixels.
    /// </summary>
    public static RgbImage Decode(ReadOnlySpan<byte> data, string sourceName, AlphaHandling alpha = AlphaHandling.Drop,
        long maxPixels = DefaultMaxPixels)
    {
        if (data.IsEmpty)
            throw Invalid(sourceName, "empty file");
        using var skData = SKData.CreateCopy(data);
        using var codec = SKCodec.Create(skData);
        if (codec is null)
            throw Invalid(sourceName, LooksLikeSupportedImage(data)
                ? "truncated or corrupt image data"
                : "not a recognised image (PNG, JPEG, WebP, BMP or GIF)");
        var format = codec.EncodedFormat;
        if (format is not (SKEncodedImageFormat.Png or SKEncodedImageFormat.Jpeg or SKEncodedImageFormat.Webp
            or SKEncodedImageFormat.Bmp or SKEncodedImageFormat.Gif))
            throw Invalid(sourceName, $"unsupported image format {format} (expected PNG, JPEG, WebP, BMP or GIF)");

        int width = codec.Info.Width, height = codec.Info.Height;
        if (width <= 0 || height <= 0)
            throw Invalid(sourceName, $"image has no pixels ({width}×{height})");
        long limit = Math.Min(maxPixels, Array.MaxLength / 4); // the RGBA buffer must fit in one array
        if ((long)width * height > limit)
            throw Invalid(sourceName, $"image is {width}×{height} = {(long)width * height} pixels, above the limit of {limit}");

        // Straight alpha keeps the colour under partial transparency; no colour space means no colour conversion.
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var rgba = new byte[width * height * 4];
        var result = codec.GetPixels(info, rgba);
        if (result != SKCodecResult.Success)
            throw Invalid(sourceName, result is SKCodecResult.IncompleteInput or SKCodecResult.ErrorInInput
                ? "truncated or corrupt image data"
                : $"cannot decode image ({result})");

        bool composite = alpha == AlphaHandling.CompositeOverWhite && !PillowReadsAsRgb(data, format);
        var rgb = AlphaFlattening.ToRgb(rgba, composite);
        if (!composite && format == SKEncodedImageFormat.Gif && GifTransparency.FirstFrameKeyColour(data) is { } key)
            AlphaFlattening.FillTransparent(rgba, rgb, key); // Pillow keeps the palette colour of transparent pixels
        var (pixels, w, h) = ImageOrientation.Apply(rgb, width, height, codec.EncodedOrigin);
        return new RgbImage(w, h, pixels);
    }

    /// <summary>
    /// Whether Pillow opens the data in mode "RGB" although the decoder reports alpha: a truecolour PNG whose tRNS
    /// chunk makes one colour transparent. The compositing convert_to_rgb leaves "RGB" images alone, so that alpha is
    /// dropped rather than composited. (32-bit BI_RGB BMPs, which Pillow also reads as RGB, Skia decodes as opaque.)
    /// </summary>
    private static bool PillowReadsAsRgb(ReadOnlySpan<byte> data, SKEncodedImageFormat format)
    {
        const int pngColourTypeOffset = 25, truecolour = 2;
        return format == SKEncodedImageFormat.Png && data.Length > pngColourTypeOffset && data[pngColourTypeOffset] == truecolour;
    }

    /// <summary>Whether the data starts with the signature of a supported format (so a failure means corruption).</summary>
    private static bool LooksLikeSupportedImage(ReadOnlySpan<byte> data) =>
        data.StartsWith((ReadOnlySpan<byte>)[0x89, (byte)'P', (byte)'N', (byte)'G'])
        || data.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xD8, 0xFF])
        || data.StartsWith("GIF8"u8)
        || data.StartsWith("BM"u8)
        || (data.StartsWith("RIFF"u8) && data.Length >= 12 && data[8..12].SequenceEqual("WEBP"u8));

    private static InvalidDataException Invalid(string source, string problem) => new($"{source}: {problem}");
}
