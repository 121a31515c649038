using TorchSharp;
using static TorchSharp.torch;

namespace AttnPortal.Inference.Generation;

/// <summary>
/// The vision tower and projector recorded as a CUDA graph per pixel shape (LLaVA-1.5: one; anyres: one per tile
/// count), replayed from a fixed pixel buffer. Run eagerly, the tower's few hundred small operations cost ~10 ms of
/// host time per image on a 7B LLaVA; replayed, a few. The most recently used <see cref="Capacity"/> shapes are kept.
/// Without the graph shim, or on the CPU, the tower simply runs.
/// </summary>
internal sealed class VisionGraphs(Device device) : IDisposable
{
    public const int Capacity = 4;

    private sealed record Entry(Tensor Pixels, Tensor Features, CudaGraph Graph) : IDisposable
    {
        public void Dispose()
        {
            Graph.Dispose();
            Pixels.Dispose();
            Features.Dispose();
        }
    }

    private readonly List<(string Shape, Entry Entry)> _entries = []; // most recently used last

    /// <summary><paramref name="tower"/>(<paramref name="pixels"/>), replayed when it was recorded for this shape.
    /// The result is the graph's own output buffer: read it before the next call.</summary>
    public Tensor Run(Tensor pixels, Func<Tensor, Tensor> tower)
    {
        if (!CudaGraph.CanRecord(device)) return tower(pixels);
        string shape = $"{string.Join('x', pixels.shape)} {pixels.dtype}";
        int i = _entries.FindIndex(e => e.Shape == shape);
        if (i >= 0)
        {
            var hit = _entries[i];
            _entries.RemoveAt(i);
            _entries.Add(hit);
            hit.Entry.Pixels.copy_(pixels);
            hit.Entry.Graph.Replay();
            return hit.Entry.Features;
        }
        var entry = Record(pixels, tower);
        if (_entries.Count == Capacity)
        {
            _entries[0].Entry.Dispose();
            _entries.RemoveAt(0);
        }
        _entries.Add((shape, entry));
        return entry.Features;
    }

    private Entry Record(Tensor pixels, Func<Tensor, Tensor> tower)
    {
        var input = pixels.clone().DetachFromDisposeScope();
        Tensor? features = null;
        try
        {
            var graph = CudaGraph.Capture(device, () =>
            {
                features?.Dispose();
                features = tower(input).DetachFromDisposeScope();
            });
            graph.Replay(); // the recording ran nothing: fill the output for this call
            return new Entry(input, features!, graph);
        }
        catch
        {
            input.Dispose();
            features?.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        foreach (var (_, entry) in _entries) entry.Dispose();
        _entries.Clear();
    }
}
