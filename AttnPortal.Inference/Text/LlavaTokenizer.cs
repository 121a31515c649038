using System.Globalization;
using System.Text;
using System.Text.Unicode;
using Microsoft.ML.Tokenizers;

namespace AttnPortal.Inference.Text;

/// <summary>
/// The tokenizer of a LLaVA-1.5 / LLaMA checkpoint, giving the same ids as Hugging Face transformers' fast tokenizer:
/// the text is split on the added tokens (matched literally, leftmost-longest), each remaining segment has its spaces
/// replaced by "▁" and gets a leading "▁" as the checkpoint's files say (<see cref="PrefixSpace"/>), and is then
/// encoded with the checkpoint's SentencePiece BPE model (tokenizer.model, with byte fallback).
/// </summary>
/// <remarks>
/// Microsoft.ML.Tokenizers loads and validates tokenizer.model and supplies the vocabulary and the unk/bos/eos ids,
/// but its encoder is not used: its normalisation adds SentencePiece's dummy prefix to the whole text and knows
/// nothing of Hugging Face's rules around added tokens, and its BPE (2.0.1) merges equal-score pairs rightmost first
/// where SentencePiece and Hugging Face merge leftmost first ("▁▁▁" gives "▁","▁▁" instead of "▁▁","▁"), which
/// changes ids for runs of spaces or repeated characters. So the merges run here (<see cref="Bpe"/>), with the piece
/// scores read from the same file.
/// Not supported: added tokens with single_word or normalized matching, SentencePiece user-defined or unused pieces,
/// non-identity SentencePiece normalisation (LLaVA/Llama have none of these).
/// </remarks>
public sealed class LlavaTokenizer : ITokenizer
{
    private const char Marker = '\u2581'; // "▁", SentencePiece's visible space

    private readonly string[] _pieces; // SentencePiece piece by id
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _pieceIds;
    private readonly Dictionary<string, float>.AlternateLookup<ReadOnlySpan<char>> _mergeScores; // pieces BPE may merge into
    private readonly int[]? _byteIds; // id of "<0xNN>" by byte value, when the model has byte fallback
    private readonly Dictionary<int, AddedToken> _added;
    private readonly Dictionary<char, AddedToken[]> _addedByFirstChar; // longest first, for leftmost-longest matching

    public PrefixSpace Prefix { get; }
    /// <summary>Metaspace split: each "▁" starts a piece that SentencePiece encodes on its own (Llama: false).</summary>
    public bool SplitOnMarker { get; }
    public bool AddsBos { get; }
    public bool AddsEos { get; }
    public int BosId { get; }
    public int EosId { get; }
    public int UnkId { get; }
    public int? PadId { get; }
    /// <summary>One past the largest id the tokenizer knows. The model's embedding may be larger (padded).</summary>
    public int VocabSize { get; }
    public IReadOnlyCollection<AddedToken> AddedTokens => _added.Values;

    private LlavaTokenizer(SentencePieceTokenizer sp, SentencePieceModel.Piece[] pieces, TokenizerFiles files)
    {
        _pieces = pieces.Select(p => p.Text).ToArray();
        _pieceIds = pieces.Select((p, id) => (p.Text, id)).DistinctBy(p => p.Text).ToDictionary(p => p.Text, p => p.id)
            .GetAlternateLookup<ReadOnlySpan<char>>();
        _mergeScores = pieces.Where(p => p.Mergeable).DistinctBy(p => p.Text).ToDictionary(p => p.Text, p => p.Score)
            .GetAlternateLookup<ReadOnlySpan<char>>();
        if (sp.ByteFallback)
            _byteIds = Enumerable.Range(0, 256).Select(b => TokenIdOrThrow($"<0x{b:X2}>")).ToArray();

        // The SentencePiece control pieces are added tokens in Hugging Face too: "<s>" in the text is BOS.
        _added = new Dictionary<int, AddedToken>();
        foreach (var t in files.AddedTokens) _added[t.Id] = t;
        foreach (var (id, content) in new[] { (sp.UnknownId, sp.UnknownToken), (sp.BeginningOfSentenceId, sp.BeginningOfSentenceToken), (sp.EndOfSentenceId, sp.EndOfSentenceToken) })
            if (id < _pieces.Length && _pieces[id] == content) _added.TryAdd(id, new AddedToken(id, content, Special: true));
        _addedByFirstChar = _added.Values.Where(t => t.Content.Length > 0).GroupBy(t => t.Content[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Content.Length).ToArray());

        Prefix = files.Prefix;
        SplitOnMarker = files.SplitOnMarker;
        AddsBos = files.AddBos;
        AddsEos = files.AddEos;
        BosId = (files.BosToken is null ? null : TokenId(files.BosToken)) ?? sp.BeginningOfSentenceId;
        EosId = (files.EosToken is null ? null : TokenId(files.EosToken)) ?? sp.EndOfSentenceId;
        UnkId = (files.UnkToken is null ? null : TokenId(files.UnkToken)) ?? sp.UnknownId;
        PadId = files.PadToken is null ? null : TokenId(files.PadToken);
        VocabSize = Math.Max(_pieces.Length, _added.Count == 0 ? 0 : _added.Keys.Max() + 1);
    }

    /// <summary>Loads tokenizer.model plus whichever of tokenizer.json, tokenizer_config.json, special_tokens_map.json
    /// and added_tokens.json the checkpoint directory has.</summary>
    public static LlavaTokenizer Load(string checkpointDir)
    {
        if (!Directory.Exists(checkpointDir)) throw new DirectoryNotFoundException($"{checkpointDir}: checkpoint directory not found");
        string modelPath = Path.Combine(checkpointDir, "tokenizer.model");
        if (!File.Exists(modelPath))
            throw new FileNotFoundException($"{modelPath}: tokenizer.model not found (LLaVA/LLaMA checkpoints ship their SentencePiece model under that name)", modelPath);
        var files = TokenizerFiles.Read(checkpointDir);

        byte[] model = File.ReadAllBytes(modelPath);
        try
        {
            // LlamaTokenizer.Create accepts only BPE models; BOS/EOS and added tokens are handled here (see Encode).
            var sp = LlamaTokenizer.Create(new MemoryStream(model), addBeginOfSentence: false, addEndOfSentence: false);
            var pieces = SentencePieceModel.ReadPieces(model);
            // A protobuf parser accepts many byte strings; a model is one whose pieces both readers agree on.
            if (pieces.Length == 0 || sp.Vocabulary.Count != pieces.Length
                || pieces.Where((p, id) => !sp.Vocabulary.TryGetValue(p.Text, out int libraryId) || libraryId != id).Any())
                throw new InvalidDataException("no pieces, or pieces that do not match the model's vocabulary");
            return new LlavaTokenizer(sp, pieces, files);
        }
        catch (Exception e) // protobuf's parse errors are IOExceptions: hence reading the file first
        {
            throw new InvalidDataException($"{modelPath}: not a SentencePiece BPE model ({e.GetType().Name}: {e.Message})", e);
        }
    }

    /// <summary>Token ids of the text, like transformers' tokenizer(text)["input_ids"]. addSpecialTokens adds BOS
    /// (and EOS) as the checkpoint's add_bos_token / add_eos_token say (default: BOS only).</summary>
    public IReadOnlyList<int> Encode(string text, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>();
        if (addSpecialTokens && AddsBos) ids.Add(BosId);
        int pos = 0;
        foreach (var (start, end, token) in FindAddedTokens(text))
        {
            EncodeSegment(text, pos, start, ids);
            ids.Add(token.Id);
            pos = end;
        }
        EncodeSegment(text, pos, text.Length, ids);
        if (addSpecialTokens && AddsEos) ids.Add(EosId);
        return ids;
    }

    /// <summary>Added tokens in the text, leftmost-longest, widened over the whitespace that lstrip/rstrip tokens absorb.</summary>
    private IEnumerable<(int Start, int End, AddedToken Token)> FindAddedTokens(string text)
    {
        int searchFrom = 0;
        for (int i = 0; i < text.Length; i++)
        {
            if (!_addedByFirstChar.TryGetValue(text[i], out var candidates)) continue;
            var token = candidates.FirstOrDefault(t => text.AsSpan(i).StartsWith(t.Content, StringComparison.Ordinal));
            if (token is null) continue;
            int start = i, end = i + token.Content.Length;
            if (token.LStrip) while (start > searchFrom && char.IsWhiteSpace(text[start - 1])) start--;
            if (token.RStrip) while (end < text.Length && char.IsWhiteSpace(text[end])) end++;
            yield return (start, end, token);
            searchFrom = end;
            i = end - 1;
        }
    }

    /// <summary>SentencePiece ids of text[start..end], a segment between added tokens.</summary>
    private void EncodeSegment(string text, int start, int end, List<int> ids)
    {
        if (start >= end) return;
        string s = text[start..end].Replace(' ', Marker);
        bool prepend = Prefix switch
        {
            PrefixSpace.Legacy => true,
            PrefixSpace.Always => s[0] != Marker,
            PrefixSpace.First => start == 0 && s[0] != Marker, // "first" means offset 0 of the text, not the first segment
            _ => false,
        };
        if (prepend) s = Marker + s;

        int pieceStart = 0;
        for (int i = 1; i <= s.Length; i++)
        {
            if (i < s.Length && !(SplitOnMarker && s[i] == Marker)) continue;
            Bpe(s.AsSpan(pieceStart, i - pieceStart), ids);
            pieceStart = i;
        }
    }

    /// <summary>
    /// SentencePiece's BPE (bpe_model.cc): start from single characters, repeatedly merge the adjacent pair whose
    /// concatenation is the highest-scoring piece, the leftmost pair on equal scores; then symbols without a piece
    /// become their UTF-8 bytes (byte fallback) or unk.
    /// </summary>
    private void Bpe(ReadOnlySpan<char> text, List<int> ids)
    {
        var symbols = new List<(int Start, int Length, int Prev, int Next)>(text.Length);
        for (int i = 0; i < text.Length;)
        {
            int len = char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]) ? 2 : 1;
            symbols.Add((i, len, symbols.Count - 1, i + len < text.Length ? symbols.Count + 1 : -1));
            i += len;
        }
        var sym = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(symbols);

        var agenda = new PriorityQueue<(int Left, int Right, int Length), (float Score, int Left)>(MergeOrder);
        for (int i = 1; i < sym.Length; i++) TryPair(i - 1, i, sym, text);
        while (agenda.TryDequeue(out var top, out _))
        {
            ref var left = ref sym[top.Left];
            ref var right = ref sym[top.Right];
            // Stale: one side was merged into something else since this pair was queued.
            if (left.Length == 0 || right.Length == 0 || left.Length + right.Length != top.Length) continue;
            left.Length += right.Length;
            left.Next = right.Next;
            if (right.Next >= 0) sym[right.Next].Prev = top.Left;
            right.Length = 0;
            TryPair(left.Prev, top.Left, sym, text);
            TryPair(top.Left, left.Next, sym, text);
        }

        Span<byte> utf8 = stackalloc byte[4]; // a symbol without a piece is one character: merges only make pieces
        bool previousUnknown = false;
        for (int i = 0; i >= 0; i = sym[i].Next)
        {
            var piece = text.Slice(sym[i].Start, sym[i].Length);
            bool unknown = !_pieceIds.TryGetValue(piece, out int id);
            if (!unknown) ids.Add(id);
            else if (_byteIds is not null) foreach (byte b in utf8[..Encoding.UTF8.GetBytes(piece, utf8)]) ids.Add(_byteIds[b]);
            else if (!previousUnknown) ids.Add(UnkId); // without byte fallback a run of unknown characters is one unk
            previousUnknown = unknown;
        }

        void TryPair(int l, int r, Span<(int Start, int Length, int Prev, int Next)> sym, ReadOnlySpan<char> text)
        {
            if (l < 0 || r < 0) return;
            int length = sym[l].Length + sym[r].Length;
            if (_mergeScores.TryGetValue(text.Slice(sym[l].Start, length), out float score))
                agenda.Enqueue((l, r, length), (score, l));
        }
    }

    /// <summary>Higher score first; on equal scores the leftmost pair, as SentencePiece and Hugging Face do.</summary>
    private static readonly Comparer<(float Score, int Left)> MergeOrder =
        Comparer<(float Score, int Left)>.Create((a, b) => a.Score != b.Score ? b.Score.CompareTo(a.Score) : a.Left.CompareTo(b.Left));

    /// <summary>
    /// Text of the ids like transformers' decode(ids, skip_special_tokens=False) (the checkpoint's decoder
    /// Replace("▁", " ") + ByteFallback + Fuse + Strip(1 leading space)): consecutive byte pieces &lt;0xNN&gt; are
    /// joined into UTF-8, a run that is not valid UTF-8 gives one U+FFFD per byte, ids the tokenizer does not know
    /// are skipped.
    /// </summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        var sb = new StringBuilder();
        var bytes = new List<byte>();
        foreach (int id in ids)
        {
            string? token = TokenStringOrNull(id);
            if (token is null || skipSpecialTokens && _added.TryGetValue(id, out var a) && a.Special) continue;
            if (TryParseByte(token, out byte b)) { bytes.Add(b); continue; }
            FlushBytes(bytes, sb);
            sb.Append(token.Replace(Marker, ' '));
        }
        FlushBytes(bytes, sb);
        if (Prefix != PrefixSpace.Never && sb.Length > 0 && sb[0] == ' ') sb.Remove(0, 1);
        return sb.ToString();
    }

    private static void FlushBytes(List<byte> bytes, StringBuilder sb)
    {
        if (bytes.Count == 0) return;
        var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes);
        if (Utf8.IsValid(span)) sb.Append(Encoding.UTF8.GetString(span));
        else sb.Append('\uFFFD', bytes.Count);
        bytes.Clear();
    }

    /// <summary>The token as the vocabulary spells it ("▁the", "&lt;0x0A&gt;", "&lt;image&gt;"); ids the tokenizer does not
    /// know (the model's vocabulary is padded past it) give "&lt;id:N&gt;".</summary>
    public string TokenString(int id) => TokenStringOrNull(id) ?? $"<id:{id}>";

    /// <summary>Readable text of one token for display: "▁" as a space, a byte piece as its character when the byte is
    /// a whole (ASCII) character, else as "&lt;0xE3&gt;" since one byte of a multi-byte character is not text.</summary>
    public string TokenText(int id)
    {
        string? token = TokenStringOrNull(id);
        if (token is null) return $"<id:{id}>";
        if (_added.ContainsKey(id)) return token;
        if (TryParseByte(token, out byte b)) return b < 0x80 ? ((char)b).ToString() : token;
        return token.Replace(Marker, ' ');
    }

    /// <summary>Id of an added token ("&lt;image&gt;", "&lt;pad&gt;") or of a SentencePiece piece ("▁the"); null if unknown.</summary>
    public int? TokenId(string token)
    {
        foreach (var t in _added.Values) if (t.Content == token) return t.Id;
        return _pieceIds.TryGetValue(token, out int id) ? id : null;
    }

    private int TokenIdOrThrow(string piece) =>
        _pieceIds.TryGetValue(piece, out int id) ? id : throw new InvalidDataException($"byte fallback model without the piece {piece}");

    private string? TokenStringOrNull(int id) =>
        _added.TryGetValue(id, out var t) ? t.Content : (uint)id < (uint)_pieces.Length ? _pieces[id] : null;

    /// <summary>A byte-fallback piece "&lt;0xNN&gt;".</summary>
    private static bool TryParseByte(string token, out byte b)
    {
        b = 0;
        return token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>'
            && byte.TryParse(token.AsSpan(3, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out b);
    }
}
