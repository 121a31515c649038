using System.Text.Json;

namespace AttnPortal.Inference.Text;

/// <summary>Picks the tokenizer implementation a checkpoint directory's files call for.</summary>
public static class TokenizerLoader
{
    /// <summary>
    /// SentencePiece (<see cref="LlavaTokenizer"/>) when the directory has tokenizer.model, unless its tokenizer.json
    /// is byte-level (a tokenizer.model beside that is not what transformers runs); else byte-level BPE
    /// (<see cref="ByteLevelBpeTokenizer"/>) from tokenizer.json or vocab.json + merges.txt.
    /// </summary>
    public static ITokenizer Load(string dir)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"{dir}: checkpoint directory not found");
        bool Has(string file) => File.Exists(Path.Combine(dir, file));
        if (Has("tokenizer.model") && !(Has("tokenizer.json") && IsByteLevel(Path.Combine(dir, "tokenizer.json"))))
            return LlavaTokenizer.Load(dir);
        if (Has("tokenizer.json") || Has("vocab.json") && Has("merges.txt"))
            return ByteLevelBpeTokenizer.Load(dir);
        throw new FileNotFoundException(
            $"{dir}: no tokenizer found (looked for tokenizer.model, tokenizer.json, and vocab.json with merges.txt)", Path.Combine(dir, "tokenizer.json"));
    }

    /// <summary>Whether tokenizer.json's pre-tokenizer has a ByteLevel step: the mark of byte-level BPE, which a
    /// SentencePiece conversion (Metaspace, byte_fallback) never has. A file that does not parse is not.</summary>
    private static bool IsByteLevel(string tokenizerJson)
    {
        try
        {
            using var stream = File.OpenRead(tokenizerJson);
            using var doc = JsonDocument.Parse(stream);
            if (!doc.RootElement.TryGetProperty("pre_tokenizer", out var pre) || pre.ValueKind != JsonValueKind.Object) return false;
            var steps = pre.TryGetProperty("pretokenizers", out var list) && list.ValueKind == JsonValueKind.Array ? list.EnumerateArray().ToArray() : [pre];
            return steps.Any(s => s.ValueKind == JsonValueKind.Object && s.TryGetProperty("type", out var t) && t.ValueEquals("ByteLevel"));
        }
        catch (JsonException) { return false; }
    }
}
