using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace AttnPortal.Inference.Text;

/// <summary>
/// Runs a pre-tokenizer pattern over code points, as Hugging Face tokenizers' regex engine (Oniguruma on UTF-8)
/// does, although .NET's Regex works on UTF-16 code units: there a character outside the BMP is two surrogates,
/// so "\p{L}" does not match a CJK Extension B letter such as U+20000 and the text would split differently.
/// </summary>
/// <remarks>
/// Text with surrogates is matched as a stand-in string with one character per code point: each supplementary
/// character becomes a BMP character of the same Unicode general category, and the match offsets are mapped back.
/// That is exact for patterns that look at characters only through categories, \s, and ASCII literals, as the
/// byte-level BPE patterns (GPT-2, Qwen2, Llama 3) do: no stand-in is ASCII, whitespace, or case-equivalent to ASCII.
/// </remarks>
internal static class CodePointRegex
{
    /// <summary>A BMP character of each <see cref="UnicodeCategory"/>, indexed by the enum's value. Surrogate (16)
    /// never occurs: lone surrogates are replaced before matching (<see cref="ReplaceLoneSurrogates"/>).</summary>
    internal const string StandIns =
        "\u0391\u03B1\u01C5\u02B0\u05D0\u0300\u0903\u20DD\u0660\u16EE\u00B2\u2000\u2028\u2029\u0080" +
        "\u2060\uFFFD\uE000\u203F\u2010\u2045\u2046\u00AB\u00BB\u00B6\u2200\u20AC\u02C2\u00A6\u0378";

    /// <summary>tokenizers' Split with behavior Isolated: each non-empty match is a piece, and so is each non-empty
    /// stretch of text between matches.</summary>
    public static void SplitIsolated(Regex regex, string text, List<string> output)
    {
        string view = text;
        int[]? offsets = null; // UTF-16 offset in text of each character of view, plus text.Length
        if (text.AsSpan().ContainsAnyInRange('\uD800', '\uDFFF')) (view, offsets) = OneCharPerCodePoint(text);
        int previous = 0;
        foreach (var m in regex.EnumerateMatches(view))
        {
            if (m.Length == 0) continue;
            int start = offsets?[m.Index] ?? m.Index, end = offsets?[m.Index + m.Length] ?? m.Index + m.Length;
            if (previous < start) output.Add(text[previous..start]);
            output.Add(text[start..end]);
            previous = end;
        }
        if (previous < text.Length) output.Add(text[previous..]);
    }

    private static (string View, int[] Offsets) OneCharPerCodePoint(string text)
    {
        var view = new StringBuilder(text.Length);
        var offsets = new List<int>(text.Length + 1);
        for (int i = 0; i < text.Length; i += char.IsSurrogatePair(text, i) ? 2 : 1)
        {
            offsets.Add(i);
            view.Append(char.IsSurrogatePair(text, i)
                ? StandIns[(int)CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(text, i))]
                : text[i]);
        }
        offsets.Add(text.Length);
        return (view.ToString(), offsets.ToArray());
    }

    /// <summary>The text with each unpaired surrogate replaced by U+FFFD: it has no UTF-8 form (Python refuses to
    /// pass such a string to tokenizers at all).</summary>
    public static string ReplaceLoneSurrogates(string text)
    {
        if (!text.AsSpan().ContainsAnyInRange('\uD800', '\uDFFF')) return text;
        var chars = text.ToCharArray();
        for (int i = 0; i < chars.Length; i++)
        {
            if (char.IsSurrogatePair(text, i)) i++;
            else if (char.IsSurrogate(chars[i])) chars[i] = '\uFFFD';
        }
        return new string(chars);
    }
}
