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

/// <param name="Adapter">A PEFT LoRA adapter directory merged into the checkpoint's weights at load time.</param>
public sealed record EngineOptions(string Device = "cpu", string DType = "float32", string? Adapter = null);

/// <summary>One question about one image. <see cref="RawPrompt"/> is used as given; <see cref="Question"/> goes through
/// the model's template. <see cref="Schedule"/> null means the checkpoint's own (alternating for the seed's
/// alternating checkpoints, else standard).</summary>
public sealed record InferenceRequest(
    RgbImage Image, string? Question = null, string? RawPrompt = null, AspectMode Aspect = AspectMode.Pad,
    int MaxNewTokens = 64, bool SaveLogits = false, string? ImageName = null,
    AttentionSchedule? Schedule = null, bool SeedCompatibleDecoding = false);

/// <summary>Everything a heatmap needs: ids, token strings, the attention rows, which key is which modality, and where
/// each image token lies on the image.</summary>
public sealed record InferenceResult(
    string PromptText, long[] InputIds, string[] InputTokens, GenerationResult Generation, string[] GeneratedTokens,
    string GeneratedText, byte[] Modality, PreparedImage Image, int ImageTokenStart, AttentionSchedule Schedule,
    bool SeedCompatibleDecoding, TimeSpan PreprocessTime)
{
    public int ImageTokenCount => Image.TokenCount;
}

public enum KeyModality : byte { Text = 0, Image = 1, Generated = 2 }

/// <summary>A loaded LLaVA checkpoint (1.5, NeXT or OneVision) with its tokenizer and image processor: the one entry
/// point for a run.</summary>
public sealed class LlavaEngine : IDisposable
{
    private readonly LlavaForConditionalGeneration _model;
    private readonly RotaryTables _rope;
    private readonly GreedyGenerator _generator;
    private readonly HashSet<long> _eos;

    public string CheckpointDir { get; }
    public string? AdapterDir { get; }
    public LlavaConfig Config { get; }
    public ITokenizer Tokenizer { get; }
    public ImagePreparer Images { get; }
    public PromptTemplate Template { get; }
    public Device Device { get; }
    public ScalarType DType { get; }
    public TimeSpan LoadTime { get; }
    public IEnumerable<Tensor> Parameters => _model.parameters();

    /// <summary>Memory held by the weights on <see cref="Device"/>.</summary>
    public long ParameterBytes => _model.parameters().Sum(p => p.Bytes());

    /// <summary>
    /// Memory the engine holds on <see cref="Device"/> between runs: the weights, and what the last run left for the
    /// next one (KV cache, step buffers, recorded graphs' pools). A worker's memory budget counts this.
    /// </summary>
    public long ResidentBytes => ParameterBytes + _generator.WorkingBytes;

    /// <summary>
    /// The memory a checkpoint's weights will take at <paramref name="dtype"/>, from the safetensors headers alone
    /// (nothing is read): what a worker needs to know before it loads a model next to others.
    /// </summary>
    public static long EstimateBytes(string checkpointDir, string dtype)
    {
        if (Directory.Exists(checkpointDir) && LoraAdapter.IsAdapterDirectory(checkpointDir))
            checkpointDir = LoraAdapter.Load(checkpointDir).ResolveBase();
        long elements = 0;
        foreach (var path in CheckpointLoader.WeightFiles(checkpointDir))
        {
            using var file = SafeTensorsFile.Open(path);
            elements += file.Tensors.Values.Sum(t => t.ElementCount);
        }
        return elements * ParseDType(dtype) switch { ScalarType.Float32 => 4, _ => 2 };
    }

    private LlavaEngine(string dir, string? adapterDir, LlavaConfig config, ITokenizer tokenizer, ImagePreparer images,
        LlavaForConditionalGeneration model, RotaryTables rope, Device device, ScalarType dtype, TimeSpan loadTime)
    {
        (CheckpointDir, AdapterDir, Config, Tokenizer, Images, _model, _rope, Device, DType, LoadTime) =
            (dir, adapterDir, config, tokenizer, images, model, rope, device, dtype, loadTime);
        Template = TemplateFor(config);
        _generator = new GreedyGenerator(model, rope, device);
        _eos = new HashSet<long>(config.EosTokenIds.Select(i => (long)i).Concat(GenerationEos(dir)));
        if (_eos.Count == 0 && tokenizer.EosId >= 0) _eos.Add(tokenizer.EosId);
    }

    /// <summary>Loads a checkpoint directory, or a LoRA adapter directory whose base_model_name_or_path names a local
    /// checkpoint.</summary>
    public static LlavaEngine Load(string checkpointDir, EngineOptions? options = null)
    {
        options ??= new EngineOptions();
        var clock = Stopwatch.StartNew();
        LoraAdapter? adapter = null;
        if (options.Adapter is not null) adapter = LoraAdapter.Load(options.Adapter);
        else if (Directory.Exists(checkpointDir) && LoraAdapter.IsAdapterDirectory(checkpointDir))
        {
            adapter = LoraAdapter.Load(checkpointDir);
            checkpointDir = adapter.ResolveBase();
        }
        var config = LlavaConfig.Load(checkpointDir);
        var tokenizer = TokenizerLoader.Load(checkpointDir);
        var images = ImagePreparer.Load(checkpointDir, config);
        var device = ParseDevice(options.Device);
        var dtype = ParseDType(options.DType);
        if (device.type == DeviceType.CUDA)
        {
            // libtorch lets cuDNN convolutions (the vision tower's patch embedding) run in TF32 by default: float32 runs
            // would then differ from the float32 reference by ~1e-3, depending on which algorithm cuDNN picks.
            torch.backends.cudnn.allow_tf32 = false;
            torch.backends.cuda.matmul.allow_tf32 = false;
        }
        var model = new LlavaForConditionalGeneration(config, new ParameterFactory(device, dtype));
        try
        {
            CheckpointLoader.Load(model, checkpointDir, adapter);
            var rope = new RotaryTables(config.Text, device, dtype);
            return new LlavaEngine(Path.GetFullPath(checkpointDir), adapter?.Directory, config, tokenizer, images, model, rope, device, dtype, clock.Elapsed);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The template each family was trained with; LLaMA-based NeXT models use LLaVA-1.5's.</summary>
    public static PromptTemplate TemplateFor(LlavaConfig config) => config.Text.ModelType switch
    {
        "qwen2" => PromptTemplate.Qwen2Chat,
        "mistral" => PromptTemplate.MistralInstruct,
        _ => PromptTemplate.Llava15,
    };

    public InferenceResult Run(InferenceRequest request, Action<StepProgress>? progress = null, CancellationToken cancel = default)
    {
        var clock = Stopwatch.StartNew();
        var schedule = request.Schedule ?? Config.DefaultSchedule;
        string prompt = request.RawPrompt is not null
            ? LlavaPrompt.Raw(request.RawPrompt)
            : LlavaPrompt.Build(request.Question ?? throw new ArgumentException("either a question or a raw prompt is required"),
                raw: false, hasImage: true, Template);
        var image = Images.Prepare(request.Image, request.Aspect);
        var ids = LlavaPrompt.Encode(Tokenizer, prompt, Config.ImageTokenId, image.TokenCount, out int imageStart);
        if (ids.Length > Config.Text.MaxPositionEmbeddings)
            throw new ArgumentException($"the prompt is {ids.Length} tokens long ({image.TokenCount} of them image tokens); the model supports {Config.Text.MaxPositionEmbeddings} positions");
        var preprocessTime = clock.Elapsed;
        int maxNew = Math.Min(request.MaxNewTokens, Config.Text.MaxPositionEmbeddings - ids.Length + 1);
        var imagePositions = new bool[ids.Length];
        Array.Fill(imagePositions, true, imageStart, image.TokenCount);

        GenerationResult generation;
        using (var scope = torch.NewDisposeScope())
        {
            var pixels = torch.tensor(image.PixelValues, [image.Tiles, 3, image.TileSize, image.TileSize]);
            var input = new GenerationInput(ids, imagePositions, pixels, image.Packing, schedule, request.SeedCompatibleDecoding);
            generation = _generator.Generate(input, maxNew, _eos, request.SaveLogits, progress, cancel);
        }

        var modality = new byte[generation.Keys];
        for (int i = 0; i < modality.Length; i++)
            modality[i] = (byte)(i >= ids.Length ? KeyModality.Generated : imagePositions[i] ? KeyModality.Image : KeyModality.Text);
        var inputTokens = ids.Select((id, i) => imagePositions[i] ? LlavaPrompt.ImageToken : Tokenizer.TokenString((int)id)).ToArray();
        return new InferenceResult(prompt, ids, inputTokens, generation,
            generation.GeneratedIds.Select(i => Tokenizer.TokenString((int)i)).ToArray(),
            Tokenizer.Decode(generation.GeneratedIds.Select(i => (int)i)), modality, image, imageStart, schedule,
            request.SeedCompatibleDecoding, preprocessTime);
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
        _generator.Dispose();
        _rope.Dispose();
        _model.Dispose();
    }
}
