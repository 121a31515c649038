namespace AttnPortal.Inference.Images;

/// <summary>
/// Per-output-pixel filter weights along one axis, computed the way Pillow's <c>precompute_coeffs</c> and
/// <c>normalize_coeffs_8bpc</c> do (same double arithmetic in the same order), so the fixed-point weights are identical.
/// </summary>
internal sealed class ResampleWeights
{
    /// <summary>Slots per output pixel in <see cref="Fixed"/>.</summary>
    public int KernelSize { get; }
    /// <summary>First input index read by each output pixel of the range (index 0 = the range's first pixel).</summary>
    public int[] First { get; }
    /// <summary>Number of input pixels read by each output pixel.</summary>
    public int[] Count { get; }
    /// <summary>Weights in fixed point (<see cref="PillowResampler.PrecisionBits"/> fraction bits), <see cref="KernelSize"/> per output pixel.</summary>
    public int[] Fixed { get; }

    private ResampleWeights(int kernelSize, int[] first, int[] count, int[] weights)
    {
        KernelSize = kernelSize;
        First = first;
        Count = count;
        Fixed = weights;
    }

    /// <summary>
    /// Weights for output pixels [<paramref name="outStart"/>, <paramref name="outStart"/> + <paramref name="outCount"/>)
    /// of a resize of <paramref name="inSize"/> pixels to <paramref name="outSize"/> over the whole input (box 0..inSize).
    /// </summary>
    public static ResampleWeights Compute(int inSize, int outSize, ResampleFilter filter, int outStart, int outCount)
    {
        var (kernel, baseSupport) = Kernel(filter);
        double scale = (double)inSize / outSize; // Pillow: (double)(in1 - in0) / outSize with float box edges (exact here)
        double filterScale = scale < 1.0 ? 1.0 : scale;
        double support = baseSupport * filterScale;
        int ksize = (int)Math.Ceiling(support) * 2 + 1;
        var first = new int[outCount];
        var count = new int[outCount];
        var fixedWeights = new int[checked(outCount * ksize)];
        var k = new double[ksize];
        double ss = 1.0 / filterScale;
        for (int i = 0; i < outCount; i++)
        {
            int xx = outStart + i;
            double center = (xx + 0.5) * scale;
            int xmin = (int)(center - support + 0.5); // C cast truncates toward zero
            if (xmin < 0) xmin = 0;
            int xmax = (int)(center + support + 0.5);
            if (xmax > inSize) xmax = inSize;
            xmax -= xmin;
            double ww = 0.0;
            for (int x = 0; x < xmax; x++)
            {
                double w = kernel((x + xmin - center + 0.5) * ss);
                k[x] = w;
                ww += w;
            }
            for (int x = 0; x < xmax; x++)
            {
                double w = ww != 0.0 ? k[x] / ww : k[x];
                fixedWeights[i * ksize + x] = w < 0
                    ? (int)(-0.5 + w * (1 << PillowResampler.PrecisionBits))
                    : (int)(0.5 + w * (1 << PillowResampler.PrecisionBits));
            }
            first[i] = xmin;
            count[i] = xmax;
        }
        return new ResampleWeights(ksize, first, count, fixedWeights);
    }

    private static (Func<double, double> Kernel, double Support) Kernel(ResampleFilter filter) => filter switch
    {
        ResampleFilter.Box => (Box, 0.5),
        ResampleFilter.Bilinear => (Bilinear, 1.0),
        ResampleFilter.Hamming => (Hamming, 1.0),
        ResampleFilter.Bicubic => (Bicubic, 2.0),
        ResampleFilter.Lanczos => (Lanczos, 3.0),
        _ => throw new NotSupportedException($"resample filter {(int)filter} is not supported (nearest has no convolution kernel)"),
    };

    private static double Box(double x) => x > -0.5 && x <= 0.5 ? 1.0 : 0.0;

    private static double Bilinear(double x)
    {
        if (x < 0.0) x = -x;
        return x < 1.0 ? 1.0 - x : 0.0;
    }

    private static double Hamming(double x)
    {
        if (x < 0.0) x = -x;
        if (x == 0.0) return 1.0;
        if (x >= 1.0) return 0.0;
        x *= Math.PI;
        return Math.Sin(x) / x * (0.54f + 0.46f * Math.Cos(x)); // float constants, as in Pillow
    }

    /// <summary>Keys' cubic convolution with a = -0.5.</summary>
    private static double Bicubic(double x)
    {
        const double a = -0.5;
        if (x < 0.0) x = -x;
        if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
        if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
        return 0.0;
    }

    private static double Sinc(double x)
    {
        if (x == 0.0) return 1.0;
        x *= Math.PI;
        return Math.Sin(x) / x;
    }

    private static double Lanczos(double x) => -3.0 <= x && x < 3.0 ? Sinc(x) * Sinc(x / 3) : 0.0;
}
