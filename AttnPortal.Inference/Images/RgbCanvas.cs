namespace AttnPortal.Inference.Images;

/// <summary>A rectangle of output pixels.</summary>
internal readonly record struct PixelWindow(int X, int Y, int Width, int Height);

/// <summary>
/// An RGB image placed on a (possibly larger) canvas filled with a background colour, read row by row without
/// materialising the canvas (LLaVA's expand2square pads a 4000×3000 photo to 4000×4000).
/// </summary>
internal readonly struct RgbCanvas
{
    private readonly byte[] _pixels;
    private readonly byte[]? _background; // one canvas row of the background colour, when there is padding
    private readonly int _imageWidth, _imageHeight, _offsetX, _offsetY;

    public int Width { get; }
    public int Height { get; }

    public RgbCanvas(byte[] pixels, int width, int height)
        : this(pixels, width, height, width, height, 0, 0, 0, 0, 0) { }

    public RgbCanvas(byte[] pixels, int imageWidth, int imageHeight, int canvasWidth, int canvasHeight,
        int offsetX, int offsetY, byte r, byte g, byte b)
    {
        if (offsetX < 0 || offsetY < 0 || offsetX + imageWidth > canvasWidth || offsetY + imageHeight > canvasHeight)
            throw new ArgumentOutOfRangeException(nameof(offsetX), "the image must lie inside the canvas");
        _pixels = pixels;
        _imageWidth = imageWidth;
        _imageHeight = imageHeight;
        Width = canvasWidth;
        Height = canvasHeight;
        _offsetX = offsetX;
        _offsetY = offsetY;
        if (imageWidth != canvasWidth || imageHeight != canvasHeight)
        {
            _background = new byte[canvasWidth * 3];
            for (int i = 0; i < _background.Length; i += 3)
                (_background[i], _background[i + 1], _background[i + 2]) = (r, g, b);
        }
    }

    public bool HasPadding => _background is not null;

    /// <summary>A canvas row of background colour (only meaningful when <see cref="HasPadding"/>).</summary>
    public ReadOnlySpan<byte> BackgroundRow => _background;

    /// <summary>The canvas columns [Start, End) that hold the image.</summary>
    public (int Start, int End) ImageColumns => (_offsetX, _offsetX + _imageWidth);

    public bool IsBackgroundRow(int y) => y < _offsetY || y >= _offsetY + _imageHeight;

    /// <summary>Row <paramref name="y"/> of the canvas; <paramref name="scratch"/> (Width * 3 bytes) is used when padding is needed.</summary>
    public ReadOnlySpan<byte> Row(int y, Span<byte> scratch)
    {
        if (_background is null)
            return _pixels.AsSpan(y * _imageWidth * 3, _imageWidth * 3);
        if (IsBackgroundRow(y))
            return _background;
        var imageRow = _pixels.AsSpan((y - _offsetY) * _imageWidth * 3, _imageWidth * 3);
        if (_imageWidth == Width)
            return imageRow;
        _background.CopyTo(scratch);
        imageRow.CopyTo(scratch[(_offsetX * 3)..]);
        return scratch[..(Width * 3)];
    }
}
