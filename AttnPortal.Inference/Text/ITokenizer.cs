namespace AttnPortal.Inference.Text;

/// <summary>What the engine needs of a checkpoint's tokenizer. Two implementations: SentencePiece BPE
/// (<see cref="LlavaTokenizer"/>: LLaMA, Vicuna, Mistral) and byte-level BPE (<see cref="ByteLevelBpeTokenizer"/>: Qwen2).</summary>
public interface ITokenizer
{
    /// <summary>Token ids of the text, like transformers' tokenizer(text)["input_ids"].</summary>
    IReadOnlyList<int> Encode(string text, bool addSpecialTokens = true);

    /// <summary>The text of the ids, like transformers' decode.</summary>
    string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false);

    /// <summary>The token as the vocabulary spells it; ids the tokenizer does not know give "&lt;id:N&gt;".</summary>
    string TokenString(int id);

    /// <summary>Readable text of one token for display (spaces as spaces, partial UTF-8 bytes as "&lt;0xNN&gt;").</summary>
    string TokenText(int id);

    /// <summary>Id of an added token or a vocabulary entry; null if unknown.</summary>
    int? TokenId(string token);

    /// <summary>End-of-sequence id from the tokenizer's files, or -1 when it names none.</summary>
    int EosId { get; }

    /// <summary>One past the largest id the tokenizer knows.</summary>
    int VocabSize { get; }
}
