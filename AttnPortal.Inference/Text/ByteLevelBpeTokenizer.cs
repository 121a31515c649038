using System.Buffers;
using System.Collections.Concurrent;
using System.Text;

namespace AttnPortal.Inference.Text;

/// <summary>
/// The byte-level BPE tokenizer of a Qwen2 (LLaVA-OneVision) checkpoint, giving the same ids as Hugging Face
/// transformers / tokenizers. Encoding, as tokenizers runs it:
/// 1. the text is split on added tokens, matched literally, leftmost-longest: first those with normalized false in
///    the raw text, then, in each remaining segment after normalisation, those with normalized true;
///    lstrip/rstrip widen a match over the whitespace beside it, single_word skips a match inside a word;
/// 2. each remaining segment is normalised (NFC) and split by the pre-tokenizer (Qwen2: its regex, Isolated);
/// 3. each piece's UTF-8 bytes become GPT-2's byte characters ("Ġ" for a space) and BPE merges them, always
///    the adjacent pair with the lowest merge rank first (the leftmost on equal ranks), into vocabulary ids.
/// Decoding maps the tokens' characters back to bytes and reads them as UTF-8, invalid bytes as U+FFFD.
/// </summary>
/// <remarks>What the files may say is checked by <see cref="ByteLevelBpeFiles"/>: anything else is rejected.</remarks>
public sealed class ByteLevelBpeTokenizer : ITokenizer
{
    private const int CacheCapacity = 100_000, CachedPieceMaxLength = 256;

    private static readonly char[] ByteChar = new char[256]; // GPT-2's bytes_to_unicode
    private static readonly int[] CharByte = new int[324];   // its inverse (the characters are U+0021..U+0143), -1 elsewhere

    private readonly Dictionary<string, int> _vocab;
    private readonly string?[] _tokens; // vocabulary spelling by id
    private readonly int[] _byteIds;    // id of each byte's character, -1 when the vocabulary lacks it
    private readonly Dictionary<(int, int), (int Rank, int Merged)> _merges;
    private readonly int _unkId;        // -1: characters the vocabulary lacks are dropped, as tokenizers does without unk
    private readonly bool _fuseUnk, _ignoreMerges, _nfc, _cleanUpSpaces;
    private readonly PreTokenizerStep[] _preTokenizer;
    private readonly Dictionary<int, BpeAddedToken> _added;
    private readonly Dictionary<int, string> _addedText; // what an added token is matched as and decodes to
    private readonly HashSet<string> _specialTexts;
    private readonly Dictionary<char, (string Text, BpeAddedToken Token)[]> _rawAdded, _normalizedAdded; // by first character, longest first
    private readonly int[] _prefixIds, _suffixIds;
    private readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);

    public int EosId { get; }
    public int VocabSize { get; }

    static ByteLevelBpeTokenizer()
    {
        // Printable Latin-1 bytes stand for themselves; the others (controls, space, 0x7F-0xA0, 0xAD) take U+0100 on.
        Array.Fill(CharByte, -1);
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            ByteChar[b] = (char)(printable ? b : next++);
            CharByte[ByteChar[b]] = b;
        }
    }

    private ByteLevelBpeTokenizer(ByteLevelBpeFiles files, string source)
    {
        _vocab = files.Vocab; // ids checked to be >= 0
        _tokens = new string?[_vocab.Count == 0 ? 0 : _vocab.Values.Max() + 1];
        foreach (var (token, id) in _vocab) _tokens[id] = token;
        _byteIds = ByteChar.Select(c => _vocab.TryGetValue(c.ToString(), out int id) ? id : -1).ToArray();

        _merges = new Dictionary<(int, int), (int, int)>(files.Merges.Count);
        for (int rank = 0; rank < files.Merges.Count; rank++)
        {
            var (left, right) = files.Merges[rank];
            int Id(string token) => _vocab.TryGetValue(token, out int id) ? id
                : throw new InvalidDataException($"{source}: merge {rank + 1} \"{left} {right}\" uses \"{token}\", which is not in the vocabulary");
            _merges[(Id(left), Id(right))] = (rank, Id(left + right)); // a repeated pair keeps its last rank, as in tokenizers
        }
        _unkId = files.UnkToken is null ? -1 : _vocab.TryGetValue(files.UnkToken, out int unk) ? unk
            : throw new InvalidDataException($"{source}: unk_token \"{files.UnkToken}\" is not in the vocabulary");
        (_fuseUnk, _ignoreMerges, _nfc, _cleanUpSpaces, _preTokenizer) = (files.FuseUnk, files.IgnoreMerges, files.Nfc, files.CleanUpSpaces, files.PreTokenizer);

        _added = files.AddedTokens.GroupBy(t => t.Id).ToDictionary(g => g.Key, g => g.Last());
        // A normalized token is matched in normalised text, so as its normalised content, as tokenizers keeps it.
        _addedText = _added.Values.ToDictionary(t => t.Id, t => t.Normalized ? Normalize(t.Content) : t.Content);
        _specialTexts = _added.Values.Where(t => t.Special).Select(t => _addedText[t.Id]).ToHashSet(StringComparer.Ordinal);
        _rawAdded = ByFirstChar(_added.Values.Where(t => !t.Normalized));
        _normalizedAdded = ByFirstChar(_added.Values.Where(t => t.Normalized));
        (_prefixIds, _suffixIds) = (files.PrefixIds, files.SuffixIds);
        EosId = files.EosId ?? -1;
        VocabSize = Math.Max(_tokens.Length, _added.Count == 0 ? 0 : _added.Keys.Max() + 1);

        Dictionary<char, (string, BpeAddedToken)[]> ByFirstChar(IEnumerable<BpeAddedToken> tokens) => tokens
            .Select(t => (Text: _addedText[t.Id], Token: t)).Where(t => t.Text.Length > 0).GroupBy(t => t.Text[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Text.Length).ToArray());
    }

    /// <summary>Loads tokenizer.json, or else vocab.json + merges.txt (Qwen2Tokenizer's files), with
    /// tokenizer_config.json and special_tokens_map.json when the checkpoint directory has them.</summary>
    public static ByteLevelBpeTokenizer Load(string checkpointDir)
    {
        if (!Directory.Exists(checkpointDir)) throw new DirectoryNotFoundException($"{checkpointDir}: checkpoint directory not found");
        string json = Path.Combine(checkpointDir, "tokenizer.json");
        string source = File.Exists(json) ? json : Path.Combine(checkpointDir, "merges.txt");
        return new ByteLevelBpeTokenizer(ByteLevelBpeFiles.Read(checkpointDir), source);
    }

    private string Normalize(string s) => _nfc && !s.IsNormalized(NormalizationForm.FormC) ? s.Normalize(NormalizationForm.FormC) : s;

    /// <summary>Token ids of the text, like transformers' tokenizer(text)["input_ids"]: addSpecialTokens adds what
    /// the post-processor or the config's add_bos_token / add_eos_token say (Qwen2: nothing).</summary>
    public IReadOnlyList<int> Encode(string text, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        text = CodePointRegex.ReplaceLoneSurrogates(text);
        var ids = new List<int>();
        if (addSpecialTokens) ids.AddRange(_prefixIds);
        foreach (var (start, end, token) in FindAddedTokens(text, _rawAdded))
        {
            if (token is not null) { ids.Add(token.Id); continue; }
            string segment = Normalize(text[start..end]);
            foreach (var (s, e, normalizedToken) in FindAddedTokens(segment, _normalizedAdded))
                if (normalizedToken is not null) ids.Add(normalizedToken.Id);
                else EncodeSegment(segment[s..e], ids);
        }
        if (addSpecialTokens) ids.AddRange(_suffixIds);
        return ids;
    }

    /// <summary>
    /// The text cut into added tokens and the segments between them, as tokenizers' AddedVocabulary does: the
    /// leftmost match, the longest there, then on after it. A single_word token inside a word is no match;
    /// lstrip/rstrip take the whitespace before/after the token into it (lstrip not past the previous match).
    /// </summary>
    private static List<(int Start, int End, BpeAddedToken? Token)> FindAddedTokens(
        string text, Dictionary<char, (string Text, BpeAddedToken Token)[]> byFirstChar)
    {
        var parts = new List<(int, int, BpeAddedToken?)>();
        int segmentStart = 0;
        for (int i = 0; i < text.Length;)
        {
            var (match, token) = byFirstChar.TryGetValue(text[i], out var candidates)
                ? candidates.FirstOrDefault(t => text.AsSpan(i).StartsWith(t.Text, StringComparison.Ordinal)) : default;
            if (token is null) { i++; continue; }
            int start = i, end = i + match.Length;
            i = end;
            if (token.SingleWord && (Rune.DecodeLastFromUtf16(text.AsSpan(0, start), out var before, out _) == OperationStatus.Done && IsWordChar(before)
                                     || Rune.DecodeFromUtf16(text.AsSpan(end), out var after, out _) == OperationStatus.Done && IsWordChar(after)))
                continue;
            if (token.LStrip) while (start > segmentStart && char.IsWhiteSpace(text[start - 1])) start--;
            if (token.RStrip) while (end < text.Length && char.IsWhiteSpace(text[end])) end++;
            if (segmentStart < start) parts.Add((segmentStart, start, null));
            parts.Add((start, end, token));
            segmentStart = i = end;
        }
        if (segmentStart < text.Length) parts.Add((segmentStart, text.Length, null));
        return parts;
    }

    /// <summary>Rust regex's \w (Alphabetic, marks, decimal digits, connector punctuation, joiners), which
    /// single_word tests the characters beside a match with.</summary>
    private static bool IsWordChar(Rune r) => Rune.GetUnicodeCategory(r) switch
    {
        >= System.Globalization.UnicodeCategory.UppercaseLetter and <= System.Globalization.UnicodeCategory.LetterNumber => true,
        System.Globalization.UnicodeCategory.ConnectorPunctuation => true,
        _ => r.Value is 0x200C or 0x200D or >= 0x24B6 and <= 0x24E9, // joiners; circled letters (Other_Alphabetic)
    };

    /// <summary>Ids of a segment between added tokens (already normalised): pre-tokenizer, then BPE of each piece.</summary>
    private void EncodeSegment(string segment, List<int> ids)
    {
        if (segment.Length == 0) return;
        List<string> pieces = [segment];
        foreach (var step in _preTokenizer)
        {
            var split = new List<string>(pieces.Count);
            foreach (string piece in pieces) step.Split(piece, split);
            pieces = split;
        }
        foreach (string piece in pieces)
        {
            if (!_cache.TryGetValue(piece, out int[]? pieceIds))
            {
                pieceIds = Bpe(piece);
                if (piece.Length < CachedPieceMaxLength && _cache.Count < CacheCapacity) _cache.TryAdd(piece, pieceIds);
            }
            ids.AddRange(pieceIds);
        }
    }

    /// <summary>
    /// tokenizers' BPE of one piece: its UTF-8 bytes as byte characters, then repeatedly the adjacent pair with the
    /// lowest merge rank (the leftmost of equal ranks) merged into one symbol until no pair has a merge.
    /// </summary>
    private int[] Bpe(string piece)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(piece);
        if (_ignoreMerges && _vocab.TryGetValue(string.Create(bytes.Length, bytes, (s, b) => { for (int i = 0; i < b.Length; i++) s[i] = ByteChar[b[i]]; }), out int whole))
            return [whole];

        var symbols = new List<(int Id, int Prev, int Next, int Length)>(bytes.Length);
        void Add(int id, int length)
        {
            if (symbols.Count > 0) symbols[^1] = symbols[^1] with { Next = symbols.Count };
            symbols.Add((id, symbols.Count - 1, -1, length));
        }
        int pendingUnk = 0; // bytes of a run of characters the vocabulary lacks, when fused into one unk
        foreach (byte b in bytes)
        {
            int id = _byteIds[b];
            if (id >= 0 || _unkId < 0)
            {
                if (pendingUnk > 0) { Add(_unkId, pendingUnk); pendingUnk = 0; }
                if (id >= 0) Add(id, 1);
            }
            else if (_fuseUnk) pendingUnk++;
            else Add(_unkId, 1);
        }
        if (pendingUnk > 0) Add(_unkId, pendingUnk);

        var sym = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(symbols);
        var queue = new PriorityQueue<(int Pos, int Merged), (int Rank, int Pos)>();
        for (int i = 0; i + 1 < sym.Length; i++) QueuePair(i, sym);
        while (queue.TryDequeue(out var top, out _))
        {
            ref var left = ref sym[top.Pos];
            // Stale: the left symbol was merged away, or either side has grown since this pair was queued.
            if (left.Length == 0 || left.Next < 0 || !_merges.TryGetValue((left.Id, sym[left.Next].Id), out var m) || m.Merged != top.Merged) continue;
            ref var right = ref sym[left.Next];
            left = (top.Merged, left.Prev, right.Next, left.Length + right.Length);
            if (right.Next >= 0) sym[right.Next].Prev = top.Pos;
            right.Length = 0;
            if (left.Prev >= 0) QueuePair(left.Prev, sym);
            QueuePair(top.Pos, sym);
        }

        var result = new List<int>(sym.Length);
        foreach (var s in sym) if (s.Length > 0) result.Add(s.Id);
        return result.ToArray();

        void QueuePair(int pos, Span<(int Id, int Prev, int Next, int Length)> sym)
        {
            if (sym[pos].Next >= 0 && _merges.TryGetValue((sym[pos].Id, sym[sym[pos].Next].Id), out var m))
                queue.Enqueue((pos, m.Merged), (m.Rank, pos));
        }
    }

    /// <summary>
    /// Text of the ids like transformers' decode: each token's characters as GPT-2 byte characters back to bytes (a
    /// token with a character outside that alphabet, such as an added token with a space, as its own UTF-8), all
    /// bytes read as UTF-8 with each invalid sequence as U+FFFD. skipSpecialTokens leaves out special added tokens;
    /// ids the tokenizer does not know are skipped, as in HF.
    /// </summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        var bytes = new ArrayBufferWriter<byte>();
        foreach (int id in ids)
        {
            string? token = TokenStringOrNull(id);
            if (token is null || skipSpecialTokens && _specialTexts.Contains(token)) continue;
            AppendBytes(token, bytes);
        }
        string text = Encoding.UTF8.GetString(bytes.WrittenSpan);
        // transformers' clean_up_tokenization, when the config asks for it (Qwen2: false)
        return !_cleanUpSpaces ? text : text.Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!").Replace(" ,", ",")
            .Replace(" ' ", "'").Replace(" n't", "n't").Replace(" 'm", "'m").Replace(" 's", "'s").Replace(" 've", "'ve").Replace(" 're", "'re");
    }

    private static void AppendBytes(string token, ArrayBufferWriter<byte> bytes)
    {
        if (!token.All(c => c < CharByte.Length && CharByte[c] >= 0)) { bytes.Write(Encoding.UTF8.GetBytes(token)); return; }
        var span = bytes.GetSpan(token.Length);
        for (int i = 0; i < token.Length; i++) span[i] = (byte)CharByte[token[i]];
        bytes.Advance(token.Length);
    }

    /// <summary>The token as the vocabulary spells it ("Ġthe", "Ċ", "&lt;|im_end|&gt;"); ids the tokenizer does not
    /// know (the model's vocabulary may be padded past it) give "&lt;id:N&gt;".</summary>
    public string TokenString(int id) => TokenStringOrNull(id) ?? $"<id:{id}>";

    /// <summary>Readable text of one token for display: its bytes as UTF-8 ("Ġthe" is " the"), with bytes that are
    /// not a whole character (part of a multi-byte character split across tokens) as "&lt;0xE4&gt;".</summary>
    public string TokenText(int id)
    {
        string? token = TokenStringOrNull(id);
        if (token is null) return $"<id:{id}>";
        if (_added.ContainsKey(id)) return token;
        var bytes = new ArrayBufferWriter<byte>();
        AppendBytes(token, bytes);
        var text = new StringBuilder();
        for (var rest = bytes.WrittenSpan; !rest.IsEmpty;)
        {
            var status = Rune.DecodeFromUtf8(rest, out Rune rune, out int consumed);
            if (status == OperationStatus.Done) text.Append(rune.ToString());
            else foreach (byte b in rest[..consumed]) text.Append($"<0x{b:X2}>");
            rest = rest[consumed..];
        }
        return text.ToString();
    }

    /// <summary>Id of an added token ("&lt;image&gt;") or of a vocabulary entry ("Ġthe"); null if unknown.</summary>
    public int? TokenId(string token)
    {
        foreach (var t in _added.Values) if (t.Content == token) return t.Id;
        return _vocab.TryGetValue(token, out int id) ? id : null;
    }

    private string? TokenStringOrNull(int id) =>
        _addedText.TryGetValue(id, out var t) ? t : (uint)id < (uint)_tokens.Length ? _tokens[id] : null;
}
