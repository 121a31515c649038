using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnPortal.Inference.Model;

/// <summary>
/// Fused CUDA kernels for a decoding step (<c>native/kernels</c>, built on a GPU machine against its PyTorch by
/// tools/gpu/build-cudagraph.sh): a layer's whole decoding attention (rotation, cache write, scores, mask, softmax,
/// captured row, value product) in three kernels with the keys split across blocks, or one with a block per query
/// head, instead of ~11 TorchSharp ops, the MLP's silu·up in one, and the step's
/// weight products (one input row) as a matrix-vector product that streams the weights faster than cuBLAS does. Their
/// numbers are HF's eager ones, as the op-by-op path's are (the products round once, as cuBLAS does; only the order
/// of the float32 sums differs). Without the library, on the CPU, or with
/// <c>ATTNPORTAL_FUSED_KERNELS=0</c>, the op-by-op path runs; <c>ATTNPORTAL_GEMV=0</c> turns off the products alone.
/// </summary>
public static class DecodeKernels
{
    private const string Library = "attnportal_kernels";

    [DllImport(Library)] private static extern long ap_decode_attention_max_keys(int elementSize, int headDim);
    [DllImport(Library)] private static extern int ap_decode_attention(IntPtr qkv, IntPtr cos, IntPtr sin, IntPtr position,
        IntPtr keys, IntPtr values, IntPtr mask, double scale, IntPtr capture, IntPtr output, int heads, int split);
    [DllImport(Library)] private static extern int ap_silu_mul(IntPtr gateUp, IntPtr output);
    [DllImport(Library)] private static extern int ap_gemv(IntPtr input, IntPtr weight, IntPtr addend, IntPtr output);

    private static readonly Lazy<bool> Loaded = new(() =>
        Environment.GetEnvironmentVariable("ATTNPORTAL_FUSED_KERNELS") != "0"
        && NativeLibrary.TryLoad(Library, typeof(DecodeKernels).Assembly, null, out _));

    private static readonly ConcurrentDictionary<(int, int), long> MaxKeys = new();

    /// <summary>Whether the kernels run for tensors on <paramref name="device"/>.</summary>
    public static bool Available(Device device) => device.type == DeviceType.CUDA && Loaded.Value;

    /// <summary>Whether <see cref="Attend"/> supports this head size and key capacity (its scores live in shared memory).</summary>
    internal static bool CanAttend(Device device, ScalarType dtype, int headDim, long capacity)
    {
        if (!Available(device) || dtype is not (ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16)) return false;
        int size = dtype == ScalarType.Float32 ? 4 : 2;
        return capacity <= MaxKeys.GetOrAdd((size, headDim), k => ap_decode_attention_max_keys(k.Item1, k.Item2));
    }

    /// <summary>One query's attention over a layer's cache (see <see cref="LlamaAttention.Decode"/>): rotates q and k
    /// with the rows <paramref name="rotary"/>, stores k and v at <paramref name="position"/>, writes the probabilities
    /// to <paramref name="captureRow"/> and returns the attention output [1, 1, heads · headDim].</summary>
    internal static Tensor Attend(Tensor qkv, (Tensor Cos, Tensor Sin) rotary, Tensor position, LayerKvCache cache,
        Tensor maskRow, double scale, Tensor captureRow, int heads, int headDim)
    {
        var output = torch.empty([1, 1, heads * headDim], qkv.dtype, qkv.device);
        Check(ap_decode_attention(qkv.Handle, rotary.Cos.Handle, rotary.Sin.Handle, position.Handle, cache.Keys.Handle,
            cache.Values.Handle, maskRow.Handle, scale, captureRow.Handle, output.Handle, heads, SplitAttention ? 1 : 0), "decode attention");
        return output;
    }

    // The keys split across blocks (decode_attention_split) unless ATTNPORTAL_SPLIT_ATTENTION=0; the library falls back to
    // one block per query head where the split kernel does not support the heads or head size. tools/gpu/attention-check.sh,
    // H100, per layer: OneVision-Qwen2-7B 27.2 -> 16.8 us at 1290 keys, NeXT-Mistral-7B 52.7 -> 24.0 us at 2900,
    // LLaVA-1.5-7B 15.9 -> 15.1 us; slower only for layers with most keys masked (11.9 -> 16.4 us, alternating).
    private static readonly bool SplitAttention = Environment.GetEnvironmentVariable("ATTNPORTAL_SPLIT_ATTENTION") != "0";

    /// <summary>silu(gate) · up for <paramref name="gateUp"/> = [.., gate | up], rounded as torch's two ops round.</summary>
    internal static Tensor SiluMul(Tensor gateUp)
    {
        var output = torch.empty([.. gateUp.shape[..^1], gateUp.shape[^1] / 2], gateUp.dtype, gateUp.device);
        Check(ap_silu_mul(gateUp.Handle, output.Handle), "silu_mul");
        return output;
    }

    // ATTNPORTAL_GEMV=0 leaves the step's products to cuBLAS (for comparison: tools/gpu/bench-7b.sh times both).
    private static readonly bool GemvOn = Environment.GetEnvironmentVariable("ATTNPORTAL_GEMV") != "0";

    /// <summary>Whether a decoding step's weight products run as the hand-written GEMV on <paramref name="device"/>.</summary>
    public static bool GemvAvailable(Device device) => GemvOn && Available(device);

    /// <summary>Whether <see cref="Multiply"/> serves x Wᵀ: one input row (a decoding step), on CUDA, in the weight's
    /// dtype, everything contiguous and rows of whole 16-byte chunks.</summary>
    internal static bool CanMultiply(Tensor x, Tensor weight) =>
        GemvAvailable(weight.device) && weight.dtype is (ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16)
        && x.dtype == weight.dtype && x.numel() == weight.shape[1] && x.is_contiguous() && weight.is_contiguous()
        && Aligned(x) && Aligned(weight) && weight.shape[1] * weight.ElementSize % 16 == 0;

    private static bool Aligned(Tensor t) => t.storage_offset() * t.ElementSize % 16 == 0;

    /// <summary>x Wᵀ (+ <paramref name="bias"/>) for one row x (<see cref="CanMultiply"/>), shaped [.., out] like x.</summary>
    internal static Tensor Multiply(Tensor x, Tensor weight, Tensor? bias)
    {
        var output = torch.empty([.. x.shape[..^1], weight.shape[0]], x.dtype, x.device);
        Check(ap_gemv(x.Handle, weight.Handle, bias?.Handle ?? IntPtr.Zero, output.Handle), "gemv");
        return output;
    }

    /// <summary><paramref name="residual"/> += x Wᵀ in place, one rounding (as addmm_ with the residual).</summary>
    internal static void AddProduct(Tensor residual, Tensor x, Tensor weight) =>
        Check(ap_gemv(x.Handle, weight.Handle, residual.Handle, residual.Handle), "gemv");

    private static void Check(int status, string what)
    {
        if (status != 0) throw new InvalidOperationException($"fused CUDA kernel {what} failed (status {status}; details on stderr)");
    }
}
