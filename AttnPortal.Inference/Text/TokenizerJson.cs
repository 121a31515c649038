using System.Text.Json;
using System.Text.Json.Nodes;

namespace AttnPortal.Inference.Text;

/// <summary>Reading Hugging Face tokenizer files (tokenizer.json, tokenizer_config.json, special_tokens_map.json).</summary>
internal static class TokenizerJson
{
    /// <summary>A token as the config files write it: "&lt;s&gt;" or {"content": "&lt;s&gt;", ...}.</summary>
    public static string? TokenContent(JsonNode? n) => n switch
    {
        JsonObject o => Str(o, "content"),
        JsonValue v when v.TryGetValue(out string? s) => s,
        _ => null,
    };

    public static string? Str(JsonObject? o, string key) => o?[key] is JsonValue v && v.TryGetValue(out string? s) ? s : null;
    public static bool? Bool(JsonObject? o, string key) => o?[key] is JsonValue v && v.TryGetValue(out bool b) ? b : null;

    /// <summary>The file as a JSON object; null when it does not exist.</summary>
    public static JsonObject? ReadJson(string path)
    {
        if (!File.Exists(path)) return null;
        JsonNode? root;
        try { root = JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON ({e.Message})", e); }
        return root as JsonObject ?? throw new InvalidDataException($"{path}: not a JSON object");
    }
}
