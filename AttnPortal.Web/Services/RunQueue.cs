using AttnPortal.Data;
using AttnPortal.Inference.Generation;
using Hangfire;
using Hangfire.States;
using System.Security.Claims;
using Microsoft.EntityFrameworkCore;

namespace AttnPortal.Web.Services;

public enum CancelOutcome { Canceled, NotFound, Forbidden, AlreadyFinished }

/// <param name="PairWith">When set, <paramref name="Schedules"/> is ignored: each image × model gets a standard run and a
/// run with this schedule, linked as a comparison pair.</param>
public sealed record QueueRequest(IReadOnlyList<Guid> ImageIds, string Question, IReadOnlyList<string> Models, IReadOnlyList<string> Schedules,
    string Aspect = "pad", bool SeedCompatibleDecoding = false, string? PairWith = null);

/// <summary>Turns a queue request into runs (one per image × model × schedule) in one transaction, then jobs.</summary>
public sealed class RunQueue(PortalDbContext db, PortalOptions options, IBackgroundJobClient jobs, RunEvents events)
{
    public const string GpuQueue = "gpu";
    public static IReadOnlyList<string> Schedules => AttentionSchedules.Names;
    public static readonly string[] Aspects = ["pad", "crop"];

    public async Task<IReadOnlyList<Run>> QueueAsync(QueueRequest request, string ownerId, CancellationToken cancel = default)
    {
        string question = request.Question.Trim();
        if (question.Length == 0) throw new ArgumentException("the question is empty");
        if (question.Length > options.Upload.MaxPromptChars)
            throw new ArgumentException($"the question is {question.Length} characters long; the limit is {options.Upload.MaxPromptChars}");
        if (request.ImageIds.Count == 0) throw new ArgumentException("choose at least one image");
        if (request.Models.Count == 0) throw new ArgumentException("choose at least one model");
        if (request.PairWith is { } partner && (partner == "standard" || !Schedules.Contains(partner)))
            throw new ArgumentException($"a comparison pairs the standard schedule with {string.Join(" or ", Schedules.Skip(1))}, not '{partner}'");
        var schedules = request.PairWith is null ? request.Schedules.Distinct().ToList() : ["standard", request.PairWith];
        if (schedules.Count == 0) throw new ArgumentException("choose at least one attention schedule");
        foreach (var m in request.Models.Where(m => options.Model(m) is null))
            throw new ArgumentException($"unknown model '{m}' (configured: {string.Join(", ", options.Models.Select(x => x.Name))})");
        foreach (var s in schedules.Where(s => !Schedules.Contains(s)))
            throw new ArgumentException($"unknown attention schedule '{s}' (available: {string.Join(", ", Schedules)})");
        if (!Aspects.Contains(request.Aspect)) throw new ArgumentException($"unknown aspect mode '{request.Aspect}'");
        var known = await db.Images.Where(i => request.ImageIds.Contains(i.Id)).Select(i => i.Id).ToListAsync(cancel);
        if (known.Count != request.ImageIds.Distinct().Count()) throw new ArgumentException("an image of the request does not exist");

        var batch = Guid.NewGuid();
        var now = DateTime.UtcNow;
        var runs = (from image in request.ImageIds.Distinct()
                    from model in request.Models.Distinct()
                    let pair = request.PairWith is null ? (Guid?)null : Guid.NewGuid()
                    from schedule in schedules
                    select new Run
                    {
                        Id = Guid.NewGuid(), ImageId = image, ModelName = model, Schedule = schedule, Question = question,
                        Aspect = request.Aspect, MaxNewTokens = options.Model(model)!.MaxNewTokens, Status = RunStatus.Queued,
                        OwnerId = ownerId, BatchId = batch, CreatedUtc = now, PairId = pair,
                        SeedCompatibleDecoding = request.SeedCompatibleDecoding && schedule != "standard",
                    }).ToList();
        await using (var tx = await db.Database.BeginTransactionAsync(cancel))
        {
            db.Runs.AddRange(runs);
            await db.SaveChangesAsync(cancel);
            await tx.CommitAsync(cancel);
        }
        // After the commit: if the process dies before this, start-up recovery enqueues the runs again.
        foreach (var run in runs)
        {
            Enqueue(jobs, run.Id);
            events.Publish(new RunUpdate(run.Id, run.Status, 0, run.MaxNewTokens, null, null));
        }
        return runs;
    }

    public static void Enqueue(IBackgroundJobClient jobs, Guid runId) =>
        jobs.Create<RunJob>(j => j.ExecuteAsync(runId, CancellationToken.None), new EnqueuedState(GpuQueue));

    /// <summary>
    /// Asks a run to stop: a queued run is canceled at once, a running one between two tokens. Both are conditional
    /// updates, so a job claiming the run at the same moment (<see cref="RunJob"/>) and this cancel cannot both win.
    /// </summary>
    public async Task<CancelOutcome> CancelAsync(Guid runId, ClaimsPrincipal user, RunCancellation running, CancellationToken cancel = default)
    {
        var run = await db.Runs.AsNoTracking().SingleOrDefaultAsync(r => r.Id == runId, cancel);
        if (run is null) return CancelOutcome.NotFound;
        if (!user.MayCancel(run)) return CancelOutcome.Forbidden;
        var now = DateTime.UtcNow;
        bool canceledQueued = await db.Runs.Where(r => r.Id == runId && r.Status == RunStatus.Queued)
            .ExecuteUpdateAsync(s => s.SetProperty(r => r.Status, RunStatus.Canceled).SetProperty(r => r.CancelRequested, true).SetProperty(r => r.FinishedUtc, now), cancel) > 0;
        bool flaggedRunning = !canceledQueued && await db.Runs.Where(r => r.Id == runId && r.Status == RunStatus.Running)
            .ExecuteUpdateAsync(s => s.SetProperty(r => r.CancelRequested, true), cancel) > 0;
        if (!canceledQueued && !flaggedRunning) return CancelOutcome.AlreadyFinished;
        running.Cancel(runId);
        events.Publish(new RunUpdate(run.Id, canceledQueued ? RunStatus.Canceled : RunStatus.Running, run.StepsDone, run.MaxNewTokens, null, null));
        return CancelOutcome.Canceled;
    }
}
