using System.Text.Json;
using System.Text.Json.Nodes;

namespace AttnPortal.Inference.Text;

/// <summary>
/// Where a text segment (the text between two added tokens) gets the SentencePiece word marker "▁" prepended.
/// Spaces inside a segment always become "▁".
/// </summary>
public enum PrefixSpace
{
    /// <summary>Never (Metaspace prepend_scheme "never", or add_prefix_space false).</summary>
    Never,

    /// <summary>
    /// Only a segment that starts at offset 0 of the original text, and only when it does not already start with
    /// "▁"/space (Metaspace prepend_scheme "first"). A segment after a leading special token is not prefixed.
    /// </summary>
    First,

    /// <summary>Every segment that does not already start with "▁"/space (Metaspace prepend_scheme "always").</summary>
    Always,

    /// <summary>
    /// Every non-empty segment, unconditionally, as SentencePiece's own dummy prefix does (the "legacy" Llama
    /// conversion: normalizer Prepend("▁") + Replace(" ", "▁"), which runs on each segment between added tokens).
    /// </summary>
    Legacy,
}

/// <summary>A token added on top of the SentencePiece vocabulary (or a control piece such as &lt;s&gt;), matched
/// literally in the input text before SentencePiece sees it.</summary>
public sealed record AddedToken(int Id, string Content, bool Special, bool LStrip = false, bool RStrip = false);

/// <summary>What the Hugging Face JSON files of a checkpoint say about tokenisation around the SentencePiece model.</summary>
internal sealed record TokenizerFiles(
    PrefixSpace Prefix, bool SplitOnMarker, bool AddBos, bool AddEos, IReadOnlyList<AddedToken> AddedTokens,
    string? BosToken, string? EosToken, string? UnkToken, string? PadToken)
{
    public static TokenizerFiles Read(string dir)
    {
        JsonObject? tokenizerJson = TokenizerJson.ReadJson(Path.Combine(dir, "tokenizer.json"));
        JsonObject? config = TokenizerJson.ReadJson(Path.Combine(dir, "tokenizer_config.json"));
        JsonObject? specialMap = TokenizerJson.ReadJson(Path.Combine(dir, "special_tokens_map.json"));
        JsonObject? addedJson = TokenizerJson.ReadJson(Path.Combine(dir, "added_tokens.json"));
        try
        {
            var (prefix, split) = DecidePrefix(tokenizerJson, config);
            string? Named(string key) => TokenizerJson.TokenContent(config?[key]) ?? TokenizerJson.TokenContent(specialMap?[key]);
            return new TokenizerFiles(prefix, split,
                TokenizerJson.Bool(config, "add_bos_token") ?? true, TokenizerJson.Bool(config, "add_eos_token") ?? false,
                ReadAddedTokens(tokenizerJson, config, addedJson, specialMap),
                Named("bos_token"), Named("eos_token"), Named("unk_token"), Named("pad_token"));
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or KeyNotFoundException or ArgumentException)
        {
            throw new InvalidDataException($"{dir}: unexpected content in the tokenizer JSON files ({e.Message})", e);
        }
    }

    /// <summary>
    /// The one place that decides how segments get their leading "▁" (see <see cref="PrefixSpace"/>).
    /// tokenizer.json, when present, is what transformers' fast tokenizer runs, so it wins:
    ///   a Metaspace pre-tokenizer: its prepend_scheme (tokenizers &lt; 0.15 wrote add_prefix_space instead: true = always);
    ///   else a Prepend normalizer (the legacy Llama conversion): every segment;
    ///   else nothing is prepended.
    /// Without tokenizer.json transformers 4 converts tokenizer.model using tokenizer_config.json's "legacy"
    /// (absent = true): legacy gives the Prepend normalizer, non-legacy a Metaspace "first"; add_prefix_space false
    /// turns the prefix off. (transformers 5 ignores "legacy" and always converts to Metaspace "first".)
    /// </summary>
    internal static (PrefixSpace Prefix, bool SplitOnMarker) DecidePrefix(JsonObject? tokenizerJson, JsonObject? config)
    {
        if (tokenizerJson is not null)
        {
            if (Find(tokenizerJson["pre_tokenizer"], "pretokenizers", "Metaspace") is { } metaspace)
            {
                var scheme = TokenizerJson.Str(metaspace, "prepend_scheme") switch
                {
                    "first" => PrefixSpace.First,
                    "always" => PrefixSpace.Always,
                    "never" => PrefixSpace.Never,
                    null => TokenizerJson.Bool(metaspace, "add_prefix_space") == false ? PrefixSpace.Never : PrefixSpace.Always,
                    var other => throw new NotSupportedException($"tokenizer.json: unknown Metaspace prepend_scheme '{other}'"),
                };
                return (scheme, TokenizerJson.Bool(metaspace, "split") ?? true);
            }
            return (Find(tokenizerJson["normalizer"], "normalizers", "Prepend") is not null ? PrefixSpace.Legacy : PrefixSpace.Never, false);
        }
        if (TokenizerJson.Bool(config, "add_prefix_space") == false) return (PrefixSpace.Never, false);
        return (TokenizerJson.Bool(config, "legacy") ?? true ? PrefixSpace.Legacy : PrefixSpace.First, false);
    }

    /// <summary>tokenizer.json's added_tokens, then tokenizer_config.json's added_tokens_decoder and the older
    /// added_tokens.json for ids not seen yet.</summary>
    private static List<AddedToken> ReadAddedTokens(JsonObject? tokenizerJson, JsonObject? config, JsonObject? addedJson, JsonObject? specialMap)
    {
        var byId = new Dictionary<int, AddedToken>();
        foreach (var node in tokenizerJson?["added_tokens"] as JsonArray ?? [])
        {
            if (node is not JsonObject t) continue;
            int id = t["id"]!.GetValue<int>();
            byId.TryAdd(id, FromJson(id, t));
        }
        foreach (var (key, node) in config?["added_tokens_decoder"] as JsonObject ?? [])
        {
            if (node is not JsonObject t) continue;
            int id = int.Parse(key, System.Globalization.CultureInfo.InvariantCulture);
            byId.TryAdd(id, FromJson(id, t));
        }
        // added_tokens.json ({"<image>": 32000}) predates added_tokens_decoder and has no flags: a token counts as
        // special when the config or special_tokens_map.json names it.
        var named = new HashSet<string>();
        foreach (var source in new[] { config, specialMap })
        {
            foreach (var key in new[] { "bos_token", "eos_token", "unk_token", "pad_token" })
                if (TokenizerJson.TokenContent(source?[key]) is { } s) named.Add(s);
            foreach (var key in new[] { "additional_special_tokens", "extra_special_tokens" }) // transformers 4, 5
                foreach (var n in source?[key] as JsonArray ?? [])
                    if (TokenizerJson.TokenContent(n) is { } s) named.Add(s);
        }
        foreach (var (content, node) in addedJson ?? [])
        {
            int id = node!.GetValue<int>();
            byId.TryAdd(id, new AddedToken(id, content, named.Contains(content)));
        }
        return byId.Values.OrderBy(t => t.Id).ToList();
    }

    private static AddedToken FromJson(int id, JsonObject t) => new(
        id, TokenizerJson.Str(t, "content") ?? throw new InvalidDataException($"added token {id} has no content"),
        TokenizerJson.Bool(t, "special") ?? false, TokenizerJson.Bool(t, "lstrip") ?? false, TokenizerJson.Bool(t, "rstrip") ?? false);

    /// <summary>A component of the given type, itself or inside a "Sequence".</summary>
    private static JsonObject? Find(JsonNode? node, string listKey, string type)
    {
        if (node is not JsonObject o) return null;
        if (TokenizerJson.Str(o, "type") == type) return o;
        if (TokenizerJson.Str(o, "type") == "Sequence")
            foreach (var child in o[listKey] as JsonArray ?? [])
                if (Find(child, listKey, type) is { } found) return found;
        return null;
    }
}
