using System.Text.Json;

namespace AttnPortal.Inference.Images;

/// <summary>
/// The settings of LLaVA-NeXT / LLaVA-OneVision "anyres" preprocessing (transformers' LlavaNextImageProcessor and
/// LlavaOnevisionImageProcessor): the tile size, the grid pinpoints and the per-pixel value pipeline.
/// </summary>
/// <remarks>
/// Only configurations whose per-view resize and centre crop leave a tile unchanged are supported (every released
/// checkpoint: NeXT's shortest_edge 336 with crop 336, OneVision's 384 × 384): the base view is then the whole image
/// squashed to one tile and each grid tile a plain cut of the padded canvas, which is what <see cref="AnyresLayout"/>
/// maps back onto the image. <c>do_pad</c> only pads the tile dimension of a batch to its longest image, a no-op for
/// one image; <c>do_convert_rgb</c> is what <see cref="RgbImage"/> does anyway.
/// </remarks>
public sealed class AnyresConfig
{
    public const string FileName = ClipPreprocessConfig.FileName;
    public const string ModelConfigFileName = "config.json";

    /// <summary>Side of a square tile, the vision tower's input size.</summary>
    public int TileSize { get; }
    /// <summary>Candidate canvas sizes, [height, width], multiples of <see cref="TileSize"/>.</summary>
    public IReadOnlyList<PixelSize> GridPinpoints { get; }
    /// <summary>Per-channel mean and std, in double like the Python floats.</summary>
    public IReadOnlyList<double> ImageMean { get; }
    public IReadOnlyList<double> ImageStd { get; }
    public ResampleFilter Resample { get; }
    public double RescaleFactor { get; }
    public bool DoRescale { get; }
    public bool DoNormalize { get; }
    /// <summary>Informational (see remarks).</summary>
    public bool DoPad { get; }

    /// <summary>Builds a configuration from values already parsed; mean and std default to OpenAI CLIP's, as in both transformers processors.</summary>
    public AnyresConfig(int tileSize, IReadOnlyList<PixelSize> gridPinpoints,
        IReadOnlyList<double>? imageMean = null, IReadOnlyList<double>? imageStd = null,
        ResampleFilter resample = ResampleFilter.Bicubic, double rescaleFactor = 1.0 / 255,
        bool doRescale = true, bool doNormalize = true, bool doPad = true)
    {
        if (tileSize <= 0) throw new ArgumentOutOfRangeException(nameof(tileSize), $"tile size {tileSize} is not positive");
        ArgumentNullException.ThrowIfNull(gridPinpoints);
        AnyresLayout.ValidatePinpoints(gridPinpoints, tileSize);
        imageMean ??= ClipPreprocessConfig.Default.ImageMean;
        imageStd ??= ClipPreprocessConfig.Default.ImageStd;
        if (imageMean.Count != 3 || imageStd.Count != 3) throw new ArgumentException("image_mean and image_std need 3 values each");
        if (imageStd.Any(s => s == 0)) throw new ArgumentException("image_std has a zero", nameof(imageStd));
        if (!Enum.IsDefined(resample)) throw new ArgumentOutOfRangeException(nameof(resample));
        TileSize = tileSize;
        GridPinpoints = gridPinpoints.ToArray();
        ImageMean = imageMean.ToArray();
        ImageStd = imageStd.ToArray();
        Resample = resample;
        RescaleFactor = rescaleFactor;
        DoRescale = doRescale;
        DoNormalize = doNormalize;
        DoPad = doPad;
    }

    /// <summary>
    /// Reads a checkpoint directory: <c>preprocessor_config.json</c>, with <c>image_grid_pinpoints</c> taken from
    /// <c>config.json</c> when the preprocessor config has none (the original LLaVA checkpoint layout, whose
    /// preprocessor config is the vision tower's plain CLIP or SigLIP one). Pinpoints are read as [height, width], as
    /// transformers does; the original LLaVA code reads them as [width, height], the same for the symmetric lists that
    /// released checkpoints use.
    /// </summary>
    public static AnyresConfig Load(string checkpointDir)
    {
        string path = Path.Combine(checkpointDir, FileName);
        if (!File.Exists(path)) throw new InvalidDataException($"{path}: missing (anyres models need their preprocessor config)");
        string modelPath = Path.Combine(checkpointDir, ModelConfigFileName);
        var modelPinpoints = File.Exists(modelPath) ? ReadGridPinpoints(File.ReadAllText(modelPath), modelPath) : null;
        return FromJson(File.ReadAllText(path), path, modelPinpoints, modelPath);
    }

    /// <summary>
    /// Parses a preprocessor config. <paramref name="modelGridPinpoints"/> (from the model's config.json, see
    /// <see cref="ReadGridPinpoints"/>) is used when the preprocessor config has no <c>image_grid_pinpoints</c>; when
    /// both have them they must agree, as transformers tiles with the processor's and packs with the model's.
    /// </summary>
    public static AnyresConfig FromJson(string json, string sourceName = FileName,
        IReadOnlyList<PixelSize>? modelGridPinpoints = null, string modelSourceName = ModelConfigFileName)
    {
        JsonElement root;
        try
        {
            using var doc = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = true });
            root = doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{sourceName}: malformed preprocessor config: {e.Message}", e);
        }
        if (root.ValueKind != JsonValueKind.Object) throw Invalid(sourceName, "(top level)", "is not an object");

        var (baseSize, shortestEdge) = ReadSize(root, sourceName);
        PixelSize? crop = root.TryGetProperty("crop_size", out var cropElement) ? ReadCrop(cropElement, sourceName) : null;
        // transformers cuts tiles of crop_size.height, else size.height, else size.shortest_edge, whatever do_center_crop says.
        int tile = crop?.Height ?? baseSize.Height;
        if (crop is null && shortestEdge)
            throw Invalid(sourceName, "crop_size", "is missing: with size.shortest_edge the tile size would be the processor class's default crop (224)");
        if (crop is { } c && c.Width != tile)
            throw Invalid(sourceName, "crop_size", $"{c} is not square: tiles are crop_size.height pixels on each side");
        if (baseSize != new PixelSize(tile, tile))
            throw Invalid(sourceName, "size", crop is null
                ? $"{baseSize} is not square, which is not supported"
                : $"{baseSize} differs from crop_size {crop}: tiles would be resized, which is not supported");

        IReadOnlyList<PixelSize>? pinpoints = ReadGridPinpoints(root, sourceName);
        if (pinpoints is not null && modelGridPinpoints is not null && !pinpoints.SequenceEqual(modelGridPinpoints))
            throw Invalid(sourceName, "image_grid_pinpoints", $"differ from those of {modelSourceName}");
        pinpoints ??= modelGridPinpoints
            ?? throw Invalid(sourceName, "image_grid_pinpoints", $"is missing (and {modelSourceName} has none either)");
        var badPin = pinpoints.FirstOrDefault(p => p.Height % tile != 0 || p.Width % tile != 0);
        if (badPin != default)
            throw Invalid(pinpoints == modelGridPinpoints ? modelSourceName : sourceName, "image_grid_pinpoints",
                $"[{badPin.Height}, {badPin.Width}] is not a multiple of the tile size {tile}");

        bool doPad = true;
        if (root.TryGetProperty("do_pad", out var pad) && pad.ValueKind != JsonValueKind.Null)
            doPad = pad.ValueKind is JsonValueKind.True or JsonValueKind.False ? pad.GetBoolean() : throw Invalid(sourceName, "do_pad", "is not a boolean");

        // Mean, std, rescaling and the resampling filter are parsed as for CLIP (same keys, same validation).
        var values = ClipPreprocessConfig.FromJson(json, sourceName);
        return new AnyresConfig(tile, pinpoints, values.ImageMean, values.ImageStd, values.Resample, values.RescaleFactor,
            values.DoRescale, values.DoNormalize, doPad);
    }

    /// <summary>The top-level <c>image_grid_pinpoints</c> of a JSON config (a model's config.json), or null when it has none.</summary>
    public static IReadOnlyList<PixelSize>? ReadGridPinpoints(string json, string sourceName = ModelConfigFileName)
    {
        try
        {
            using var doc = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = true });
            return doc.RootElement.ValueKind == JsonValueKind.Object ? ReadGridPinpoints(doc.RootElement, sourceName) : null;
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{sourceName}: malformed JSON: {e.Message}", e);
        }
    }

    private static IReadOnlyList<PixelSize>? ReadGridPinpoints(JsonElement root, string source)
    {
        if (!root.TryGetProperty("image_grid_pinpoints", out var e) || e.ValueKind == JsonValueKind.Null) return null;
        if (e.ValueKind == JsonValueKind.String)
            throw Invalid(source, "image_grid_pinpoints", $"\"{e.GetString()}\" is a string; only a list of [height, width] pairs is supported");
        if (e.ValueKind != JsonValueKind.Array || e.GetArrayLength() == 0)
            throw Invalid(source, "image_grid_pinpoints", "is not a non-empty list of [height, width] pairs");
        var pins = new List<PixelSize>();
        foreach (var pair in e.EnumerateArray())
        {
            if (pair.ValueKind != JsonValueKind.Array || pair.GetArrayLength() != 2
                || !pair[0].TryGetInt32(out int h) || !pair[1].TryGetInt32(out int w) || h <= 0 || w <= 0)
                throw Invalid(source, "image_grid_pinpoints", $"entry {pair.GetRawText()} is not a [height, width] pair of positive integers");
            pins.Add(new PixelSize(h, w));
        }
        return pins;
    }

    /// <summary><c>size</c>: a number or <c>{shortest_edge}</c> (CLIP style; the base view is edge × edge) or <c>{height, width}</c>.</summary>
    private static (PixelSize Base, bool ShortestEdge) ReadSize(JsonElement root, string source)
    {
        if (!root.TryGetProperty("size", out var size)) throw Invalid(source, "size", "is missing");
        if (size.ValueKind == JsonValueKind.Number)
            return (Square(PositiveInt(size, source, "size")), true);
        if (size.ValueKind != JsonValueKind.Object) throw Invalid(source, "size", $"{size.GetRawText()} is not a number or an object");
        var keys = size.EnumerateObject().Where(p => p.Value.ValueKind != JsonValueKind.Null).Select(p => p.Name).Order().ToArray();
        if (keys.SequenceEqual(["shortest_edge"]))
            return (Square(PositiveInt(size.GetProperty("shortest_edge"), source, "size.shortest_edge")), true);
        if (keys.SequenceEqual(["height", "width"]))
            return (new PixelSize(PositiveInt(size.GetProperty("height"), source, "size.height"),
                PositiveInt(size.GetProperty("width"), source, "size.width")), false);
        throw Invalid(source, "size", $"{size.GetRawText()} is not supported (expected {{shortest_edge}} or {{height, width}})");
    }

    private static PixelSize ReadCrop(JsonElement crop, string source)
    {
        if (crop.ValueKind == JsonValueKind.Number) return Square(PositiveInt(crop, source, "crop_size"));
        if (crop.ValueKind == JsonValueKind.Object && crop.TryGetProperty("height", out var h) && crop.TryGetProperty("width", out var w))
            return new PixelSize(PositiveInt(h, source, "crop_size.height"), PositiveInt(w, source, "crop_size.width"));
        throw Invalid(source, "crop_size", $"{crop.GetRawText()} is not a number or {{height, width}}");
    }

    private static PixelSize Square(int side) => new(side, side);

    private static int PositiveInt(JsonElement e, string source, string key) =>
        e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int v) && v > 0 ? v : throw Invalid(source, key, $"{e.GetRawText()} is not a positive integer");

    private static InvalidDataException Invalid(string source, string key, string problem) => new($"{source}: {key} {problem}");
}
