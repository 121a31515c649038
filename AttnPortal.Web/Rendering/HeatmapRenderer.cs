using System.Buffers;
using System.Runtime.InteropServices;
using AttnPortal.Inference.Images;
using SkiaSharp;

namespace AttnPortal.Web.Rendering;

/// <summary>Options of the photo overlay.</summary>
/// <param name="Smooth">Bilinear interpolation between cell centres instead of crisp cells.</param>
/// <param name="AlphaFromValue">Opacity × t per pixel, so that cold cells leave the photo visible.</param>
/// <param name="OutsideFrameDim">Darken the parts of the photo outside the view's frame (what a crop never showed the model) by this fraction, 0 to 1.</param>
public sealed record OverlayOptions(bool Smooth = false, bool AlphaFromValue = false, float OutsideFrameDim = 0f)
{
    public static OverlayOptions Default { get; } = new();

    /// <summary>A stable text form for cache keys.</summary>
    public string Key => $"{(Smooth ? "smooth" : "cells")}{(AlphaFromValue ? "-va" : "")}{(OutsideFrameDim > 0 ? $"-dim{OutsideFrameDim.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)}" : "")}";
}

/// <summary>
/// Renders attention maps to PNG: over the original photo (<c>OverlayPng</c>), as a layers × heads sprite
/// (<see cref="HeadGridPng"/>) and plain (<see cref="HeatmapPng"/>). Pure functions of their inputs; thread-safe.
/// </summary>
/// <remarks>
/// Every map is one view's rows × cols grid, row-major (<see cref="AttentionRun.ImageGrid"/>). Pixels are composed in
/// managed code, so each cell covers exactly the output pixels whose centres fall inside its rectangle: pixel x belongs
/// to column floor((x + 0.5 − frameX) / cellWidth). The photo overlay is true colour and encoded by SkiaSharp; heatmaps
/// without a photo are palette images (<see cref="IndexedPng"/>), one byte per pixel.
/// </remarks>
public static class HeatmapRenderer
{
    /// <summary>
    /// Skia PNG settings for overlays: the Sub filter at zlib level 2 encodes a 1024 × 768 photo several times faster
    /// than Skia's default (all filters, level 6) for a file about 10 % larger.
    /// </summary>
    private static readonly SKPngEncoderOptions OverlayEncoding = new(SKPngEncoderFilterFlags.Sub, 2);

    /// <summary>The overlay of <paramref name="selection"/>'s attention over <paramref name="view"/> of <paramref name="run"/>.</summary>
    public static byte[] OverlayPng(OverlayBackdrop backdrop, AttentionRun run, AttentionSelection selection, ImageGridView view,
        Colormap colormap, float opacity, Normalization normalization, OverlayOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(run);
        return OverlayPng(backdrop, view, run.ImageGrid(selection, view), colormap, opacity, normalization, options);
    }

    /// <summary>
    /// The photo with <paramref name="view"/>'s rows × cols heatmap (row-major) laid over the view's frame: cell (r, c)
    /// covers exactly the frame's r-th of rows by c-th of cols scaled to the output, and whatever of the frame is
    /// padding outside the photo is clipped away.
    /// </summary>
    /// <param name="opacity">Heatmap opacity, 0 (photo only) to 1 (heatmap only).</param>
    public static byte[] OverlayPng(OverlayBackdrop backdrop, ImageGridView view, ReadOnlySpan<float> grid, Colormap colormap,
        float opacity, Normalization normalization, OverlayOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(backdrop);
        ArgumentNullException.ThrowIfNull(view);
        ArgumentNullException.ThrowIfNull(colormap);
        CheckGrid(grid, view.Rows, view.Cols);
        if (!(opacity >= 0 && opacity <= 1)) throw new ArgumentOutOfRangeException(nameof(opacity), opacity, "opacity must be in [0, 1]");
        options ??= OverlayOptions.Default;
        if (!(options.OutsideFrameDim >= 0 && options.OutsideFrameDim <= 1))
            throw new ArgumentOutOfRangeException(nameof(options), options.OutsideFrameDim, "OutsideFrameDim must be in [0, 1]");

        int width = backdrop.Width, height = backdrop.Height, rows = view.Rows, cols = view.Cols;
        var buffer = ArrayPool<uint>.Shared.Rent(width * height);
        try
        {
            var pixels = buffer.AsSpan(0, width * height);
            backdrop.Pixels.CopyTo(pixels);
            var t = new float[grid.Length];
            normalization.Apply(grid, t);
            var lut = colormap.Rgba;
            int alpha = (int)MathF.Round(opacity * 256); // blend weight out of 256

            var frame = backdrop.ToOutput(view.Frame);
            double cellW = frame.Width / cols, cellH = frame.Height / rows;
            // Pixels whose centres lie in [frame.X, frame.Right) × [frame.Y, frame.Bottom), clipped to the output.
            int x0 = Math.Clamp((int)Math.Ceiling(frame.X - 0.5), 0, width), x1 = Math.Clamp((int)Math.Ceiling(frame.Right - 0.5), 0, width);
            int y0 = Math.Clamp((int)Math.Ceiling(frame.Y - 0.5), 0, height), y1 = Math.Clamp((int)Math.Ceiling(frame.Bottom - 0.5), 0, height);

            if (options.OutsideFrameDim > 0) DimOutside(pixels, width, height, x0, x1, y0, y1, options.OutsideFrameDim);
            if (x0 < x1 && y0 < y1)
            {
                if (options.Smooth) DrawSmooth(pixels, width, x0, x1, y0, y1, frame, cellW, cellH, rows, cols, t, lut, alpha, options.AlphaFromValue);
                else DrawCells(pixels, width, x0, x1, y0, y1, frame, cellW, cellH, rows, cols, t, lut, alpha, options.AlphaFromValue);
            }
            return EncodeSkiaPng(buffer, width, height);
        }
        finally
        {
            ArrayPool<uint>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// One sprite of <paramref name="layers"/> × <paramref name="heads"/> small heatmaps (rows layers, columns heads;
    /// see <see cref="HeadGridLayout"/>), each normalised on its own unless <paramref name="normalization"/> is fixed.
    /// With gaps the colormap is drawn in 255 levels (palette entry 255 is the gap colour); without, in all 256.
    /// </summary>
    /// <param name="allHeads">[layers, heads, rows · cols] as <see cref="AttentionRun.AllHeads(int?, ImageGridView?)"/> returns it.</param>
    /// <param name="background">Colour of the gaps; transparent when null.</param>
    public static byte[] HeadGridPng(ReadOnlySpan<float> allHeads, int layers, int heads, int rows, int cols, Colormap colormap,
        int cellPixels = 2, int gap = 1, Normalization? normalization = null, SKColor? background = null)
    {
        ArgumentNullException.ThrowIfNull(colormap);
        var layout = new HeadGridLayout(layers, heads, rows, cols, cellPixels, gap).Validate();
        int n = rows * cols;
        if (allHeads.Length != (long)layers * heads * n)
            throw new ArgumentException($"{allHeads.Length} values for {layers} layers × {heads} heads × {n} cells", nameof(allHeads));

        int levels = gap > 0 ? 255 : 256;
        var palette = Palette(colormap, levels);
        if (gap > 0)
        {
            var bg = background ?? SKColors.Transparent;
            palette[255] = bg.Red | (uint)bg.Green << 8 | (uint)bg.Blue << 16 | (uint)bg.Alpha << 24;
        }
        int size = layout.Width * layout.Height;
        var buffer = ArrayPool<byte>.Shared.Rent(size);
        try
        {
            var indices = buffer.AsSpan(0, size);
            if (gap > 0) indices.Fill(255);
            var norm = normalization ?? Normalization.MinMax;
            var t = new float[n];
            var cells = new byte[n];
            for (int l = 0; l < layers; l++)
                for (int h = 0; h < heads; h++)
                {
                    norm.Apply(allHeads.Slice((l * heads + h) * n, n), t);
                    Levels(t, cells, levels);
                    var (x, y) = layout.TileOrigin(l, h);
                    FillTile(cells, rows, cols, cellPixels, indices, layout.Width, x, y);
                }
            return IndexedPng.Encode(indices, layout.Width, layout.Height, palette);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>A plain heatmap: <paramref name="rows"/> × <paramref name="cols"/> cells of <paramref name="scale"/> pixels
    /// (cols · scale wide, rows · scale high).</summary>
    public static byte[] HeatmapPng(ReadOnlySpan<float> grid, int rows, int cols, Colormap colormap, int scale = 8, Normalization? normalization = null)
    {
        ArgumentNullException.ThrowIfNull(colormap);
        CheckGrid(grid, rows, cols);
        if (scale <= 0 || (long)Math.Max(rows, cols) * scale > 8192)
            throw new ArgumentOutOfRangeException(nameof(scale), scale, "scale must be positive and the image at most 8192 pixels each way");
        var t = new float[grid.Length];
        (normalization ?? Normalization.MinMax).Apply(grid, t);
        var cells = new byte[grid.Length];
        Levels(t, cells, 256);
        int width = cols * scale, height = rows * scale;
        var indices = new byte[width * height];
        FillTile(cells, rows, cols, scale, indices, width, 0, 0);
        return IndexedPng.Encode(indices, width, height, Palette(colormap, 256));
    }

    /// <summary>
    /// A signed grid (a difference A − B) in <see cref="Colormap.Diverging"/>, one pixel per cell: 0 is white and
    /// ±<paramref name="scale"/> the deepest blue and red (<see cref="Colormap.DivergingIndex"/>).
    /// </summary>
    public static byte[] DifferencePng(ReadOnlySpan<float> grid, int rows, int cols, float scale)
    {
        CheckGrid(grid, rows, cols);
        if (!(scale >= 0) || float.IsInfinity(scale)) throw new ArgumentOutOfRangeException(nameof(scale), scale, "the scale must be finite and not negative");
        var indices = new byte[grid.Length];
        for (int i = 0; i < grid.Length; i++) indices[i] = (byte)Colormap.DivergingIndex(grid[i], scale);
        return IndexedPng.Encode(indices, cols, rows, Palette(Colormap.Diverging, 256));
    }

    /// <summary>A horizontal colour bar, entry 0 on the left, for legends.</summary>
    public static byte[] ColorbarPng(Colormap colormap, int width = 256, int height = 12)
    {
        ArgumentNullException.ThrowIfNull(colormap);
        if (width <= 0 || height <= 0 || width > 4096 || height > 4096) throw new ArgumentOutOfRangeException(nameof(width), "1 to 4096 pixels each way");
        var indices = new byte[width * height];
        for (int x = 0; x < width; x++) indices[x] = (byte)(width == 1 ? 0 : (x * 255L * 2 + width - 1) / (2 * (width - 1)));
        for (int y = 1; y < height; y++) indices.AsSpan(0, width).CopyTo(indices.AsSpan(y * width, width));
        return IndexedPng.Encode(indices, width, height, Palette(colormap, 256));
    }

    /// <summary>The palette of <paramref name="levels"/> (255 or 256) colormap levels: level k is entry round(k × 255 / (levels − 1)).</summary>
    private static uint[] Palette(Colormap colormap, int levels)
    {
        var palette = new uint[256];
        for (int k = 0; k < levels; k++) palette[k] = colormap.Rgba[(k * 255 + (levels - 1) / 2) / (levels - 1)];
        return palette;
    }

    /// <summary>Level of each t in [0, 1]: <see cref="Colormap.IndexOf"/> for 256 levels, round(t × 254) for 255.</summary>
    private static void Levels(ReadOnlySpan<float> t, Span<byte> cells, int levels)
    {
        for (int i = 0; i < t.Length; i++)
            cells[i] = (byte)(levels == 256 ? Colormap.IndexOf(t[i]) : (int)(t[i] * 254.0 + 0.5));
    }

    /// <summary>Fills a tile of rows × cols cells: each cell becomes a <paramref name="cell"/> × <paramref name="cell"/> block.</summary>
    private static void FillTile(ReadOnlySpan<byte> cells, int rows, int cols, int cell, Span<byte> target, int stride, int originX, int originY)
    {
        int tileWidth = cols * cell;
        for (int r = 0; r < rows; r++)
        {
            var first = target.Slice((originY + r * cell) * stride + originX, tileWidth);
            for (int c = 0; c < cols; c++) first.Slice(c * cell, cell).Fill(cells[r * cols + c]);
            for (int k = 1; k < cell; k++) first.CopyTo(target.Slice((originY + r * cell + k) * stride + originX, tileWidth));
        }
    }

    /// <summary>Crisp cells: one colour and weight per cell; each pixel finds its cell by its centre.</summary>
    private static void DrawCells(Span<uint> pixels, int width, int x0, int x1, int y0, int y1, ImageRect frame, double cellW, double cellH,
        int rows, int cols, float[] t, ReadOnlySpan<uint> lut, int alpha, bool alphaFromValue)
    {
        var colour = new uint[t.Length];
        var weight = new int[t.Length];
        for (int i = 0; i < t.Length; i++)
        {
            colour[i] = lut[Colormap.IndexOf(t[i])];
            weight[i] = alphaFromValue ? (int)MathF.Round(alpha * t[i]) : alpha;
        }
        var column = new int[x1 - x0];
        for (int x = x0; x < x1; x++) column[x - x0] = Math.Clamp((int)Math.Floor((x + 0.5 - frame.X) / cellW), 0, cols - 1);
        for (int y = y0; y < y1; y++)
        {
            int rowBase = Math.Clamp((int)Math.Floor((y + 0.5 - frame.Y) / cellH), 0, rows - 1) * cols;
            var line = pixels.Slice(y * width + x0, x1 - x0);
            for (int i = 0; i < line.Length; i++)
            {
                int cell = rowBase + column[i];
                line[i] = Blend(line[i], colour[cell], weight[cell]);
            }
        }
    }

    /// <summary>Bilinear in t between cell centres (clamped at the frame's border), then the colormap.</summary>
    private static void DrawSmooth(Span<uint> pixels, int width, int x0, int x1, int y0, int y1, ImageRect frame, double cellW, double cellH,
        int rows, int cols, float[] t, ReadOnlySpan<uint> lut, int alpha, bool alphaFromValue)
    {
        var (cx0, cx1, cfx) = Taps(x0, x1, frame.X, cellW, cols);
        var (cy0, cy1, cfy) = Taps(y0, y1, frame.Y, cellH, rows);
        for (int y = y0; y < y1; y++)
        {
            int j = y - y0;
            int r0 = cy0[j] * cols, r1 = cy1[j] * cols;
            float fy = cfy[j];
            var line = pixels.Slice(y * width + x0, x1 - x0);
            for (int i = 0; i < line.Length; i++)
            {
                float fx = cfx[i];
                float top = t[r0 + cx0[i]] + (t[r0 + cx1[i]] - t[r0 + cx0[i]]) * fx;
                float bottom = t[r1 + cx0[i]] + (t[r1 + cx1[i]] - t[r1 + cx0[i]]) * fx;
                float v = top + (bottom - top) * fy;
                int a = alphaFromValue ? (int)(alpha * v + 0.5f) : alpha;
                line[i] = Blend(line[i], lut[Colormap.IndexOf(v)], a);
            }
        }
    }

    /// <summary>Per output pixel along one axis: the two neighbouring cell centres and the weight of the second.</summary>
    private static (int[] C0, int[] C1, float[] F) Taps(int from, int to, double frameStart, double cellSize, int cells)
    {
        int n = to - from;
        var c0 = new int[n];
        var c1 = new int[n];
        var f = new float[n];
        for (int i = 0; i < n; i++)
        {
            double u = Math.Clamp((from + i + 0.5 - frameStart) / cellSize - 0.5, 0, cells - 1);
            int a = Math.Min((int)u, cells - 1);
            c0[i] = a;
            c1[i] = Math.Min(a + 1, cells - 1);
            f[i] = (float)(u - a);
        }
        return (c0, c1, f);
    }

    /// <summary>(1 − a/256) × photo + a/256 × colour per channel, opaque.</summary>
    private static uint Blend(uint photo, uint colour, int a)
    {
        uint ua = (uint)a, ub = 256u - ua;
        uint r = ((photo & 0xFF) * ub + (colour & 0xFF) * ua + 128) >> 8;
        uint g = (((photo >> 8) & 0xFF) * ub + ((colour >> 8) & 0xFF) * ua + 128) >> 8;
        uint b = (((photo >> 16) & 0xFF) * ub + ((colour >> 16) & 0xFF) * ua + 128) >> 8;
        return r | g << 8 | b << 16 | 0xFF000000u;
    }

    private static void DimOutside(Span<uint> pixels, int width, int height, int x0, int x1, int y0, int y1, float dim)
    {
        int darken = 256 - (int)MathF.Round((1 - dim) * 256);
        for (int y = 0; y < height; y++)
        {
            var line = pixels.Slice(y * width, width);
            bool rowInside = y >= y0 && y < y1 && x0 < x1;
            for (int x = 0; x < width; x++)
                if (!rowInside || x < x0 || x >= x1) line[x] = Blend(line[x], 0xFF000000u, darken);
        }
    }

    private static void CheckGrid(ReadOnlySpan<float> grid, int rows, int cols)
    {
        if (rows <= 0 || cols <= 0) throw new ArgumentOutOfRangeException(nameof(rows), $"a grid of {rows}×{cols} cells: rows and columns must be positive");
        if (grid.Length != (long)rows * cols)
            throw new ArgumentException($"{grid.Length} values do not form a {rows}×{cols} grid", nameof(grid));
    }

    /// <summary>Encodes opaque RGBA8888 words (R in the low byte) as an RGB PNG with Skia.</summary>
    private static byte[] EncodeSkiaPng(uint[] pixels, int width, int height)
    {
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        var handle = GCHandle.Alloc(pixels, GCHandleType.Pinned);
        try
        {
            using var pixmap = new SKPixmap(info, handle.AddrOfPinnedObject(), info.RowBytes);
            using var data = pixmap.Encode(OverlayEncoding)
                ?? throw new InvalidOperationException($"SkiaSharp could not encode a {width}×{height} PNG");
            return data.ToArray();
        }
        finally
        {
            handle.Free();
        }
    }
}
