using System.Diagnostics.CodeAnalysis;

namespace AttnPortal.Web.Rendering;

/// <summary>
/// A 256-entry RGB lookup table. Value t in [0, 1] maps to entry round(t × 255).
/// </summary>
/// <remarks>
/// <see cref="Viridis"/> and <see cref="Magma"/> are matplotlib's perceptually uniform maps (van der Walt and Smith),
/// rebuilt by linear interpolation between 16 of matplotlib's 256 entries each, chosen so that every rebuilt entry is
/// within 1/255 per channel of matplotlib's table rounded to bytes. <see cref="Jet"/> is matplotlib's piecewise-linear
/// definition, <see cref="Gray"/> is entry i = (i, i, i).
/// </remarks>
public sealed class Colormap
{
    public const int Size = 256;

    private readonly byte[] _rgb;   // Size × (R, G, B)
    private readonly uint[] _rgba;  // Size × RGBA8888 as one little-endian word: R | G << 8 | B << 16 | A << 24

    public string Name { get; }

    private Colormap(string name, byte[] rgb)
    {
        Name = name;
        _rgb = rgb;
        _rgba = new uint[Size];
        for (int i = 0; i < Size; i++)
            _rgba[i] = rgb[3 * i] | (uint)rgb[3 * i + 1] << 8 | (uint)rgb[3 * i + 2] << 16 | 0xFF000000u;
    }

    /// <summary>Entry <paramref name="index"/> (0 to 255).</summary>
    public (byte R, byte G, byte B) this[int index]
    {
        get
        {
            if ((uint)index >= Size) throw new ArgumentOutOfRangeException(nameof(index), index, "a colormap has entries 0 to 255");
            return (_rgb[3 * index], _rgb[3 * index + 1], _rgb[3 * index + 2]);
        }
    }

    /// <summary>The colour of <paramref name="t"/> in [0, 1] (clamped; NaN maps to 0).</summary>
    public (byte R, byte G, byte B) Map(double t) => this[IndexOf(t)];

    /// <summary>The entry for <paramref name="t"/>: round(t × 255), clamped to [0, 255]; NaN gives 0.</summary>
    public static int IndexOf(double t) => t > 0 ? (t < 1 ? (int)(t * 255 + 0.5) : 255) : 0;

    /// <summary>Entry <paramref name="index"/> as #RRGGBB.</summary>
    public string Hex(int index)
    {
        var (r, g, b) = this[index];
        return $"#{r:X2}{g:X2}{b:X2}";
    }

    /// <summary>The table as little-endian RGBA8888 words (opaque), for filling pixel buffers.</summary>
    internal ReadOnlySpan<uint> Rgba => _rgba;

    public override string ToString() => Name;

    public static Colormap Viridis { get; } = FromControlPoints("viridis",
        (0, 0x440154), (20, 0x481D6F), (35, 0x46307E), (59, 0x3D4D8A), (93, 0x2D708E), (127, 0x21908D),
        (142, 0x1F9E89), (151, 0x21A685), (162, 0x2AB07F), (179, 0x44BF70), (195, 0x65CB5E), (216, 0x98D83E),
        (236, 0xCDE11D), (243, 0xDFE318), (251, 0xF4E61E), (255, 0xFDE725));

    public static Colormap Magma { get; } = FromControlPoints("magma",
        (0, 0x000004), (7, 0x03030F), (20, 0x0E0B2B), (35, 0x21114E), (48, 0x36106B), (58, 0x471078),
        (75, 0x621980), (105, 0x912B81), (131, 0xBC3978), (151, 0xDB476A), (168, 0xEF5D5E), (182, 0xF8765C),
        (195, 0xFC8E64), (213, 0xFEB078), (237, 0xFDDC9E), (255, 0xFCFDBF));

    /// <summary>matplotlib's jet: per channel, (x, value) breakpoints with linear segments between them.</summary>
    public static Colormap Jet { get; } = FromSegments("jet",
        red: [(0, 0), (0.35, 0), (0.66, 1), (0.89, 1), (1, 0.5)],
        green: [(0, 0), (0.125, 0), (0.375, 1), (0.64, 1), (0.91, 0), (1, 0)],
        blue: [(0, 0.5), (0.11, 1), (0.34, 1), (0.65, 0), (1, 0)]);

    public static Colormap Gray { get; } = FromFunction("gray", i => ((byte)i, (byte)i, (byte)i));

    /// <summary>
    /// Blue–white–red for signed values (a difference A − B): entry <see cref="Neutral"/> (128) is exactly white, and
    /// entries 128 ± k mirror each other in intensity (blue below, red above) out to ±127; entry 0 repeats entry 1, so
    /// with <see cref="DivergingIndex"/> both signs get the same 127 levels. Not in <see cref="Names"/>: attention
    /// itself is never negative.
    /// </summary>
    public static Colormap Diverging { get; } = FromControlPoints("diverging",
        (0, 0x1B4F9C), (1, 0x1B4F9C), (64, 0x8DB9E2), (Neutral, 0xFFFFFF), (192, 0xF0A08A), (255, 0xB3202C));

    /// <summary>The entry of <see cref="Diverging"/> that 0 maps to: pure white.</summary>
    public const int Neutral = 128;

    /// <summary>
    /// The <see cref="Diverging"/> entry of <paramref name="value"/> on a symmetric scale ±<paramref name="scale"/>:
    /// 128 + round(127 × value / scale), clamped to [1, 255]. 0 (and NaN, and anything when the scale is not positive)
    /// gives exactly <see cref="Neutral"/>; the sign decides the side.
    /// </summary>
    public static int DivergingIndex(double value, double scale)
    {
        if (!(scale > 0) || double.IsNaN(value)) return Neutral;
        double steps = Math.Round(127 * value / scale, MidpointRounding.AwayFromZero);
        return Neutral + (int)Math.Clamp(steps, -127, 127);
    }

    /// <summary>The names <see cref="Parse"/> accepts: the sequential maps for attention values.</summary>
    public static IReadOnlyList<string> Names { get; } = ["viridis", "magma", "jet", "gray"];

    /// <summary>A colormap by name (case-insensitive; "grey" is accepted for gray).</summary>
    /// <exception cref="ArgumentException">The name is not one of <see cref="Names"/>.</exception>
    public static Colormap Parse(string name) =>
        TryParse(name, out var map) ? map
            : throw new ArgumentException($"unknown colormap '{name}' (known: {string.Join(", ", Names)})", nameof(name));

    public static bool TryParse(string? name, [NotNullWhen(true)] out Colormap? colormap)
    {
        colormap = name?.Trim().ToLowerInvariant() switch
        {
            "viridis" => Viridis,
            "magma" => Magma,
            "jet" => Jet,
            "gray" or "grey" => Gray,
            _ => null,
        };
        return colormap is not null;
    }

    /// <summary>Linear interpolation, per channel and rounded, between (entry index, 0xRRGGBB) control points.</summary>
    private static Colormap FromControlPoints(string name, params (int Index, int Rgb)[] points)
    {
        if (points[0].Index != 0 || points[^1].Index != Size - 1)
            throw new ArgumentException("control points must start at entry 0 and end at entry 255");
        var rgb = new byte[3 * Size];
        for (int p = 0; p + 1 < points.Length; p++)
        {
            var (i0, c0) = points[p];
            var (i1, c1) = points[p + 1];
            for (int i = i0; i <= i1; i++)
            {
                double f = (double)(i - i0) / (i1 - i0);
                for (int ch = 0; ch < 3; ch++)
                {
                    int shift = 16 - 8 * ch;
                    int a = (c0 >> shift) & 0xFF, b = (c1 >> shift) & 0xFF;
                    rgb[3 * i + ch] = (byte)(int)(a + (b - a) * f + 0.5);
                }
            }
        }
        return new Colormap(name, rgb);
    }

    private static Colormap FromSegments(string name, (double X, double V)[] red, (double X, double V)[] green, (double X, double V)[] blue) =>
        FromFunction(name, i =>
        {
            double x = i / (double)(Size - 1);
            return (Channel(red, x), Channel(green, x), Channel(blue, x));
        });

    private static byte Channel((double X, double V)[] segments, double x)
    {
        int k = 1;
        while (k < segments.Length - 1 && segments[k].X < x) k++;
        var (x0, v0) = segments[k - 1];
        var (x1, v1) = segments[k];
        double v = v0 + (v1 - v0) * (x - x0) / (x1 - x0);
        return (byte)Math.Clamp((int)(v * 255 + 0.5), 0, 255);
    }

    private static Colormap FromFunction(string name, Func<int, (byte R, byte G, byte B)> entry)
    {
        var rgb = new byte[3 * Size];
        for (int i = 0; i < Size; i++) (rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]) = entry(i);
        return new Colormap(name, rgb);
    }
}
