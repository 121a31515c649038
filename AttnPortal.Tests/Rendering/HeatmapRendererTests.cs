using AttnPortal.Inference.Images;
using AttnPortal.Web.Rendering;
using SkiaSharp;

namespace AttnPortal.Tests.Rendering;

public sealed class HeatmapRendererTests
{
    private const int Side = 24;
    private const byte Photo = 128;

    private static RgbImage Uniform(int width, int height) =>
        new(width, height, Enumerable.Repeat(Photo, width * height * 3).ToArray());

    private static ImageGeometry GeometryOf(RgbImage image, AspectMode mode) => new ClipImageProcessor().Process(image, mode).Geometry;

    private static float[] HotCell(int row, int col)
    {
        var grid = new float[Side * Side];
        grid[row * Side + col] = 1;
        return grid;
    }

    /// <summary>LLaVA-1.5's one view: the 24 × 24 grid over the model frame.</summary>
    private static ImageGridView ViewOf(ImageGeometry geometry) => new("image", 0, Side, Side, Side, geometry.Frame);

    /// <summary>The overlay of a 24 × 24 grid over <paramref name="geometry"/>'s frame on <paramref name="image"/>.</summary>
    private static byte[] Overlay(RgbImage image, ImageGeometry geometry, float[] grid, Colormap colormap, float opacity,
        int maxWidth = 1024, OverlayOptions? options = null) =>
        HeatmapRenderer.OverlayPng(OverlayBackdrop.Create(image, geometry.OriginalWidth, geometry.OriginalHeight, maxWidth), ViewOf(geometry),
            grid, colormap, opacity, Normalization.MinMax, options);

    private static SKBitmap Decode(byte[] png) => SKBitmap.Decode(png) ?? throw new Xunit.Sdk.XunitException("not a PNG");

    private static ImageRect Scale(ImageRect r, double sx, double sy) => new(r.X * sx, r.Y * sy, r.Width * sx, r.Height * sy);

    /// <summary>Whether pixel (x, y)'s centre lies inside r, shrunk (margin &gt; 0) or grown (margin &lt; 0) by |margin|.</summary>
    private static bool CentreIn(ImageRect r, int x, int y, double margin) =>
        x + 0.5 >= r.X + margin && x + 0.5 < r.Right - margin && y + 0.5 >= r.Y + margin && y + 0.5 < r.Bottom - margin;

    /// <summary>
    /// Renders a single hot cell in gray at full opacity and checks every output pixel: white exactly where the pixel
    /// centre lies in PatchCell(row, col) scaled to the output, black elsewhere in the frame, and (for a uniform photo)
    /// the photo outside the frame. Returns the number of hot pixels.
    /// </summary>
    private static int CheckHotCell(RgbImage image, ImageGeometry geometry, int row, int col, int maxWidth, bool uniformPhoto = true)
    {
        var png = Overlay(image, geometry, HotCell(row, col), Colormap.Gray, 1f, maxWidth);
        using var bitmap = Decode(png);
        int expectedWidth = Math.Min(maxWidth, image.Width);
        Assert.Equal(expectedWidth, bitmap.Width);
        Assert.Equal((int)Math.Round(image.Height * (double)expectedWidth / image.Width), bitmap.Height);

        double sx = (double)bitmap.Width / geometry.OriginalWidth, sy = (double)bitmap.Height / geometry.OriginalHeight;
        var cell = Scale(geometry.PatchCell(row, col, Side), sx, sy);
        var frame = Scale(geometry.Frame, sx, sy);
        const double eps = 1e-6;
        int hot = 0;
        for (int y = 0; y < bitmap.Height; y++)
            for (int x = 0; x < bitmap.Width; x++)
            {
                var c = bitmap.GetPixel(x, y);
                Assert.Equal(255, c.Alpha);
                if (!CentreIn(frame, x, y, -eps))
                {
                    if (uniformPhoto)
                        Assert.True(c.Red == c.Green && c.Green == c.Blue && Math.Abs(c.Red - Photo) <= 1,
                            $"pixel ({x}, {y}) outside the frame is {c}, not the photo");
                    continue;
                }
                if (c == SKColors.White)
                {
                    hot++;
                    Assert.True(CentreIn(cell, x, y, -eps), $"hot pixel ({x}, {y}) lies outside cell ({row}, {col}) = {cell}");
                }
                else if (CentreIn(cell, x, y, eps))
                    Assert.Fail($"pixel ({x}, {y}) inside cell ({row}, {col}) = {cell} is {c}, not hot");
                else if (CentreIn(frame, x, y, eps))
                    Assert.True(c == SKColors.Black, $"pixel ({x}, {y}) in the frame but not the cell is {c}");
            }
        return hot;
    }

    [Theory]
    [InlineData(12, 7, 1024)]  // no downscale: 900 x 500
    [InlineData(12, 7, 600)]   // 600 x 333
    [InlineData(18, 0, 600)]   // straddles the bottom edge of the photo: clipped
    [InlineData(5, 20, 437)]   // straddles the top edge of the photo: clipped
    public void PadOverlayPutsTheHotCellOnItsPatch(int row, int col, int maxWidth)
    {
        var image = Uniform(900, 500);
        var geometry = GeometryOf(image, AspectMode.Pad);
        Assert.True(geometry.FrameY < 0 && geometry.FrameHeight > image.Height, "pad frame extends above and below the photo");
        int hot = CheckHotCell(image, geometry, row, col, maxWidth);
        var visible = geometry.PatchCell(row, col, Side).Intersect(geometry.ImageBounds);
        Assert.NotNull(visible);
        double scale = Math.Min(1, maxWidth / 900.0);
        double area = visible.Value.Width * visible.Value.Height * scale * scale;
        Assert.InRange(hot, area * 0.7, area * 1.3 + 40);
    }

    [Fact]
    public void PadOverlayDropsCellsThatAreAllPadding()
    {
        var image = Uniform(900, 500);
        var geometry = GeometryOf(image, AspectMode.Pad);
        Assert.Null(geometry.PatchCell(2, 5, Side).Intersect(geometry.ImageBounds));
        Assert.Equal(0, CheckHotCell(image, geometry, 2, 5, 600));
    }

    [Theory]
    [InlineData(0, 0, 1024)]
    [InlineData(23, 23, 1024)]
    [InlineData(11, 17, 333)]
    [InlineData(0, 23, 333)]
    public void CropOverlayPutsTheHotCellOnItsPatchInsideTheCroppedFrame(int row, int col, int maxWidth)
    {
        var image = Uniform(500, 900);
        var geometry = GeometryOf(image, AspectMode.Crop);
        Assert.True(geometry.FrameY > 100 && geometry.FrameY + geometry.FrameHeight < 800, "crop frame is a band in the middle");
        int hot = CheckHotCell(image, geometry, row, col, maxWidth);
        double scale = Math.Min(1, maxWidth / 500.0);
        var cell = geometry.PatchCell(row, col, Side);
        Assert.InRange(hot, cell.Width * cell.Height * scale * scale * 0.7, cell.Width * cell.Height * scale * scale * 1.3 + 40);
    }

    [Fact]
    public void OverlayOfARealRunMatchesItsGeometry()
    {
        var image = RgbImage.Load(Fixture.Image("tall-alpha.png"));
        var geometry = GeometryOf(image, AspectMode.Crop);
        Assert.True(CheckHotCell(image, geometry, 3, 9, 1024, uniformPhoto: false) > 0);
        Assert.True(CheckHotCell(image, geometry, 20, 2, 100, uniformPhoto: false) > 0);
        var bytes = File.ReadAllBytes(Fixture.Image("wide.png"));
        var wide = RgbImage.Decode(bytes, "wide.png");
        var padGeometry = GeometryOf(wide, AspectMode.Pad);
        var png = HeatmapRenderer.OverlayPng(OverlayBackdrop.Create(bytes, padGeometry.OriginalWidth, padGeometry.OriginalHeight), ViewOf(padGeometry),
            HotCell(12, 12), Colormap.Viridis, 0.6f, Normalization.MinMax);
        using var bitmap = Decode(png);
        Assert.Equal((wide.Width, wide.Height), (bitmap.Width, bitmap.Height)); // smaller than 1024: kept
        Assert.Throws<ArgumentException>(() => Overlay(image, padGeometry, HotCell(0, 0), Colormap.Gray, 1)); // the wrong photo for the run
    }

    [Fact]
    public void OpacityBlendsColourAndPhoto()
    {
        var image = Uniform(336, 336);
        var geometry = GeometryOf(image, AspectMode.Pad);
        var png = Overlay(image, geometry, HotCell(4, 4), Colormap.Gray, 0.5f);
        using var bitmap = Decode(png);
        Assert.InRange((int)bitmap.GetPixel(4 * 14 + 7, 4 * 14 + 7).Red, 191, 192); // (128 + 255) / 2
        Assert.InRange((int)bitmap.GetPixel(200, 200).Red, 64, 65);                // (128 + 0) / 2

        png = Overlay(image, geometry, HotCell(4, 4), Colormap.Gray, 1f,
            options: new OverlayOptions(AlphaFromValue: true));
        using var valueAlpha = Decode(png);
        Assert.Equal(255, valueAlpha.GetPixel(4 * 14 + 7, 4 * 14 + 7).Red);
        Assert.Equal(Photo, valueAlpha.GetPixel(200, 200).Red); // cold cells leave the photo alone
    }

    [Fact]
    public void SmoothOverlayPeaksInsideTheHotCell()
    {
        var image = Uniform(500, 900);
        var geometry = GeometryOf(image, AspectMode.Crop);
        var png = Overlay(image, geometry, HotCell(10, 15), Colormap.Gray, 1f,
            options: new OverlayOptions(Smooth: true, OutsideFrameDim: 0.5f));
        using var bitmap = Decode(png);
        var cell = geometry.PatchCell(10, 15, Side);
        int bestX = 0, bestY = 0, best = -1, grey = 0;
        for (int y = 0; y < bitmap.Height; y++)
            for (int x = 0; x < bitmap.Width; x++)
            {
                int v = bitmap.GetPixel(x, y).Red;
                if (v > best) (best, bestX, bestY) = (v, x, y);
                if (v > 0 && v < 255 && CentreIn(geometry.Frame, x, y, 0)) grey++;
                double dx = (x + 0.5 - (cell.X + cell.Width / 2)) / cell.Width, dy = (y + 0.5 - (cell.Y + cell.Height / 2)) / cell.Height;
                if (CentreIn(geometry.Frame, x, y, 1e-6) && (Math.Abs(dx) > 1.01 || Math.Abs(dy) > 1.01))
                    Assert.True(v == 0, $"pixel ({x}, {y}) more than a cell from the hot centre is {v}");
            }
        Assert.True(CentreIn(cell, bestX, bestY, 0), $"brightest pixel ({bestX}, {bestY}) outside {cell}");
        Assert.True(best >= 240, $"peak {best}"); // pixel centres sit within half a pixel of the cell centre
        Assert.True(grey > 100, "bilinear smoothing gives intermediate values");
        Assert.InRange((int)bitmap.GetPixel(250, 50).Red, 63, 65); // above the crop frame: photo dimmed by half
    }

    [Fact]
    public void HeadGridSpriteHasOneNormalisedTilePerLayerAndHead()
    {
        const int layers = 3, heads = 4, cell = 2, gap = 1;
        var all = new float[layers * heads * Side * Side];
        var rng = new Random(7);
        for (int tile = 0; tile < layers * heads; tile++)
            for (int i = 0; i < Side * Side; i++)
                all[tile * Side * Side + i] = (float)(rng.NextDouble() * 0.5 * (tile + 1)); // every tile a different scale

        var png = HeatmapRenderer.HeadGridPng(all, layers, heads, Side, Side, Colormap.Gray, cell, gap);
        using var bitmap = Decode(png);
        var layout = new HeadGridLayout(layers, heads, Side, Side, cell, gap);
        Assert.Equal((4 * 48 + 3, 3 * 48 + 2), (bitmap.Width, bitmap.Height));
        Assert.Equal((layout.Width, layout.Height), (bitmap.Width, bitmap.Height));
        for (int l = 0; l < layers; l++)
            for (int h = 0; h < heads; h++)
            {
                var values = all.AsSpan((l * heads + h) * Side * Side, Side * Side).ToArray();
                int argMax = Array.IndexOf(values, values.Max()), argMin = Array.IndexOf(values, values.Min());
                var (x, y) = layout.TileOrigin(l, h);
                Assert.Equal(255, bitmap.GetPixel(x + argMax % Side * cell + 1, y + argMax / Side * cell + 1).Red);
                Assert.Equal(0, bitmap.GetPixel(x + argMin % Side * cell, y + argMin / Side * cell).Red);
                Assert.Equal((l, h), layout.HitTest(x + 5, y + 7));
            }
        Assert.Equal(0, bitmap.GetPixel(48, 10).Alpha); // a gap column
        Assert.Null(layout.HitTest(48, 10));
        Assert.Null(layout.HitTest(10, 97));

        // Seven-billion-parameter shape: 32 layers x 32 heads, from a real AllHeads slice layout.
        var big = new float[32 * 32 * Side * Side];
        for (int i = 0; i < big.Length; i++) big[i] = (float)rng.NextDouble();
        using var sprite = Decode(HeatmapRenderer.HeadGridPng(big, 32, 32, Side, Side, Colormap.Viridis, cellPixels: 3, gap: 2,
            background: SKColors.White));
        Assert.Equal((32 * 72 + 31 * 2, 32 * 72 + 31 * 2), (sprite.Width, sprite.Height));
        Assert.Equal(SKColors.White, sprite.GetPixel(72, 0));
        Assert.Throws<ArgumentException>(() => HeatmapRenderer.HeadGridPng(big, 32, 31, Side, Side, Colormap.Viridis));
    }

    [Fact]
    public void HeatmapPngDrawsCrispScaledCells()
    {
        var grid = new float[Side * Side];
        for (int i = 0; i < grid.Length; i++) grid[i] = i;
        using var bitmap = Decode(HeatmapRenderer.HeatmapPng(grid, Side, Side, Colormap.Magma, scale: 4));
        Assert.Equal((96, 96), (bitmap.Width, bitmap.Height));
        for (int r = 0; r < Side; r += 5)
            for (int c = 0; c < Side; c += 3)
            {
                var (er, eg, eb) = Colormap.Magma.Map((r * Side + c) / (double)(grid.Length - 1));
                foreach (var (dx, dy) in new[] { (0, 0), (3, 3), (1, 2) })
                    Assert.Equal(new SKColor(er, eg, eb), bitmap.GetPixel(c * 4 + dx, r * 4 + dy));
            }
        using var bar = Decode(HeatmapRenderer.ColorbarPng(Colormap.Viridis, 256, 10));
        Assert.Equal(new SKColor(0x44, 0x01, 0x54), bar.GetPixel(0, 5));
        Assert.Equal(new SKColor(0xFD, 0xE7, 0x25), bar.GetPixel(255, 9));
        Assert.Throws<ArgumentException>(() => HeatmapRenderer.HeatmapPng(new float[10], Side, Side, Colormap.Gray));
    }
}

public sealed class IndexedPngTests
{
    /// <summary>CRC-32 computed bit by bit (not by the writer's table), over chunk type and data.</summary>
    private static uint BitwiseCrc(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (uint)-(int)(crc & 1));
        }
        return ~crc;
    }

    [Fact]
    public void PaletteImagesDecodeToTheirColoursWithValidChunks()
    {
        const int width = 37, height = 23;
        var rng = new Random(3);
        var palette = new uint[200];
        for (int i = 0; i < palette.Length; i++) palette[i] = (uint)rng.Next() | 0xFF000000u;
        palette[7] = 0x00000000u;  // transparent
        palette[9] = 0x80FF0000u;  // half-transparent blue
        var indices = new byte[width * height];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                indices[y * width + x] = y % 3 == 1 ? indices[(y - 1) * width + x] : (byte)rng.Next(palette.Length); // some rows repeat
        indices[0] = 7;
        indices[1] = 9;

        var png = AttnPortal.Web.Rendering.IndexedPng.Encode(indices, width, height, palette);

        // Chunks: IHDR, PLTE, tRNS, IDAT, IEND, each with a correct CRC.
        var chunks = new List<string>();
        for (int at = 8; at < png.Length;)
        {
            int length = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(at));
            chunks.Add(System.Text.Encoding.ASCII.GetString(png, at + 4, 4));
            uint crc = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(at + 8 + length));
            Assert.Equal(BitwiseCrc(png.AsSpan(at + 4, 4 + length)), crc);
            at += 12 + length;
        }
        Assert.Equal(["IHDR", "PLTE", "tRNS", "IDAT", "IEND"], chunks);

        using var bitmap = SKBitmap.Decode(png);
        Assert.Equal((width, height), (bitmap.Width, bitmap.Height));
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                uint c = palette[indices[y * width + x]];
                var actual = bitmap.GetPixel(x, y);
                byte a = (byte)(c >> 24);
                Assert.Equal(a, actual.Alpha);
                if (a == 255) Assert.Equal(new SKColor((byte)c, (byte)(c >> 8), (byte)(c >> 16)), actual);
            }
        Assert.True(bitmap.GetPixel(1, 0).Blue > 250);
    }
}
