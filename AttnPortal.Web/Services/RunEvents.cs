using AttnPortal.Data;

namespace AttnPortal.Web.Services;

/// <summary>A change to a run, pushed to every open page in this process.</summary>
public sealed record RunUpdate(Guid RunId, RunStatus Status, int StepsDone, int MaxSteps, string? Error, string? LatestToken);

/// <summary>In-process fan-out of run progress to Blazor circuits (one portal process; the database stays the record).</summary>
public sealed class RunEvents
{
    public event Action<RunUpdate>? Changed;
    public void Publish(RunUpdate update) => Changed?.Invoke(update);
}

/// <summary>Cancellation sources of the runs executing in this process, so Cancel stops a run between tokens.</summary>
public sealed class RunCancellation
{
    private readonly Dictionary<Guid, CancellationTokenSource> _running = new();

    public CancellationTokenSource Register(Guid runId, CancellationToken outer)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(outer);
        lock (_running) _running[runId] = cts;
        return cts;
    }

    public void Unregister(Guid runId)
    {
        lock (_running) _running.Remove(runId);
    }

    public void Cancel(Guid runId)
    {
        lock (_running) if (_running.TryGetValue(runId, out var cts)) cts.Cancel();
    }
}
