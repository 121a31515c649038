using System.Diagnostics;
using AttnPortal.Data;
using AttnPortal.Inference;
using AttnPortal.Inference.Generation;
using AttnPortal.Inference.Artifacts;
using AttnPortal.Inference.Images;
using Hangfire;
using Microsoft.EntityFrameworkCore;

namespace AttnPortal.Web.Services;

/// <summary>
/// Executes one run. The database is the record: the job reads the run, ends it Succeeded, Failed or Canceled, and is
/// idempotent (a finished run is left alone), so re-enqueueing after a restart is safe. Failures are recorded on the
/// run, never retried: a missing checkpoint or a bad image does not get better by trying again.
/// </summary>
[AutomaticRetry(Attempts = 0)]
[Queue(RunQueue.GpuQueue)]
public sealed class RunJob(PortalDbContext db, PortalOptions options, PortalPaths paths, EngineCache engines,
    RunEvents events, RunCancellation cancellations, ILogger<RunJob> log)
{
    public async Task ExecuteAsync(Guid runId, CancellationToken shutdown)
    {
        var run = await db.Runs.Include(r => r.Image).SingleOrDefaultAsync(r => r.Id == runId, shutdown);
        if (run is null || run.IsFinished) return;
        // Claim the run with a conditional update: a cancel that got in first, or another job, wins.
        var started = DateTime.UtcNow;
        int claimed = await db.Runs.Where(r => r.Id == runId && r.Status == RunStatus.Queued && !r.CancelRequested)
            .ExecuteUpdateAsync(s => s.SetProperty(r => r.Status, RunStatus.Running).SetProperty(r => r.StartedUtc, started).SetProperty(r => r.StepsDone, 0), shutdown);
        if (claimed == 0) return;
        await db.Entry(run).ReloadAsync(shutdown);
        Publish(run);

        using var cts = cancellations.Register(run.Id, shutdown);
        try
        {
            var model = options.Model(run.ModelName) ?? throw new ArgumentException($"model '{run.ModelName}' is no longer configured");
            var engine = engines.Get(model);
            var image = RgbImage.Load(paths.Resolve(run.Image!.StoredPath));
            var request = new InferenceRequest(image, run.Question, Aspect: run.Aspect == "crop" ? AspectMode.Crop : AspectMode.Pad,
                MaxNewTokens: run.MaxNewTokens, ImageName: run.Image.FileName, Schedule: AttentionSchedules.Parse(run.Schedule),
                SeedCompatibleDecoding: run.SeedCompatibleDecoding);
            var lastSave = Stopwatch.StartNew();
            var result = await Task.Run(() => engine.Run(request, p =>
            {
                run.StepsDone = p.Step + 1;
                events.Publish(new RunUpdate(run.Id, RunStatus.Running, run.StepsDone, run.MaxNewTokens, null, engine.Tokenizer.TokenText(p.TokenId)));
                if (lastSave.ElapsedMilliseconds > 500) { db.SaveChanges(); lastSave.Restart(); }
            }, cts.Token), cts.Token);

            string relative = Path.Combine("artifacts", $"{run.Id}.safetensors");
            var metadata = AttentionArtifact.Describe(result, engine, request);
            metadata["run"] = new System.Text.Json.Nodes.JsonObject { ["id"] = run.Id.ToString(), ["model"] = run.ModelName };
            AttentionArtifact.Write(paths.Resolve(relative), result, metadata);
            run.ArtifactPath = relative;
            run.GeneratedText = result.GeneratedText;
            run.StepsDone = result.Generation.Steps;
            await FinishAsync(run, RunStatus.Succeeded, null);
        }
        catch (OperationCanceledException) when (shutdown.IsCancellationRequested && !run.CancelRequested)
        {
            // The server is stopping: leave the run queued so start-up recovery picks it up again.
            run.Status = RunStatus.Queued;
            run.StartedUtc = null;
            await db.SaveChangesAsync(CancellationToken.None);
            Publish(run);
        }
        catch (OperationCanceledException)
        {
            await FinishAsync(run, RunStatus.Canceled, null);
        }
        catch (Exception e) when (MemoryErrors.IsOutOfMemory(e))
        {
            // The run's tensors were released by its dispose scopes; unloading the other cached models gives the next
            // run the most room. The worker itself carries on.
            log.LogWarning(e, "run {RunId} ran out of memory", run.Id);
            engines.ReleaseAllBut(run.ModelName);
            await FinishAsync(run, RunStatus.Failed, $"out of memory on {options.Model(run.ModelName)?.Device ?? "the device"} " +
                $"(model {run.ModelName}; a shorter answer, a smaller image or a larger device may fit): {FirstLine(e.Message)}");
        }
        catch (Exception e)
        {
            bool inputError = InputErrors.IsInputError(e);
            if (!inputError) log.LogError(e, "run {RunId} failed", run.Id);
            await FinishAsync(run, RunStatus.Failed, inputError ? InputErrors.Message(e) : $"internal error: {e.Message}");
        }
        finally
        {
            cancellations.Unregister(run.Id);
        }
    }

    private async Task FinishAsync(Run run, RunStatus status, string? error)
    {
        run.Status = status;
        run.Error = error;
        run.FinishedUtc = DateTime.UtcNow;
        await db.SaveChangesAsync(CancellationToken.None);
        Publish(run);
    }

    private static string FirstLine(string message) => message.Split('\n', 2)[0].Trim();

    private void Publish(Run run) =>
        events.Publish(new RunUpdate(run.Id, run.Status, run.StepsDone, run.MaxNewTokens, run.Error, null));
}
