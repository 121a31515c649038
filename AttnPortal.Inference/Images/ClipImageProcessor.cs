using System.Buffers;
using System.Runtime.CompilerServices;

namespace AttnPortal.Inference.Images;

/// <summary>The vision tower's input for one image.</summary>
/// <param name="PixelValues">Normalised float32 values, CHW: [3, height, width] (height × width = the crop size).</param>
/// <param name="ModelFrameRgb">The uint8 RGB frame (HWC) that was normalised into <paramref name="PixelValues"/>.</param>
/// <param name="Geometry">Where that frame lies on the original image.</param>
public sealed record PreprocessedImage(float[] PixelValues, byte[] ModelFrameRgb, ImageGeometry Geometry)
{
    public int Width => Geometry.FramePixelWidth;
    public int Height => Geometry.FramePixelHeight;
}

/// <summary>
/// Transformers' slow (Pillow-based) CLIPImageProcessor as LLaVA-1.5 uses it, reproduced bit for bit:
/// optional <c>expand2square</c> padding (<see cref="AspectMode.Pad"/>), resize of the shortest edge with Pillow's
/// resampling, centre crop, rescale by 1/255 and normalisation in float32.
/// </summary>
public sealed class ClipImageProcessor
{
    private readonly float[] _lookup; // byte value -> normalised float, per channel (256 each)

    public ClipPreprocessConfig Config { get; }

    /// <summary>LLaVA's padding colour, <c>tuple(int(x * 255) for x in image_mean)</c>: (122, 116, 104) for CLIP.</summary>
    public (byte R, byte G, byte B) PadColour { get; }

    public ClipImageProcessor(ClipPreprocessConfig? config = null)
    {
        Config = config ?? ClipPreprocessConfig.Default;
        PadColour = (PadByte(Config.ImageMean[0]), PadByte(Config.ImageMean[1]), PadByte(Config.ImageMean[2]));
        _lookup = BuildLookup(Config);
    }

    public PreprocessedImage Process(RgbImage image, AspectMode mode)
    {
        ArgumentNullException.ThrowIfNull(image);
        var cfg = Config;
        int w = image.Width, h = image.Height;

        // 1. expand2square: paste at ((side - w) / 2, (side - h) / 2) on a side × side canvas of the pad colour.
        var canvas = new RgbCanvas(image.Pixels, w, h);
        int padX = 0, padY = 0;
        if (mode == AspectMode.Pad && w != h)
        {
            int side = Math.Max(w, h);
            padX = (side - w) / 2;
            padY = (side - h) / 2;
            canvas = new RgbCanvas(image.Pixels, w, h, side, side, padX, padY, PadColour.R, PadColour.G, PadColour.B);
        }

        // 2. resize, 3. centre crop: only the resized pixels inside the crop are computed.
        var (resizedW, resizedH) = cfg.DoResize ? ResizeTarget(canvas.Width, canvas.Height) : (canvas.Width, canvas.Height);
        var (frameW, frameH) = cfg.DoCenterCrop ? (cfg.CropWidth, cfg.CropHeight) : (resizedW, resizedH);
        var cropX = CenterCrop(resizedW, frameW);
        var cropY = CenterCrop(resizedH, frameH);
        var frame = new byte[checked(frameW * frameH * 3)];
        var window = new PixelWindow(cropX.Source, cropY.Source, cropX.Length, cropY.Length);
        if (cropX.Length == frameW && cropY.Length == frameH)
        {
            PillowResampler.Resize(canvas, resizedW, resizedH, cfg.Resample, window, frame);
        }
        else
        {
            // Crop larger than the resized image: transformers centres it on zeros.
            var block = ArrayPool<byte>.Shared.Rent(window.Width * window.Height * 3);
            PillowResampler.Resize(canvas, resizedW, resizedH, cfg.Resample, window, block);
            for (int y = 0; y < window.Height; y++)
                block.AsSpan(y * window.Width * 3, window.Width * 3)
                    .CopyTo(frame.AsSpan(((cropY.Target + y) * frameW + cropX.Target) * 3));
            ArrayPool<byte>.Shared.Return(block);
        }

        // 4. rescale and normalise, HWC bytes -> CHW floats.
        var pixels = Normalise(frame, _lookup);

        // Frame rectangle: resized -> canvas scales by canvas / resized; the crop starts at (Source - Target).
        var geometry = new ImageGeometry(w, h, mode, frameW, frameH,
            FrameX: (double)(cropX.Source - cropX.Target) * canvas.Width / resizedW - padX,
            FrameY: (double)(cropY.Source - cropY.Target) * canvas.Height / resizedH - padY,
            FrameWidth: (double)frameW * canvas.Width / resizedW,
            FrameHeight: (double)frameH * canvas.Height / resizedH);
        return new PreprocessedImage(pixels, frame, geometry);
    }

    private static float[] Normalise(byte[] frame, float[] lookup)
    {
        var pixels = GC.AllocateUninitializedArray<float>(frame.Length); // every value is written
        Normalise(frame, lookup, pixels);
        return pixels;
    }

    /// <summary>HWC bytes -> CHW floats through a table of <see cref="BuildLookup"/> (shared with <see cref="AnyresImageProcessor"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Normalise(ReadOnlySpan<byte> frame, float[] lookup, Span<float> pixels)
    {
        int plane = frame.Length / 3;
        var r = pixels.Slice(0, plane);
        var g = pixels.Slice(plane, plane);
        var b = pixels.Slice(2 * plane, plane);
        var lr = lookup.AsSpan(0, 256);
        var lg = lookup.AsSpan(256, 256);
        var lb = lookup.AsSpan(512, 256);
        for (int i = 0, s = 0; i < plane; i++, s += 3)
        {
            r[i] = lr[frame[s]];
            g[i] = lg[frame[s + 1]];
            b[i] = lb[frame[s + 2]];
        }
    }

    /// <summary>
    /// Output size of the resize step (transformers' get_resize_output_image_size, default_to_square=False):
    /// the short side becomes ShortestEdge, the long side int(ShortestEdge * long / short), truncated.
    /// </summary>
    public (int Width, int Height) ResizeTarget(int width, int height)
    {
        if (Config.ShortestEdge is not int edge)
            return (Config.ResizeWidth ?? width, Config.ResizeHeight ?? height);
        bool wide = width > height;
        int shortSide = wide ? height : width, longSide = wide ? width : height;
        int newLong = (int)((double)((long)edge * longSide) / shortSide);
        return wide ? (newLong, edge) : (edge, newLong);
    }

    /// <summary>
    /// One axis of transformers' center_crop: offset (size - crop) // 2 into the image when it is large enough;
    /// otherwise the whole image is placed ceil((crop - size) / 2) into a zero-filled crop.
    /// </summary>
    private static (int Source, int Target, int Length) CenterCrop(int size, int crop) =>
        size >= crop ? ((size - crop) / 2, 0, crop) : (0, (crop - size + 1) / 2, size);

    private static byte PadByte(double mean) => (byte)Math.Clamp((int)(mean * 255), 0, 255);

    /// <summary>
    /// transformers: rescale = (image.astype(float64) * factor).astype(float32); normalize = (x - mean) / std with
    /// mean and std as float32 arrays. Inputs are bytes, so one table per channel holds every possible result.
    /// </summary>
    internal static float[] BuildLookup(ClipPreprocessConfig cfg)
    {
        var lut = new float[3 * 256];
        for (int c = 0; c < 3; c++)
        {
            float mean = (float)cfg.ImageMean[c], std = (float)cfg.ImageStd[c];
            for (int v = 0; v < 256; v++)
            {
                float x = cfg.DoRescale ? (float)(v * cfg.RescaleFactor) : v;
                lut[c * 256 + v] = cfg.DoNormalize ? (x - mean) / std : x;
            }
        }
        return lut;
    }
}
