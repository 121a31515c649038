using TorchSharp;
using static TorchSharp.torch;

namespace AttnPortal.Inference.Generation;

/// <summary>
/// A function of one tensor recorded as a CUDA graph per input shape and replayed from a fixed input buffer: the
/// vision tower and projector per pixel shape (LLaVA-1.5: one; anyres: one per tile count). Run eagerly, its hundreds
/// of small operations take longer to launch than to compute; replayed, a few. (The prompt's pass through the language
/// model stays eager: its products keep the GPU busier than the launches keep the host, and recorded per prompt
/// length it gained nothing on a 7B model.) The most recently used <see cref="Capacity"/> shapes are kept. Without the
/// graph shim, or on the CPU, the function simply runs. It may not write into its input: the first call runs it twice
/// on the same buffer (once to warm up, once replayed).
/// </summary>
internal sealed class ShapeGraphs(Device device) : IDisposable
{
    public const int Capacity = 4;

    private sealed record Entry(Tensor Input, Tensor Output, CudaGraph Graph) : IDisposable
    {
        public void Dispose()
        {
            Graph.Dispose();
            Input.Dispose();
            Output.Dispose();
        }
    }

    private readonly List<(string Shape, Entry Entry)> _entries = []; // most recently used last

    /// <summary>GPU memory the recorded graphs keep between runs: their input buffers and private pools (outputs
    /// included).</summary>
    public long DeviceBytes => _entries.Sum(e => e.Entry.Input.Bytes() + e.Entry.Graph.PoolBytes);

    /// <summary><paramref name="function"/>(<paramref name="input"/>), replayed when it was recorded for this shape.
    /// The result is the graph's own output buffer: read it before the next call.</summary>
    public Tensor Run(Tensor input, Func<Tensor, Tensor> function)
    {
        if (!CudaGraph.CanRecord(device)) return function(input);
        string shape = $"{string.Join('x', input.shape)} {input.dtype}";
        int i = _entries.FindIndex(e => e.Shape == shape);
        if (i >= 0)
        {
            var hit = _entries[i];
            _entries.RemoveAt(i);
            _entries.Add(hit);
            hit.Entry.Input.copy_(input);
            hit.Entry.Graph.Replay();
            return hit.Entry.Output;
        }
        var entry = Record(input, function);
        if (_entries.Count == Capacity)
        {
            _entries[0].Entry.Dispose();
            _entries.RemoveAt(0);
        }
        _entries.Add((shape, entry));
        return entry.Output;
    }

    private Entry Record(Tensor input, Func<Tensor, Tensor> function)
    {
        var fixedInput = input.clone().DetachFromDisposeScope();
        Tensor? output = null;
        try
        {
            var graph = CudaGraph.Capture(device, () =>
            {
                output?.Dispose();
                output = function(fixedInput).DetachFromDisposeScope();
            });
            graph.Replay(); // the recording ran nothing: fill the output for this call
            return new Entry(fixedInput, output!, graph);
        }
        catch
        {
            fixedInput.Dispose();
            output?.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        foreach (var (_, entry) in _entries) entry.Dispose();
        _entries.Clear();
    }
}
