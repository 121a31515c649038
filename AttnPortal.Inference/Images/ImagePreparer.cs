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
