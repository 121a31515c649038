using AttnPortal.Inference.Images;
using AttnPortal.Web.Rendering;

namespace AttnPortal.Tests.Rendering;

public sealed class DivergingColormapTests
{
    private static bool Reddish((byte R, byte G, byte B) c) => c.R > c.B + 40;
    private static bool Bluish((byte R, byte G, byte B) c) => c.B > c.R + 40;

    [Fact]
    public void ZeroIsExactlyWhiteAndTheSignPicksTheSide()
    {
        Assert.Equal(Colormap.Neutral, Colormap.DivergingIndex(0, 0.3));
        Assert.Equal(((byte)255, (byte)255, (byte)255), Colormap.Diverging[Colormap.Neutral]);
        Assert.Equal(((byte)255, (byte)255, (byte)255), Colormap.Diverging.Map(0.5)); // the middle of [0, 1] too

        Assert.Equal(255, Colormap.DivergingIndex(0.3, 0.3));
        Assert.Equal(1, Colormap.DivergingIndex(-0.3, 0.3));
        Assert.Equal(255, Colormap.DivergingIndex(7, 0.3)); // clamped
        Assert.Equal(1, Colormap.DivergingIndex(-7, 0.3));
        Assert.True(Reddish(Colormap.Diverging[Colormap.DivergingIndex(0.3, 0.3)]));
        Assert.True(Bluish(Colormap.Diverging[Colormap.DivergingIndex(-0.3, 0.3)]));
        foreach (double v in new[] { 0.01, 0.05, 0.1, 0.2 })
        {
            int up = Colormap.DivergingIndex(v, 0.2), down = Colormap.DivergingIndex(-v, 0.2);
            Assert.True(up > Colormap.Neutral && down < Colormap.Neutral, $"{v}: {down}, {up}");
            Assert.Equal(2 * Colormap.Neutral, up + down); // mirrored around white
            var (r, g, b) = Colormap.Diverging[up];
            var (r2, g2, b2) = Colormap.Diverging[down];
            Assert.True(r >= b && b2 >= r2, $"{v}: red side #{r:X2}{g:X2}{b:X2}, blue side #{r2:X2}{g2:X2}{b2:X2}");
        }
        // Nothing to scale by, or no value: neutral.
        Assert.Equal(Colormap.Neutral, Colormap.DivergingIndex(0.1, 0));
        Assert.Equal(Colormap.Neutral, Colormap.DivergingIndex(double.NaN, 1));
        Assert.Equal(Colormap.Diverging[1], Colormap.Diverging[0]);
        Assert.DoesNotContain("diverging", Colormap.Names); // attention itself is never negative
    }

    [Fact]
    public void DifferencePngPaintsEachCellByItsSign()
    {
        // 2 rows × 3 cols: −1, 0, 1 / 0.5, −0.5, NaN on the scale ±1.
        var png = HeatmapRenderer.DifferencePng([-1, 0, 1, 0.5f, -0.5f, float.NaN], rows: 2, cols: 3, scale: 1);
        var image = RgbImage.Decode(png, "difference");
        Assert.Equal((3, 2), (image.Width, image.Height));
        (byte, byte, byte) Pixel(int x, int y)
        {
            int i = (y * image.Width + x) * 3;
            return (image.Pixels[i], image.Pixels[i + 1], image.Pixels[i + 2]);
        }
        Assert.Equal(Colormap.Diverging[1], Pixel(0, 0));
        Assert.Equal(((byte)255, (byte)255, (byte)255), Pixel(1, 0));
        Assert.Equal(Colormap.Diverging[255], Pixel(2, 0));
        Assert.Equal(Colormap.Diverging[128 + 64], Pixel(0, 1));
        Assert.Equal(Colormap.Diverging[128 - 64], Pixel(1, 1));
        Assert.Equal(((byte)255, (byte)255, (byte)255), Pixel(2, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => HeatmapRenderer.DifferencePng([0f], 1, 1, -1));
        Assert.Throws<ArgumentException>(() => HeatmapRenderer.DifferencePng([0f, 1f], 1, 1, 1));
    }
}
