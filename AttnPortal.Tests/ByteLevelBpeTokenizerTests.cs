using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using AttnPortal.Inference.Text;
using Xunit;

namespace AttnPortal.Tests;

public class ByteLevelBpeTokenizerTests
{
    private static readonly string Families = Path.Combine(AppContext.BaseDirectory, "Fixtures", "hf-families");
    private static readonly string Checkpoint = Path.Combine(Families, "tiny-onevision");
    private static readonly Lazy<ByteLevelBpeTokenizer> Shared = new(() => ByteLevelBpeTokenizer.Load(Checkpoint));

    public sealed record Case(string Text, int[] Ids);

    private static readonly Lazy<Case[]> Cases = new(() =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(Families, "qwen_tokenizer_cases.json")))!["cases"]!.AsArray()
            .Select(c => new Case(c!["text"]!.GetValue<string>(), c["ids"]!.AsArray().Select(i => i!.GetValue<int>()).ToArray()))
            .ToArray());

    private static string Show(string s) => JsonSerializer.Serialize(s);
    private static string Show(IEnumerable<int> ids) => "[" + string.Join(", ", ids) + "]";

    private static void AssertAllCasesMatch(ITokenizer tok, IEnumerable<Case> cases)
    {
        var mismatches = cases
            .Select(c => (c, got: tok.Encode(c.Text).ToArray()))
            .Where(x => !x.got.SequenceEqual(x.c.Ids))
            .Select(x => $"{Show(x.c.Text)}: expected {Show(x.c.Ids)}, got {Show(x.got)}")
            .ToList();
        Assert.True(mismatches.Count == 0, string.Join("\n", mismatches));
    }

    [Fact]
    public void EveryFixtureCaseGivesHfIdsFromTokenizerJson()
    {
        Assert.Equal(33, Cases.Value.Length);
        AssertAllCasesMatch(Shared.Value, Cases.Value);
    }

    [Fact]
    public void EveryFixtureCaseGivesHfIdsFromVocabJsonAndMergesTxt()
    {
        using var dir = new TempCheckpoint(withTokenizerJson: false);
        var tok = ByteLevelBpeTokenizer.Load(dir.Path);
        AssertAllCasesMatch(tok, Cases.Value);
        Assert.Equal(702, tok.EosId);
        Assert.Equal(705, tok.VocabSize);
    }

    /// <summary>Ids from Hugging Face tokenizers 0.23.2 (the Rust library, through its Node binding) for the fixture's
    /// tokenizer.json: characters outside the BMP, case-insensitive contractions, whitespace runs.</summary>
    [Theory]
    [InlineData("𠀀abc", new[] { 172, 254, 222, 222, 364, 66 })] // CJK Extension B letter: one \p{L}+ piece with "abc"
    [InlineData(" 𠀀", new[] { 220, 172, 254, 222, 222 })]
    [InlineData("x'𠀀", new[] { 87, 6, 172, 254, 222, 222 })]
    [InlineData("1𝟏", new[] { 16, 172, 251, 253, 237 })]          // a supplementary digit is one \p{N} piece
    [InlineData(" 𝟏2", new[] { 220, 172, 251, 253, 237, 17 })]
    [InlineData("𝐀𝐁 𝐂", new[] { 172, 251, 238, 222, 172, 251, 238, 223, 220, 172, 251, 238, 224 })]
    [InlineData("x🙂🙂", new[] { 87, 172, 253, 247, 224, 172, 253, 247, 224 })]
    [InlineData("it's", new[] { 598, 554 })]
    [InlineData("x'st", new[] { 87, 554, 83 })]
    [InlineData("IT'S", new[] { 40, 51, 6, 50 })]
    [InlineData("e\u0301<image>\u0301", new[] { 399, 703, 136, 223 })] // NFC per segment: "é", then a lone accent
    [InlineData("a\u00A0b", new[] { 64, 126, 254, 65 })]
    [InlineData("\r\n\r\n", new[] { 201, 198, 201, 198 })]
    public void MatchesHfTokenizersOnSupplementaryCharactersAndWhitespace(string text, int[] ids)
    {
        Assert.Equal(ids, Shared.Value.Encode(text));
    }

    [Theory]
    [InlineData("lll", new[] { 355, 75 })] // equal ranks: the leftmost pair merges first ("ll", "l"), as in tokenizers
    [InlineData("llll", new[] { 355, 355 })]
    [InlineData("Well, lll", new[] { 54, 576, 11, 260, 355 })]
    public void EqualRankMergesGoLeftmostFirst(string text, int[] ids) => Assert.Equal(ids, Shared.Value.Encode(text));

    /// <summary>Ids from tokenizers 0.23.2 with two merges appended, "Ģ a" (the last UTF-8 byte of 𠀀 with "a") and
    /// "a a", whose tokens take ids 700 and 701 (the added tokens move up by two).</summary>
    [Theory]
    [InlineData("𠀀a", new[] { 172, 254, 222, 700 })] // one piece: a regex on UTF-16 would cut "a" off as a piece of its own
    [InlineData("x𠀀a", new[] { 87, 172, 254, 222, 700 })]
    [InlineData("aaa", new[] { 701, 64 })]
    [InlineData("aaaaa", new[] { 701, 701, 64 })]
    [InlineData(" aaa", new[] { 261, 701 })]
    [InlineData("<image>aaa", new[] { 705, 701, 64 })]
    public void MergesApplyAcrossSupplementaryCharactersAndLeftmostFirst(string text, int[] ids)
    {
        using var dir = new TempCheckpoint(tokenizerJson: j =>
        {
            var model = j["model"]!;
            model["vocab"]!["Ģa"] = 700;
            model["vocab"]!["aa"] = 701;
            model["merges"]!.AsArray().Add(new JsonArray("Ģ", "a"));
            model["merges"]!.AsArray().Add(new JsonArray("a", "a"));
            foreach (var t in j["added_tokens"]!.AsArray()) t!["id"] = t["id"]!.GetValue<int>() + 2;
        });
        Assert.Equal(ids, ByteLevelBpeTokenizer.Load(dir.Path).Encode(text));
    }

    /// <summary>Pieces from tokenizers 0.23.2's pre_tokenize_str with Qwen2's pre-tokenizer (mapped back from bytes):
    /// Oniguruma matches code points, and its (?i) folds "ſ" to s.</summary>
    [Theory]
    [InlineData("x'ſt", new[] { "x", "'ſ", "t" })]
    [InlineData("x'st", new[] { "x", "'s", "t" })]
    [InlineData("𠀀abc", new[] { "𠀀abc" })]
    [InlineData("𝟏𝟐3", new[] { "𝟏", "𝟐", "3" })]
    [InlineData("a  \u00A0b", new[] { "a", "  ", "\u00A0b" })]
    [InlineData("x\u2028y", new[] { "x", "\u2028y" })]
    [InlineData("\u0085z", new[] { "\u0085z" })]
    public void Qwen2PatternSplitsLikeTokenizers(string text, string[] pieces)
    {
        var split = new List<string>();
        new SplitStep(ByteLevelBpeFiles.CompilePattern(ByteLevelBpeFiles.Qwen2Pattern, "Qwen2")).Split(text, split);
        Assert.Equal(pieces, split);
    }

    /// <summary>Ids from tokenizers 0.23.2 with GPT-2's pre-tokenizer instead (a plain ByteLevel with use_regex, no
    /// normalizer), without and with add_prefix_space, and a merge "a 1" that only the split keeps from applying
    /// (its token takes id 700, the added tokens move up by one).</summary>
    [Theory]
    [InlineData(false, "Hello world", new[] { 39, 576, 78, 266, 430, 75, 67 })]
    [InlineData(false, "I'm 12345 e\u0301 DON'T", new[] { 40, 550, 220, 16, 17, 18, 19, 20, 329, 136, 223, 220, 35, 46, 45, 6, 51 })]
    [InlineData(false, "x  \n  y", new[] { 87, 220, 220, 198, 220, 318 })]
    [InlineData(false, "<image>hi", new[] { 704, 347 })]
    [InlineData(false, "𠀀a𝟏𝟐", new[] { 172, 254, 222, 222, 64, 172, 251, 253, 237, 172, 251, 253, 238 })]
    [InlineData(true, "Hello world", new[] { 220, 39, 576, 78, 266, 430, 75, 67 })]
    [InlineData(true, "I'm 12345 e\u0301 DON'T", new[] { 330, 550, 220, 16, 17, 18, 19, 20, 329, 136, 223, 220, 35, 46, 45, 6, 51 })]
    [InlineData(true, "<image>hi", new[] { 704, 293, 72 })]
    [InlineData(false, "a1 ba1", new[] { 64, 16, 264, 64, 16 })]
    [InlineData(true, "a1 ba1", new[] { 261, 16, 264, 64, 16 })]
    public void Gpt2PreTokenizerMatchesHfTokenizers(bool addPrefixSpace, string text, int[] ids)
    {
        using var dir = new TempCheckpoint(tokenizerJson: j =>
        {
            j["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = addPrefixSpace, ["trim_offsets"] = true, ["use_regex"] = true };
            j["normalizer"] = null;
            j["model"]!["vocab"]!["a1"] = 700;
            j["model"]!["merges"]!.AsArray().Add(new JsonArray("a", "1"));
            foreach (var t in j["added_tokens"]!.AsArray()) t!["id"] = t["id"]!.GetValue<int>() + 1;
        });
        Assert.Equal(ids, ByteLevelBpeTokenizer.Load(dir.Path).Encode(text));
    }

    [Fact]
    public void ANormalizerSequenceOfNfcIsNfc()
    {
        using var dir = new TempCheckpoint(tokenizerJson: j => j["normalizer"] = JsonNode.Parse("""{"type": "Sequence", "normalizers": [{"type": "NFC"}]}"""));
        AssertAllCasesMatch(ByteLevelBpeTokenizer.Load(dir.Path), Cases.Value);
    }

    [Fact]
    public void ReadsTheCheckpointsSettings()
    {
        var tok = Shared.Value;
        Assert.Equal(702, tok.EosId); // tokenizer_config.json: eos_token "<|im_end|>"
        Assert.Equal(705, tok.VocabSize);
        Assert.Equal(703, tok.TokenId("<image>"));
        Assert.Equal(700, tok.TokenId("<|endoftext|>"));
        Assert.Equal(220, tok.TokenId("Ġ"));
        Assert.Null(tok.TokenId("<pad>"));
        Assert.Empty(tok.Encode("")); // no BOS: add_bos_token false
        Assert.Equal(tok.Encode("Hello"), tok.Encode("Hello", addSpecialTokens: false));
    }

    [Fact]
    public void DecodeRoundTripsToTheNfcText()
    {
        using var dir = new TempCheckpoint(withTokenizerJson: false);
        foreach (var tok in new[] { Shared.Value, ByteLevelBpeTokenizer.Load(dir.Path) })
            foreach (var text in Cases.Value.Select(c => c.Text).Append("e\u0301 \U00020000\U0001D7CF 🙂 ǅ"))
                Assert.Equal(text.Normalize(NormalizationForm.FormC), tok.Decode(tok.Encode(text)));
    }

    [Fact]
    public void DecodeSkipsSpecialTokensAndUnknownIdsAndReplacesInvalidUtf8()
    {
        var tok = Shared.Value;
        var chat = Cases.Value[^2];
        Assert.Equal(chat.Text, tok.Decode(chat.Ids));
        Assert.Equal("system\nYou are a helpful assistant.\nuser\n\nWhat is in the picture?\nassistant\n", tok.Decode(chat.Ids, skipSpecialTokens: true));
        Assert.Equal("ab", tok.Decode([64, 9999, -1, 65]));
        int[] smile = [172, 253, 247, 224]; // 🙂 = F0 9F 99 82, one byte per token
        Assert.Equal("🙂", tok.Decode(smile));
        Assert.Equal("\uFFFD", tok.Decode(smile[..3]));       // a truncated character is one U+FFFD, as Python's errors="replace"
        // More from tokenizers 0.23.2: lone continuation bytes are one U+FFFD each; a lead byte cut short by another
        // lead byte is one; "æĹ" alone is the first two bytes of "日".
        Assert.Equal("x\uFFFDy", tok.Decode([87, 172, 88]));
        Assert.Equal("\uFFFD\uFFFD", tok.Decode([253, 247]));
        Assert.Equal("\uFFFDÆ", tok.Decode([127, 127, 228]));
        Assert.Equal("\uFFFD", tok.Decode([568]));
        Assert.Equal("日", tok.Decode([568, 98]));
    }

    [Fact]
    public void TokenStringAndTokenText()
    {
        var tok = Shared.Value;
        Assert.Equal("Ġ", tok.TokenString(220));
        Assert.Equal(" ", tok.TokenText(220));
        Assert.Equal("Ċ", tok.TokenString(198));
        Assert.Equal("\n", tok.TokenText(198));
        Assert.Equal("Ã©", tok.TokenString(399)); // "é" = C3 A9: a whole character
        Assert.Equal("é", tok.TokenText(399));
        Assert.Equal("æĹ", tok.TokenString(568)); // the first two bytes of "日" (E6 97 A5)
        Assert.Equal("<0xE6><0x97>", tok.TokenText(568));
        Assert.Equal("ð", tok.TokenString(172));
        Assert.Equal("<0xF0>", tok.TokenText(172));
        Assert.Equal("<|im_end|>", tok.TokenString(702));
        Assert.Equal("<|im_end|>", tok.TokenText(702));
        Assert.Equal("<id:705>", tok.TokenString(705));
        Assert.Equal("<id:-1>", tok.TokenText(-1));
    }

    [Fact]
    public void LoneSurrogatesEncodeAsTheReplacementCharacter()
    {
        var tok = Shared.Value;
        Assert.Equal(tok.Encode("a\uFFFDb\uFFFD"), tok.Encode("a\uD800b\uDC00"));
    }

    /// <summary>Ids from tokenizers 0.23.2 with four added tokens more: "dog" single_word, "é!" normalized
    /// (written decomposed, so it matches only after NFC), "&lt;pad&gt;" lstrip + rstrip, "&lt;|im" (a prefix of
    /// "&lt;|im_start|&gt;": the longest match wins).</summary>
    [Theory]
    [InlineData("a dog sat", new[] { 64, 220, 705, 258, 278 })]
    [InlineData("(dog)", new[] { 7, 705, 8 })]
    [InlineData("-dog-", new[] { 12, 705, 12 })]
    [InlineData("hotdogs", new[] { 349, 83, 67, 437, 82 })]
    [InlineData("dog_", new[] { 67, 437, 62 })]
    [InlineData("日dog", new[] { 568, 98, 67, 437 })]
    [InlineData("𠀀dog", new[] { 172, 254, 222, 222, 67, 437 })]
    [InlineData("dog\u0301", new[] { 67, 78, 131, 113 })]
    [InlineData("xé!y", new[] { 87, 706, 88 })]
    [InlineData("xe\u0301!y", new[] { 87, 706, 88 })]
    [InlineData("a  <pad>  b", new[] { 64, 707, 65 })]
    [InlineData("a<pad>\n<pad> b", new[] { 64, 707, 707, 65 })]
    [InlineData("<|im_start|>x", new[] { 701, 87 })]
    [InlineData("<|im_x", new[] { 708, 62, 87 })]
    [InlineData("a<|im<|im_end|>", new[] { 64, 708, 702 })]
    public void AddedTokenFlagsMatchHfTokenizers(string text, int[] ids)
    {
        using var dir = new TempCheckpoint(tokenizerJson: WithExtraAddedTokens);
        var tok = ByteLevelBpeTokenizer.Load(dir.Path);
        Assert.Equal(ids, tok.Encode(text));
        // HF decodes a token through the byte-level alphabet when it can: "é!" is the bytes E9 21, invalid UTF-8.
        Assert.Equal("<image>a<pad>\uFFFD!<|endoftext|>", tok.Decode([703, 64, 707, 706, 700]));
        Assert.Equal("a\uFFFD!", tok.Decode([703, 64, 707, 706, 700], skipSpecialTokens: true));
    }

    /// <summary>The added tokens of the "flags" fuzz cases (tools/fixtures/make_qwen_tokenizer_fuzz.js).</summary>
    private static void WithExtraAddedTokens(JsonObject tokenizerJson)
    {
        var added = tokenizerJson["added_tokens"]!.AsArray();
        added.Add(JsonNode.Parse("""{"id": 705, "content": "dog", "single_word": true, "lstrip": false, "rstrip": false, "normalized": false, "special": false}"""));
        added.Add(JsonNode.Parse("""{"id": 706, "content": "e\u0301!", "single_word": false, "lstrip": false, "rstrip": false, "normalized": true, "special": false}"""));
        added.Add(JsonNode.Parse("""{"id": 707, "content": "<pad>", "single_word": false, "lstrip": true, "rstrip": true, "normalized": false, "special": true}"""));
        added.Add(JsonNode.Parse("""{"id": 708, "content": "<|im", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": false}"""));
    }

    /// <summary>400 random strings of tricky pieces per tokenizer, ids and decoded text from tokenizers 0.23.2.</summary>
    [Theory]
    [InlineData("plain")]
    [InlineData("flags")]
    public void EveryFuzzCaseMatchesHfTokenizers(string set)
    {
        var cases = JsonNode.Parse(File.ReadAllText(Path.Combine(Families, "qwen_tokenizer_fuzz_cases.json")))![set]!.AsArray();
        Assert.Equal(400, cases.Count);
        using var dir = new TempCheckpoint(tokenizerJson: set == "flags" ? WithExtraAddedTokens : null);
        var tok = ByteLevelBpeTokenizer.Load(dir.Path);
        AssertAllCasesMatch(tok, cases.Select(c => new Case(c!["text"]!.GetValue<string>(), c["ids"]!.AsArray().Select(i => i!.GetValue<int>()).ToArray())));
        var badDecodes = cases.Where(c => tok.Decode(c!["ids"]!.AsArray().Select(i => i!.GetValue<int>())) != c!["decoded"]!.GetValue<string>())
            .Select(c => Show(c!["text"]!.GetValue<string>())).ToList();
        Assert.True(badDecodes.Count == 0, "decode differs for " + string.Join(", ", badDecodes));
    }

    [Fact]
    public void AddedTokenIdsAreTheOnesTokenizersAssigns()
    {
        // tokenizers ignores an added token's "id" when the content is in the vocabulary ("cat" is 619).
        using var dir = new TempCheckpoint(tokenizerJson: j => j["added_tokens"]!.AsArray().Add(JsonNode.Parse(
            """{"id": 705, "content": "cat", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}""")));
        var tok = ByteLevelBpeTokenizer.Load(dir.Path);
        Assert.Equal(619, tok.TokenId("cat"));
        Assert.Equal([64, 619, 65], tok.Encode("acatb"));
        Assert.Equal(705, tok.VocabSize);
    }

    [Fact]
    public void SpecialTokensComeFromTheConfigOrElseThePostProcessor()
    {
        using (var dir = new TempCheckpoint(config: c => { c["add_bos_token"] = true; c["bos_token"] = "<|im_start|>"; c["add_eos_token"] = true; }))
            Assert.Equal([701, 39, 576, 78, 702], ByteLevelBpeTokenizer.Load(dir.Path).Encode("Hello"));

        // Without add_bos_token / add_eos_token in the config, tokenizer.json's post-processor decides.
        var template = JsonNode.Parse("""
            {"type": "Sequence", "processors": [
              {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
              {"type": "TemplateProcessing",
               "single": [{"SpecialToken": {"id": "<|im_start|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                          {"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}],
               "pair": [],
               "special_tokens": {"<|im_start|>": {"id": "<|im_start|>", "ids": [701], "tokens": ["<|im_start|>"]},
                                  "<|endoftext|>": {"id": "<|endoftext|>", "ids": [700], "tokens": ["<|endoftext|>"]}}}]}
            """);
        using (var dir = new TempCheckpoint(tokenizerJson: j => j["post_processor"] = template, config: c => c.Remove("add_bos_token")))
        {
            var tok = ByteLevelBpeTokenizer.Load(dir.Path);
            Assert.Equal([701, 39, 576, 78, 700], tok.Encode("Hello"));
            Assert.Equal([39, 576, 78], tok.Encode("Hello", addSpecialTokens: false));
        }
    }

    [Fact]
    public void MergesMayBeArraysOrStrings()
    {
        using var dir = new TempCheckpoint(tokenizerJson: j =>
        {
            var model = j["model"]!.AsObject();
            model["merges"] = new JsonArray(model["merges"]!.AsArray().Select(m => (JsonNode)JsonValue.Create($"{m![0]} {m[1]}")).ToArray());
        });
        AssertAllCasesMatch(ByteLevelBpeTokenizer.Load(dir.Path), Cases.Value);
    }

    [Fact]
    public void SupplementaryStandInsHaveTheirCategories()
    {
        for (int c = 0; c < CodePointRegex.StandIns.Length; c++)
            if ((UnicodeCategory)c != UnicodeCategory.Surrogate)
                Assert.Equal((UnicodeCategory)c, CharUnicodeInfo.GetUnicodeCategory(CodePointRegex.StandIns[c]));
        Assert.Equal(30, CodePointRegex.StandIns.Length);
    }

    [Fact]
    public void MissingFilesAreClearErrors()
    {
        Assert.Throws<DirectoryNotFoundException>(() => ByteLevelBpeTokenizer.Load(Path.Combine(Checkpoint, "nope")));
        using var dir = new TempCheckpoint(withTokenizerJson: false);
        File.Delete(Path.Combine(dir.Path, "merges.txt"));
        var e = Assert.Throws<FileNotFoundException>(() => ByteLevelBpeTokenizer.Load(dir.Path));
        Assert.Contains("merges.txt", e.Message);
    }

    [Theory]
    [InlineData("tokenizer.json")]
    [InlineData("tokenizer_config.json")]
    public void CorruptJsonIsAClearError(string file)
    {
        using var dir = new TempCheckpoint();
        File.WriteAllText(Path.Combine(dir.Path, file), "{\"added_tokens\": [");
        var e = Assert.Throws<InvalidDataException>(() => ByteLevelBpeTokenizer.Load(dir.Path));
        Assert.Contains(file, e.Message);
    }

    [Theory]
    [InlineData("normalizer", """{"type": "NFKC"}""", "normalizer 'NFKC'")]
    [InlineData("normalizer", """{"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Lowercase"}]}""", "normalizer 'Lowercase'")]
    [InlineData("pre_tokenizer", """{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false}""", "pre-tokenizer 'Metaspace'")]
    [InlineData("pre_tokenizer", """{"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Removed", "invert": false}""", "behavior 'Removed'")]
    [InlineData("pre_tokenizer", """{"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "\\p{L}++"}, "behavior": "Isolated", "invert": false}, {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}]}""", "split pattern not supported")]
    [InlineData("pre_tokenizer", """{"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Isolated", "invert": false}""", "must end with its one ByteLevel")]
    [InlineData("decoder", """{"type": "Metaspace", "replacement": "▁"}""", "decoder 'Metaspace'")]
    [InlineData("post_processor", """{"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0]}""", "post-processor 'RobertaProcessing'")]
    public void UnsupportedSettingsAreClearErrors(string key, string json, string expected)
    {
        using var dir = new TempCheckpoint(tokenizerJson: j => j[key] = JsonNode.Parse(json), config: c => c.Remove("add_bos_token"));
        var e = Assert.Throws<InvalidDataException>(() => ByteLevelBpeTokenizer.Load(dir.Path));
        Assert.Contains("tokenizer.json", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Theory]
    [InlineData("byte_fallback", "true", "byte_fallback")]
    [InlineData("type", "\"Unigram\"", "model type 'Unigram'")]
    [InlineData("dropout", "0.1", "dropout")]
    [InlineData("continuing_subword_prefix", "\"##\"", "continuing_subword_prefix")]
    [InlineData("unk_token", "\"<unk>\"", "unk_token \"<unk>\"")]
    public void UnsupportedModelsAreClearErrors(string key, string value, string expected)
    {
        using var dir = new TempCheckpoint(tokenizerJson: j => j["model"]![key] = JsonNode.Parse(value));
        var e = Assert.Throws<InvalidDataException>(() => ByteLevelBpeTokenizer.Load(dir.Path));
        Assert.Contains("tokenizer.json", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void BrokenMergesAreClearErrors()
    {
        using (var dir = new TempCheckpoint(tokenizerJson: j => j["model"]!["merges"]!.AsArray().Add(JsonNode.Parse("""["q", "zz"]"""))))
            Assert.Contains("\"q zz\" uses \"zz\"", Assert.Throws<InvalidDataException>(() => ByteLevelBpeTokenizer.Load(dir.Path)).Message);
        using (var dir = new TempCheckpoint(withTokenizerJson: false))
        {
            File.AppendAllText(Path.Combine(dir.Path, "merges.txt"), "a b c\n");
            var e = Assert.Throws<InvalidDataException>(() => ByteLevelBpeTokenizer.Load(dir.Path));
            Assert.Contains("merges.txt", e.Message);
            Assert.Contains("\"a b c\"", e.Message);
        }
    }

    [Fact]
    public void VocabAndMergesNeedAQwen2Config()
    {
        using var dir = new TempCheckpoint(withTokenizerJson: false, config: c => c["tokenizer_class"] = "GPT2Tokenizer");
        var e = Assert.Throws<InvalidDataException>(() => ByteLevelBpeTokenizer.Load(dir.Path));
        Assert.Contains("tokenizer_config.json", e.Message);
        Assert.Contains("GPT2Tokenizer", e.Message);
    }

    [Fact]
    public void TokenizerLoaderPicksTheImplementation()
    {
        Assert.IsType<LlavaTokenizer>(TokenizerLoader.Load(Path.Combine(AppContext.BaseDirectory, "Fixtures", "hf", "tiny-llava")));
        Assert.IsType<LlavaTokenizer>(TokenizerLoader.Load(Path.Combine(Families, "tiny-next-mistral")));
        var qwen = Assert.IsType<ByteLevelBpeTokenizer>(TokenizerLoader.Load(Checkpoint));
        Assert.Equal(Cases.Value[0].Ids, qwen.Encode(Cases.Value[0].Text));
        using (var dir = new TempCheckpoint(withTokenizerJson: false))
            Assert.IsType<ByteLevelBpeTokenizer>(TokenizerLoader.Load(dir.Path));
        using (var dir = new TempCheckpoint()) // a tokenizer.model beside a byte-level tokenizer.json is not what HF runs
        {
            File.Copy(Path.Combine(AppContext.BaseDirectory, "Fixtures", "hf", "tiny-llava", "tokenizer.model"), Path.Combine(dir.Path, "tokenizer.model"));
            Assert.IsType<ByteLevelBpeTokenizer>(TokenizerLoader.Load(dir.Path));
        }

        var empty = Directory.CreateTempSubdirectory("attnportal-tok-").FullName;
        try
        {
            var e = Assert.Throws<FileNotFoundException>(() => TokenizerLoader.Load(empty));
            foreach (var file in new[] { "tokenizer.model", "tokenizer.json", "vocab.json", "merges.txt" }) Assert.Contains(file, e.Message);
        }
        finally { Directory.Delete(empty); }
        Assert.Throws<DirectoryNotFoundException>(() => TokenizerLoader.Load(Path.Combine(empty, "nope")));
    }

    /// <summary>
    /// A temporary copy of tiny-onevision's tokenizer files, with optional edits. Without tokenizer.json the added
    /// tokens come from tokenizer_config.json's added_tokens_decoder, which transformers 4 writes (and Qwen2
    /// checkpoints have) but the fixture's transformers 5 config lacks: it is filled in from tokenizer.json.
    /// </summary>
    private sealed class TempCheckpoint : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("attnportal-tok-").FullName;

        public TempCheckpoint(Action<JsonObject>? tokenizerJson = null, Action<JsonObject>? config = null, bool withTokenizerJson = true)
        {
            foreach (var f in new[] { "tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json" })
                if (f != "tokenizer.json" || withTokenizerJson)
                    File.Copy(System.IO.Path.Combine(Checkpoint, f), System.IO.Path.Combine(Path, f));
            Edit("tokenizer.json", tokenizerJson);
            if (!withTokenizerJson)
                Edit("tokenizer_config.json", c => c["added_tokens_decoder"] = new JsonObject(
                    JsonNode.Parse(File.ReadAllText(System.IO.Path.Combine(Checkpoint, "tokenizer.json")))!["added_tokens"]!.AsArray()
                        .Select(t => KeyValuePair.Create(t!["id"]!.ToJsonString(), (JsonNode?)JsonNode.Parse(t.ToJsonString())))));
            Edit("tokenizer_config.json", config);
        }

        private void Edit(string file, Action<JsonObject>? edit)
        {
            if (edit is null) return;
            string p = System.IO.Path.Combine(Path, file);
            var j = JsonNode.Parse(File.ReadAllText(p))!.AsObject();
            edit(j);
            File.WriteAllText(p, j.ToJsonString());
        }

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
