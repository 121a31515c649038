using System.Text.Json;
using System.Text.Json.Nodes;
using AttnPortal.Inference.Generation;
using AttnPortal.Inference.Images;

namespace AttnPortal.Inference.Model;

/// <summary>The vision tower: CLIP ViT (LLaVA-1.5, LLaVA-NeXT) or SigLIP (LLaVA-OneVision; no CLS token).</summary>
public sealed record VisionConfig(
    int HiddenSize, int IntermediateSize, int NumHiddenLayers, int NumAttentionHeads,
    int ImageSize, int PatchSize, int NumChannels, double LayerNormEps, string HiddenAct, string ModelType = "clip_vision_model")
{
    public bool IsSiglip => ModelType == "siglip_vision_model";
    public int PatchesPerSide => ImageSize / PatchSize;
    public int NumPatches => PatchesPerSide * PatchesPerSide;
}

/// <summary>The decoder: LLaMA, Mistral (optional sliding window) or Qwen2 (biases on q/k/v only).</summary>
public sealed record LlamaConfig(
    int VocabSize, int HiddenSize, int IntermediateSize, int NumHiddenLayers, int NumAttentionHeads,
    int NumKeyValueHeads, int HeadDim, int MaxPositionEmbeddings, double RmsNormEps, double RopeTheta,
    string HiddenAct, bool AttentionBias, bool MlpBias, bool TieWordEmbeddings, string ModelType,
    bool OutputBias = false, int? SlidingWindow = null)
{
    /// <summary>Whether q_proj/k_proj/v_proj carry a bias (LLaMA: attention_bias; Qwen2: always).</summary>
    public bool QkvBias => AttentionBias;
}

public enum LlavaFamily
{
    /// <summary>LLaVA-1.5: one square image, 576 image tokens.</summary>
    Llava,
    /// <summary>LLaVA-NeXT (1.6): anyres tiles with unpadding and image_newline features.</summary>
    LlavaNext,
    /// <summary>LLaVA-OneVision: LLaVA-NeXT's packing plus the anyres_max_N downscale of large grids.</summary>
    LlavaOnevision,
}

/// <summary>
/// A checkpoint's config.json, whatever its layout: Hugging Face LlavaForConditionalGeneration,
/// LlavaNextForConditionalGeneration, LlavaOnevisionForConditionalGeneration (transformers 4 and 5 spellings), or the
/// original LLaVA-NeXT layout (see <see cref="OriginalLlavaConfig"/>).
/// </summary>
public sealed record LlavaConfig(
    VisionConfig Vision, LlamaConfig Text, int ImageTokenId, string ProjectorHiddenAct, bool ProjectorBias,
    int VisionFeatureLayer, string VisionFeatureSelectStrategy, int? BosTokenId, int[] EosTokenIds, string? PadToken)
{
    public LlavaFamily Family { get; init; } = LlavaFamily.Llava;

    /// <summary>Anyres resolutions, [height, width] each (LLaVA-NeXT and OneVision).</summary>
    public IReadOnlyList<PixelSize> ImageGridPinpoints { get; init; } = [];

    /// <summary>OneVision's anyres_max_N: grids larger than about N tiles of features are downscaled.</summary>
    public int? AnyresMaxTiles { get; init; }

    /// <summary>The schedule a checkpoint trained with a modality-aware mask expects (its model_type says so).</summary>
    public AttentionSchedule DefaultSchedule { get; init; } = AttentionSchedule.Standard;

    /// <summary>True for the original LLaVA-NeXT layout (model.mm_projector.0, model.layers.*).</summary>
    public bool OriginalLayout { get; init; }

    public bool IsAnyres => Family != LlavaFamily.Llava;

    /// <summary>Image tokens one LLaVA-1.5 image expands to (576 for 336 px / 14 px with the CLS token dropped).
    /// Anyres models depend on the image size: see AnyresLayout.</summary>
    public int ImageTokensPerImage => Vision.NumPatches + (VisionFeatureSelectStrategy == "full" && !Vision.IsSiglip ? 1 : 0);

    public static LlavaConfig Load(string checkpointDir)
    {
        string path = Path.Combine(checkpointDir, "config.json");
        if (!Directory.Exists(checkpointDir)) throw new DirectoryNotFoundException($"{checkpointDir}: checkpoint directory not found");
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: config.json not found: not a Hugging Face checkpoint directory", path);
        JsonNode? root;
        try { root = JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON ({e.Message})"); }
        if (root is not JsonObject obj) throw new InvalidDataException($"{path}: not a JSON object");
        try { return Parse(obj); }
        catch (Exception e) when (e is InvalidOperationException or FormatException or KeyNotFoundException)
        {
            throw new InvalidDataException($"{path}: {e.Message}");
        }
        catch (InvalidDataException e) { throw new InvalidDataException($"{path}: {e.Message}"); }
        catch (NotSupportedException e) { throw new NotSupportedException($"{path}: {e.Message}"); }
    }

    private static readonly Dictionary<string, LlavaFamily> HfArchitectures = new()
    {
        ["LlavaForConditionalGeneration"] = LlavaFamily.Llava,
        ["LlavaNextForConditionalGeneration"] = LlavaFamily.LlavaNext,
        ["LlavaOnevisionForConditionalGeneration"] = LlavaFamily.LlavaOnevision,
    };

    private static readonly Dictionary<string, LlavaFamily> HfModelTypes = new()
    {
        ["llava"] = LlavaFamily.Llava, ["llava_next"] = LlavaFamily.LlavaNext, ["llava_onevision"] = LlavaFamily.LlavaOnevision,
    };

    public static LlavaConfig Parse(JsonObject c)
    {
        var architectures = c["architectures"]?.AsArray().Select(a => a!.GetValue<string>()).ToArray() ?? [];
        string modelType = Str(c, "model_type") ?? "";
        if (OriginalLlavaConfig.Recognises(c)) return OriginalLlavaConfig.Parse(c);
        LlavaFamily family;
        if (architectures.FirstOrDefault(HfArchitectures.ContainsKey) is string arch) family = HfArchitectures[arch];
        else if (HfModelTypes.TryGetValue(modelType, out var f)) family = f;
        else
            throw new NotSupportedException(
                $"unsupported architecture {(architectures.Length > 0 ? string.Join(", ", architectures) : modelType)}: " +
                "this engine runs LlavaForConditionalGeneration, LlavaNextForConditionalGeneration and " +
                "LlavaOnevisionForConditionalGeneration checkpoints, and the original LLaVA-NeXT layout (llava_qwen*, llava_mistral*, llava_llama)");
        var v = c["vision_config"] as JsonObject ?? throw new InvalidDataException("vision_config is missing");
        var t = c["text_config"] as JsonObject ?? throw new InvalidDataException("text_config is missing");

        var vision = ParseVision(v);
        var text = ParseText(t, Bool(c, "tie_word_embeddings"));
        if (family == LlavaFamily.Llava && vision.IsSiglip)
            throw new NotSupportedException("a SigLIP vision tower in a LLaVA-1.5 checkpoint is not supported");

        if (c["vision_feature_layer"] is JsonArray)
            throw new NotSupportedException("vision_feature_layer as a list of layers is not supported");
        string strategy = Str(c, "vision_feature_select_strategy") ?? "default";
        int imageToken = Int(c, "image_token_id") ?? Int(c, "image_token_index") ?? 32000;
        var config = new LlavaConfig(vision, text, imageToken, Str(c, "projector_hidden_act") ?? "gelu",
            Bool(c, "multimodal_projector_bias") ?? true, Int(c, "vision_feature_layer") ?? -2, strategy,
            Int(t, "bos_token_id") ?? Int(c, "bos_token_id"), Ids(t["eos_token_id"] ?? c["eos_token_id"]), null)
        {
            Family = family,
            ImageGridPinpoints = family == LlavaFamily.Llava ? [] : Pinpoints(c["image_grid_pinpoints"], vision.ImageSize),
            AnyresMaxTiles = family == LlavaFamily.LlavaOnevision ? AnyresMax(Str(c, "vision_aspect_ratio") ?? "anyres_max_9") : null,
        };
        return config.Validated();
    }

    /// <summary>Checks shared by every layout.</summary>
    internal LlavaConfig Validated()
    {
        if (Text.HiddenAct != "silu") throw new NotSupportedException($"unsupported text hidden_act '{Text.HiddenAct}'");
        if (Text.NumAttentionHeads % Text.NumKeyValueHeads != 0)
            throw new InvalidDataException($"num_attention_heads {Text.NumAttentionHeads} is not a multiple of num_key_value_heads {Text.NumKeyValueHeads}");
        if (VisionFeatureLayer < -(Vision.NumHiddenLayers + 1) || VisionFeatureLayer > Vision.NumHiddenLayers)
            throw new InvalidDataException($"vision_feature_layer {VisionFeatureLayer} is outside the {Vision.NumHiddenLayers}-layer vision tower");
        if (VisionFeatureSelectStrategy is not ("default" or "full"))
            throw new NotSupportedException($"unsupported vision_feature_select_strategy '{VisionFeatureSelectStrategy}'");
        if (Vision.IsSiglip && VisionFeatureSelectStrategy == "default")
            throw new InvalidDataException("vision_feature_select_strategy 'default' drops a CLS token, but SigLIP has none: use 'full'");
        if (ProjectorHiddenAct is not ("gelu" or "quick_gelu" or "silu" or "relu"))
            throw new NotSupportedException($"unsupported projector_hidden_act '{ProjectorHiddenAct}'");
        if (IsAnyres && ImageGridPinpoints.Count == 0)
            throw new InvalidDataException("image_grid_pinpoints is missing or empty: LLaVA-NeXT/OneVision need the anyres resolutions");
        if (IsAnyres)
        {
            try { AnyresLayout.ValidatePinpoints(ImageGridPinpoints, Vision.ImageSize); }
            catch (ArgumentException e) { throw new InvalidDataException($"image_grid_pinpoints: {e.Message}"); }
        }
        return this;
    }

    internal static VisionConfig ParseVision(JsonObject v)
    {
        string type = Str(v, "model_type") ?? "clip_vision_model";
        bool siglip = type == "siglip_vision_model";
        if (type is not ("clip_vision_model" or "siglip_vision_model"))
            throw new NotSupportedException($"unsupported vision tower '{type}': CLIP (clip_vision_model) and SigLIP (siglip_vision_model) are supported");
        return new VisionConfig(
            Int(v, "hidden_size") ?? (siglip ? 1152 : 1024), Int(v, "intermediate_size") ?? (siglip ? 4304 : 4096),
            Int(v, "num_hidden_layers") ?? (siglip ? 26 : 24), Int(v, "num_attention_heads") ?? 16,
            Int(v, "image_size") ?? (siglip ? 384 : 336), Int(v, "patch_size") ?? 14, Int(v, "num_channels") ?? 3,
            Dbl(v, "layer_norm_eps") ?? (siglip ? 1e-6 : 1e-5), Str(v, "hidden_act") ?? (siglip ? "gelu_pytorch_tanh" : "quick_gelu"), type);
    }

    internal static LlamaConfig ParseText(JsonObject t, bool? tieOuter)
    {
        string type = Str(t, "model_type") ?? "llama";
        if (type is not ("llama" or "mistral" or "qwen2"))
            throw new NotSupportedException($"unsupported language model '{type}': llama, mistral and qwen2 decoders are supported");
        int hidden = Int(t, "hidden_size") ?? 4096;
        int heads = Int(t, "num_attention_heads") ?? 32;
        bool qwen = type == "qwen2";
        // Qwen2 always has q/k/v biases and no o_proj bias; LLaMA's attention_bias covers all four projections.
        bool llamaBias = !qwen && (Bool(t, "attention_bias") ?? false);
        return new LlamaConfig(
            Int(t, "vocab_size") ?? 32000, hidden, Int(t, "intermediate_size") ?? 11008,
            Int(t, "num_hidden_layers") ?? 32, heads, Int(t, "num_key_value_heads") ?? heads,
            Int(t, "head_dim") ?? hidden / heads, Int(t, "max_position_embeddings") ?? 4096,
            Dbl(t, "rms_norm_eps") ?? 1e-6, RopeTheta(t), Str(t, "hidden_act") ?? "silu",
            qwen || llamaBias, Bool(t, "mlp_bias") ?? false, Bool(t, "tie_word_embeddings") ?? tieOuter ?? false, type,
            OutputBias: llamaBias, SlidingWindow: SlidingWindow(t, type));
    }

    /// <summary>Mistral applies sliding_window when set; Qwen2 only when use_sliding_window is true (and then only
    /// above max_window_layers, which no LLaVA checkpoint uses: rejected).</summary>
    private static int? SlidingWindow(JsonObject t, string type)
    {
        int? window = Int(t, "sliding_window");
        if (type == "mistral") return window;
        if (type == "qwen2" && (Bool(t, "use_sliding_window") ?? false) && window is not null)
            throw new NotSupportedException("Qwen2 with use_sliding_window true is not supported");
        return null;
    }

    /// <summary>"anyres_max_9" → 9; plain "anyres" → null (no downscale).</summary>
    public static int? AnyresMax(string aspect)
    {
        if (aspect == "anyres") return null;
        const string prefix = "anyres_max_";
        if (aspect.StartsWith(prefix, StringComparison.Ordinal) && int.TryParse(aspect[prefix.Length..], out int n) && n > 0) return n;
        throw new NotSupportedException($"unsupported image aspect ratio '{aspect}': anyres and anyres_max_N are supported");
    }

    /// <summary>image_grid_pinpoints as [[h, w], ...], or the original code's "(1x1),...,(6x6)" range of tile multiples.</summary>
    internal static IReadOnlyList<PixelSize> Pinpoints(JsonNode? node, int tile)
    {
        switch (node)
        {
            case JsonArray a:
                return a.Select(p => p is JsonArray { Count: 2 } pair ? new PixelSize(pair[0]!.GetValue<int>(), pair[1]!.GetValue<int>())
                    : throw new InvalidDataException("image_grid_pinpoints must be a list of [height, width] pairs")).ToArray();
            case JsonValue v when v.TryGetValue<string>(out var s):
                var m = System.Text.RegularExpressions.Regex.Matches(s, @"\((\d+)x(\d+)\)");
                if (m.Count < 2) throw new InvalidDataException($"image_grid_pinpoints '{s}' is not a range like (1x1),...,(6x6)");
                int h0 = int.Parse(m[0].Groups[1].Value), w0 = int.Parse(m[0].Groups[2].Value);
                int h1 = int.Parse(m[^1].Groups[1].Value), w1 = int.Parse(m[^1].Groups[2].Value);
                var list = new List<PixelSize>();
                for (int i = h0; i <= h1; i++)
                    for (int j = w0; j <= w1; j++) list.Add(new PixelSize(i * tile, j * tile));
                return list;
            default:
                return [];
        }
    }

    private static double RopeTheta(JsonObject t)
    {
        // transformers 5 writes rope_parameters {rope_type, rope_theta}; older configs write rope_theta (+ rope_scaling).
        if (t["rope_parameters"] is JsonObject rp)
        {
            string type = Str(rp, "rope_type") ?? Str(rp, "type") ?? "default";
            if (type != "default") throw new NotSupportedException($"unsupported rope_type '{type}' (only the default RoPE is implemented)");
            return Dbl(rp, "rope_theta") ?? Dbl(t, "rope_theta") ?? 10000.0;
        }
        if (t["rope_scaling"] is JsonObject rs)
        {
            string type = Str(rs, "rope_type") ?? Str(rs, "type") ?? "default";
            if (type != "default") throw new NotSupportedException($"unsupported rope_scaling '{type}' (only the default RoPE is implemented)");
        }
        return Dbl(t, "rope_theta") ?? 10000.0;
    }

    internal static int[] Ids(JsonNode? n) => n switch
    {
        null => [],
        JsonArray a => a.Select(x => x!.GetValue<int>()).ToArray(),
        _ => [n.GetValue<int>()],
    };

    internal static string? Str(JsonObject o, string k) => o[k] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
    internal static int? Int(JsonObject o, string k) => o[k] is JsonValue v ? v.GetValue<int>() : null;
    internal static double? Dbl(JsonObject o, string k) => o[k] is JsonValue v ? v.GetValue<double>() : null;
    internal static bool? Bool(JsonObject o, string k) => o[k] is JsonValue v ? v.GetValue<bool>() : null;
}
