using System.Text.Json.Nodes;
using AttnPortal.Inference.Generation;
using static AttnPortal.Inference.Model.LlavaConfig;

namespace AttnPortal.Inference.Model;

/// <summary>
/// config.json of the original LLaVA-NeXT code base (and the LLaVA-Alternating-Attn seed built on it): the decoder's
/// fields at the top level, model_type llava_qwen / llava_mistral / llava_llama (or the seed's alternating variants),
/// and mm_* keys for the vision side. The vision tower is named, not described (mm_vision_tower); its shape comes from
/// a table of the towers LLaVA-NeXT uses, or from a "vision_config" object for any other.
/// </summary>
public static class OriginalLlavaConfig
{
    private static readonly Dictionary<string, (string Text, AttentionSchedule Schedule)> ModelTypes = new()
    {
        ["llava_qwen"] = ("qwen2", AttentionSchedule.Standard),
        ["llava_qwen_with_alternating_attn"] = ("qwen2", AttentionSchedule.Alternating),
        ["llava_qwen_with_alternating_cross_attn"] = ("qwen2", AttentionSchedule.AlternatingCross),
        ["llava_mistral"] = ("mistral", AttentionSchedule.Standard),
        ["llava_mistral_with_alternating_attn"] = ("mistral", AttentionSchedule.Alternating),
        ["llava_llama"] = ("llama", AttentionSchedule.Standard),
    };

    /// <summary>Vision towers by the name in mm_vision_tower. LLaVA-OneVision drops SigLIP's last layer (27 → 26)
    /// and reads the output of the last remaining one.</summary>
    private static readonly (string Name, VisionConfig Config)[] KnownTowers =
    [
        ("siglip-so400m-patch14-384", new VisionConfig(1152, 4304, 26, 16, 384, 14, 3, 1e-6, "gelu_pytorch_tanh", "siglip_vision_model")),
        ("clip-vit-large-patch14-336", new VisionConfig(1024, 4096, 24, 16, 336, 14, 3, 1e-5, "quick_gelu")),
        ("clip-vit-large-patch14", new VisionConfig(1024, 4096, 24, 16, 224, 14, 3, 1e-5, "quick_gelu")),
    ];

    public static bool Recognises(JsonObject c) =>
        c["mm_vision_tower"] is not null || ModelTypes.ContainsKey(Str(c, "model_type") ?? "");

    public static LlavaConfig Parse(JsonObject c)
    {
        string modelType = Str(c, "model_type") ?? "";
        if (!ModelTypes.TryGetValue(modelType, out var kind))
            throw new NotSupportedException($"unsupported original LLaVA model_type '{modelType}': {string.Join(", ", ModelTypes.Keys)} are supported");
        string towerName = Str(c, "mm_vision_tower") ?? throw new InvalidDataException("mm_vision_tower is missing");
        var vision = c["vision_config"] is JsonObject v ? ParseVision(v)
            : KnownTowers.FirstOrDefault(t => towerName.EndsWith(t.Name, StringComparison.Ordinal)).Config
              ?? throw new NotSupportedException($"unknown vision tower '{towerName}': add a \"vision_config\" object (model_type, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, image_size, patch_size) to config.json");

        var text = c.DeepClone().AsObject();
        text["model_type"] = kind.Text;
        var textConfig = ParseText(text, null);

        string projector = Str(c, "mm_projector_type") ?? "linear";
        var m = System.Text.RegularExpressions.Regex.Match(projector, @"^mlp(\d+)x_gelu$");
        if (!m.Success || m.Groups[1].Value != "2")
            throw new NotSupportedException($"unsupported mm_projector_type '{projector}': mlp2x_gelu (two linear layers with GELU) is supported");
        string merge = Str(c, "mm_patch_merge_type") ?? "flat";
        if (merge != "spatial_unpad")
            throw new NotSupportedException($"unsupported mm_patch_merge_type '{merge}': spatial_unpad (LLaVA-NeXT/OneVision) is supported");
        string aspect = Str(c, "image_aspect_ratio") ?? "square";
        if (!aspect.StartsWith("anyres", StringComparison.Ordinal))
            throw new NotSupportedException($"unsupported image_aspect_ratio '{aspect}': anyres and anyres_max_N are supported");
        string feature = Str(c, "mm_vision_select_feature") ?? "patch";
        if (feature is not ("patch" or "cls_patch"))
            throw new NotSupportedException($"unsupported mm_vision_select_feature '{feature}'");

        // SigLIP towers have no CLS and LLaVA reads their last (kept) layer whatever mm_vision_select_layer says;
        // CLIP towers honour mm_vision_select_layer and "patch" drops the CLS token.
        int featureLayer = vision.IsSiglip ? -1 : Int(c, "mm_vision_select_layer") ?? -2;
        string strategy = vision.IsSiglip || feature == "cls_patch" ? "full" : "default";
        int? maxTiles = AnyresMax(aspect);
        var config = new LlavaConfig(vision, textConfig, Int(c, "image_token_index") ?? -200, "gelu", true,
            featureLayer, strategy, Int(c, "bos_token_id"), Ids(c["eos_token_id"]), null)
        {
            Family = maxTiles is null ? LlavaFamily.LlavaNext : LlavaFamily.LlavaOnevision,
            ImageGridPinpoints = Pinpoints(c["image_grid_pinpoints"], vision.ImageSize),
            AnyresMaxTiles = maxTiles,
            DefaultSchedule = kind.Schedule,
            OriginalLayout = true,
        };
        return config.Validated();
    }
}
