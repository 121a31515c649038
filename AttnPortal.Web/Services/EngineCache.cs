using AttnPortal.Inference;

namespace AttnPortal.Web.Services;

/// <summary>
/// Keeps the most recently used model loaded between jobs (loading a 7B checkpoint costs seconds; holding two could
/// exhaust the GPU). Jobs run one at a time on the "gpu" queue, so one engine at a time is also all that is needed.
/// </summary>
public sealed class EngineCache(PortalPaths paths) : IDisposable
{
    private readonly object _gate = new();
    private string? _name;
    private LlavaEngine? _engine;

    public LlavaEngine Get(ModelOptions model)
    {
        lock (_gate)
        {
            if (_name == model.Name && _engine is not null) return _engine;
            _engine?.Dispose();
            _engine = null;
            _engine = LlavaEngine.Load(paths.ModelPath(model), new EngineOptions(model.Device, model.DType));
            _name = model.Name;
            return _engine;
        }
    }

    public void Dispose()
    {
        lock (_gate) _engine?.Dispose();
    }
}
