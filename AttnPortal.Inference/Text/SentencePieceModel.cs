using Google.Protobuf;

namespace AttnPortal.Inference.Text;

/// <summary>
/// The pieces of a SentencePiece model file (sentencepiece_model.proto: ModelProto field 1, repeated
/// SentencePiece { 1: piece, 2: score, 3: type }). Microsoft.ML.Tokenizers keeps the scores and types internal,
/// and BPE needs them.
/// </summary>
internal static class SentencePieceModel
{
    /// <summary>type NORMAL (1, the default), USER_DEFINED (4) and UNUSED (5) take part in merges; UNKNOWN (2),
    /// CONTROL (3) and BYTE (6) pieces are never produced by merging characters.</summary>
    public readonly record struct Piece(string Text, float Score, int Type)
    {
        public bool Mergeable => Type is 1 or 4 or 5;
    }

    public static Piece[] ReadPieces(byte[] model)
    {
        var pieces = new List<Piece>();
        var input = new CodedInputStream(model);
        for (uint tag; (tag = input.ReadTag()) != 0;)
        {
            if (tag != WireFormat.MakeTag(1, WireFormat.WireType.LengthDelimited)) { input.SkipLastField(); continue; }
            var p = new CodedInputStream(input.ReadBytes().ToByteArray());
            string text = "";
            float score = 0;
            int type = 1;
            for (uint t; (t = p.ReadTag()) != 0;)
            {
                switch (WireFormat.GetTagFieldNumber(t))
                {
                    case 1: text = p.ReadString(); break;
                    case 2: score = p.ReadFloat(); break;
                    case 3: type = p.ReadEnum(); break;
                    default: p.SkipLastField(); break;
                }
            }
            pieces.Add(new Piece(text, score, type));
        }
        return pieces.ToArray();
    }
}
