using System.Text.Json;

namespace AttnPortal.Inference.Images;

/// <summary>
/// The settings of a checkpoint's <c>preprocessor_config.json</c> (transformers' CLIPImageProcessor) that shape the
/// pixels. Defaults are CLIP ViT-L/14-336's, as used by LLaVA-1.5.
/// </summary>
public sealed record ClipPreprocessConfig
{
    public const string FileName = "preprocessor_config.json";

    /// <summary>Target of the shortest edge (<c>size.shortest_edge</c>, or <c>size</c> as a number); null when the config gives an exact size.</summary>
    public int? ShortestEdge { get; init; } = 336;
    /// <summary>Exact resize target from <c>size: {height, width}</c>, used when <see cref="ShortestEdge"/> is null.</summary>
    public int? ResizeHeight { get; init; }
    public int? ResizeWidth { get; init; }
    public int CropHeight { get; init; } = 336;
    public int CropWidth { get; init; } = 336;
    /// <summary>Per-channel mean and std, kept in double like the Python floats (LLaVA's padding colour is int(mean * 255)).</summary>
    public IReadOnlyList<double> ImageMean { get; init; } = [0.48145466, 0.4578275, 0.40821073];
    public IReadOnlyList<double> ImageStd { get; init; } = [0.26862954, 0.26130258, 0.27577711];
    public bool DoResize { get; init; } = true;
    public bool DoCenterCrop { get; init; } = true;
    public bool DoRescale { get; init; } = true;
    public bool DoNormalize { get; init; } = true;
    /// <summary>Informational: <see cref="RgbImage"/> always yields RGB; how alpha goes is chosen when decoding (<see cref="AlphaHandling"/>).</summary>
    public bool DoConvertRgb { get; init; } = true;
    public double RescaleFactor { get; init; } = 1.0 / 255;
    public ResampleFilter Resample { get; init; } = ResampleFilter.Bicubic;

    public static ClipPreprocessConfig Default { get; } = new();

    /// <summary>Reads <c>preprocessor_config.json</c> from a checkpoint directory; defaults when the file is absent.</summary>
    public static ClipPreprocessConfig Load(string checkpointDir)
    {
        string path = Path.Combine(checkpointDir, FileName);
        return File.Exists(path) ? FromJson(File.ReadAllText(path), path) : Default;
    }

    /// <summary>Parses the JSON text of a preprocessor config; unknown keys are ignored, missing ones keep their defaults.</summary>
    public static ClipPreprocessConfig FromJson(string json, string sourceName = FileName)
    {
        try
        {
            using var doc = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = true });
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new FormatException("the top level is not an object");
            var config = Default;
            if (root.TryGetProperty("size", out var size))
                config = size.ValueKind == JsonValueKind.Number
                    ? config with { ShortestEdge = Positive(size, "size") }
                    : size.TryGetProperty("shortest_edge", out var edge)
                        ? config with { ShortestEdge = Positive(edge, "size.shortest_edge") }
                        : config with
                        {
                            ShortestEdge = null,
                            ResizeHeight = Positive(Member(size, "height", "size"), "size.height"),
                            ResizeWidth = Positive(Member(size, "width", "size"), "size.width"),
                        };
            if (root.TryGetProperty("crop_size", out var crop))
                config = crop.ValueKind == JsonValueKind.Number
                    ? config with { CropHeight = Positive(crop, "crop_size"), CropWidth = Positive(crop, "crop_size") }
                    : config with
                    {
                        CropHeight = Positive(Member(crop, "height", "crop_size"), "crop_size.height"),
                        CropWidth = Positive(Member(crop, "width", "crop_size"), "crop_size.width"),
                    };
            if (root.TryGetProperty("image_mean", out var mean)) config = config with { ImageMean = Channels(mean, "image_mean") };
            if (root.TryGetProperty("image_std", out var std)) config = config with { ImageStd = Channels(std, "image_std") };
            if (config.ImageStd.Any(s => s == 0)) throw new FormatException("image_std has a zero");
            config = config with
            {
                DoResize = Flag(root, "do_resize", config.DoResize),
                DoCenterCrop = Flag(root, "do_center_crop", config.DoCenterCrop),
                DoRescale = Flag(root, "do_rescale", config.DoRescale),
                DoNormalize = Flag(root, "do_normalize", config.DoNormalize),
                DoConvertRgb = Flag(root, "do_convert_rgb", config.DoConvertRgb),
            };
            if (root.TryGetProperty("rescale_factor", out var factor)) config = config with { RescaleFactor = factor.GetDouble() };
            if (root.TryGetProperty("resample", out var resample))
            {
                int value = resample.GetInt32();
                if (value is < 1 or > 5)
                    throw new FormatException($"resample {value} is not supported (1 Lanczos, 2 bilinear, 3 bicubic, 4 box, 5 Hamming)");
                config = config with { Resample = (ResampleFilter)value };
            }
            return config;
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException)
        {
            throw new InvalidDataException($"{sourceName}: malformed preprocessor config: {e.Message}", e);
        }
    }

    private static JsonElement Member(JsonElement obj, string name, string parent) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var e)
            ? e
            : throw new FormatException($"{parent}.{name} is missing in {obj.GetRawText()}");

    private static int Positive(JsonElement e, string name)
    {
        int v = e.GetInt32();
        return v > 0 ? v : throw new FormatException($"{name} must be positive, got {v}");
    }

    private static bool Flag(JsonElement root, string name, bool fallback) =>
        root.TryGetProperty(name, out var e) && e.ValueKind != JsonValueKind.Null ? e.GetBoolean() : fallback;

    /// <summary>Three per-channel values, or one number for all channels (as transformers accepts).</summary>
    private static double[] Channels(JsonElement e, string name)
    {
        if (e.ValueKind == JsonValueKind.Number)
            return [e.GetDouble(), e.GetDouble(), e.GetDouble()];
        var values = e.EnumerateArray().Select(v => v.GetDouble()).ToArray();
        return values.Length == 3 ? values : throw new FormatException($"{name} needs 3 values, got {values.Length}");
    }
}
