using AttnPortal.Inference.Model;
using System.Text.Json;
using AttnPortal.Inference.Images;

namespace AttnPortal.Tests;

/// <summary>
/// Anyres preprocessing and image-token layout against transformers 5.17 (LlavaNextImageProcessorPil,
/// LlavaOnevisionImageProcessorPil and the models' pack_image_features) on the tiny-onevision / tiny-next-mistral fixtures.
/// </summary>
public sealed class AnyresTests
{
    private static string Families => Path.Combine(AppContext.BaseDirectory, "Fixtures", "hf-families");
    private static string Checkpoint(string name) => Path.Combine(Families, name);

    private static readonly PixelSize[] OneVisionPins =
        [new(56, 56), new(56, 112), new(56, 168), new(112, 56), new(112, 112), new(112, 168), new(168, 56), new(168, 112), new(168, 168)];
    private static readonly PixelSize[] NextPins = [new(56, 112), new(112, 56), new(112, 112), new(168, 56), new(56, 168)];

    /// <summary>A fixture run: its image, HF's token and tile counts, and the tensors HF produced.</summary>
    private sealed record Run(string Image, int ImageTokens, int Tiles, float[] PixelValues, long[] PixelShape, long[] ImageSizes, long FeatureRows)
    {
        public static Run Load(string name)
        {
            string stem = Path.Combine(Families, "runs", name);
            using var json = JsonDocument.Parse(File.ReadAllText(stem + ".json"));
            var root = json.RootElement;
            using var file = Inference.Checkpoints.SafeTensorsFile.Open(stem + ".safetensors");
            var (pv, shape) = Inference.Artifacts.AttentionArtifact.Read<float>(file, "pixel_values");
            var (sizes, _) = Inference.Artifacts.AttentionArtifact.Read<long>(file, "image_sizes");
            return new Run(root.GetProperty("image").GetString()!, root.GetProperty("image_tokens").GetInt32(),
                root.GetProperty("tiles").GetInt32(), pv, shape, sizes, file.Tensors["image_features"].Shape[0]);
        }
    }

    /// <summary>The model-side numbers a layout needs, from the checkpoint's config.json.</summary>
    private static (int ImageSize, int PatchSize, int? MaxTiles) ModelVision(string checkpoint)
    {
        var config = LlavaConfig.Load(Checkpoint(checkpoint));
        return (config.Vision.ImageSize, config.Vision.PatchSize, config.AnyresMaxTiles);
    }

    private static AnyresLayout LayoutFor(string checkpoint, PixelSize image)
    {
        var config = AnyresConfig.Load(Checkpoint(checkpoint));
        var (imageSize, patch, maxTiles) = ModelVision(checkpoint);
        Assert.Equal(imageSize, config.TileSize);
        return new AnyresLayout(image, config.GridPinpoints, config.TileSize, patch, maxTiles);
    }

    public static TheoryData<string, string> Runs => new()
    {
        { "onevision-wide-standard", "tiny-onevision" },
        { "onevision-tall-standard", "tiny-onevision" },
        { "onevision-small-standard", "tiny-onevision" },
        { "next-mistral-wide-standard", "tiny-next-mistral" },
        { "next-mistral-tall-standard", "tiny-next-mistral" },
    };

    [Theory]
    [MemberData(nameof(Runs))]
    public void PixelValuesEqualHf(string run, string checkpoint)
    {
        var hf = Run.Load(run);
        var processor = new AnyresImageProcessor(AnyresConfig.Load(Checkpoint(checkpoint)));
        var result = processor.Process(RgbImage.Load(Fixture.Image(hf.Image)));

        Assert.Equal(hf.Tiles, result.Tiles);
        Assert.Equal(new long[] { hf.Tiles, 3, 56, 56 }, hf.PixelShape);
        Assert.Equal(56, result.TileSize);
        Assert.Equal(hf.ImageSizes, new long[] { result.ImageSize.Height, result.ImageSize.Width });
        double diff = Fixture.MaxAbsDiff(result.PixelValues, hf.PixelValues);
        Assert.True(diff == 0, $"{run}: pixel values differ from HF's by up to {diff}");
    }

    [Theory]
    [MemberData(nameof(Runs))]
    public void TileAndTokenCountsEqualHf(string run, string checkpoint)
    {
        var hf = Run.Load(run);
        var layout = LayoutFor(checkpoint, new PixelSize((int)hf.ImageSizes[0], (int)hf.ImageSizes[1]));
        Assert.Equal(hf.Tiles, layout.Tiles);
        Assert.Equal(hf.ImageTokens, layout.TokenCount);
        Assert.Equal(hf.FeatureRows, layout.TokenCount);
        Assert.Equal(layout.TokenCount, layout.Tokens().Length);
    }

    // The original LLaVA checkpoint layout: the vision tower's plain preprocessor config, the pinpoints in config.json.
    private const string PlainSiglip = """
        {"do_normalize": true, "do_rescale": true, "do_resize": true, "image_mean": [0.5, 0.5, 0.5],
         "image_processor_type": "SiglipImageProcessor", "image_std": [0.5, 0.5, 0.5], "resample": 3,
         "rescale_factor": 0.00392156862745098, "size": {"height": 56, "width": 56}}
        """;
    private const string PlainClip = """
        {"crop_size": 56, "do_center_crop": true, "do_normalize": true, "do_resize": true,
         "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
         "resample": 3, "size": 56}
        """;

    [Theory]
    [InlineData("tiny-onevision-original", PlainSiglip, "onevision-wide-standard")]
    [InlineData("tiny-next-mistral", PlainClip, "next-mistral-wide-standard")]
    public void OriginalCheckpointLayoutTakesPinpointsFromConfigJson(string checkpoint, string preprocessor, string run)
    {
        using var tmp = new Fixture.TempDir();
        File.Copy(Path.Combine(Checkpoint(checkpoint), "config.json"), tmp["config.json"]);
        File.WriteAllText(tmp["preprocessor_config.json"], preprocessor);
        var config = AnyresConfig.Load(tmp.Path);
        Assert.Equal(checkpoint == "tiny-next-mistral" ? NextPins : OneVisionPins, config.GridPinpoints);
        var hf = Run.Load(run);
        var result = new AnyresImageProcessor(config).Process(RgbImage.Load(Fixture.Image(hf.Image)));
        Assert.Equal(0, Fixture.MaxAbsDiff(result.PixelValues, hf.PixelValues));
    }

    [Fact]
    public void ConfigsOfBothFlavoursParse()
    {
        var next = AnyresConfig.Load(Checkpoint("tiny-next-mistral"));
        Assert.Equal(56, next.TileSize);
        Assert.Equal(NextPins, next.GridPinpoints);
        Assert.Equal(new[] { 0.48145466, 0.4578275, 0.40821073 }, next.ImageMean);
        Assert.Equal(ResampleFilter.Bicubic, next.Resample);
        var ov = AnyresConfig.Load(Checkpoint("tiny-onevision"));
        Assert.Equal(56, ov.TileSize);
        Assert.Equal(OneVisionPins, ov.GridPinpoints);
        Assert.Equal(new[] { 0.5, 0.5, 0.5 }, ov.ImageStd);
        Assert.True(ov.DoPad);
    }

    [Theory]
    [InlineData(112, 168, 112, 168)] // exact fit
    [InlineData(56, 56, 56, 56)]     // exact fit of the smallest
    [InlineData(130, 200, 112, 168)] // most kept pixels: 168x109 beats 112x72 despite more canvas
    [InlineData(210, 130, 168, 112)]
    [InlineData(30, 40, 56, 56)]     // tiny: every pinpoint keeps all 1200 pixels; least waste wins
    [InlineData(1, 1, 56, 56)]
    [InlineData(1000, 1000, 168, 168)]
    [InlineData(50, 500, 56, 168)]
    public void BestResolutionOfOneVisionPinpoints(int h, int w, int bestH, int bestW) =>
        Assert.Equal(new PixelSize(bestH, bestW), AnyresLayout.SelectBestResolution(new(h, w), OneVisionPins));

    [Fact]
    public void BestResolutionTiesGoToTheFirstPinpoint()
    {
        // A square image keeps as many pixels, and wastes as many, on 56x112 as on 112x56.
        PixelSize a = new(56, 112), b = new(112, 56);
        Assert.Equal(a, AnyresLayout.SelectBestResolution(new(100, 100), [a, b]));
        Assert.Equal(b, AnyresLayout.SelectBestResolution(new(100, 100), [b, a]));
        // int() truncation: 130x200 on 56x112 keeps int(200*56/130) x 56 = 86 x 56, the same as on 56x168.
        Assert.Equal(new PixelSize(56, 112), AnyresLayout.SelectBestResolution(new(130, 200), [new(56, 168), new(56, 112)]));
    }

    [Theory]
    [InlineData(130, 200, 112, 168, 110, 168)] // ceil(130 * 0.84) = 110
    [InlineData(210, 130, 168, 112, 168, 104)] // ceil(130 * 0.8)
    [InlineData(30, 40, 56, 56, 42, 56)]
    [InlineData(56, 56, 56, 56, 56, 56)]
    public void ResizeKeepsTheAspectAndRoundsUp(int h, int w, int th, int tw, int rh, int rw) =>
        Assert.Equal(new PixelSize(rh, rw), AnyresLayout.FitInside(new(h, w), new(th, tw)));

    [Fact]
    public void OneVisionWideIsDownscaled()
    {
        var layout = new AnyresLayout(new(130, 200), OneVisionPins, 56, 14, maxTiles: 4);
        Assert.Equal((2, 3, 4), (layout.TilesHigh, layout.TilesWide, layout.PatchesPerSide));
        Assert.Equal((8, 12), (layout.GridRows, layout.GridCols));
        Assert.Equal((0, 8), layout.KeptRows); // int(round(130 * 12/200, 7)) = 7 rows: (8 - 7) // 2 = 0 trimmed
        Assert.Equal((0, 12), layout.KeptCols);
        Assert.Equal((6, 9), layout.Downscaled); // ratio sqrt(96 / 64) = 1.22 > 1.1: 8 // 1.22, 12 // 1.22
        Assert.Equal(16 + 6 * 10, layout.TokenCount);
        Assert.Equal(7, layout.Tiles);
    }

    [Fact]
    public void So400mTilesOf384PixelsHave27PatchesPerSide()
    {
        // LLaVA-OneVision's SigLIP-so400m/384 has 14-pixel patches: 384 is no multiple of 14, and like transformers'
        // image_size // patch_size (and the stride-14 convolution) the grid floors to 27 per side.
        var layout = new AnyresLayout(new(384, 768), [new(384, 384), new(384, 768), new(768, 768)], 384, 14, maxTiles: 9);
        Assert.Equal((1, 2, 27), (layout.TilesHigh, layout.TilesWide, layout.PatchesPerSide));
        Assert.Equal((27, 54), (layout.Rows, layout.Cols));
        Assert.Equal(27 * 27 + 27 * 55, layout.TokenCount);
        Assert.Contains("at least the patch size", Assert.Throws<ArgumentException>(() => new AnyresLayout(new(10, 10), [new(8, 8)], 8, 14)).Message);
    }

    [Fact]
    public void NextWideIsUnpaddedButNotDownscaled()
    {
        var layout = new AnyresLayout(new(130, 200), NextPins, 56, 14);
        Assert.Equal(new PixelSize(112, 112), layout.BestResolution);
        Assert.Equal((1, 7), layout.KeptRows); // int(round(130 * 8/200, 7)) = 5: (8 - 5) // 2 = 1
        Assert.Equal((0, 8), layout.KeptCols);
        Assert.Null(layout.Downscaled);
        Assert.Equal((6, 8), (layout.Rows, layout.Cols));
        Assert.Equal(16 + 6 * 9, layout.TokenCount);
        // The same grid under anyres_max_4 is small enough to stay: sqrt(48 / 64) < 1.1.
        Assert.Null(new AnyresLayout(new(130, 200), NextPins, 56, 14, maxTiles: 4).Downscaled);
    }

    [Fact]
    public void TallImagesTrimColumns()
    {
        var layout = new AnyresLayout(new(180, 240), NextPins, 56, 14); // rotated-exif6.jpg, upright
        Assert.Equal((1, 7), layout.KeptRows);
        var tall = new AnyresLayout(new(210, 130), OneVisionPins, 56, 14, maxTiles: 4);
        Assert.Equal((0, 12), tall.KeptRows);
        Assert.Equal((0, 8), tall.KeptCols); // int(round(130 * 12/210, 7)) = 7: nothing trimmed
        Assert.Equal((9, 6), tall.Downscaled);
        var narrow = new AnyresLayout(new(200, 60), [new(56, 56)], 56, 14);
        Assert.Equal((0, 4), narrow.KeptRows);
        Assert.Equal((1, 3), narrow.KeptCols); // int(60 * 4/200) = 1: (4 - 1) // 2 = 1
    }

    [Fact]
    public void TinyImagesStillGetABaseViewAndOneTile()
    {
        var one = new AnyresLayout(new(1, 1), OneVisionPins, 56, 14, maxTiles: 4);
        Assert.Equal(2, one.Tiles); // HF's single-view packing (p² + 1 newline) never applies to an anyres image
        Assert.Equal(16 + 4 * 5, one.TokenCount);
        // 1x5: int(round(1 * 4/5, 7)) = 0 rows survive unpad, so only the base view is left (as in HF).
        var sliver = new AnyresLayout(new(1, 5), OneVisionPins, 56, 14, maxTiles: 4);
        Assert.Equal((2, 2), sliver.KeptRows);
        Assert.Equal(16, sliver.TokenCount);
        var pixels = new AnyresImageProcessor(AnyresConfig.Load(Checkpoint("tiny-onevision")))
            .Process(new RgbImage(5, 1, new byte[15]));
        Assert.Equal(2 * 3 * 56 * 56, pixels.PixelValues.Length);
    }

    public static TheoryData<string, int, int> FixtureImages => new()
    {
        { "tiny-onevision", 130, 200 }, { "tiny-onevision", 210, 130 }, { "tiny-onevision", 30, 40 },
        { "tiny-next-mistral", 130, 200 }, { "tiny-next-mistral", 180, 240 },
    };

    [Theory]
    [MemberData(nameof(FixtureImages))]
    public void TokensComeInPackingOrderWithANewlineEndingEachRow(string checkpoint, int h, int w)
    {
        var layout = LayoutFor(checkpoint, new(h, w));
        var tokens = layout.Tokens();
        int p = layout.PatchesPerSide, i = 0;
        for (int r = 0; r < p; r++)
            for (int c = 0; c < p; c++)
                Assert.Equal((AnyresTokenKind.Base, r, c), (tokens[i].Kind, tokens[i].Row, tokens[i++].Col));
        for (int r = 0; r < layout.Rows; r++)
        {
            for (int c = 0; c < layout.Cols; c++)
                Assert.Equal((AnyresTokenKind.Grid, r, c), (tokens[i].Kind, tokens[i].Row, tokens[i++].Col));
            Assert.Equal(AnyresTokenKind.Newline, tokens[i].Kind);
            Assert.Null(tokens[i].Rect);
            Assert.Equal(p * p + r * (layout.Cols + 1) + layout.Cols, i++);
        }
        Assert.Equal(tokens.Length, i);
        Assert.All(tokens.Where(t => t.Kind != AnyresTokenKind.Newline), t => Assert.NotNull(t.Rect));
    }

    [Theory]
    [MemberData(nameof(FixtureImages))]
    public void BaseTokensTileTheImageExactly(string checkpoint, int h, int w)
    {
        var layout = LayoutFor(checkpoint, new(h, w));
        int p = layout.PatchesPerSide;
        var cells = layout.Tokens().Where(t => t.Kind == AnyresTokenKind.Base).Select(t => t.Rect!.Value).ToArray();
        Assert.Equal(p * p, cells.Length);
        Assert.Equal(new ImageRect(0, 0, w / (double)p, h / (double)p), cells[0]);
        Assert.Equal((double)w, cells[^1].Right, 9);
        Assert.Equal((double)h, cells[^1].Bottom, 9);
        for (int r = 0; r < p; r++)
            for (int c = 0; c < p; c++)
            {
                var cell = cells[r * p + c];
                if (c > 0) Assert.Equal(cells[r * p + c - 1].Right, cell.X, 9);
                if (r > 0) Assert.Equal(cells[(r - 1) * p + c].Bottom, cell.Y, 9);
            }
        Assert.Equal((double)w * h, cells.Sum(c => c.Width * c.Height), 6);
    }

    [Theory]
    [MemberData(nameof(FixtureImages))]
    public void GridTokensCoverTheImageWithinThePaddedCanvas(string checkpoint, int h, int w)
    {
        var layout = LayoutFor(checkpoint, new(h, w));
        var cells = layout.Tokens().Where(t => t.Kind == AnyresTokenKind.Grid).Select(t => t.Rect!.Value).ToArray();
        Assert.Equal(layout.Rows * layout.Cols, cells.Length);
        var canvas = layout.Canvas;
        const double eps = 1e-9;
        Assert.All(cells, c => Assert.True(c.X >= canvas.X - eps && c.Y >= canvas.Y - eps
            && c.Right <= canvas.Right + eps && c.Bottom <= canvas.Bottom + eps, $"{c} leaves the canvas {canvas}"));
        Assert.True(cells.Min(c => c.X) <= 0 && cells.Min(c => c.Y) <= 0 && cells.Max(c => c.Right) >= w && cells.Max(c => c.Bottom) >= h,
            $"grid tokens span ({cells.Min(c => c.X)}, {cells.Min(c => c.Y)})-({cells.Max(c => c.Right)}, {cells.Max(c => c.Bottom)}), not all of {w}x{h}");
        // Neighbours share edges: the cells partition the kept region.
        for (int r = 0; r < layout.Rows; r++)
            for (int c = 1; c < layout.Cols; c++)
                Assert.Equal(cells[r * layout.Cols + c - 1].Right, cells[r * layout.Cols + c].X, 9);
        Assert.Equal(layout.Rows * layout.Cols * cells[0].Width * cells[0].Height, cells.Sum(c => c.Width * c.Height), 6);
    }

    [Fact]
    public void GridCellsMapThroughTheResizeAndPadding()
    {
        // OneVision wide: 200x130 resized to 168x110 on a 168x112 canvas, one padding row above; no columns trimmed.
        var layout = new AnyresLayout(new(130, 200), OneVisionPins, 56, 14);
        Assert.Equal(new PixelSize(110, 168), layout.ResizedSize);
        Assert.Equal((1, 0), (layout.PadTop, layout.PadLeft));
        Assert.Null(layout.Downscaled); // no anyres_max: NeXT-style packing of the full 8x12 grid
        var first = layout.GridCell(0, 0);
        Assert.Equal(-1 * 130 / 110.0, first.Y, 12);
        Assert.Equal(14 * 200 / 168.0, first.Width, 12);
        Assert.Equal(14 * 130 / 110.0, first.Height, 12);
        // Downscaled to 6x9, a cell takes 1/6 of the 8 kept rows and 1/9 of the 12 columns.
        var small = new AnyresLayout(new(130, 200), OneVisionPins, 56, 14, maxTiles: 4).GridCell(5, 8);
        Assert.Equal(8 * 12 * 14 / 9.0 * 200 / 168, small.X, 9);
        Assert.Equal((5 * 8 * 14 / 6.0 - 1) * 130 / 110, small.Y, 9);
        Assert.Equal(12 * 14 / 9.0 * 200 / 168, small.Width, 9);
        Assert.Equal(8 * 14 / 6.0 * 130 / 110, small.Height, 9);
        Assert.Equal(200, small.Right, 9);
    }

    [Fact]
    public void UnpadLeavesAtMostHalfACellOfTheImageToTheBaseView()
    {
        // unpad_image counts whole feature cells and truncates, so its kept band can be a little narrower than the image.
        double worst = 0;
        for (int h = 1; h <= 120; h += 1)
            for (int w = 1; w <= 120; w += 1)
            {
                var layout = new AnyresLayout(new(h, w), OneVisionPins, 56, 14);
                if (layout.Rows == 0 || layout.Cols == 0) continue; // a sliver: nothing survives unpad
                var first = layout.GridCell(0, 0);
                var last = layout.GridCell(layout.Rows - 1, layout.Cols - 1);
                double sy = (double)layout.ResizedSize.Height / h, sx = (double)layout.ResizedSize.Width / w; // original -> canvas px
                worst = Math.Max(worst, new[] { first.Y * sy, first.X * sx, (h - last.Bottom) * sy, (w - last.Right) * sx }.Max());
            }
        Assert.InRange(worst, 0, 7 + 1e-9);
    }

    [Theory]
    [InlineData(7.0, 7)]
    [InlineData(7.8, 7)]
    [InlineData(5.2, 5)]
    [InlineData(3.0000000000000004, 3)]
    [InlineData(6.99999996, 7)] // round(6.99999996, 7) = 7.0
    [InlineData(6.99999994, 6)] // round(6.99999994, 7) = 6.9999999
    [InlineData(0.99999995000001, 1)]
    [InlineData(0.99999994999999, 0)]
    [InlineData(0.0, 0)]
    public void UnpadRoundsLikePython(double x, int expected) => Assert.Equal(expected, AnyresLayout.TruncRound7(x));

    [Fact]
    public void DownscaleFloorsLikePython()
    {
        Assert.Equal(9.0, AnyresLayout.PyFloorDiv(1, 0.1)); // Python: 1 // 0.1 == 9.0, although 1 / 0.1 == 10.0
        Assert.Equal(6.0, AnyresLayout.PyFloorDiv(8, Math.Sqrt(1.5)));
        Assert.Equal(9.0, AnyresLayout.PyFloorDiv(12, Math.Sqrt(1.5)));
        Assert.Equal(0.0, AnyresLayout.PyFloorDiv(1, 1.2));
    }

    [Theory]
    [InlineData("anyres_max_9", 9)]
    [InlineData("anyres_max_4", 4)]
    [InlineData("anyres", null)]
    public void MaxTilesParse(string value, int? n) => Assert.Equal(n, LlavaConfig.AnyresMax(value));

    [Theory]
    [InlineData("anyres_max_")]
    [InlineData("anyres_max_0")]
    [InlineData("pad")]
    public void MaxTilesRejectsOtherModes(string value) => Assert.Throws<NotSupportedException>(() => LlavaConfig.AnyresMax(value));

    private const string NextJson = """
        {"crop_size": {"height": 56, "width": 56}, "size": {"shortest_edge": 56}, "do_pad": true,
         "image_grid_pinpoints": [[56, 112], [112, 56]], "resample": 3}
        """;

    [Theory]
    [InlineData("\"size\": {\"shortest_edge\": 56}, ", "", "size is missing")]
    [InlineData("\"size\": {\"shortest_edge\": 56}", "\"size\": {\"shortest_edge\": 56, \"longest_edge\": 100}", "size {")]
    [InlineData("\"size\": {\"shortest_edge\": 56}", "\"size\": {\"shortest_edge\": 84}", "size 84x84 (height x width) differs from crop_size 56x56")]
    [InlineData("\"size\": {\"shortest_edge\": 56}", "\"size\": {\"height\": 0, \"width\": 56}", "size.height 0 is not a positive integer")]
    [InlineData("\"crop_size\": {\"height\": 56, \"width\": 56}", "\"crop_size\": {\"height\": 56, \"width\": 28}", "crop_size 56x28")]
    [InlineData("\"crop_size\": {\"height\": 56, \"width\": 56}, \"size\": {\"shortest_edge\": 56}", "\"size\": {\"height\": 56, \"width\": 112}", "size 56x112 (height x width) is not square")]
    [InlineData("\"crop_size\": {\"height\": 56, \"width\": 56}, ", "", "crop_size is missing")]
    [InlineData("\"image_grid_pinpoints\": [[56, 112], [112, 56]]", "\"image_grid_pinpoints\": [[56, 100]]", "[56, 100] is not a multiple of the tile size 56")]
    [InlineData("\"image_grid_pinpoints\": [[56, 112], [112, 56]]", "\"image_grid_pinpoints\": [[56]]", "entry [56] is not a [height, width] pair")]
    [InlineData("\"image_grid_pinpoints\": [[56, 112], [112, 56]]", "\"image_grid_pinpoints\": \"(1x1),...,(3x3)\"", "is a string")]
    [InlineData("\"image_grid_pinpoints\": [[56, 112], [112, 56]]", "\"image_grid_pinpoints\": []", "image_grid_pinpoints is not a non-empty list")]
    [InlineData("\"image_grid_pinpoints\": [[56, 112], [112, 56]],", "", "image_grid_pinpoints is missing")]
    [InlineData("\"do_pad\": true", "\"do_pad\": 1", "do_pad is not a boolean")]
    [InlineData("\"resample\": 3", "\"resample\": 0", "resample 0 is not supported")]
    public void BadConfigsNameTheFileAndKey(string original, string replacement, string message)
    {
        string json = NextJson.Replace(original, replacement);
        Assert.NotEqual(NextJson, json);
        var e = Assert.Throws<InvalidDataException>(() => AnyresConfig.FromJson(json, "/ckpt/preprocessor_config.json"));
        Assert.StartsWith("/ckpt/preprocessor_config.json: ", e.Message);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void TheGoodConfigOfTheBadConfigTestsParses() =>
        Assert.Equal(2, AnyresConfig.FromJson(NextJson).GridPinpoints.Count);

    [Fact]
    public void ModelPinpointsFillInAndMustAgree()
    {
        string withoutPins = NextJson.Replace("\"image_grid_pinpoints\": [[56, 112], [112, 56]],", "");
        var fromModel = AnyresConfig.ReadGridPinpoints("""{"image_grid_pinpoints": [[112, 112]]}""");
        Assert.Equal(new[] { new PixelSize(112, 112) }, AnyresConfig.FromJson(withoutPins, modelGridPinpoints: fromModel).GridPinpoints);
        Assert.Null(AnyresConfig.ReadGridPinpoints("""{"model_type": "llava_next"}"""));
        var e = Assert.Throws<InvalidDataException>(() => AnyresConfig.FromJson(NextJson, "p.json", fromModel, "m/config.json"));
        Assert.Contains("image_grid_pinpoints differ from those of m/config.json", e.Message);
        var bad = Assert.Throws<InvalidDataException>(() => AnyresConfig.FromJson(withoutPins, "p.json",
            AnyresConfig.ReadGridPinpoints("""{"image_grid_pinpoints": [[100, 56]]}""", "m/config.json"), "m/config.json"));
        Assert.StartsWith("m/config.json: image_grid_pinpoints [100, 56]", bad.Message);
        Assert.Throws<InvalidDataException>(() => AnyresConfig.ReadGridPinpoints("{", "m/config.json"));
    }

    [Fact]
    public void MissingPreprocessorConfigIsReported()
    {
        using var tmp = new Fixture.TempDir();
        var e = Assert.Throws<InvalidDataException>(() => AnyresConfig.Load(tmp.Path));
        Assert.Contains("preprocessor_config.json", e.Message);
    }
}
