using System.Text.Json.Nodes;
using AttnPortal.Inference.Artifacts;
using AttnPortal.Inference.Checkpoints;
using AttnPortal.Inference.Images;
using AttnPortal.Web.Rendering;
using SkiaSharp;
using static AttnPortal.Tests.Rendering.AnyresArtifact;

namespace AttnPortal.Tests.Rendering;

/// <summary>Runs whose image tokens form several grids (anyres: base, tiles, each tile) and how each is read and drawn.</summary>
public sealed class ImageViewsTests(RenderingArtifacts artifacts) : IClassFixture<RenderingArtifacts>, IDisposable
{
    private readonly Fixture.TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    private AttentionRun OpenAnyres() => AttentionRun.Open(Write(_dir["anyres.safetensors"]));

    private static ImageGridView ViewOf(AttentionRun run, string name) => run.FindView(name) ?? throw new Xunit.Sdk.XunitException($"no view '{name}'");

    private static SKBitmap Decode(byte[] png) => SKBitmap.Decode(png) ?? throw new Xunit.Sdk.XunitException("not a PNG");

    [Fact]
    public void ViewsAreReadWithTheImageSize()
    {
        var run = OpenAnyres();
        Assert.Equal(["base", "tiles", "tile 0,0", "tile 0,1", "tile 0,2", "tile 1,0", "tile 1,1", "tile 1,2"], run.Views.Select(v => v.Name));
        Assert.Equal(new ImageGridView("tiles", 16, 6, 9, 10, TilesFrame), ViewOf(run, "tiles"));
        Assert.Equal(new ImageGridView("base", 0, 4, 4, 4, new ImageRect(0, 0, 200, 130)), run.Views[0]);
        Assert.Equal((200, 130), (run.OriginalWidth, run.OriginalHeight));
        Assert.Equal((TokenStart, ImageTokens), (run.ImageTokenStart, run.ImageTokenCount)); // 76 tokens: no square
        Assert.Null(run.Geometry);
        Assert.Null(run.FindView("nonesuch"));
        Assert.Equal("tiles", run.PreferredView.Name);
    }

    [Fact]
    public void EachViewPicksExactlyItsTokensRowMajorAndNeverANewline()
    {
        var run = OpenAnyres();
        var selection = new AttentionSelection(1, 1, 2);
        float V(int imageToken) => Value(1, 1, 2, Key(imageToken));

        var baseGrid = run.ImageGrid(selection, ViewOf(run, "base"));
        Assert.Equal(Enumerable.Range(0, 16).Select(V), baseGrid);

        var tiles = run.ImageGrid(selection, ViewOf(run, "tiles"));
        Assert.Equal(6 * 9, tiles.Length);
        for (int r = 0; r < 6; r++)
            for (int c = 0; c < 9; c++)
                Assert.Equal(V(16 + r * 10 + c), tiles[r * 9 + c]);

        // Tile (1, 2): rows 3-5, columns 6-8 of the tiles.
        var tile = run.ImageGrid(selection, ViewOf(run, "tile 1,2"));
        Assert.Equal(new[] { V(52), V(53), V(54), V(62), V(63), V(64), V(72), V(73), V(74) }, tile);

        var newlines = NewlineKeys.Select(k => Value(1, 1, 2, k)).ToHashSet();
        Assert.Equal(6, newlines.Count);
        foreach (var view in run.Views)
            Assert.DoesNotContain(run.ImageGrid(selection, view), newlines.Contains);
        // Base and tiles together are every image token but the newlines.
        var image = Enumerable.Range(0, ImageTokens).Select(V).Where(v => !newlines.Contains(v));
        Assert.Equal(image, baseGrid.Concat(tiles));
        // Without a view: the first one.
        Assert.Equal(baseGrid, run.ImageGrid(selection));
    }

    [Fact]
    public void MeansAndAllHeadsFollowTheView()
    {
        var run = OpenAnyres();
        var tiles = ViewOf(run, "tiles");
        var mean = run.ImageGrid(new AttentionSelection(null, null, 1), tiles);
        for (int r = 0; r < 6; r++)
            for (int c = 0; c < 9; c++)
            {
                int key = Key(16 + r * 10 + c);
                double expected = 0;
                for (int s = 0; s < Steps; s++)
                    for (int l = 0; l < Layers; l++) expected += Value(s, l, 1, key);
                Assert.Equal(expected / (Steps * Layers), mean[r * 9 + c], 0.01); // values near 10⁴: float steps of 0.001
            }

        foreach (var view in new[] { tiles, ViewOf(run, "base"), ViewOf(run, "tile 0,1") })
        {
            int n = view.Rows * view.Cols;
            var heads = run.AllHeads(2, view);
            Assert.Equal(Layers * Heads * n, heads.Length);
            var steps = run.AllHeads(null, view);
            for (int l = 0; l < Layers; l++)
                for (int h = 0; h < Heads; h++)
                {
                    Assert.Equal(run.ImageGrid(new AttentionSelection(2, l, h), view), heads.AsSpan((l * Heads + h) * n, n).ToArray());
                    Assert.Equal(run.ImageGrid(new AttentionSelection(null, l, h), view), steps.AsSpan((l * Heads + h) * n, n).ToArray(),
                        (a, b) => Math.Abs(a - b) < 0.01);
                }
            var pooled = new float[heads.Length + 7];
            run.AllHeads(2, pooled, view);
            Assert.Equal(heads, pooled.AsSpan(0, heads.Length).ToArray());
        }
        Assert.Throws<ArgumentException>(() => run.AllHeads(0, new float[Layers * Heads * 54 - 1], tiles));
        // A view that does not fit this run's image tokens is refused, not read past the image.
        Assert.Throws<ArgumentException>(() => run.ImageGrid(default, tiles with { Rows = 7 }));
    }

    [Fact]
    public void HeatmapOfAViewIsColsWideAndRowsHigh()
    {
        var run = OpenAnyres();
        var tiles = ViewOf(run, "tiles");
        var grid = run.ImageGrid(new AttentionSelection(0, 0, 0), tiles);
        using (var bitmap = Decode(HeatmapRenderer.HeatmapPng(grid, tiles.Rows, tiles.Cols, Colormap.Gray, scale: 1)))
        {
            Assert.Equal((9, 6), (bitmap.Width, bitmap.Height));
            Assert.Equal(SKColors.Black, bitmap.GetPixel(0, 0));  // the smallest value: first token
            Assert.Equal(SKColors.White, bitmap.GetPixel(8, 5));  // the largest: last token
            Assert.True(bitmap.GetPixel(8, 0).Red < bitmap.GetPixel(0, 1).Red, "row-major: row 0 ends below where row 1 starts");
        }
        using (var scaled = Decode(HeatmapRenderer.HeatmapPng(grid, 6, 9, Colormap.Gray, scale: 3)))
        {
            Assert.Equal((27, 18), (scaled.Width, scaled.Height));
            Assert.Equal(SKColors.White, scaled.GetPixel(26, 17));
        }
        Assert.Throws<ArgumentException>(() => HeatmapRenderer.HeatmapPng(grid, 9, 9, Colormap.Gray));
    }

    [Theory]
    [InlineData(1024)] // 200 × 130, as is
    [InlineData(100)]  // 100 × 65
    public void OverlayLaysEachViewOnItsFrame(int maxWidth)
    {
        const byte photo = 128;
        var image = new RgbImage(Width, Height, Enumerable.Repeat(photo, Width * Height * 3).ToArray());
        var backdrop = OverlayBackdrop.Create(image, Width, Height, maxWidth);
        double scale = backdrop.Width / (double)Width;
        Assert.Equal(Math.Min(maxWidth, Width), backdrop.Width);
        var run = OpenAnyres();
        SKColor At(SKBitmap b, double x, double y) => b.GetPixel((int)(x * scale), (int)(y * scale));

        // Tiles: the largest value is the last cell (5, 8), [180, 200) × [110, 130); the smallest the first, [20, 40) × [10, 30).
        using (var tiles = Decode(HeatmapRenderer.OverlayPng(backdrop, run, new AttentionSelection(0, 0, 0), ViewOf(run, "tiles"),
                   Colormap.Gray, 1f, Normalization.MinMax)))
        {
            Assert.Equal((backdrop.Width, backdrop.Height), (tiles.Width, tiles.Height));
            Assert.Equal(SKColors.White, At(tiles, 192, 122));
            Assert.Equal(SKColors.Black, At(tiles, 26, 16));
            Assert.Equal(new SKColor(photo, photo, photo), At(tiles, 10, 60));  // left of the frame
            Assert.Equal(new SKColor(photo, photo, photo), At(tiles, 100, 4));  // above it
            Assert.NotEqual(new SKColor(photo, photo, photo), At(tiles, 24, 14));
        }
        // Base: 4 × 4 over the whole image, so no pixel is left as photo; cell (3, 3) is [150, 200) × [97.5, 130).
        using (var whole = Decode(HeatmapRenderer.OverlayPng(backdrop, run, new AttentionSelection(0, 0, 0), ViewOf(run, "base"),
                   Colormap.Gray, 1f, Normalization.MinMax)))
        {
            Assert.Equal(SKColors.White, At(whole, 190, 126));
            Assert.Equal(SKColors.Black, At(whole, 4, 4));
            Assert.NotEqual(new SKColor(photo, photo, photo), At(whole, 10, 60));
            Assert.Equal(SKColors.White, At(whole, 152, 100));
            Assert.NotEqual(SKColors.White, At(whole, 146, 100));
        }
        // One tile: "tile 1,2" is [140, 200) × [70, 130); everything else stays photo.
        using var one = Decode(HeatmapRenderer.OverlayPng(backdrop, run, new AttentionSelection(0, 0, 0), ViewOf(run, "tile 1,2"),
            Colormap.Gray, 1f, Normalization.MinMax));
        Assert.Equal(SKColors.White, At(one, 196, 126));
        Assert.Equal(SKColors.Black, At(one, 144, 74));
        Assert.Equal(new SKColor(photo, photo, photo), At(one, 130, 100));
        Assert.Equal(new SKColor(photo, photo, photo), At(one, 170, 64));
    }

    [Fact]
    public void HeadGridOfNonSquareTilesLaysOutAndHitTestsRowsAndColumnsApart()
    {
        // 2 layers × 3 heads of 6 × 9 cells at 2 px with 1 px gaps: tiles 18 wide, 12 high; sprite 56 × 25.
        var layout = new HeadGridLayout(2, 3, 6, 9, 2, 1);
        Assert.Equal((18, 12, 56, 25), (layout.TileWidth, layout.TileHeight, layout.Width, layout.Height));
        Assert.Equal((19, 13), layout.TileOrigin(1, 1));
        Assert.Equal((0, 0), layout.HitTest(17, 11));
        Assert.Null(layout.HitTest(18, 5));      // gap column after head 0
        Assert.Equal((0, 1), layout.HitTest(19, 5));
        Assert.Null(layout.HitTest(5, 12));      // gap row after layer 0
        Assert.Equal((1, 0), layout.HitTest(5, 13));
        Assert.Equal((1, 0), layout.HitTest(17, 24));
        Assert.Equal((1, 2), layout.HitTest(55, 24));
        Assert.Null(layout.HitTest(56, 0));
        Assert.Null(layout.HitTest(0, 25));

        var run = OpenAnyres();
        var tiles = ViewOf(run, "tiles");
        using var sprite = Decode(HeatmapRenderer.HeadGridPng(run.AllHeads(1, tiles), Layers, Heads, tiles.Rows, tiles.Cols, Colormap.Gray, cellPixels: 2, gap: 1));
        Assert.Equal((layout.Width, layout.Height), (sprite.Width, sprite.Height));
        for (int l = 0; l < Layers; l++)
            for (int h = 0; h < Heads; h++)
            {
                var (x, y) = layout.TileOrigin(l, h);
                Assert.Equal(SKColors.Black, sprite.GetPixel(x, y));                  // cell (0, 0): the smallest
                Assert.Equal(SKColors.White, sprite.GetPixel(x + 8 * 2 + 1, y + 5 * 2 + 1)); // cell (5, 8): the largest
            }
        Assert.Equal(0, sprite.GetPixel(18, 3).Alpha);
        Assert.Equal(0, sprite.GetPixel(3, 12).Alpha);
    }

    [Theory]
    [InlineData("beyond", "outside the 76 image tokens")]
    [InlineData("negative-offset", "outside the 76 image tokens")]
    [InlineData("no-rows", "rows and columns must be positive")]
    [InlineData("overlapping-rows", "row stride 8 is less than its 9 columns")]
    [InlineData("flat-frame", "not a finite rectangle")]
    [InlineData("frame-not-a-number", "has no frame.x")]
    [InlineData("no-cols", "has no integer cols")]
    [InlineData("twice", "two views are named 'tiles'")]
    [InlineData("none", "the image has no views")]
    [InlineData("not-a-list", "not a list")]
    [InlineData("no-size", "original image size")]
    public void BadViewsAreRefusedNamingTheFileAndTheView(string defect, string message)
    {
        string path = Write(_dir[$"bad-{defect}.safetensors"], image =>
        {
            var views = (JsonArray)image["views"]!;
            var tiles = (JsonObject)views[1]!;
            switch (defect)
            {
                case "beyond": tiles["rows"] = 7; break;
                case "negative-offset": tiles["token_offset"] = -1; break;
                case "no-rows": tiles["rows"] = 0; break;
                case "overlapping-rows": tiles["row_stride"] = 8; break;
                case "flat-frame": tiles["frame"]!["height"] = 0; break;
                case "frame-not-a-number": tiles["frame"]!["x"] = "left"; break;
                case "no-cols": tiles.Remove("cols"); break;
                case "twice": views.Add(View("tiles", 0, 1, 1, 1, new ImageRect(0, 0, 1, 1))); break;
                case "none": views.Clear(); break;
                case "not-a-list": image["views"] = "tiles"; break;
                case "no-size": image.Remove("width"); break;
            }
        });
        var e = Assert.Throws<InvalidDataException>(() => AttentionRun.Open(path));
        Assert.Contains($"bad-{defect}.safetensors", e.Message);
        Assert.Contains(message, e.Message);
        if (defect is "beyond" or "negative-offset" or "no-rows" or "overlapping-rows" or "flat-frame" or "no-cols")
            Assert.Contains("view 'tiles'", e.Message);
    }

    [Fact]
    public void ArtifactWithoutViewsGetsTheOneViewTheEngineWritesToday()
    {
        // The real LLaVA-1.5 artifact with image.views removed, as artifacts were written before views existed.
        string legacy = _dir["legacy.safetensors"];
        using (var file = SafeTensorsFile.Open(artifacts.Pad))
        {
            var meta = AttentionArtifact.ReadMetadata(file);
            var image = (JsonObject)meta["image"]!;
            var written = AttentionRun.Open(artifacts.Pad).Views;
            Assert.True(image.Remove("views"));
            var writer = new SafeTensorsWriter().Metadata(AttentionArtifact.MetadataKey, meta.ToJsonString());
            foreach (var (name, info) in file.Tensors) writer.Add(name, info.DType, info.Shape, file.Bytes(info).ToArray());
            writer.WriteAtomically(legacy);

            var run = AttentionRun.Open(legacy);
            Assert.Equal(written, run.Views);
            Assert.Equal(new ImageGridView("image", 0, 24, 24, 24, artifacts.PadGeometry.Frame), Assert.Single(run.Views));
            Assert.Equal((artifacts.PadGeometry.OriginalWidth, artifacts.PadGeometry.OriginalHeight), (run.OriginalWidth, run.OriginalHeight));
            Assert.Equal(AttentionRun.Open(artifacts.Pad).ImageGrid(new AttentionSelection(1, 2, 3)), run.ImageGrid(new AttentionSelection(1, 2, 3), run.Views[0]));
        }

        // Without views, the image tokens must still form a square.
        string odd = Write(_dir["odd.safetensors"], image => image.Remove("views"));
        var e = Assert.Throws<InvalidDataException>(() => AttentionRun.Open(odd));
        Assert.Contains("odd.safetensors", e.Message);
        Assert.Contains("76 image tokens do not form a square", e.Message);
    }
}
