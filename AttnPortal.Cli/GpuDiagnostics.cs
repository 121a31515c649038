using System.Runtime.InteropServices;

namespace AttnPortal.Cli;

/// <summary>
/// The GPU machine's diagnostics shim (<c>native/profiler</c>, built by tools/gpu/build-cudagraph.sh): libtorch's
/// Kineto profiler (every ATen op and CUDA kernel between Start and Stop, as a Chrome trace) and the CUDA caching
/// allocator's peak, measured as torch.cuda.max_memory_allocated measures HF transformers. Used by <c>bench</c> only;
/// the engine never needs it.
/// </summary>
internal static class GpuDiagnostics
{
    private const string Library = "attnportal_profiler";

    [DllImport(Library)] private static extern int ap_profiler_start();
    [DllImport(Library, CharSet = CharSet.Ansi)] private static extern int ap_profiler_stop(string tracePath);
    [DllImport(Library)] private static extern long ap_memory_allocated(int peak);
    [DllImport(Library)] private static extern void ap_memory_reset_peak();

    private static readonly Lazy<bool> Loaded = new(() => NativeLibrary.TryLoad(Library, typeof(GpuDiagnostics).Assembly, null, out _));

    public static void StartProfiler()
    {
        if (!Loaded.Value)
            throw new UsageException("--profile needs the diagnostics shim (libattnportal_profiler.so, built by tools/gpu/build-cudagraph.sh) next to the CLI");
        if (ap_profiler_start() != 0) throw new InvalidOperationException("the profiler did not start (see stderr)");
    }

    public static void StopProfiler(string tracePath)
    {
        if (ap_profiler_stop(Path.GetFullPath(tracePath)) != 0) throw new InvalidOperationException("the profiler did not stop (see stderr)");
    }

    /// <summary>Starts measuring peak allocated GPU memory; false where the shim is not there.</summary>
    public static bool ResetPeakMemory()
    {
        if (!Loaded.Value) return false;
        ap_memory_reset_peak();
        return true;
    }

    /// <summary>Peak bytes allocated on the GPU since <see cref="ResetPeakMemory"/>; null where unknown.</summary>
    public static long? PeakAllocated() => Loaded.Value && ap_memory_allocated(1) is >= 0 and var b ? b : null;

    /// <summary>Bytes allocated on the GPU now; null where unknown.</summary>
    public static long? Allocated() => Loaded.Value && ap_memory_allocated(0) is >= 0 and var b ? b : null;
}
