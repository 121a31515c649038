using AttnPortal.Inference.Images;

namespace AttnPortal.Tests;

/// <summary>Decoding and CLIP preprocessing against the frames HF's PIL-backend processor produced (CLIPImageProcessorPil).</summary>
public sealed class ImagePreprocessingTests
{
    private static readonly ClipImageProcessor Processor = new(ClipPreprocessConfig.Load(Fixture.Checkpoint));

    /// <summary>One 8-bit step in normalised units for the channel with the smallest std.</summary>
    private const double OneStep = 1.0 / 255 / 0.26130258;

    [Theory]
    [InlineData("wide.png", AspectMode.Pad, 0)]
    [InlineData("wide.png", AspectMode.Crop, 0)]
    [InlineData("tall-alpha.png", AspectMode.Pad, 0)]
    [InlineData("tall-alpha.png", AspectMode.Crop, 0)]
    // JPEG decoders may differ by a step (IDCT and chroma upsampling); the issue allows one.
    [InlineData("rotated-exif6.jpg", AspectMode.Pad, 1)]
    [InlineData("rotated-exif6.jpg", AspectMode.Crop, 1)]
    public void FrameAndPixelValuesMatchHf(string image, AspectMode mode, int allowedSteps)
    {
        var result = Processor.Process(RgbImage.Load(Fixture.Image(image)), mode);
        string key = $"{image}.{mode.ToString().ToLowerInvariant()}";
        var reference = Fixture.Tensor<byte>(Fixture.Image("images.safetensors"), key); // CHW
        Assert.Equal(3 * 336 * 336, result.ModelFrameRgb.Length);
        int worst = 0;
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 336 * 336; i++)
                worst = Math.Max(worst, Math.Abs(result.ModelFrameRgb[i * 3 + c] - reference[c * 336 * 336 + i]));
        Assert.True(worst <= allowedSteps, $"{key}: frame differs from HF by {worst} steps");
        double pv = Fixture.MaxAbsDiff(result.PixelValues, Fixture.HfPixelValues(key));
        Assert.True(pv <= allowedSteps * OneStep + 1e-6, $"{key}: pixel values differ by {pv}");
    }

    [Theory]
    [InlineData("wide.png")]
    [InlineData("tall-alpha.png")]
    [InlineData("rotated-exif6.jpg")]
    [InlineData("small.bmp")]
    [InlineData("small.webp")]
    [InlineData("anim.gif")]
    public void DecodesLikePillowAfterExifAndAlpha(string image)
    {
        var rgb = RgbImage.Load(Fixture.Image(image));
        using var file = Inference.Checkpoints.SafeTensorsFile.Open(Fixture.Image("images.safetensors"));
        var info = file.Tensors[$"{image}.rgb"]; // [H, W, 3]
        Assert.Equal((info.Shape[0], info.Shape[1]), ((long)rgb.Height, (long)rgb.Width));
        var expected = file.Bytes(info).ToArray();
        int worst = expected.Zip(rgb.Pixels, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(worst <= (image.EndsWith(".jpg") ? 1 : 0), $"{image}: decoded RGB differs by {worst}");
    }

    [Fact]
    public void AlphaIsDroppedLikeHfUnlessWhiteCompositingIsAsked()
    {
        // tall-alpha.png: alpha 0 in the first 20 rows, then rising from 0 (left column) to 255 (right column).
        var drop = RgbImage.Load(Fixture.Image("tall-alpha.png"));
        var white = RgbImage.Load(Fixture.Image("tall-alpha.png"), AlphaHandling.CompositeOverWhite);
        int w = drop.Width;
        Assert.All(white.Pixels[..(20 * w * 3)], v => Assert.Equal(255, v));
        Assert.Contains(drop.Pixels[..(20 * w * 3)], v => v != 255);
        for (int y = 20; y < drop.Height; y++)
            for (int c = 0; c < 3; c++)
                Assert.Equal(drop.Pixels[(y * w + w - 1) * 3 + c], white.Pixels[(y * w + w - 1) * 3 + c]); // opaque column
    }

    [Fact]
    public void ExifOrientationIsApplied()
    {
        var rgb = RgbImage.Load(Fixture.Image("rotated-exif6.jpg")); // stored 180x240, orientation 6
        Assert.Equal((240, 180), (rgb.Width, rgb.Height));
    }

    [Fact]
    public void GeometryLaysTheGridBackOverTheOriginal()
    {
        var image = RgbImage.Load(Fixture.Image("wide.png")); // 200 x 130
        var pad = Processor.Process(image, AspectMode.Pad).Geometry;
        Assert.Equal(new ImageRect(0, -35, 200, 200), pad.Frame);
        var firstCell = pad.PatchCell(0, 0, 24);
        Assert.Equal(200.0 / 24, firstCell.Width, 9);
        Assert.Equal(-35, firstCell.Y, 9);
        var crop = Processor.Process(image, AspectMode.Crop).Geometry; // resized to 516 x 336, crop offset 90
        Assert.Equal(0, crop.FrameY, 9);
        Assert.Equal(130, crop.FrameHeight, 9);
        Assert.Equal(90 * 200.0 / 516, crop.FrameX, 6);
        Assert.Equal(336 * 200.0 / 516, crop.FrameWidth, 6);
    }

    [Fact]
    public void NotAnImageIsNamed()
    {
        var e = Assert.Throws<InvalidDataException>(() => RgbImage.Decode("hello, world"u8.ToArray(), "notes.txt"));
        Assert.Contains("notes.txt: not a recognised image", e.Message);
    }

    [Fact]
    public void TruncatedImageIsAnErrorNotAGreyPicture()
    {
        var bytes = File.ReadAllBytes(Fixture.Image("wide.png"));
        var e = Assert.Throws<InvalidDataException>(() => RgbImage.Decode(bytes[..(bytes.Length / 2)], "wide.png"));
        Assert.Contains("wide.png: truncated or corrupt", e.Message);
    }

    [Fact]
    public void EmptyFileAndPixelLimitAreNamed()
    {
        Assert.Contains("empty", Assert.Throws<InvalidDataException>(() => RgbImage.Decode(Array.Empty<byte>(), "x.png")).Message);
        var e = Assert.Throws<InvalidDataException>(() => RgbImage.Load(Fixture.Image("wide.png"), maxPixels: 1000));
        Assert.Contains("above the limit of 1000", e.Message);
    }

    [Theory]
    [InlineData(ResampleFilter.Bicubic, false)]
    [InlineData(ResampleFilter.Bicubic, true)]
    [InlineData(ResampleFilter.Lanczos, false)]
    public void PhotoSizedResizesInParallelBandsGiveTheBytesOfOneRowAtATime(ResampleFilter filter, bool padded)
    {
        // A photo's resize is split across cores in bands of rows; a single output row (a window) runs on one thread.
        var rgb = new byte[1600 * 1200 * 3];
        new Random(7).NextBytes(rgb);
        var source = padded ? new RgbCanvas(rgb, 1600, 1200, 1600, 1600, 0, 200, 122, 116, 104) : new RgbCanvas(rgb, 1600, 1200);
        int w = 336, h = padded ? 336 : 252;
        var whole = new byte[w * h * 3];
        PillowResampler.Resize(source, w, h, filter, new PixelWindow(0, 0, w, h), whole);
        var row = new byte[w * 3];
        for (int y = 0; y < h; y++)
        {
            PillowResampler.Resize(source, w, h, filter, new PixelWindow(0, y, w, 1), row);
            Assert.True(row.AsSpan().SequenceEqual(whole.AsSpan(y * w * 3, w * 3)), $"output row {y} differs");
        }
    }
}
