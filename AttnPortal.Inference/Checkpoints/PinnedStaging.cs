using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnPortal.Inference.Checkpoints;

/// <summary>
/// Host-to-device weight copies through two reusable pinned (page-locked) buffers per stored dtype: while one buffer's
/// chunk travels to the GPU (non-blocking), the next chunk is copied out of the mapped file into the other. Pageable
/// source memory would make every transfer synchronous and several times slower, and a fresh staging tensor per weight
/// would cost an allocation each; host memory stays bounded by the buffers.
/// </summary>
internal sealed class PinnedStaging : IDisposable
{
    private const long ChunkBytes = 64L << 20;
    private readonly Dictionary<ScalarType, Tensor?[]> _buffers = new();
    private readonly bool[] _inFlight = new bool[2];
    private int _slot;

    /// <summary>Copies a stored tensor (<paramref name="elements"/> values of <paramref name="dtype"/>, raw bytes) into
    /// a CUDA parameter with as many elements, converting dtype on the device.</summary>
    public void CopyToDevice(Tensor parameter, ReadOnlySpan<byte> bytes, ScalarType dtype, long elements)
    {
        if (elements == 0) return;
        long elementSize = bytes.Length / elements;
        long perChunk = Math.Max(1, ChunkBytes / elementSize);
        using var flat = parameter.view(-1);
        for (long e0 = 0; e0 < elements; e0 += perChunk)
        {
            long n = Math.Min(perChunk, elements - e0);
            var buffer = Take(dtype, perChunk);
            using var chunk = buffer.narrow(0, 0, n);
            chunk.bytes = MemoryMarshal.CreateSpan(ref MemoryMarshal.GetReference(bytes.Slice(checked((int)(e0 * elementSize)))), checked((int)(n * elementSize)));
            using var target = flat.narrow(0, e0, n);
            target.copy_(chunk, true); // non-blocking: the buffer is not reused before Take has waited for it
        }
    }

    /// <summary>Waits for every transfer in flight.</summary>
    public void Drain()
    {
        if (_inFlight[0] || _inFlight[1]) torch.cuda.synchronize();
        _inFlight[0] = _inFlight[1] = false;
    }

    /// <summary>A pinned buffer of <paramref name="elements"/> values whose previous transfer has finished.</summary>
    private Tensor Take(ScalarType dtype, long elements)
    {
        _slot ^= 1;
        if (_inFlight[_slot]) Drain();
        _inFlight[_slot] = true;
        if (!_buffers.TryGetValue(dtype, out var pair)) _buffers[dtype] = pair = new Tensor?[2];
        if (pair[_slot] is { } b && b.shape[0] >= elements) return b;
        pair[_slot]?.Dispose();
        using var pageable = torch.empty(elements, dtype);
        return (pair[_slot] = pageable.pin_memory());
    }

    public void Dispose()
    {
        Drain();
        foreach (var pair in _buffers.Values)
            foreach (var b in pair) b?.Dispose();
    }
}
