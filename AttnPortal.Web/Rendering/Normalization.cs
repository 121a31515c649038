using System.Globalization;

namespace AttnPortal.Web.Rendering;

public enum NormalizationKind
{
    /// <summary>Each map from its own minimum (colour 0) to its own maximum (colour 255).</summary>
    MinMax,
    /// <summary>Each map from 0 to its own maximum: a map of small values stays dark.</summary>
    ZeroToMax,
    /// <summary>The same [Low, High] for every map, so maps can be compared.</summary>
    Fixed,
}

/// <summary>How attention values become colormap positions: t = (v − low) / (high − low), clamped to [0, 1].</summary>
public readonly record struct Normalization
{
    // default(Normalization) is MinMax.
    public NormalizationKind Kind { get; }
    /// <summary>The bounds of a <see cref="NormalizationKind.Fixed"/> normalisation (0 otherwise).</summary>
    public float Low { get; }
    public float High { get; }

    private Normalization(NormalizationKind kind, float low, float high) => (Kind, Low, High) = (kind, low, high);

    public static Normalization MinMax => new(NormalizationKind.MinMax, 0, 0);
    public static Normalization ZeroToMax => new(NormalizationKind.ZeroToMax, 0, 0);

    /// <summary>[0, <paramref name="max"/>] for every map.</summary>
    public static Normalization FixedMax(float max) => Fixed(0, max);

    public static Normalization Fixed(float low, float high)
    {
        if (!float.IsFinite(low) || !float.IsFinite(high) || !(high > low))
            throw new ArgumentOutOfRangeException(nameof(high), $"a fixed normalisation needs finite low < high (got {low}, {high})");
        return new(NormalizationKind.Fixed, low, high);
    }

    /// <summary>
    /// Parses the forms <see cref="Key"/> writes: <c>minmax</c>, <c>max</c> (0 to the map's maximum),
    /// <c>fixed:HIGH</c> (0 to HIGH) and <c>fixed:LOW:HIGH</c>.
    /// </summary>
    /// <exception cref="ArgumentException">Anything else.</exception>
    public static Normalization Parse(string text)
    {
        var parts = (text ?? "").Trim().ToLowerInvariant().Split(':');
        static float Num(string s) => float.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out float v) ? v
            : throw new ArgumentException($"'{s}' is not a number");
        try
        {
            return parts switch
            {
                ["minmax"] => MinMax,
                ["max"] => ZeroToMax,
                ["fixed", var high] => FixedMax(Num(high)),
                ["fixed", var low, var high] => Fixed(Num(low), Num(high)),
                _ => throw new ArgumentException("expected minmax, max, fixed:HIGH or fixed:LOW:HIGH"),
            };
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"bad normalisation '{text}': {e.Message}", nameof(text));
        }
    }

    /// <summary>A stable text form (also what <see cref="Parse"/> reads), for cache keys and URLs.</summary>
    public string Key => Kind switch
    {
        NormalizationKind.MinMax => "minmax",
        NormalizationKind.ZeroToMax => "max",
        _ => Low == 0 ? $"fixed:{High.ToString("R", CultureInfo.InvariantCulture)}"
            : $"fixed:{Low.ToString("R", CultureInfo.InvariantCulture)}:{High.ToString("R", CultureInfo.InvariantCulture)}",
    };

    public override string ToString() => Key;

    /// <summary>The [low, high] this normalisation gives <paramref name="values"/> (NaNs ignored).</summary>
    public (float Low, float High) Bounds(ReadOnlySpan<float> values)
    {
        if (Kind == NormalizationKind.Fixed) return (Low, High);
        float min = float.PositiveInfinity, max = float.NegativeInfinity;
        foreach (float v in values)
        {
            if (v < min) min = v;
            if (v > max) max = v;
        }
        if (min > max) return (0, 1); // empty or all NaN
        return Kind == NormalizationKind.MinMax ? (min, max) : (Math.Min(0, min), max);
    }

    /// <summary>Writes t in [0, 1] for each value: (v − low) / (high − low), clamped; a flat map (high = low) gives 0.</summary>
    public void Apply(ReadOnlySpan<float> values, Span<float> t)
    {
        if (t.Length < values.Length) throw new ArgumentException("output shorter than input", nameof(t));
        var (low, high) = Bounds(values);
        float scale = high > low ? 1f / (high - low) : 0f;
        for (int i = 0; i < values.Length; i++)
        {
            float x = (values[i] - low) * scale;
            t[i] = x > 0 ? (x < 1 ? x : 1) : 0; // NaN -> 0
        }
    }
}
