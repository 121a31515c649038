using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnPortal.Inference.Generation;

/// <summary>
/// A CUDA graph of one decoding step, through a small C++ shim over libtorch's <c>at::cuda::CUDAGraph</c>
/// (<c>native/cudagraph/attnportal_cudagraph.cpp</c>, built against the PyTorch the engine runs on; TorchSharp binds no
/// graphs). Replaying the graph launches the step's few hundred kernels at once instead of one P/Invoke and one launch
/// each. Without the shim, or on the CPU, decoding stays eager: same numbers, more launch overhead.
/// </summary>
public sealed class CudaGraph : IDisposable
{
    private const string Library = "attnportal_cudagraph";
    private IntPtr _graph;

    [DllImport(Library)] private static extern IntPtr ap_graph_new();
    [DllImport(Library)] private static extern int ap_side_stream_begin();
    [DllImport(Library)] private static extern int ap_capture_begin(IntPtr graph);
    [DllImport(Library)] private static extern int ap_capture_end(IntPtr graph);
    [DllImport(Library)] private static extern int ap_side_stream_end();
    [DllImport(Library)] private static extern int ap_replay(IntPtr graph);
    [DllImport(Library)] private static extern void ap_graph_free(IntPtr graph);
    [DllImport(Library)] private static extern long ap_memory_reserved();
    [DllImport(Library)] internal static extern IntPtr ap_event_new();
    [DllImport(Library)] internal static extern int ap_event_record(IntPtr evt);
    [DllImport(Library)] internal static extern int ap_event_synchronize(IntPtr evt);
    [DllImport(Library)] internal static extern void ap_event_free(IntPtr evt);

    /// <summary>Whether the shim is there (it also provides <see cref="StepFence"/>'s events).</summary>
    internal static readonly Lazy<bool> ShimLoaded = new(() =>
    {
        try { return NativeLibrary.TryLoad(Library, typeof(CudaGraph).Assembly, null, out _); }
        catch (Exception e) when (e is DllNotFoundException or BadImageFormatException) { return false; }
    });

    private static bool Enabled => ShimLoaded.Value && Environment.GetEnvironmentVariable("ATTNPORTAL_CUDA_GRAPHS") != "0";

    private CudaGraph(IntPtr graph, long poolBytes) => (_graph, PoolBytes) = (graph, poolBytes);

    /// <summary>GPU memory the graph's private pool holds (its intermediate tensors live there between replays), as the
    /// caching allocator's reserved memory grew while recording; 0 where unknown.</summary>
    public long PoolBytes { get; }

    /// <summary>Whether <see cref="Capture"/> can record on <paramref name="device"/>: CUDA, with the shim, graphs not
    /// turned off.</summary>
    public static bool CanRecord(Device device) => device.type == DeviceType.CUDA && Enabled;

    /// <summary>
    /// Runs <paramref name="step"/> once for real on a side stream (libtorch allocates its per-stream handles there),
    /// then records it as a graph without running it (<see cref="CanRecord"/> must hold). When it returns, the first
    /// step has already run: the caller replays from the second step on.
    /// </summary>
    public static CudaGraph Capture(Device device, Action step)
    {
        if (!CanRecord(device)) throw new InvalidOperationException($"CUDA graphs cannot be recorded on {device}");
        var graph = ap_graph_new();
        long poolBytes;
        torch.cuda.synchronize();
        Check(ap_side_stream_begin(), "side stream");
        try
        {
            step();
            torch.cuda.synchronize();
            long before = ap_memory_reserved();
            Check(ap_capture_begin(graph), "capture begin");
            step();
            Check(ap_capture_end(graph), "capture end");
            long after = ap_memory_reserved();
            poolBytes = before >= 0 && after > before ? after - before : 0;
        }
        catch
        {
            ap_side_stream_end();
            ap_graph_free(graph);
            throw;
        }
        Check(ap_side_stream_end(), "side stream end");
        return new CudaGraph(graph, poolBytes);
    }

    public void Replay() => Check(ap_replay(_graph), "replay");

    internal static void Check(int status, string what)
    {
        if (status != 0) throw new InvalidOperationException($"CUDA graph {what} failed (status {status})");
    }

    public void Dispose()
    {
        if (_graph == IntPtr.Zero) return;
        ap_graph_free(_graph);
        _graph = IntPtr.Zero;
    }
}
