namespace AttnPortal.Inference.Images;

/// <summary>
/// Finds the palette colour behind a GIF's transparent index for the first frame. Skia decodes transparent GIF pixels
/// as transparent black, while Pillow keeps them as palette indices, so <c>convert("RGB")</c> shows that palette entry.
/// </summary>
internal static class GifTransparency
{
    /// <summary>The RGB of the first frame's transparent index, or null when it has none or the data cannot be walked.</summary>
    public static (byte R, byte G, byte B)? FirstFrameKeyColour(ReadOnlySpan<byte> gif)
    {
        const int headerSize = 6, screenDescriptorSize = 7;
        if (gif.Length < headerSize + screenDescriptorSize || !gif.StartsWith("GIF8"u8))
            return null;
        int pos = headerSize;
        byte screenFlags = gif[pos + 4];
        pos += screenDescriptorSize;
        ReadOnlySpan<byte> palette = default;
        if ((screenFlags & 0x80) != 0)
        {
            int size = 3 << ((screenFlags & 7) + 1);
            if (pos + size > gif.Length) return null;
            palette = gif.Slice(pos, size);
            pos += size;
        }
        int transparentIndex = -1;
        while (pos < gif.Length)
        {
            byte introducer = gif[pos++];
            if (introducer == 0x21) // extension: label, then data sub-blocks
            {
                if (pos >= gif.Length) return null;
                byte label = gif[pos++];
                if (label == 0xF9 && pos + 5 <= gif.Length && gif[pos] == 4) // graphic control extension
                    transparentIndex = (gif[pos + 1] & 1) != 0 ? gif[pos + 4] : -1;
                while (pos < gif.Length && gif[pos] != 0)
                    pos += gif[pos] + 1;
                pos++;
            }
            else if (introducer == 0x2C) // first image descriptor: its local colour table wins
            {
                const int descriptorSize = 9;
                if (pos + descriptorSize > gif.Length) return null;
                byte imageFlags = gif[pos + 8];
                if ((imageFlags & 0x80) != 0)
                {
                    int size = 3 << ((imageFlags & 7) + 1);
                    if (pos + descriptorSize + size > gif.Length) return null;
                    palette = gif.Slice(pos + descriptorSize, size);
                }
                if (transparentIndex < 0 || transparentIndex * 3 + 2 >= palette.Length)
                    return null;
                return (palette[transparentIndex * 3], palette[transparentIndex * 3 + 1], palette[transparentIndex * 3 + 2]);
            }
            else
            {
                return null; // trailer or garbage before any image
            }
        }
        return null;
    }
}
