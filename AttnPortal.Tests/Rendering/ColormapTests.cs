using AttnPortal.Web.Rendering;

namespace AttnPortal.Tests.Rendering;

public sealed class ColormapTests
{
    private static void Near(string expectedHex, (byte R, byte G, byte B) actual, int tolerance = 1)
    {
        int e = Convert.ToInt32(expectedHex.TrimStart('#'), 16);
        var (r, g, b) = ((e >> 16) & 0xFF, (e >> 8) & 0xFF, e & 0xFF);
        Assert.True(Math.Abs(r - actual.R) <= tolerance && Math.Abs(g - actual.G) <= tolerance && Math.Abs(b - actual.B) <= tolerance,
            $"expected {expectedHex}, got #{actual.R:X2}{actual.G:X2}{actual.B:X2}");
    }

    [Fact]
    public void ViridisAndMagmaHaveMatplotlibsEndpointsAndMidpoints()
    {
        Near("#440154", Colormap.Viridis.Map(0), 0);
        Near("#FDE725", Colormap.Viridis.Map(1), 0);
        Near("#000004", Colormap.Magma.Map(0), 0);
        Near("#FCFDBF", Colormap.Magma.Map(1), 0);
        // matplotlib's entries 128 and 64 (rounded to bytes).
        Near("#21918C", Colormap.Viridis.Map(0.5));
        Near("#3B528B", Colormap.Viridis[64]);
        Near("#B73779", Colormap.Magma.Map(0.5));
        Near("#5F187F", Colormap.Magma[73]);
    }

    [Fact]
    public void JetAndGrayFollowTheirDefinitions()
    {
        Near("#000080", Colormap.Jet.Map(0));
        Near("#800000", Colormap.Jet.Map(1));
        Near("#7DFF7A", Colormap.Jet.Map(0.5), 2);
        for (int i = 0; i < 256; i++) Assert.Equal(((byte)i, (byte)i, (byte)i), Colormap.Gray[i]);
        Assert.Equal("#808080", Colormap.Gray.Hex(128));
    }

    [Fact]
    public void ValuesMapToRoundedEntriesAndAreClamped()
    {
        Assert.Equal(0, Colormap.IndexOf(0));
        Assert.Equal(255, Colormap.IndexOf(1));
        Assert.Equal(128, Colormap.IndexOf(0.5));
        Assert.Equal(0, Colormap.IndexOf(-3));
        Assert.Equal(255, Colormap.IndexOf(7));
        Assert.Equal(0, Colormap.IndexOf(double.NaN));
        Assert.Equal(Colormap.Magma[26], Colormap.Magma.Map(0.1));
    }

    [Fact]
    public void ViridisLightnessRisesMonotonically()
    {
        double Luma((byte R, byte G, byte B) c) => 0.2126 * c.R + 0.7152 * c.G + 0.0722 * c.B;
        for (int i = 1; i < 256; i++)
        {
            Assert.True(Luma(Colormap.Viridis[i]) >= Luma(Colormap.Viridis[i - 1]) - 0.5, $"viridis entry {i}");
            Assert.True(Luma(Colormap.Magma[i]) >= Luma(Colormap.Magma[i - 1]) - 0.5, $"magma entry {i}");
        }
    }

    [Fact]
    public void ParseKnowsTheNamesAndExplainsUnknownOnes()
    {
        Assert.Same(Colormap.Viridis, Colormap.Parse("viridis"));
        Assert.Same(Colormap.Magma, Colormap.Parse(" MAGMA "));
        Assert.Same(Colormap.Jet, Colormap.Parse("Jet"));
        Assert.Same(Colormap.Gray, Colormap.Parse("grey"));
        Assert.Equal(["viridis", "magma", "jet", "gray"], Colormap.Names);
        foreach (var name in Colormap.Names) Assert.Equal(name, Colormap.Parse(name).Name);
        var e = Assert.Throws<ArgumentException>(() => Colormap.Parse("plasma"));
        Assert.Contains("unknown colormap 'plasma'", e.Message);
        Assert.Contains("viridis, magma, jet, gray", e.Message);
        Assert.False(Colormap.TryParse(null, out _));
        Assert.Throws<ArgumentOutOfRangeException>(() => Colormap.Gray[256]);
    }

    [Fact]
    public void NormalizationsMapValuesToUnitRange()
    {
        float[] v = [0.1f, 0.3f, 0.5f];
        var t = new float[3];
        Normalization.MinMax.Apply(v, t);
        Assert.Equal([0f, 0.5f, 1f], t, (a, b) => Math.Abs(a - b) < 1e-6);
        Normalization.ZeroToMax.Apply(v, t);
        Assert.Equal([0.2f, 0.6f, 1f], t, (a, b) => Math.Abs(a - b) < 1e-6);
        Normalization.FixedMax(0.25f).Apply(v, t);
        Assert.Equal([0.4f, 1f, 1f], t, (a, b) => Math.Abs(a - b) < 1e-6);
        Normalization.MinMax.Apply([2f, 2f], t);
        Assert.Equal(0, t[0]);
        Assert.Equal(default, Normalization.MinMax);
        foreach (var n in new[] { Normalization.MinMax, Normalization.ZeroToMax, Normalization.FixedMax(0.05f), Normalization.Fixed(0.01f, 0.2f) })
            Assert.Equal(n, Normalization.Parse(n.Key));
        Assert.Throws<ArgumentException>(() => Normalization.Parse("log"));
        Assert.Throws<ArgumentOutOfRangeException>(() => Normalization.Fixed(1, 1));
    }
}
