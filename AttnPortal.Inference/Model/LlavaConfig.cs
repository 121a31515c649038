using System.Text.Json;
using System.Text.Json.Nodes;

namespace AttnPortal.Inference.Model;

public sealed record ClipVisionConfig(
    int HiddenSize, int IntermediateSize, int NumHiddenLayers, int NumAttentionHeads,
    int ImageSize, int PatchSize, int NumChannels, double LayerNormEps, string HiddenAct)
{
    public int PatchesPerSide => ImageSize / PatchSize;
    public int NumPatches => PatchesPerSide * PatchesPerSide;
}

public sealed record LlamaConfig(
    int VocabSize, int HiddenSize, int IntermediateSize, int NumHiddenLayers, int NumAttentionHeads,
    int NumKeyValueHeads, int HeadDim, int MaxPositionEmbeddings, double RmsNormEps, double RopeTheta,
    string HiddenAct, bool AttentionBias, bool MlpBias, bool TieWordEmbeddings, string ModelType);

/// <summary>config.json of a Hugging Face LlavaForConditionalGeneration checkpoint (transformers 4 and 5 spellings).</summary>
public sealed record LlavaConfig(
    ClipVisionConfig Vision, LlamaConfig Text, int ImageTokenId, string ProjectorHiddenAct, bool ProjectorBias,
    int VisionFeatureLayer, string VisionFeatureSelectStrategy, int? BosTokenId, int[] EosTokenIds, string? PadToken)
{
    /// <summary>Image tokens one image expands to in the prompt (576 for 336 px / 14 px with the CLS token dropped).</summary>
    public int ImageTokensPerImage => Vision.NumPatches + (VisionFeatureSelectStrategy == "full" ? 1 : 0);

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

    public static LlavaConfig Parse(JsonObject c)
    {
        var architectures = c["architectures"]?.AsArray().Select(a => a!.GetValue<string>()).ToArray() ?? [];
        string modelType = Str(c, "model_type") ?? "";
        if (!architectures.Contains("LlavaForConditionalGeneration") && modelType != "llava")
            throw new NotSupportedException(
                $"unsupported architecture {(architectures.Length > 0 ? string.Join(", ", architectures) : modelType)}: " +
                "this engine runs LlavaForConditionalGeneration (model_type \"llava\") checkpoints");
        var v = c["vision_config"] as JsonObject ?? throw new InvalidDataException("vision_config is missing");
        var t = c["text_config"] as JsonObject ?? throw new InvalidDataException("text_config is missing");

        string visionType = Str(v, "model_type") ?? "clip_vision_model";
        if (visionType != "clip_vision_model")
            throw new NotSupportedException($"unsupported vision tower '{visionType}': LLaVA-1.5 uses clip_vision_model");
        var vision = new ClipVisionConfig(
            Int(v, "hidden_size") ?? 1024, Int(v, "intermediate_size") ?? 4096, Int(v, "num_hidden_layers") ?? 24,
            Int(v, "num_attention_heads") ?? 16, Int(v, "image_size") ?? 336, Int(v, "patch_size") ?? 14,
            Int(v, "num_channels") ?? 3, Dbl(v, "layer_norm_eps") ?? 1e-5, Str(v, "hidden_act") ?? "quick_gelu");

        string textType = Str(t, "model_type") ?? "llama";
        if (textType != "llama")
            throw new NotSupportedException($"unsupported language model '{textType}': LLaVA-1.5 uses a llama decoder");
        int hidden = Int(t, "hidden_size") ?? 4096;
        int heads = Int(t, "num_attention_heads") ?? 32;
        var text = new LlamaConfig(
            Int(t, "vocab_size") ?? 32000, hidden, Int(t, "intermediate_size") ?? 11008,
            Int(t, "num_hidden_layers") ?? 32, heads, Int(t, "num_key_value_heads") ?? heads,
            Int(t, "head_dim") ?? hidden / heads, Int(t, "max_position_embeddings") ?? 4096,
            Dbl(t, "rms_norm_eps") ?? 1e-6, RopeTheta(t), Str(t, "hidden_act") ?? "silu",
            Bool(t, "attention_bias") ?? false, Bool(t, "mlp_bias") ?? false,
            Bool(t, "tie_word_embeddings") ?? Bool(c, "tie_word_embeddings") ?? false, textType);
        if (text.HiddenAct != "silu") throw new NotSupportedException($"unsupported text hidden_act '{text.HiddenAct}'");
        if (heads % text.NumKeyValueHeads != 0)
            throw new InvalidDataException($"num_attention_heads {heads} is not a multiple of num_key_value_heads {text.NumKeyValueHeads}");

        if (c["vision_feature_layer"] is JsonArray)
            throw new NotSupportedException("vision_feature_layer as a list of layers is not supported");
        int featureLayer = Int(c, "vision_feature_layer") ?? -2;
        if (featureLayer < -(vision.NumHiddenLayers + 1) || featureLayer > vision.NumHiddenLayers)
            throw new InvalidDataException($"vision_feature_layer {featureLayer} is outside the {vision.NumHiddenLayers}-layer vision tower");
        string strategy = Str(c, "vision_feature_select_strategy") ?? "default";
        if (strategy is not ("default" or "full"))
            throw new NotSupportedException($"unsupported vision_feature_select_strategy '{strategy}'");
        string projectorAct = Str(c, "projector_hidden_act") ?? "gelu";
        if (projectorAct is not ("gelu" or "quick_gelu" or "silu" or "relu"))
            throw new NotSupportedException($"unsupported projector_hidden_act '{projectorAct}'");

        int imageToken = Int(c, "image_token_id") ?? Int(c, "image_token_index") ?? 32000;
        return new LlavaConfig(vision, text, imageToken, projectorAct, Bool(c, "multimodal_projector_bias") ?? true,
            featureLayer, strategy, Int(t, "bos_token_id") ?? Int(c, "bos_token_id"),
            Ids(t["eos_token_id"] ?? c["eos_token_id"]), null);
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

    private static int[] Ids(JsonNode? n) => n switch
    {
        null => [],
        JsonArray a => a.Select(x => x!.GetValue<int>()).ToArray(),
        _ => [n.GetValue<int>()],
    };

    private static string? Str(JsonObject o, string k) => o[k] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
    private static int? Int(JsonObject o, string k) => o[k] is JsonValue v ? v.GetValue<int>() : null;
    private static double? Dbl(JsonObject o, string k) => o[k] is JsonValue v ? v.GetValue<double>() : null;
    private static bool? Bool(JsonObject o, string k) => o[k] is JsonValue v ? v.GetValue<bool>() : null;
}
