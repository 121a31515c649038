using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using AttnPortal.Inference.Checkpoints;
using AttnPortal.Inference.Text;
using Xunit;

namespace AttnPortal.Tests;

public class TokenizerTests
{
    private static readonly string Hf = Path.Combine(AppContext.BaseDirectory, "Fixtures", "hf");
    private static readonly string Checkpoint = Path.Combine(Hf, "tiny-llava");
    private static readonly string[] TokenizerFileNames = ["tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"];
    private static readonly Lazy<LlavaTokenizer> Shared = new(() => LlavaTokenizer.Load(Checkpoint));

    public sealed record Case(string Text, int[] Ids, int[] SentencePieceIds);

    private static readonly Lazy<Case[]> Cases = new(() =>
    {
        var root = JsonNode.Parse(File.ReadAllText(Path.Combine(Hf, "tokenizer_cases.json")))!;
        return root["cases"]!.AsArray().Select(c => new Case(
            c!["text"]!.GetValue<string>(),
            c["ids"]!.AsArray().Select(i => i!.GetValue<int>()).ToArray(),
            c["sentencepiece_ids"]!.AsArray().Select(i => i!.GetValue<int>()).ToArray())).ToArray();
    });

    private static Case CaseOf(string text) => Cases.Value.Single(c => c.Text == text);
    private static string Show(string s) => JsonSerializer.Serialize(s);
    private static string Show(IEnumerable<int> ids) => "[" + string.Join(", ", ids) + "]";

    [Fact]
    public void EveryFixtureCaseGivesHfIds()
    {
        var tok = Shared.Value;
        Assert.Equal(28, Cases.Value.Length);
        var mismatches = Cases.Value
            .Select(c => (c, got: tok.Encode(c.Text).ToArray()))
            .Where(x => !x.got.SequenceEqual(x.c.Ids))
            .Select(x => $"{Show(x.c.Text)}: expected {Show(x.c.Ids)}, got {Show(x.got)}")
            .ToList();
        Assert.True(mismatches.Count == 0, string.Join("\n", mismatches));
    }

    [Fact]
    public void ReadsTheCheckpointsSettings()
    {
        var tok = Shared.Value;
        Assert.Equal(PrefixSpace.First, tok.Prefix);
        Assert.False(tok.SplitOnMarker);
        Assert.True(tok.AddsBos);
        Assert.False(tok.AddsEos);
        Assert.Equal(1, tok.BosId);
        Assert.Equal(2, tok.EosId);
        Assert.Equal(0, tok.UnkId);
        Assert.Equal(601, tok.PadId);
        Assert.Equal(600, tok.TokenId("<image>"));
        Assert.Equal(13, tok.TokenId("<0x0A>"));
        Assert.Null(tok.TokenId("<video>"));
        Assert.Equal(602, tok.VocabSize);
        Assert.Equal([1], tok.Encode(""));
        Assert.Empty(tok.Encode("", addSpecialTokens: false));
    }

    [Fact]
    public void DecodeRoundTripsTextThatDoesNotStartWithWhitespace()
    {
        var tok = Shared.Value;
        foreach (var c in Cases.Value.Where(c => c.Text.Length > 0 && c.Text[0] != ' '))
        {
            Assert.Equal(c.Text, tok.Decode(tok.Encode(c.Text, addSpecialTokens: false)));
        }
    }

    [Fact]
    public void DecodeFollowsHfAroundSpecialTokensAndLeadingSpaces()
    {
        var tok = Shared.Value;
        // HF: tokens "<s>", "▁Hello", ... fuse to "<s> Hello world"; only a space at the very start is stripped.
        Assert.Equal("<s> Hello world", tok.Decode(CaseOf("Hello world").Ids));
        Assert.Equal("Hello world", tok.Decode(CaseOf("Hello world").Ids, skipSpecialTokens: true));
        Assert.Equal("Hello world", tok.Decode(CaseOf(" Hello world").Ids, skipSpecialTokens: true)); // lost, as in HF
        Assert.Equal(" two leading spaces", tok.Decode(CaseOf("  two leading spaces").Ids, skipSpecialTokens: true));
        Assert.Equal("", tok.Decode([640, 9999, -1])); // ids the tokenizer does not know are skipped, as in HF
    }

    [Theory]
    [InlineData("wide-pad")]
    [InlineData("tall-crop")]
    public void DecodeAndTokenStringsMatchHfGeneration(string run)
    {
        var tok = Shared.Value;
        var meta = JsonNode.Parse(File.ReadAllText(Path.Combine(Hf, "runs", run + ".json")))!;
        int[] generated = ReadIds(Path.Combine(Hf, "runs", run + ".safetensors"), "generated_ids").Select(v => checked((int)v)).ToArray();
        // tall-crop generates an id past the tokenizer (the model's vocabulary is padded, as llava-1.5's is): HF names
        // it null and leaves it out of the decoded text; we show a placeholder.
        Assert.Equal(meta["generated_text"]!.GetValue<string>(), tok.Decode(generated));
        var hfTokens = meta["generated_tokens"]!.AsArray().Select((t, i) => t?.GetValue<string>() ?? $"<id:{generated[i]}>");
        Assert.Equal(hfTokens, generated.Select(tok.TokenString));
    }

    [Theory]
    [InlineData("wide-pad", "What is in the picture?")]
    [InlineData("tall-crop", "  Describe  the image ,please.")]
    public void TemplatedAndExpandedPromptGivesHfInputIds(string run, string question)
    {
        var tok = Shared.Value;
        var meta = JsonNode.Parse(File.ReadAllText(Path.Combine(Hf, "runs", run + ".json")))!;
        string prompt = LlavaPrompt.Llava15(question);
        Assert.Equal(meta["prompt"]!.GetValue<string>(), prompt);

        var ids = LlavaPrompt.ExpandImageTokens(tok.Encode(prompt), tok.TokenId(LlavaPrompt.ImageToken)!.Value, 576, out int imageStart);
        long[] hfIds = ReadIds(Path.Combine(Hf, "runs", run + ".safetensors"), "input_ids");
        Assert.Equal(hfIds, ids);
        Assert.All(ids[imageStart..(imageStart + 576)], id => Assert.Equal(600, id));
        Assert.Equal(576, ids.Count(id => id == 600));
    }

    [Fact]
    public void TokenStringAndTokenText()
    {
        var tok = Shared.Value;
        Assert.Equal("<0x0A>", tok.TokenString(13));
        Assert.Equal("\n", tok.TokenText(13));
        int e3 = tok.TokenId("<0xE3>")!.Value; // a lead byte of a 3-byte character: not text on its own
        Assert.Equal("<0xE3>", tok.TokenString(e3));
        Assert.Equal("<0xE3>", tok.TokenText(e3));
        Assert.Equal("▁", tok.TokenString(520));
        Assert.Equal(" ", tok.TokenText(520));
        Assert.Equal("<image>", tok.TokenString(600));
        Assert.Equal("<image>", tok.TokenText(600));
        Assert.Equal("<s>", tok.TokenText(1));
        Assert.Equal("<id:640>", tok.TokenString(640)); // the model's vocabulary (640) is padded past the tokenizer's (602)
        Assert.Equal("<id:640>", tok.TokenText(640));
        Assert.Equal("<id:-1>", tok.TokenString(-1));
    }

    [Fact]
    public void LegacyTokenizerJsonPrefixesEverySegment()
    {
        using var dir = new TempCheckpoint(tokenizerJson: j =>
        {
            j["normalizer"] = JsonNode.Parse("""
                {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"},
                 {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}
                """);
            j["pre_tokenizer"] = null;
        });
        var tok = LlavaTokenizer.Load(dir.Path);
        Assert.Equal(PrefixSpace.Legacy, tok.Prefix);

        // The segment after <image> now gets "▁": "\n" encodes as SentencePiece encodes "\n" on its own.
        var hf = CaseOf("<image>\nWhat is this?").Ids; // [1, 600, 13, rest...]
        Assert.Equal([1, 600, .. CaseOf("\n").SentencePieceIds, .. hf[3..]], tok.Encode("<image>\nWhat is this?"));
        // Text without added tokens is one segment and encodes exactly as SentencePiece does (" Hello" too).
        foreach (var c in Cases.Value.Where(c => c.Ids.Skip(1).All(id => id < 600 && id > 2)))
            Assert.True(c.SentencePieceIds.SequenceEqual(tok.Encode(c.Text, addSpecialTokens: false)), Show(c.Text));
        // The segment after a special token in the middle too: "▁x▁", then "▁▁y" as SentencePiece encodes " y".
        Assert.Equal([.. tok.Encode("x ", false), 600, .. tok.Encode(" y", false)], tok.Encode("x <image> y", false));
    }

    [Theory]
    [InlineData(null, PrefixSpace.Legacy)]
    [InlineData(true, PrefixSpace.Legacy)]
    [InlineData(false, PrefixSpace.First)]
    public void WithoutTokenizerJsonTheLegacyFlagDecides(bool? legacy, PrefixSpace expected)
    {
        using var dir = new TempCheckpoint(withTokenizerJson: false, config: c =>
        {
            if (legacy is { } l) c["legacy"] = l;
            // transformers 4 configs list the added tokens here
            c["added_tokens_decoder"] = JsonNode.Parse("""
                {"600": {"content": "<image>", "special": true, "lstrip": false, "rstrip": false, "normalized": false, "single_word": false},
                 "601": {"content": "<pad>", "special": true, "lstrip": false, "rstrip": false, "normalized": false, "single_word": false}}
                """);
        });
        var tok = LlavaTokenizer.Load(dir.Path);
        Assert.Equal(expected, tok.Prefix);
        Assert.Equal(600, tok.TokenId("<image>"));
        Assert.Equal(601, tok.PadId);
        if (expected == PrefixSpace.First) // the non-legacy conversion is what the fixture's tokenizer.json holds
            foreach (var c in Cases.Value)
                Assert.True(c.Ids.SequenceEqual(tok.Encode(c.Text)), Show(c.Text));
    }

    [Fact]
    public void OlderCheckpointsListAddedTokensInAddedTokensJson()
    {
        using var dir = new TempCheckpoint(withTokenizerJson: false, config: c => c["legacy"] = false);
        File.WriteAllText(Path.Combine(dir.Path, "added_tokens.json"), """{"<image>": 600, "<pad>": 601}""");
        var tok = LlavaTokenizer.Load(dir.Path);
        Assert.Equal(CaseOf("<image>\nWhat is this?").Ids, tok.Encode("<image>\nWhat is this?"));
        Assert.Equal(601, tok.PadId);
        // Special only when the config names it (pad_token does, <image> is not named): skip_special_tokens keeps <image>.
        Assert.Equal("<image>\nHi", tok.Decode(tok.Encode("<image>\nHi<pad>"), skipSpecialTokens: true));
    }

    [Fact]
    public void LStripAndRStripTokensAbsorbTheWhitespaceBesideThem()
    {
        using var dir = new TempCheckpoint(tokenizerJson: j =>
        {
            var image = j["added_tokens"]!.AsArray().Single(t => t!["content"]!.GetValue<string>() == "<image>")!;
            image["lstrip"] = true;
            image["rstrip"] = true;
        });
        var tok = LlavaTokenizer.Load(dir.Path);
        Assert.Equal(Shared.Value.Encode("x<image>y"), tok.Encode("x \t<image>\n y"));
    }

    [Fact]
    public void AddEosTokenFromTheConfig()
    {
        using var dir = new TempCheckpoint(config: c => { c["add_bos_token"] = false; c["add_eos_token"] = true; });
        var tok = LlavaTokenizer.Load(dir.Path);
        Assert.Equal([.. CaseOf("Hello world").Ids[1..], 2], tok.Encode("Hello world"));
    }

    [Fact]
    public void TemplateAndImagePlaceholderRules()
    {
        Assert.Equal("USER: <image>\nWhat is this? ASSISTANT:", LlavaPrompt.Llava15("What is this?"));
        Assert.Equal("USER: Compare <image> with this. ASSISTANT:", LlavaPrompt.Llava15("Compare <image> with this."));
        Assert.Equal("USER: Hi ASSISTANT:", LlavaPrompt.Build("Hi", raw: false, hasImage: false));
        Assert.Equal("<image>\nDescribe it.", LlavaPrompt.Raw("Describe it."));
        Assert.Equal("Q: <image> A:", LlavaPrompt.Raw("Q: <image> A:"));
        Assert.Equal("just text", LlavaPrompt.Build("just text", raw: true, hasImage: false));

        Assert.Contains("question is empty", Assert.Throws<ArgumentException>(() => LlavaPrompt.Llava15("")).Message);
        Assert.Contains("question is empty", Assert.Throws<ArgumentException>(() => LlavaPrompt.Llava15(" \t\n")).Message);
        Assert.Contains("prompt is empty", Assert.Throws<ArgumentException>(() => LlavaPrompt.Raw("  ")).Message);
        Assert.Contains("2 <image> placeholders but one image", Assert.Throws<ArgumentException>(() => LlavaPrompt.Llava15("<image> vs <image>")).Message);
        Assert.Contains("2 <image> placeholders", Assert.Throws<ArgumentException>(() => LlavaPrompt.Raw("<image><image>")).Message);
        Assert.Contains("no image", Assert.Throws<ArgumentException>(() => LlavaPrompt.Build("<image>\nHi", raw: true, hasImage: false)).Message);
    }

    [Fact]
    public void ExpandImageTokens()
    {
        var ids = LlavaPrompt.ExpandImageTokens([1, 5, 600, 7, 8], imageTokenId: 600, imageTokenCount: 3, out int start);
        Assert.Equal([1L, 5, 600, 600, 600, 7, 8], ids);
        Assert.Equal(2, start);
        Assert.Contains("found 0", Assert.Throws<ArgumentException>(() => LlavaPrompt.ExpandImageTokens([1, 5], 600, 576, out _)).Message);
        Assert.Contains("found 2", Assert.Throws<ArgumentException>(() => LlavaPrompt.ExpandImageTokens([1, 600, 600], 600, 576, out _)).Message);
    }

    [Fact]
    public void MissingTokenizerModelIsAClearError()
    {
        using var dir = new TempCheckpoint();
        File.Delete(Path.Combine(dir.Path, "tokenizer.model"));
        var e = Assert.Throws<FileNotFoundException>(() => LlavaTokenizer.Load(dir.Path));
        Assert.Contains("tokenizer.model", e.Message);
        Assert.Equal(Path.Combine(dir.Path, "tokenizer.model"), e.FileName);
        Assert.Throws<DirectoryNotFoundException>(() => LlavaTokenizer.Load(Path.Combine(dir.Path, "nope")));
    }

    [Theory]
    [InlineData("this is not a SentencePiece model\n")]
    [InlineData("")]
    public void CorruptTokenizerModelIsAClearError(string content)
    {
        using var dir = new TempCheckpoint();
        File.WriteAllText(Path.Combine(dir.Path, "tokenizer.model"), content);
        var e = Assert.Throws<InvalidDataException>(() => LlavaTokenizer.Load(dir.Path));
        Assert.Contains("tokenizer.model", e.Message);
    }

    [Fact]
    public void TruncatedTokenizerModelIsAClearError()
    {
        using var dir = new TempCheckpoint();
        string path = Path.Combine(dir.Path, "tokenizer.model");
        byte[] bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<InvalidDataException>(() => LlavaTokenizer.Load(dir.Path));
        Assert.Contains("tokenizer.model", e.Message);
    }

    [Theory]
    [InlineData("tokenizer.json")]
    [InlineData("tokenizer_config.json")]
    public void CorruptJsonIsAClearError(string file)
    {
        using var dir = new TempCheckpoint();
        File.WriteAllText(Path.Combine(dir.Path, file), "{\"added_tokens\": [");
        var e = Assert.Throws<InvalidDataException>(() => LlavaTokenizer.Load(dir.Path));
        Assert.Contains(file, e.Message);
    }

    private static long[] ReadIds(string path, string name)
    {
        using var st = SafeTensorsFile.Open(path);
        var info = st.Tensors[name];
        Assert.Equal(SafeTensorDType.I64, info.DType);
        return MemoryMarshal.Cast<byte, long>(st.Bytes(info)).ToArray();
    }

    /// <summary>A temporary copy of the fixture checkpoint's tokenizer files, with optional edits.</summary>
    private sealed class TempCheckpoint : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("attnportal-tok-").FullName;

        public TempCheckpoint(Action<JsonObject>? tokenizerJson = null, Action<JsonObject>? config = null, bool withTokenizerJson = true)
        {
            foreach (var f in TokenizerFileNames)
                if (f != "tokenizer.json" || withTokenizerJson)
                    File.Copy(System.IO.Path.Combine(Checkpoint, f), System.IO.Path.Combine(Path, f));
            Edit("tokenizer.json", tokenizerJson);
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
