using System.Buffers.Binary;
using System.IO.Compression;

namespace AttnPortal.Web.Rendering;

/// <summary>
/// A minimal PNG writer for 8-bit palette images (colour type 3), which is all a colormapped heatmap needs: one byte
/// per pixel instead of Skia's three or four, so a 32 × 32-head sprite deflates several times faster and smaller.
/// Rows equal to the row above (every row of a cell but the first) use the Up filter and compress to almost nothing;
/// other rows are unfiltered, as the PNG specification advises for palette images.
/// </summary>
internal static class IndexedPng
{
    private static ReadOnlySpan<byte> Signature => [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];
    private static readonly uint[] CrcTable = BuildCrcTable();

    /// <param name="indices">width × height palette indices, rows top to bottom.</param>
    /// <param name="palette">Up to 256 RGBA8888 words (R in the low byte); entries with alpha below 255 get a tRNS chunk.</param>
    public static byte[] Encode(ReadOnlySpan<byte> indices, int width, int height, ReadOnlySpan<uint> palette,
        CompressionLevel level = CompressionLevel.Fastest)
    {
        if (width <= 0 || height <= 0 || (long)width * height != indices.Length)
            throw new ArgumentException($"{indices.Length} indices for a {width}×{height} image");
        if (palette.Length is 0 or > 256) throw new ArgumentException($"a palette has 1 to 256 entries, not {palette.Length}");

        var idat = new MemoryStream(indices.Length / 2 + 1024);
        using (var zlib = new ZLibStream(idat, level, leaveOpen: true))
        {
            var zeros = new byte[width];
            for (int y = 0; y < height; y++)
            {
                var row = indices.Slice(y * width, width);
                if (y > 0 && row.SequenceEqual(indices.Slice((y - 1) * width, width)))
                {
                    zlib.WriteByte(2); // Up: every byte equals the one above
                    zlib.Write(zeros);
                }
                else
                {
                    zlib.WriteByte(0);
                    zlib.Write(row);
                }
            }
        }

        var png = new MemoryStream((int)idat.Length + 1200);
        png.Write(Signature);
        Span<byte> header = stackalloc byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, width);
        BinaryPrimitives.WriteInt32BigEndian(header[4..], height);
        header[8] = 8;  // bit depth
        header[9] = 3;  // colour type: palette
        header[10] = header[11] = header[12] = 0; // deflate, adaptive filtering, no interlace
        WriteChunk(png, "IHDR"u8, header);

        Span<byte> rgb = stackalloc byte[3 * palette.Length];
        Span<byte> alpha = stackalloc byte[palette.Length];
        int lastTranslucent = -1;
        for (int i = 0; i < palette.Length; i++)
        {
            uint c = palette[i];
            (rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2], alpha[i]) = ((byte)c, (byte)(c >> 8), (byte)(c >> 16), (byte)(c >> 24));
            if (alpha[i] != 255) lastTranslucent = i;
        }
        WriteChunk(png, "PLTE"u8, rgb);
        if (lastTranslucent >= 0) WriteChunk(png, "tRNS"u8, alpha[..(lastTranslucent + 1)]);
        WriteChunk(png, "IDAT"u8, idat.GetBuffer().AsSpan(0, (int)idat.Length));
        WriteChunk(png, "IEND"u8, []);
        return png.ToArray();
    }

    private static void WriteChunk(Stream s, ReadOnlySpan<byte> type, ReadOnlySpan<byte> data)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, data.Length);
        s.Write(word);
        s.Write(type);
        s.Write(data);
        BinaryPrimitives.WriteUInt32BigEndian(word, ~Crc(Crc(0xFFFFFFFFu, type), data));
        s.Write(word);
    }

    /// <summary>CRC-32 (ISO 3309, as PNG uses it), continued from <paramref name="crc"/> without the final inversion.</summary>
    private static uint Crc(uint crc, ReadOnlySpan<byte> data)
    {
        foreach (byte b in data) crc = CrcTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
        return crc;
    }

    private static uint[] BuildCrcTable()
    {
        var table = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[n] = c;
        }
        return table;
    }
}
