using System.Diagnostics;
using System.Text.Json.Nodes;
using AttnPortal.Inference.Checkpoints;
using AttnPortal.Inference.Generation;
using AttnPortal.Inference.Images;
using AttnPortal.Inference.Model;
using AttnPortal.Inference.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnPortal.Inference;

public sealed record EngineOptions(string Device = "cpu", string DType = "float32");

/// <summary>One question about one image. <see cref="RawPrompt"/> is used as given; <see cref="Question"/> goes through the model's template.</summary>
public sealed record InferenceRequest(
    RgbImage Image, string? Question = null, string? RawPrompt = null, AspectMode Aspect = AspectMode.Pad,
    int MaxNewTokens = 64, bool SaveLogits = false, string? ImageName = null);

/// <summary>Everything a heatmap needs: ids, token strings, the attention rows, which key is which modality, and geometry.</summary>
public sealed record InferenceResult(
    string PromptText, long[] InputIds, string[] InputTokens, GenerationResult Generation, string[] GeneratedTokens,
    string GeneratedText, byte[] Modality, PreprocessedImage Image, int ImageTokenStart, int ImageTokenCount, int GridSide,
    TimeSpan PreprocessTime);

public enum KeyModality : byte { Text = 0, Image = 1, Generated = 2 }

/// <summary>A loaded LLaVA-1.5 checkpoint with its tokenizer and image processor: the one entry point for a run.</summary>
public sealed class LlavaEngine : IDisposable
{
    private readonly LlavaForConditionalGeneration _model;
    private readonly RotaryTables _rope;
    private readonly GreedyGenerator _generator;
    private readonly HashSet<long> _eos;

    public string CheckpointDir { get; }
    public LlavaConfig Config { get; }
    public LlavaTokenizer Tokenizer { get; }
    public ClipImageProcessor ImageProcessor { get; }
    public Device Device { get; }
    public ScalarType DType { get; }
    public TimeSpan LoadTime { get; }
    public IEnumerable<Tensor> Parameters => _model.parameters();

    private LlavaEngine(string dir, LlavaConfig config, LlavaTokenizer tokenizer, ClipImageProcessor images,
        LlavaForConditionalGeneration model, RotaryTables rope, Device device, ScalarType dtype, TimeSpan loadTime)
    {
        (CheckpointDir, Config, Tokenizer, ImageProcessor, _model, _rope, Device, DType, LoadTime) =
            (dir, config, tokenizer, images, model, rope, device, dtype, loadTime);
        _generator = new GreedyGenerator(model, rope, device);
        _eos = new HashSet<long>(config.EosTokenIds.Select(i => (long)i).Concat(GenerationEos(dir)));
        if (_eos.Count == 0) _eos.Add(tokenizer.EosId);
    }

    public static LlavaEngine Load(string checkpointDir, EngineOptions? options = null)
    {
        options ??= new EngineOptions();
        var clock = Stopwatch.StartNew();
        var config = LlavaConfig.Load(checkpointDir);
        var tokenizer = LlavaTokenizer.Load(checkpointDir);
        var images = new ClipImageProcessor(ClipPreprocessConfig.Load(checkpointDir));
        var device = ParseDevice(options.Device);
        var dtype = ParseDType(options.DType);
        var model = new LlavaForConditionalGeneration(config, new ParameterFactory(device, dtype));
        try
        {
            CheckpointLoader.Load(model, checkpointDir);
            var rope = new RotaryTables(config.Text, device, dtype);
            return new LlavaEngine(Path.GetFullPath(checkpointDir), config, tokenizer, images, model, rope, device, dtype, clock.Elapsed);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    public InferenceResult Run(InferenceRequest request, Action<StepProgress>? progress = null, CancellationToken cancel = default)
    {
        var clock = Stopwatch.StartNew();
        string prompt = request.RawPrompt is not null
            ? LlavaPrompt.Raw(request.RawPrompt)
            : LlavaPrompt.Llava15(request.Question ?? throw new ArgumentException("either a question or a raw prompt is required"));
        var ids = LlavaPrompt.ExpandImageTokens(Tokenizer.Encode(prompt), Config.ImageTokenId, Config.ImageTokensPerImage, out int imageStart);
        if (ids.Length > Config.Text.MaxPositionEmbeddings)
            throw new ArgumentException($"the prompt is {ids.Length} tokens long ({Config.ImageTokensPerImage} of them image tokens); the model supports {Config.Text.MaxPositionEmbeddings} positions");
        var image = ImageProcessor.Process(request.Image, request.Aspect);
        int frame = Config.Vision.ImageSize;
        if (image.PixelValues.Length != 3 * frame * frame)
            throw new InvalidDataException($"the image processor produced {image.PixelValues.Length} values; the vision tower expects 3x{frame}x{frame} (check preprocessor_config.json against config.json)");
        var preprocessTime = clock.Elapsed;
        int maxNew = Math.Min(request.MaxNewTokens, Config.Text.MaxPositionEmbeddings - ids.Length + 1);

        GenerationResult generation;
        using (var scope = torch.NewDisposeScope())
        {
            var pixels = torch.tensor(image.PixelValues, [1, 3, frame, frame]);
            generation = _generator.Generate(ids, pixels, maxNew, _eos, request.SaveLogits, progress, cancel);
        }

        var modality = new byte[generation.Keys];
        for (int i = 0; i < modality.Length; i++)
            modality[i] = (byte)(i >= ids.Length ? KeyModality.Generated : ids[i] == Config.ImageTokenId ? KeyModality.Image : KeyModality.Text);
        return new InferenceResult(prompt, ids, ids.Select(i => Tokenizer.TokenString((int)i)).ToArray(), generation,
            generation.GeneratedIds.Select(i => Tokenizer.TokenString((int)i)).ToArray(),
            Tokenizer.Decode(generation.GeneratedIds.Select(i => (int)i)), modality, image, imageStart,
            Config.ImageTokensPerImage, Config.Vision.PatchesPerSide, preprocessTime);
    }

    public static Device ParseDevice(string device)
    {
        if (device.StartsWith("cuda", StringComparison.OrdinalIgnoreCase))
        {
            if (!torch.cuda.is_available())
                throw new NotSupportedException("--device cuda: no CUDA device is available to libtorch (CPU-only build, or no GPU/driver on this machine)");
            return torch.device(device.ToLowerInvariant());
        }
        if (device.Equals("cpu", StringComparison.OrdinalIgnoreCase)) return torch.CPU;
        throw new ArgumentException($"unknown device '{device}': use cpu or cuda");
    }

    public static ScalarType ParseDType(string dtype) => dtype.ToLowerInvariant() switch
    {
        "float32" or "fp32" or "f32" => ScalarType.Float32,
        "bfloat16" or "bf16" => ScalarType.BFloat16,
        "float16" or "fp16" or "f16" => ScalarType.Float16,
        _ => throw new ArgumentException($"unknown dtype '{dtype}': use float32, bfloat16 or float16"),
    };

    /// <summary>generation_config.json may name more end-of-sequence ids than config.json.</summary>
    private static IEnumerable<long> GenerationEos(string dir)
    {
        string path = Path.Combine(dir, "generation_config.json");
        if (!File.Exists(path)) return [];
        try
        {
            return JsonNode.Parse(File.ReadAllText(path))?["eos_token_id"] switch
            {
                JsonArray a => a.Select(x => (long)x!.GetValue<int>()).ToArray(),
                JsonValue v => [v.GetValue<int>()],
                _ => [],
            };
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{path}: not valid JSON ({e.Message})");
        }
    }

    public void Dispose()
    {
        _rope.Dispose();
        _model.Dispose();
    }
}
