using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace AttnPortal.Inference.Text;

/// <summary>An added token with Hugging Face tokenizers' matching flags (tokenizer.json "added_tokens").</summary>
internal sealed record BpeAddedToken(
    int Id, string Content, bool Special, bool SingleWord = false, bool LStrip = false, bool RStrip = false, bool Normalized = false);

/// <summary>One step of a byte-level pre-tokenizer, splitting each piece of a segment into smaller pieces.</summary>
internal abstract record PreTokenizerStep
{
    public abstract void Split(string piece, List<string> output);
}

/// <summary>tokenizers' Split pre-tokenizer with behavior "Isolated": matches and the text between them are pieces.</summary>
internal sealed record SplitStep(Regex Pattern) : PreTokenizerStep
{
    public override void Split(string piece, List<string> output) => CodePointRegex.SplitIsolated(Pattern, piece, output);
}

/// <summary>tokenizers' ByteLevel pre-tokenizer, less its byte mapping (done by the tokenizer afterwards).</summary>
internal sealed record ByteLevelStep(bool AddPrefixSpace, bool UseRegex) : PreTokenizerStep
{
    /// <summary>The pattern ByteLevel splits with when use_regex is true (GPT-2's).</summary>
    public static readonly Regex Gpt2Pattern = ByteLevelBpeFiles.CompilePattern(
        @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+", "GPT-2");

    public override void Split(string piece, List<string> output)
    {
        if (AddPrefixSpace && piece[0] != ' ') piece = " " + piece;
        if (UseRegex) CodePointRegex.SplitIsolated(Gpt2Pattern, piece, output);
        else output.Add(piece);
    }
}

/// <summary>
/// What the files of a byte-level BPE checkpoint (Qwen2, GPT-2 style) say, read and checked: tokenizer.json, or else
/// vocab.json + merges.txt as transformers' Qwen2Tokenizer reads them; plus tokenizer_config.json and
/// special_tokens_map.json. A setting this implementation does not reproduce is an <see cref="InvalidDataException"/>
/// naming the file and the setting, never a silently different tokenisation.
/// </summary>
internal sealed record ByteLevelBpeFiles(
    Dictionary<string, int> Vocab, List<(string Left, string Right)> Merges, string? UnkToken, bool FuseUnk, bool IgnoreMerges,
    bool Nfc, PreTokenizerStep[] PreTokenizer, List<BpeAddedToken> AddedTokens,
    int[] PrefixIds, int[] SuffixIds, int? EosId, bool CleanUpSpaces)
{
    /// <summary>transformers' Qwen2Tokenizer PRETOKENIZE_REGEX, used when there is no tokenizer.json.</summary>
    public const string Qwen2Pattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    private static readonly string[] NamedTokenKeys = ["bos_token", "eos_token", "unk_token", "pad_token"];

    public static ByteLevelBpeFiles Read(string dir)
    {
        string jsonPath = Path.Combine(dir, "tokenizer.json"), vocabPath = Path.Combine(dir, "vocab.json"), mergesPath = Path.Combine(dir, "merges.txt");
        string configPath = Path.Combine(dir, "tokenizer_config.json");
        JsonObject? config = TokenizerJson.ReadJson(configPath);
        JsonObject? specialMap = TokenizerJson.ReadJson(Path.Combine(dir, "special_tokens_map.json"));
        string? Named(string key) => TokenizerJson.TokenContent(config?[key]) ?? TokenizerJson.TokenContent(specialMap?[key]);

        ByteLevelBpeFiles files;
        JsonNode? postProcessor = null;
        if (File.Exists(jsonPath))
            files = FromTokenizerJson(jsonPath, TokenizerJson.ReadJson(jsonPath)!, out postProcessor);
        else if (File.Exists(vocabPath) && File.Exists(mergesPath))
            files = FromVocabAndMerges(vocabPath, mergesPath, configPath, config);
        else
            throw new FileNotFoundException($"{dir}: neither tokenizer.json nor vocab.json + merges.txt found", jsonPath);

        try
        {
            if (TokenizerJson.Bool(config, "split_special_tokens") == true)
                throw new InvalidDataException($"{configPath}: split_special_tokens true is not supported");

            // transformers then adds the config's added_tokens_decoder, and the named special tokens not added yet.
            var added = files.AddedTokens;
            AddTokens(added, (config?["added_tokens_decoder"] as JsonObject ?? [])
                .Select(p => AddedFromJson(int.Parse(p.Key, CultureInfo.InvariantCulture), p.Value!.AsObject())).OrderBy(t => t.Id), files.Vocab);
            var named = NamedTokenKeys.Select(Named).OfType<string>();
            foreach (var source in new[] { config, specialMap })
                foreach (var key in new[] { "additional_special_tokens", "extra_special_tokens" })
                    named = named.Concat((source?[key] switch { JsonArray a => a, JsonObject o => o.Select(p => p.Value), _ => [] })
                        .Select(TokenizerJson.TokenContent).OfType<string>());
            AddTokens(added, named.Where(content => added.All(a => a.Content != content)).Distinct()
                .Select(content => new BpeAddedToken(-1, content, Special: true)).ToList(), files.Vocab);

            int IdOf(string content) => added.FirstOrDefault(a => a.Content == content)?.Id ?? files.Vocab[content];

            // transformers 5 rebuilds the post-processor from add_bos_token / add_eos_token when the config sets
            // either (or tokenizer.json has none); otherwise tokenizer.json's post-processor adds the special tokens.
            int[] prefix, suffix;
            if (config?["add_bos_token"] is not null || config?["add_eos_token"] is not null || postProcessor is null)
            {
                prefix = TokenizerJson.Bool(config, "add_bos_token") == true && Named("bos_token") is { } bos ? [IdOf(bos)] : [];
                suffix = TokenizerJson.Bool(config, "add_eos_token") == true && Named("eos_token") is { } eos ? [IdOf(eos)] : [];
            }
            else (prefix, suffix) = ReadPostProcessor(postProcessor, jsonPath);

            return files with
            {
                PrefixIds = prefix, SuffixIds = suffix,
                EosId = Named("eos_token") is { } eosToken ? IdOf(eosToken) : null,
                CleanUpSpaces = TokenizerJson.Bool(config, "clean_up_tokenization_spaces") ?? false,
            };
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or KeyNotFoundException or OverflowException or NullReferenceException)
        {
            throw new InvalidDataException($"{dir}: unexpected content in the tokenizer JSON files ({e.Message})", e);
        }
    }

    private static ByteLevelBpeFiles FromTokenizerJson(string path, JsonObject json, out JsonNode? postProcessor)
    {
        try
        {
            var model = json["model"] as JsonObject ?? throw new InvalidDataException($"{path}: no \"model\"");
            if (TokenizerJson.Str(model, "type") != "BPE")
                throw new InvalidDataException($"{path}: model type '{TokenizerJson.Str(model, "type") ?? "none"}' is not supported (only byte-level BPE)");
            if (TokenizerJson.Bool(model, "byte_fallback") == true)
                throw new InvalidDataException($"{path}: a BPE model with byte_fallback (a SentencePiece conversion) is not byte-level BPE; load its tokenizer.model instead");
            if (model["dropout"] is JsonValue d && d.GetValue<double>() != 0)
                throw new InvalidDataException($"{path}: BPE dropout is not supported");
            foreach (var key in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
                if (TokenizerJson.Str(model, key) is { Length: > 0 } affix)
                    throw new InvalidDataException($"{path}: BPE {key} '{affix}' is not supported");

            var vocab = ReadVocab(model["vocab"] as JsonObject ?? throw new InvalidDataException($"{path}: model has no vocab object"), path);
            var merges = new List<(string, string)>();
            foreach (var m in model["merges"] as JsonArray ?? throw new InvalidDataException($"{path}: model has no merges array"))
            {
                if (m is JsonArray { Count: 2 } pair) merges.Add((pair[0]!.GetValue<string>(), pair[1]!.GetValue<string>()));
                else if (m is JsonValue v && v.GetValue<string>() is var line && !line.StartsWith("#version", StringComparison.Ordinal))
                    merges.Add(SplitMerge(line, path, merges.Count + 1));
                else if (m is not JsonValue) throw new InvalidDataException($"{path}: merge {merges.Count + 1} is neither \"a b\" nor [a, b]");
            }

            var added = new List<BpeAddedToken>();
            AddTokens(added, (json["added_tokens"] as JsonArray ?? []).Select(t => AddedFromJson(t!["id"]!.GetValue<int>(), t.AsObject())), vocab);

            postProcessor = json["post_processor"];
            return new ByteLevelBpeFiles(vocab, merges, TokenizerJson.Str(model, "unk_token"), TokenizerJson.Bool(model, "fuse_unk") ?? false, TokenizerJson.Bool(model, "ignore_merges") ?? false,
                ReadNormalizer(json["normalizer"], path), ReadPreTokenizer(json["pre_tokenizer"], path), added, [], [], null, false)
                .CheckDecoder(json["decoder"], path);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or KeyNotFoundException or NullReferenceException)
        {
            throw new InvalidDataException($"{path}: unexpected content ({e.Message})", e);
        }
    }

    /// <summary>transformers' Qwen2Tokenizer without tokenizer.json: NFC, Qwen2's split pattern, ByteLevel, no unk token.</summary>
    private static ByteLevelBpeFiles FromVocabAndMerges(string vocabPath, string mergesPath, string configPath, JsonObject? config)
    {
        // Only Qwen2 is known to tokenise this way; GPT-2's own tokenizer, for one, splits differently.
        string? cls = TokenizerJson.Str(config, "tokenizer_class");
        if (cls is not ("Qwen2Tokenizer" or "Qwen2TokenizerFast"))
            throw new InvalidDataException($"{configPath}: tokenizer_class '{cls}' without tokenizer.json is not supported (only Qwen2Tokenizer)");
        if (TokenizerJson.Bool(config, "add_prefix_space") == true)
            throw new InvalidDataException($"{configPath}: add_prefix_space true is not supported");

        Dictionary<string, int> vocab;
        try { vocab = ReadVocab(TokenizerJson.ReadJson(vocabPath)!, vocabPath); }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{vocabPath}: not a token-to-id object ({e.Message})", e);
        }
        var merges = new List<(string, string)>();
        int lineNo = 0;
        foreach (string line in File.ReadLines(mergesPath))
        {
            lineNo++;
            if (!line.StartsWith("#version", StringComparison.Ordinal)) merges.Add(SplitMerge(line, mergesPath, lineNo));
        }
        return new ByteLevelBpeFiles(vocab, merges, null, false, false, true,
            [new SplitStep(CompilePattern(Qwen2Pattern, "Qwen2")), new ByteLevelStep(false, false)], [], [], [], null, false);
    }

    /// <summary>A .NET regex for a tokenizers pattern; see <see cref="CodePointRegex"/> for how it is run.</summary>
    /// <remarks>Oniguruma's (?i) follows Unicode case folding, where "ſ" (U+017F) folds to s and the Kelvin sign to k;
    /// .NET's does not, so a case-insensitive group of plain letters (the contractions of Qwen2 and Llama 3) gets
    /// those spelled out: "'ſ" is a contraction for tokenizers.</remarks>
    internal static Regex CompilePattern(string pattern, string where)
    {
        pattern = Regex.Replace(pattern, @"\(\?i:[A-Za-z'|]*\)", group => Regex.Replace(group.Value[4..], "[sSkK]",
            letter => char.ToLowerInvariant(letter.Value[0]) == 's' ? "[s\u017F]" : "[k\u212A]").Insert(0, "(?i:"));
        try { return new Regex(pattern, RegexOptions.CultureInvariant | RegexOptions.Compiled); }
        catch (ArgumentException e) { throw new InvalidDataException($"{where}: split pattern not supported by .NET regex ({e.Message})", e); }
    }

    private static (string, string) SplitMerge(string line, string path, int number) =>
        line.Split(' ') is [var left, var right] ? (left, right)
            : throw new InvalidDataException($"{path}: merge {number} \"{line}\" is not two tokens separated by one space");

    private static Dictionary<string, int> ReadVocab(JsonObject vocab, string path) => vocab.ToDictionary(p => p.Key,
        p => p.Value!.GetValue<int>() is >= 0 and var id ? id : throw new InvalidDataException($"{path}: negative id for \"{p.Key}\""), StringComparer.Ordinal);

    /// <summary>
    /// tokenizers' AddedVocabulary.add_tokens, which decides the ids (a file's "id" is only checked against them):
    /// a token added before keeps its id and takes the new flags, a token in the vocabulary takes its vocabulary id,
    /// any other the next id past the vocabulary and the added tokens.
    /// </summary>
    private static void AddTokens(List<BpeAddedToken> added, IEnumerable<BpeAddedToken> tokens, Dictionary<string, int> vocab)
    {
        int next = Math.Max(vocab.Count, added.Count == 0 ? 0 : added.Max(a => a.Id) + 1);
        foreach (var token in tokens)
        {
            if (token.Content.Length == 0) continue;
            int index = added.FindIndex(a => a.Content == token.Content);
            if (index >= 0) added[index] = token with { Id = added[index].Id };
            else added.Add(token with { Id = vocab.TryGetValue(token.Content, out int id) ? id : next++ });
        }
    }

    private static BpeAddedToken AddedFromJson(int id, JsonObject t)
    {
        bool special = TokenizerJson.Bool(t, "special") ?? false;
        return new BpeAddedToken(id, TokenizerJson.Str(t, "content") ?? throw new InvalidDataException($"added token {id} has no content"), special,
            TokenizerJson.Bool(t, "single_word") ?? false, TokenizerJson.Bool(t, "lstrip") ?? false, TokenizerJson.Bool(t, "rstrip") ?? false, TokenizerJson.Bool(t, "normalized") ?? !special);
    }

    /// <summary>NFC (alone or in a Sequence) or none: the only normalizers Qwen2-style tokenizers use.</summary>
    private static bool ReadNormalizer(JsonNode? node, string path)
    {
        if (node is null) return false;
        var parts = TokenizerJson.Str(node as JsonObject, "type") == "Sequence" ? (node["normalizers"] as JsonArray ?? []).ToArray() : [node];
        foreach (var part in parts)
            if (TokenizerJson.Str(part as JsonObject, "type") != "NFC")
                throw new InvalidDataException($"{path}: normalizer '{TokenizerJson.Str(part as JsonObject, "type")}' is not supported (only NFC)");
        return parts.Length > 0;
    }

    /// <summary>Split steps (Isolated) followed by one ByteLevel, alone or in a Sequence.</summary>
    private static PreTokenizerStep[] ReadPreTokenizer(JsonNode? node, string path)
    {
        var parts = TokenizerJson.Str(node as JsonObject, "type") == "Sequence" ? (node!["pretokenizers"] as JsonArray ?? []).ToArray() : [node];
        var steps = new List<PreTokenizerStep>();
        foreach (var part in parts)
        {
            var o = part as JsonObject;
            switch (TokenizerJson.Str(o, "type"))
            {
                case "Split" when TokenizerJson.Str(o, "behavior") != "Isolated" || TokenizerJson.Bool(o, "invert") == true:
                    throw new InvalidDataException($"{path}: Split pre-tokenizer with behavior '{TokenizerJson.Str(o, "behavior")}', invert {TokenizerJson.Bool(o, "invert")} is not supported (only Isolated, not inverted)");
                case "Split":
                    var pattern = o!["pattern"] as JsonObject;
                    steps.Add(new SplitStep(TokenizerJson.Str(pattern, "Regex") is { } regex ? CompilePattern(regex, path)
                        : TokenizerJson.Str(pattern, "String") is { } literal ? CompilePattern(Regex.Escape(literal), path)
                        : throw new InvalidDataException($"{path}: Split pre-tokenizer without a Regex or String pattern")));
                    break;
                case "ByteLevel":
                    steps.Add(new ByteLevelStep(TokenizerJson.Bool(o, "add_prefix_space") ?? true, TokenizerJson.Bool(o, "use_regex") ?? true));
                    break;
                default:
                    throw new InvalidDataException($"{path}: pre-tokenizer '{TokenizerJson.Str(o, "type") ?? "none"}' is not supported (only Split and ByteLevel)");
            }
        }
        if (steps.Count == 0 || steps[^1] is not ByteLevelStep || steps.Count(s => s is ByteLevelStep) != 1)
            throw new InvalidDataException($"{path}: the pre-tokenizer must end with its one ByteLevel step (byte-level BPE)");
        return steps.ToArray();
    }

    private ByteLevelBpeFiles CheckDecoder(JsonNode? decoder, string path) => TokenizerJson.Str(decoder as JsonObject, "type") == "ByteLevel" ? this
        : throw new InvalidDataException($"{path}: decoder '{TokenizerJson.Str(decoder as JsonObject, "type") ?? "none"}' is not supported (only ByteLevel)");

    /// <summary>Special token ids the post-processor puts before and after the text: none for ByteLevel, the
    /// "single" template's for TemplateProcessing, both in turn for a Sequence.</summary>
    private static (int[] Prefix, int[] Suffix) ReadPostProcessor(JsonNode? node, string path)
    {
        var o = node as JsonObject;
        switch (TokenizerJson.Str(o, "type"))
        {
            case "ByteLevel":
                return ([], []);
            case "Sequence":
                int[] prefix = [], suffix = [];
                foreach (var p in o!["processors"] as JsonArray ?? [])
                {
                    var (pre, post) = ReadPostProcessor(p, path);
                    (prefix, suffix) = ([.. pre, .. prefix], [.. suffix, .. post]);
                }
                return (prefix, suffix);
            case "TemplateProcessing":
                var before = new List<int>();
                var after = new List<int>();
                bool seenText = false;
                foreach (var item in o!["single"] as JsonArray ?? [])
                {
                    if (item?["Sequence"] is JsonObject sequence)
                    {
                        if (TokenizerJson.Str(sequence, "id") != "A" || seenText) throw new InvalidDataException($"{path}: post-processor template not of the form [special...] $A [special...]");
                        seenText = true;
                    }
                    else if (TokenizerJson.Str(item?["SpecialToken"] as JsonObject, "id") is { } name)
                        (seenText ? after : before).AddRange((o["special_tokens"]![name]!["ids"] as JsonArray)!.Select(i => i!.GetValue<int>()));
                    else throw new InvalidDataException($"{path}: unexpected item in the post-processor template");
                }
                if (!seenText) throw new InvalidDataException($"{path}: post-processor template without $A");
                return (before.ToArray(), after.ToArray());
            default:
                throw new InvalidDataException($"{path}: post-processor '{TokenizerJson.Str(o, "type") ?? "none"}' is not supported (only ByteLevel and TemplateProcessing)");
        }
    }
}
