using System.Runtime.CompilerServices;
using SkiaSharp;

namespace AttnPortal.Inference.Images;

/// <summary>Applies an EXIF orientation to a decoded RGB buffer, like Pillow's <c>ImageOps.exif_transpose</c>.</summary>
internal static class ImageOrientation
{
    /// <summary>
    /// Returns the upright pixels. The origin names where the stored row 0 / column 0 belong:
    /// e.g. RightTop (EXIF 6) stores row 0 on the right, so the picture is shown rotated 90° clockwise.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static (byte[] Pixels, int Width, int Height) Apply(byte[] rgb, int width, int height, SKEncodedOrigin origin)
    {
        if (origin is SKEncodedOrigin.TopLeft or (SKEncodedOrigin)0)
            return (rgb, width, height);
        bool swaps = origin is SKEncodedOrigin.LeftTop or SKEncodedOrigin.RightTop
            or SKEncodedOrigin.RightBottom or SKEncodedOrigin.LeftBottom;
        int outW = swaps ? height : width, outH = swaps ? width : height;
        // Source pixel index of the shown pixel (x, y) is start + x * stepX + y * stepY.
        int last = height - 1, right = width - 1;
        var (start, stepX, stepY) = origin switch
        {
            SKEncodedOrigin.TopRight => (right, -1, width),                         // mirror
            SKEncodedOrigin.BottomRight => (last * width + right, -1, -width),      // rotate 180
            SKEncodedOrigin.BottomLeft => (last * width, 1, -width),                // flip
            SKEncodedOrigin.LeftTop => (0, width, 1),                               // transpose
            SKEncodedOrigin.RightTop => (last * width, -width, 1),                  // rotate 90 clockwise
            SKEncodedOrigin.RightBottom => (last * width + right, -width, -1),      // transverse
            SKEncodedOrigin.LeftBottom => (right, width, -1),                       // rotate 90 anticlockwise
            _ => throw new ArgumentOutOfRangeException(nameof(origin), origin, "unknown EXIF orientation"),
        };
        var output = new byte[rgb.Length];
        for (int y = 0, d = 0; y < outH; y++)
        {
            for (int x = 0, s = start + y * stepY; x < outW; x++, s += stepX, d += 3)
            {
                output[d] = rgb[s * 3];
                output[d + 1] = rgb[s * 3 + 1];
                output[d + 2] = rgb[s * 3 + 2];
            }
        }
        return (output, outW, outH);
    }
}
