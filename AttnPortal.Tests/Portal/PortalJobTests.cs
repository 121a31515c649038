using System.Net.Http.Json;
using System.Net;
using AttnPortal.Data;
using AttnPortal.Web.Services;
using AttnPortal.Inference.Artifacts;
using AttnPortal.Inference.Checkpoints;
using Hangfire;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace AttnPortal.Tests.Portal;

/// <summary>The Hangfire worker running the engine in-process: a real run to its artifact, a failing checkpoint, and recovery after a restart.</summary>
public sealed class PortalJobTests(PortalJobTests.Host host) : IClassFixture<PortalJobTests.Host>
{
    public const string MissingCheckpoint = "/nonexistent/attnportal-test/missing-checkpoint";

    /// <summary>The demo model limited to the 8 steps of the HF reference run, and a model whose checkpoint is not there.</summary>
    public sealed class Host : PortalHost
    {
        public const string BrokenModel = "broken", OneVisionModel = "onevision";
        protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
        {
            ["Portal:Models:0:MaxNewTokens"] = "8",
            ["Portal:Models:1:Name"] = BrokenModel,
            ["Portal:Models:1:Path"] = MissingCheckpoint,
            ["Portal:Models:2:Name"] = OneVisionModel,
            ["Portal:Models:2:Path"] = Path.Combine(FamilyParityTests.Root, "tiny-onevision"),
            ["Portal:Models:2:MaxNewTokens"] = "4",
        };
    }

    private PortalFactory Factory => host.Factory;

    [Fact]
    public async Task ComparisonPairQueuesStandardAndAlternatingAndLinksThem()
    {
        using var client = await Factory.SignInAsync(PortalFactory.ResearcherEmail);
        var image = (await PortalHttp.UploadAsync(client, ("wide.png", File.ReadAllBytes(Fixture.Image("wide.png"))))).Single();
        object Pair(string partner) => new
        {
            imageIds = new[] { image.Id }, question = "What is in the picture?", models = new[] { PortalFactory.DemoModel },
            schedules = Array.Empty<string>(), aspect = "pad", pairWith = partner,
        };
        using (var refused = await client.PostAsJsonAsync("/api/runs", Pair("standard")))
        {
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.Contains("a comparison pairs the standard schedule with alternating or alternating-cross", await PortalHttp.ErrorOf(refused));
        }

        var ids = await PortalHttp.QueueAsync(client, Pair("alternating"));
        Assert.Equal(2, ids.Length);
        var runs = Factory.WithDb(db => db.Runs.AsNoTracking().Where(r => ids.Contains(r.Id)).ToList());
        Assert.Equal(["alternating", "standard"], runs.Select(r => r.Schedule).Order());
        Assert.NotNull(runs[0].PairId);
        Assert.Equal(runs[0].PairId, runs[1].PairId);
        foreach (var id in ids)
        {
            var run = await PortalHttp.WaitFinishedAsync(client, id);
            Assert.True(run.Status == "Succeeded", $"{run.Schedule}: {run.Status} {run.Error}");
        }

        // The run view links each run to the other.
        var views = Factory.Services.GetRequiredService<ArtifactViews>();
        foreach (var run in runs)
            Assert.Equal(runs.Single(r => r.Id != run.Id).Id, Assert.Single(await views.PairedAsync(run)).Id);

        // The alternating run really used the modality mask: on layer 1 (odd, not the last of 3) the last prompt token
        // (text) puts exactly nothing on image keys; layer 0 (causal) and the standard run's layer 1 do.
        var standard = (await views.OpenAsync(runs.Single(r => r.Schedule == "standard").Id)).Attention!;
        var alternating = (await views.OpenAsync(runs.Single(r => r.Schedule == "alternating").Id)).Attention!;
        Assert.Equal("alternating", alternating.Metadata!["schedule"]!.GetValue<string>());
        double ImageMass(AttnPortal.Web.Rendering.AttentionRun a, int layer) =>
            Enumerable.Range(0, a.Heads).Sum(h => a.Row(0, layer, h).Slice(a.ImageTokenStart, a.ImageTokenCount).ToArray().Sum());
        Assert.Equal(0.0, ImageMass(alternating, 1));
        Assert.True(ImageMass(alternating, 0) > 1e-3);
        Assert.True(ImageMass(standard, 1) > 1e-3);
    }

    [Fact]
    public async Task OneVisionRunIsDrawnPerImageView()
    {
        using var client = await Factory.SignInAsync(PortalFactory.ResearcherEmail);
        var image = (await PortalHttp.UploadAsync(client, ("wide.png", File.ReadAllBytes(Fixture.Image("wide.png"))))).Single();
        var ids = await PortalHttp.QueueAsync(client, new
        {
            imageIds = new[] { image.Id }, question = "What is in the picture?", models = new[] { Host.OneVisionModel },
            schedules = Array.Empty<string>(), aspect = "pad", pairWith = "alternating-cross", seedCompatibleDecoding = true,
        });
        foreach (var id in ids)
        {
            var run = await PortalHttp.WaitFinishedAsync(client, id);
            Assert.True(run.Status == "Succeeded", $"{run.Schedule}: {run.Status} {run.Error}");
        }
        var runs = Factory.WithDb(db => db.Runs.AsNoTracking().Where(r => ids.Contains(r.Id)).ToList());
        Assert.Equal([true, false], runs.OrderBy(r => r.Schedule).Select(r => r.SeedCompatibleDecoding)); // alternating-cross, standard (never)
        var cross = runs.Single(r => r.Schedule == "alternating-cross");

        var (_, attention) = await Factory.Services.GetRequiredService<ArtifactViews>().OpenAsync(cross.Id);
        Assert.True(attention!.Metadata!["seed_compatible_decoding"]!.GetValue<bool>());
        // The 200x130 image: a 4x4 base view, then 2x3 tiles unpadded to 8x12 and downscaled to 6x9 (76 tokens, as HF).
        Assert.Equal(76, attention.ImageTokenCount);
        Assert.Equal(["base", "tiles"], attention.Views.Select(v => v.Name));
        foreach (var (view, cols, rows) in new[] { ("base", 4, 4), ("tiles", 9, 6) })
        {
            using var response = await client.GetAsync($"/api/runs/{cross.Id}/heatmap.png?step=1&view={view}");
            Assert.True(response.IsSuccessStatusCode, $"{view}: {(int)response.StatusCode}");
            var png = AttnPortal.Inference.Images.RgbImage.Decode(await response.Content.ReadAsByteArrayAsync(), view);
            Assert.Equal((cols, rows), (png.Width, png.Height));
        }
    }

    [Fact]
    public async Task DemoModelRunProducesTheArtifact()
    {
        using var client = await Factory.SignInAsync(PortalFactory.ResearcherEmail);
        var image = (await PortalHttp.UploadAsync(client, ("wide.png", File.ReadAllBytes(Fixture.Image("wide.png"))))).Single();
        // The question and aspect of the HF reference run wide-pad, so the portal's artifact can be held to HF's numbers.
        var id = (await PortalHttp.QueueAsync(client, PortalHttp.Queue([image.Id], "What is in the picture?", [PortalFactory.DemoModel]))).Single();

        var run = await PortalHttp.WaitFinishedAsync(client, id);
        Assert.True(run.Status == "Succeeded", $"{run.Status}: {run.Error}");
        Assert.Null(run.Error);
        Assert.False(string.IsNullOrEmpty(run.GeneratedText));
        Assert.Equal("standard", run.Schedule);

        using var tmp = new Fixture.TempDir();
        using (var response = await client.GetAsync($"/api/runs/{id}/artifact"))
        {
            Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}");
            Assert.Equal("application/octet-stream", response.Content.Headers.ContentType?.MediaType);
            File.WriteAllBytes(tmp["run.safetensors"], await response.Content.ReadAsByteArrayAsync());
        }
        using var artifact = SafeTensorsFile.Open(tmp["run.safetensors"]);
        var inputIds = AttentionArtifact.Read<long>(artifact, "input_ids").Data;
        var generated = AttentionArtifact.Read<long>(artifact, "generated_ids").Data;
        var (attention, shape) = AttentionArtifact.Read<float>(artifact, "attention");
        var modality = AttentionArtifact.Read<byte>(artifact, "modality").Data;
        var meta = AttentionArtifact.ReadMetadata(artifact);

        int steps = (int)meta["generation"]!["steps"]!;
        Assert.Equal(steps, generated.Length);
        Assert.Equal(run.StepsDone, steps);
        Assert.Equal(new long[] { steps, 3, 4, inputIds.Length + steps - 1 }, shape);
        Assert.Equal(inputIds.Length + steps - 1, modality.Length);
        Assert.Equal(576, modality.Count(m => m == 1));
        Assert.Equal(AttentionArtifact.Format, (string?)meta["format"]);
        Assert.Equal("standard", (string?)meta["schedule"]);
        Assert.Equal("pad", (string?)meta["image"]!["aspect"]);
        Assert.Equal(id.ToString(), (string?)meta["run"]!["id"]);
        Assert.Equal(PortalFactory.DemoModel, (string?)meta["run"]!["model"]);

        // Same ids as HF and attention within the parity tolerance: the portal feeds the engine what the CLI does.
        string reference = Fixture.Run("wide-pad");
        Assert.Equal(Fixture.Tensor<long>(reference, "input_ids"), inputIds);
        Assert.Equal(Fixture.Tensor<long>(reference, "generated_ids"), generated);
        double diff = Fixture.MaxAbsDiff(attention, Fixture.Tensor<float>(reference, "attention"));
        Assert.True(diff <= 1e-4, $"attention max abs diff from HF {diff:E2}");

        // The record on disk is the artifact that was served.
        var row = Factory.WithDb(db => db.Runs.AsNoTracking().Single(r => r.Id == id));
        Assert.Equal(File.ReadAllBytes(tmp["run.safetensors"]), File.ReadAllBytes(Path.Combine(host.DataDirectory, row.ArtifactPath!)));
        Assert.NotNull(row.StartedUtc);
        Assert.True(row.FinishedUtc >= row.StartedUtc);
    }

    [Fact]
    public async Task MissingCheckpointFailsOnceWithThePathAndTheNextRunStillWorks()
    {
        using var client = await Factory.SignInAsync(PortalFactory.ResearcherEmail);
        var image = (await PortalHttp.UploadAsync(client, ("small.webp", File.ReadAllBytes(Fixture.Image("small.webp"))))).Single();
        var broken = (await PortalHttp.QueueAsync(client, PortalHttp.Queue([image.Id], "Anything there?", [Host.BrokenModel]))).Single();
        var good = (await PortalHttp.QueueAsync(client, PortalHttp.Queue([image.Id], "Anything there?", [PortalFactory.DemoModel]))).Single();

        var failed = await PortalHttp.WaitFinishedAsync(client, broken);
        Assert.Equal("Failed", failed.Status);
        Assert.Contains(MissingCheckpoint, failed.Error);
        Assert.DoesNotContain("internal error", failed.Error);
        Assert.DoesNotContain("   at ", failed.Error); // a message, not a stack trace

        // The worker survives the failure (one worker, so the good run ran after it).
        var ok = await PortalHttp.WaitFinishedAsync(client, good);
        Assert.True(ok.Status == "Succeeded", $"{ok.Status}: {ok.Error}");

        // Not retried: Hangfire processed the job exactly once and has nothing scheduled or failed for it.
        var monitoring = Factory.Services.GetRequiredService<JobStorage>().GetMonitoringApi();
        var job = Assert.Single(monitoring.SucceededJobs(0, 1000), j => j.Value.Job?.Args[0] is Guid g && g == broken);
        var history = monitoring.JobDetails(job.Key).History;
        Assert.Equal(1, history.Count(h => h.StateName == "Processing"));
        Assert.Equal(0, monitoring.ScheduledCount());
        Assert.Equal(0, monitoring.FailedCount());
        var row = Factory.WithDb(db => db.Runs.AsNoTracking().Single(r => r.Id == broken));
        Assert.Equal(RunStatus.Failed, row.Status);
        Assert.Null(row.ArtifactPath);
    }

    /// <summary>
    /// Calls <paramref name="act"/> once, on the worker's thread, when the run <paramref name="runId"/> (known once it
    /// is queued) reports its first token: what the test does then lands deterministically between the run's first and
    /// second token, as the worker waits for it. Subscribe before queueing, so that no first token can be missed.
    /// </summary>
    private IDisposable OnFirstToken(Task<Guid> runId, Action act)
    {
        var events = Factory.Services.GetRequiredService<RunEvents>();
        int fired = 0;
        Action<RunUpdate> handler = u =>
        {
            if (u.Status != RunStatus.Running || u.StepsDone != 1) return;
            if (!runId.Wait(TimeSpan.FromSeconds(30))) throw new TimeoutException("the test never said which run to watch");
            if (u.RunId == runId.Result && Interlocked.Exchange(ref fired, 1) == 0) act();
        };
        events.Changed += handler;
        return new Unsubscribe(() => events.Changed -= handler);
    }

    private sealed class Unsubscribe(Action undo) : IDisposable
    {
        public void Dispose() => undo();
    }

    [Fact]
    public async Task CancelStopsARunningRunBetweenTokensAndAQueuedRunBeforeItStarts()
    {
        using var client = await Factory.SignInAsync(PortalFactory.ResearcherEmail);
        var image = (await PortalHttp.UploadAsync(client, ("wide.png", File.ReadAllBytes(Fixture.Image("wide.png"))))).Single();
        // One worker: while the first run generates, the second waits in the queue.
        var first = new TaskCompletionSource<Guid>();
        Guid running = default, waiting = default;
        HttpStatusCode? runningCancel = null, waitingCancel = null;
        using (OnFirstToken(first.Task, () =>
        {
            using var cancelWaiting = client.PostAsync($"/api/runs/{waiting}/cancel", null).GetAwaiter().GetResult();
            waitingCancel = cancelWaiting.StatusCode;
            using var cancelRunning = client.PostAsync($"/api/runs/{running}/cancel", null).GetAwaiter().GetResult();
            runningCancel = cancelRunning.StatusCode;
        }))
        {
            running = (await PortalHttp.QueueAsync(client, PortalHttp.Queue([image.Id], "Cancel me", [PortalFactory.DemoModel]))).Single();
            waiting = (await PortalHttp.QueueAsync(client, PortalHttp.Queue([image.Id], "Cancel me too", [PortalFactory.DemoModel]))).Single();
            first.SetResult(running);
            var stopped = await PortalHttp.WaitFinishedAsync(client, running);
            Assert.Equal(HttpStatusCode.NoContent, waitingCancel);
            Assert.Equal(HttpStatusCode.NoContent, runningCancel);
            Assert.Equal("Canceled", stopped.Status);
            Assert.Equal(1, stopped.StepsDone); // stopped before the second token
            Assert.Null(stopped.Error);
        }
        var never = await PortalHttp.WaitFinishedAsync(client, waiting);
        Assert.Equal("Canceled", never.Status);
        Assert.Equal(0, never.StepsDone);
        foreach (var id in new[] { running, waiting })
        {
            var row = Factory.WithDb(db => db.Runs.AsNoTracking().Single(r => r.Id == id));
            Assert.True(row.CancelRequested);
            Assert.Null(row.ArtifactPath);
            using var artifact = await client.GetAsync($"/api/runs/{id}/artifact");
            Assert.Equal(HttpStatusCode.NotFound, artifact.StatusCode);
        }
        Assert.Null(Factory.WithDb(db => db.Runs.AsNoTracking().Single(r => r.Id == waiting).StartedUtc)); // the job saw it canceled and left it

        // A finished run cannot be canceled again.
        using var again = await client.PostAsync($"/api/runs/{running}/cancel", null);
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
    }

    [Fact]
    public async Task ResearcherCancelsOnlyTheirOwnRuns()
    {
        // README: a Researcher may "cancel own runs"; an Admin may cancel any.
        using var admin = await Factory.SignInAsync(PortalFactory.AdminEmail);
        using var researcher = await Factory.SignInAsync(PortalFactory.ResearcherEmail);
        var image = (await PortalHttp.UploadAsync(admin, ("small.webp", File.ReadAllBytes(Fixture.Image("small.webp"))))).Single();
        var first = new TaskCompletionSource<Guid>();
        Guid blocker = default, admins = default;
        HttpStatusCode? status = null;
        using (OnFirstToken(first.Task, () =>
        {
            using var response = researcher.PostAsync($"/api/runs/{admins}/cancel", null).GetAwaiter().GetResult();
            status = response.StatusCode;
        }))
        {
            blocker = (await PortalHttp.QueueAsync(admin, PortalHttp.Queue([image.Id], "Keep the worker busy", [PortalFactory.DemoModel]))).Single();
            admins = (await PortalHttp.QueueAsync(admin, PortalHttp.Queue([image.Id], "The admin's run", [PortalFactory.DemoModel]))).Single();
            first.SetResult(blocker);
            Assert.Equal("Succeeded", (await PortalHttp.WaitFinishedAsync(admin, blocker)).Status);
        }
        Assert.Equal(HttpStatusCode.Forbidden, status);
        Assert.Equal("Succeeded", (await PortalHttp.WaitFinishedAsync(admin, admins)).Status);
        Assert.False(Factory.WithDb(db => db.Runs.AsNoTracking().Single(r => r.Id == admins).CancelRequested));

        using var unknown = await researcher.PostAsync($"/api/runs/{Guid.NewGuid()}/cancel", null);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
    }

    [Fact]
    public async Task RunsLeftUnfinishedAreExecutedAfterARestart()
    {
        using var dir = new Fixture.TempDir();
        var settings = new Dictionary<string, string?> { ["Portal:Models:0:MaxNewTokens"] = "3" };
        Guid imageId;
        string researcherId;
        await using (var first = new PortalFactory(dir.Path, settings))
        {
            await first.StartAsync();
            using var client = await first.SignInAsync(PortalFactory.ResearcherEmail);
            imageId = (await PortalHttp.UploadAsync(client, ("wide.png", File.ReadAllBytes(Fixture.Image("wide.png"))))).Single().Id;
            researcherId = first.WithDb(db => db.Users.Single(u => u.Email == PortalFactory.ResearcherEmail).Id);
        }

        // While the portal is down, the database holds what a crash leaves: a queued run, a half-done running one, and a canceled one.
        Run NewRun(RunStatus status) => new()
        {
            Id = Guid.NewGuid(), ImageId = imageId, ModelName = PortalFactory.DemoModel, Schedule = "standard", Question = "What is in the picture?",
            Aspect = "pad", MaxNewTokens = 3, Status = status, OwnerId = researcherId, BatchId = Guid.NewGuid(), CreatedUtc = DateTime.UtcNow,
        };
        var queued = NewRun(RunStatus.Queued);
        var running = NewRun(RunStatus.Running);
        running.StartedUtc = DateTime.UtcNow.AddMinutes(-1);
        running.StepsDone = 2;
        var canceled = NewRun(RunStatus.Canceled);
        canceled.CancelRequested = true;
        using (var db = new PortalDbContext(new DbContextOptionsBuilder<PortalDbContext>().UseSqlite($"Data Source={Path.Combine(dir.Path, "attnportal.db")};Pooling=False").Options))
        {
            db.Runs.AddRange(queued, running, canceled);
            await db.SaveChangesAsync();
        }

        await using (var second = new PortalFactory(dir.Path, settings))
        {
            await second.StartAsync();
            using var client = await second.SignInAsync(PortalFactory.ResearcherEmail); // the accounts survived the restart
            foreach (var id in new[] { queued.Id, running.Id })
            {
                var run = await PortalHttp.WaitFinishedAsync(client, id);
                Assert.True(run.Status == "Succeeded", $"{run.Status}: {run.Error}");
                Assert.Equal(3, run.StepsDone);
                Assert.NotEmpty(await client.GetByteArrayAsync($"/api/runs/{id}/artifact"));
            }
            Assert.Equal("Canceled", (await PortalHttp.GetRunAsync(client, canceled.Id)).Status);
            Assert.Equal(1, second.WithDb(db => (from u in db.Users
                                                 join ur in db.UserRoles on u.Id equals ur.UserId
                                                 join r in db.Roles on ur.RoleId equals r.Id
                                                 where r.Name == Roles.Admin
                                                 select u).Count()));
        }
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
    }
}
