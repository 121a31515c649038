using System.Buffers;
using System.Runtime.CompilerServices;

namespace AttnPortal.Inference.Images;

/// <summary>Resampling filters, numbered like <c>PIL.Image.Resampling</c> (the <c>resample</c> value in preprocessor configs).</summary>
public enum ResampleFilter
{
    Lanczos = 1,
    Bilinear = 2,
    Bicubic = 3,
    Box = 4,
    Hamming = 5,
}

/// <summary>
/// A reimplementation of Pillow's convolution resize (<c>Image.resize(size, filter)</c> with no box and no
/// reducing_gap) for 8-bit RGB, producing the same bytes as Pillow 9.x:
/// separable passes, horizontal first and only over the source rows the vertical pass reads; a pass is skipped
/// when its dimension is unchanged; the filter support is widened by the downscale factor (antialiasing);
/// per-output weights are computed in double, normalised to sum 1, rounded to fixed point with
/// <see cref="PrecisionBits"/> fractional bits, accumulated in 32-bit integers from a rounding offset of one half,
/// and clipped to 0..255 after each pass. Output rows are independent, so a large resize (a photo) is split across
/// cores in bands of rows, which changes no byte.
/// </summary>
public static class PillowResampler
{
    /// <summary>Fixed-point fraction bits of the weights: 32 - 8 - 2, as in Pillow.</summary>
    public const int PrecisionBits = 32 - 8 - 2;

    /// <summary>Resizes an HWC RGB buffer to <paramref name="outWidth"/> × <paramref name="outHeight"/>.</summary>
    public static byte[] Resize(ReadOnlySpan<byte> rgb, int width, int height, int outWidth, int outHeight,
        ResampleFilter filter = ResampleFilter.Bicubic)
    {
        if (width <= 0 || height <= 0 || outWidth <= 0 || outHeight <= 0)
            throw new ArgumentOutOfRangeException(nameof(width), "image sizes must be positive");
        if (rgb.Length != checked(width * height * 3))
            throw new ArgumentException("buffer length does not match width * height * 3", nameof(rgb));
        var source = new RgbCanvas(rgb.ToArray(), width, height);
        var output = new byte[checked(outWidth * outHeight * 3)];
        Resize(source, outWidth, outHeight, filter, new PixelWindow(0, 0, outWidth, outHeight), output);
        return output;
    }

    /// <summary>
    /// Resizes <paramref name="source"/> to <paramref name="outWidth"/> × <paramref name="outHeight"/> but computes only
    /// the output pixels inside <paramref name="window"/> (each output pixel depends only on its own weights, so this is
    /// exact), writing them as a tightly packed HWC RGB block of window size into <paramref name="destination"/>.
    /// </summary>
    internal static void Resize(in RgbCanvas source, int outWidth, int outHeight, ResampleFilter filter,
        PixelWindow window, byte[] destination)
    {
        if (window.X < 0 || window.Y < 0 || window.Width <= 0 || window.Height <= 0
            || window.X + window.Width > outWidth || window.Y + window.Height > outHeight)
            throw new ArgumentOutOfRangeException(nameof(window));
        if (destination.Length < window.Width * window.Height * 3)
            throw new ArgumentException("destination too small", nameof(destination));

        bool needHorizontal = outWidth != source.Width;
        bool needVertical = outHeight != source.Height;
        var horizontal = needHorizontal
            ? ResampleWeights.Compute(source.Width, outWidth, filter, window.X, window.Width) : null;
        var vertical = needVertical
            ? ResampleWeights.Compute(source.Height, outHeight, filter, window.Y, window.Height) : null;

        // Source rows that the selected output rows read (Pillow's ybox_first / ybox_last).
        int last = window.Height - 1;
        int rowFirst = vertical?.First[0] ?? window.Y;
        int rowEnd = vertical is null ? window.Y + window.Height : vertical.First[last] + vertical.Count[last];

        int rowBytes = window.Width * 3;
        if (!needVertical)
        {
            HorizontalPass(source, horizontal, window.X, window.Width, rowFirst, rowEnd, destination);
            return;
        }
        // Pooled: a fresh buffer of this size is fresh pages, which cost more than the pass that fills them.
        var temp = ArrayPool<byte>.Shared.Rent((rowEnd - rowFirst) * rowBytes);
        try
        {
            HorizontalPass(source, horizontal, window.X, window.Width, rowFirst, rowEnd, temp);
            VerticalPass(temp, rowBytes, rowFirst, vertical!, destination);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(temp);
        }
    }

    /// <summary>Multiply-adds below which a band of rows is not worth a task of its own.</summary>
    private const long WorkPerBand = 1 << 20;

    /// <summary>Runs <paramref name="band"/>(first, end) over [0, <paramref name="rows"/>) in bands, in parallel when
    /// the work is large enough: most model inputs are small images, for which a task costs more than it saves.</summary>
    private static void ForEachBand(int rows, long workPerRow, Action<int, int> band)
    {
        int bands = (int)Math.Clamp(rows * workPerRow / WorkPerBand, 1, Math.Min(rows, Environment.ProcessorCount));
        if (bands == 1) band(0, rows);
        else Parallel.For(0, bands, b => band((int)((long)rows * b / bands), (int)((long)rows * (b + 1) / bands)));
    }

    /// <summary>Horizontal pass over source rows [rowFirst, rowEnd) into packed rows of the window's width
    /// (a plain copy of columns [x0, x0 + outCount) when <paramref name="weights"/> is null).</summary>
    private static void HorizontalPass(in RgbCanvas source, ResampleWeights? weights, int x0, int outCount,
        int rowFirst, int rowEnd, byte[] output)
    {
        var canvas = source;
        int rowBytes = outCount * 3;
        if (weights is null)
        {
            var scratch = new byte[canvas.Width * 3];
            for (int y = rowFirst; y < rowEnd; y++)
                canvas.Row(y, scratch).Slice(x0 * 3, rowBytes).CopyTo(output.AsSpan((y - rowFirst) * rowBytes, rowBytes));
            return;
        }
        // Padding makes whole rows, and the outer columns of image rows, plain background: resample a background
        // row once, and on image rows compute only the outputs whose filter reaches the image (exact: the others
        // read background pixels only, with the same weights).
        var (imageStart, imageEnd) = canvas.ImageColumns;
        int computeFirst = 0, computeEnd = outCount;
        byte[]? background = null;
        if (canvas.HasPadding)
        {
            background = new byte[rowBytes];
            ResampleRow(canvas.BackgroundRow, weights, 0, outCount, background);
            while (computeFirst < outCount && weights.First[computeFirst] + weights.Count[computeFirst] <= imageStart)
                computeFirst++;
            computeEnd = computeFirst;
            while (computeEnd < outCount && weights.First[computeEnd] < imageEnd)
                computeEnd++;
        }
        ForEachBand(rowEnd - rowFirst, (long)(computeEnd - computeFirst) * weights.KernelSize * 3, (first, end) =>
        {
            var rowScratch = ArrayPool<byte>.Shared.Rent(canvas.Width * 3);
            for (int y = rowFirst + first; y < rowFirst + end; y++)
            {
                var dst = output.AsSpan((y - rowFirst) * rowBytes, rowBytes);
                if (background is not null)
                {
                    background.CopyTo(dst);
                    if (canvas.IsBackgroundRow(y))
                        continue;
                }
                ResampleRow(canvas.Row(y, rowScratch), weights, computeFirst, computeEnd, dst);
            }
            ArrayPool<byte>.Shared.Return(rowScratch);
        });
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ResampleRow(ReadOnlySpan<byte> row, ResampleWeights weights, int from, int to, Span<byte> dst)
    {
        const int half = 1 << (PrecisionBits - 1);
        int ksize = weights.KernelSize;
        var kk = weights.Fixed;
        for (int i = from; i < to; i++)
        {
            int first = weights.First[i];
            int count = weights.Count[i];
            var k = kk.AsSpan(i * ksize, count);
            var px = row.Slice(first * 3, count * 3);
            int s0 = half, s1 = half, s2 = half;
            for (int t = 0, p = 0; t < k.Length; t++, p += 3)
            {
                int w = k[t];
                s0 += px[p] * w;
                s1 += px[p + 1] * w;
                s2 += px[p + 2] * w;
            }
            dst[i * 3] = Clip8(s0);
            dst[i * 3 + 1] = Clip8(s1);
            dst[i * 3 + 2] = Clip8(s2);
        }
    }

    private static void VerticalPass(byte[] temp, int rowBytes, int rowFirst, ResampleWeights weights, byte[] output) =>
        ForEachBand(weights.First.Length, (long)rowBytes * weights.KernelSize, (first, end) =>
        {
            var acc = ArrayPool<int>.Shared.Rent(rowBytes);
            VerticalRows(temp, rowBytes, rowFirst, weights, first, end, acc.AsSpan(0, rowBytes), output);
            ArrayPool<int>.Shared.Return(acc);
        });

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void VerticalRows(byte[] temp, int rowBytes, int rowFirst, ResampleWeights weights, int from, int to,
        Span<int> acc, byte[] output)
    {
        const int half = 1 << (PrecisionBits - 1);
        int ksize = weights.KernelSize;
        for (int r = from; r < to; r++)
        {
            int first = weights.First[r] - rowFirst;
            var k = weights.Fixed.AsSpan(r * ksize, weights.Count[r]);
            acc.Fill(half);
            for (int t = 0; t < k.Length; t++)
            {
                int w = k[t];
                var src = temp.AsSpan((first + t) * rowBytes, rowBytes);
                for (int i = 0; i < src.Length; i++)
                    acc[i] += src[i] * w;
            }
            var dst = output.AsSpan(r * rowBytes, rowBytes);
            for (int i = 0; i < dst.Length; i++)
                dst[i] = Clip8(acc[i]);
        }
    }

    private static byte Clip8(int value)
    {
        int v = value >> PrecisionBits; // arithmetic shift, like Pillow's lookup-table clip8
        return v <= 0 ? (byte)0 : v >= 255 ? (byte)255 : (byte)v;
    }
}
