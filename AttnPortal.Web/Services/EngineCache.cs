using AttnPortal.Inference;

namespace AttnPortal.Web.Services;

/// <summary>
/// Keeps models loaded between jobs so the second run on a model pays no load time, within
/// <see cref="WorkerOptions.ModelMemoryBudgetGiB"/>: before a model is loaded, the least recently used ones are
/// unloaded until its weights fit next to what the others hold (their weights and what their last runs left: KV
/// cache, recorded graphs); 0: only the last model stays. Jobs run one at a time on the "gpu" queue.
/// </summary>
public sealed class EngineCache(PortalPaths paths, PortalOptions options, ILogger<EngineCache> log) : IDisposable
{
    private readonly object _gate = new();
    private readonly LinkedList<(string Name, LlavaEngine Engine)> _loaded = new(); // most recently used first

    /// <summary>The loaded models, most recently used first.</summary>
    public IReadOnlyList<string> Loaded
    {
        get { lock (_gate) return _loaded.Select(e => e.Name).ToList(); }
    }

    public LlavaEngine Get(ModelOptions model)
    {
        lock (_gate)
        {
            long budget = (long)(options.Worker.ModelMemoryBudgetGiB * (1L << 30));
            var node = Find(model.Name);
            if (node is not null)
            {
                _loaded.Remove(node);
                _loaded.AddFirst(node);
            }
            else
            {
                string path = paths.ModelPath(model);
                long needed = budget > 0 ? LlavaEngine.EstimateBytes(path, model.DType) : 0;
                while (_loaded.Count > 0 && (budget <= 0 || Resident() + needed > budget)) Unload(_loaded.Last!);
                if (budget > 0 && needed > budget)
                    log.LogWarning("model {Model} needs about {Needed:F1} GiB, more than the {Budget:F1} GiB budget: loading it alone", model.Name, needed / (double)(1L << 30), options.Worker.ModelMemoryBudgetGiB);
                _loaded.AddFirst((model.Name, LlavaEngine.Load(path, new EngineOptions(model.Device, model.DType))));
            }
            // What runs leave resident (KV caches, recorded graphs) grows after a model was let in: the least recently
            // used others give way to it.
            while (budget > 0 && _loaded.Count > 1 && Resident() > budget) Unload(_loaded.Last!);
            return _loaded.First!.Value.Engine;
        }
    }

    /// <summary>Unloads every model but <paramref name="keep"/>: after a device ran out of memory, the next run should
    /// find as much of it free as possible.</summary>
    public void ReleaseAllBut(string? keep)
    {
        lock (_gate)
            for (var node = _loaded.First; node is not null;)
            {
                var next = node.Next;
                if (node.Value.Name != keep) Unload(node);
                node = next;
            }
    }

    private long Resident() => _loaded.Sum(e => e.Engine.ResidentBytes);

    private LinkedListNode<(string Name, LlavaEngine Engine)>? Find(string name)
    {
        for (var node = _loaded.First; node is not null; node = node.Next)
            if (node.Value.Name == name) return node;
        return null;
    }

    private void Unload(LinkedListNode<(string Name, LlavaEngine Engine)> node)
    {
        _loaded.Remove(node);
        node.Value.Engine.Dispose();
    }

    public void Dispose()
    {
        lock (_gate)
            while (_loaded.Count > 0) Unload(_loaded.Last!);
    }
}
