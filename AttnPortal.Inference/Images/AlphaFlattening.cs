using System.Runtime.CompilerServices;

namespace AttnPortal.Inference.Images;

/// <summary>What becomes of transparency when an image is reduced to RGB.</summary>
public enum AlphaHandling
{
    /// <summary>
    /// Keep the stored colour and discard alpha, as Pillow's <c>image.convert("RGB")</c> does (transparent GIF pixels
    /// get their palette colour). This is what the LLaVA-1.5 pipelines themselves feed the model for a file with
    /// alpha: the original repo loads with <c>Image.open(f).convert("RGB")</c>, and transformers' CLIPImageProcessor
    /// (4.x slow processor and 5.x CLIPImageProcessorPil) calls <c>transformers.image_transforms.convert_to_rgb</c>,
    /// which is that same <c>convert("RGB")</c>.
    /// </summary>
    Drop,

    /// <summary>
    /// Composite over opaque white with Pillow's integer <c>Image.alpha_composite</c> arithmetic:
    /// <c>alpha_composite(Image.new("RGBA", size, (255, 255, 255)), image.convert("RGBA")).convert("RGB")</c>, skipped for
    /// images Pillow opens as "RGB". This is the <c>convert_to_rgb</c> of transformers' Idefics2 / Mllama / Chameleon
    /// processors (not CLIP's), and what this project's HF fixtures apply before the CLIP processor. The default.
    /// </summary>
    CompositeOverWhite,
}

/// <summary>Reduces straight (unpremultiplied) RGBA to RGB according to an <see cref="AlphaHandling"/>.</summary>
internal static class AlphaFlattening
{
    // Pillow's AlphaComposite.c works with 7 extra bits and rounds its divisions by 255.
    private const int PrecisionBits = 7;

    /// <summary>Result channel for every (alpha, colour) pair: index alpha * 256 + colour.</summary>
    private static readonly byte[] OverWhite = BuildTable();

    /// <summary>
    /// RGBA (HWC, 4 bytes a pixel) to RGB, over white when <paramref name="composite"/> is set, else dropping alpha
    /// (over white, alpha 255 leaves the colour unchanged, so opaque pixels are copied either way).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot loop: skip tier-0 code on the first (often only) call
    public static byte[] ToRgb(ReadOnlySpan<byte> rgba, bool composite)
    {
        int n = rgba.Length / 4;
        var rgb = new byte[n * 3];
        var dst = rgb.AsSpan();
        var table = OverWhite.AsSpan();
        for (int i = 0; i < n; i++)
        {
            var s = rgba.Slice(i * 4, 4);
            var d = dst.Slice(i * 3, 3);
            int a = s[3];
            if (!composite || a == 255)
            {
                d[0] = s[0];
                d[1] = s[1];
                d[2] = s[2];
            }
            else
            {
                var row = table.Slice(a << 8, 256);
                d[0] = row[s[0]];
                d[1] = row[s[1]];
                d[2] = row[s[2]];
            }
        }
        return rgb;
    }

    /// <summary>Gives every fully transparent pixel of <paramref name="rgba"/> the colour <paramref name="key"/> in <paramref name="rgb"/>.</summary>
    public static void FillTransparent(ReadOnlySpan<byte> rgba, Span<byte> rgb, (byte R, byte G, byte B) key)
    {
        for (int s = 3, d = 0; s < rgba.Length; s += 4, d += 3)
        {
            if (rgba[s] == 0)
                (rgb[d], rgb[d + 1], rgb[d + 2]) = key;
        }
    }

    /// <summary>Pillow's per-channel alpha_composite for a straight-alpha source over an RGBA destination.</summary>
    internal static byte Composite(int srcColour, int srcAlpha, int dstColour, int dstAlpha)
    {
        if (srcAlpha == 0)
            return (byte)dstColour;
        uint blend = (uint)(dstAlpha * (255 - srcAlpha));
        uint outa255 = (uint)(srcAlpha * 255) + blend;
        uint coef1 = (uint)(srcAlpha * 255 * 255 * (1 << PrecisionBits)) / outa255;
        uint coef2 = 255 * (1 << PrecisionBits) - coef1;
        uint tmp = (uint)srcColour * coef1 + (uint)dstColour * coef2 + (0x80 << PrecisionBits);
        return (byte)(ShiftForDiv255(tmp) >> PrecisionBits);
    }

    private static uint ShiftForDiv255(uint a) => ((a >> 8) + a) >> 8;

    private static byte[] BuildTable()
    {
        var table = new byte[256 * 256];
        for (int a = 0; a < 256; a++)
            for (int c = 0; c < 256; c++)
                table[a << 8 | c] = Composite(c, a, 255, 255);
        return table;
    }
}
