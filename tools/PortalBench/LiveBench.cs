using System.Globalization;
using AttnPortal.Data;
using AttnPortal.Web;
using AttnPortal.Web.Services;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace AttnPortal.PortalBench;

/// <summary>
/// One kind of live change, measured between two signed-in browsers that have <see cref="Url"/> open: the i-th change
/// is made by <see cref="ActAsync"/> (in browser A, or in-process) and returns when it was made, in Unix milliseconds;
/// it counts as seen in browser B when the JavaScript expression <see cref="SeenJs"/>(i) first becomes true (checked
/// by a MutationObserver on every DOM change). <see cref="PrepareAsync"/>, untimed, runs before B starts watching. To
/// time another live path (e.g. an annotation drawn in A appearing in B), add a probe with its own page, action and
/// expression.
/// </summary>
public sealed record LiveProbe(string Name, string Url, string Note, Func<Browsers, int, Task<double>> ActAsync, Func<int, string> SeenJs,
    Func<Browsers, int, Task>? PrepareAsync = null);

public sealed record Browsers(IPage A, IPage B, IServiceProvider Portal);

/// <summary>
/// The portal in this process on a free localhost port (PortalApp.Build, the benchmark's data directory, an admin from
/// configuration and a researcher), two Chromium contexts signed in as the two, and the probes timed between them.
/// </summary>
public static class LiveBench
{
    private const string AdminEmail = "bench-admin@portal.bench", ResearcherEmail = "bench-researcher@portal.bench", Password = "Bench-passw0rd-42";
    private const int SeenTimeoutMs = 15_000, WarmUpAttempts = 10;
    /// <summary>At most this many changes per probe are timed: the probes' runs must all fit on the first page of the Runs table.</summary>
    public const int MaxRepeat = 10;
    private const string ProbeModel = "live-probe";
    private static readonly string ProbeRuns = $"/runs?model={ProbeModel}";

    public static async Task RunAsync(string dataDirectory, string chromium, int repeat, BenchTable table)
    {
        var app = PortalApp.Build(
        [
            "--applicationName=AttnPortal.Web", "--urls=http://127.0.0.1:0", $"--Portal:DataDirectory={dataDirectory}",
            $"--Portal:Admin:Email={AdminEmail}", $"--Portal:Admin:Password={Password}",
            "--Logging:LogLevel:Default=Warning", "--Logging:LogLevel:Microsoft.AspNetCore=Warning",
        ]);
        await PortalStartup.RunAsync(app.Services);
        await app.StartAsync();
        try
        {
            string baseUrl = app.Urls.Single();
            await AddResearcherAsync(app.Services);
            repeat = Math.Min(repeat, MaxRepeat);
            var queued = await QueueIdleRunsAsync(app.Services, count: 3 + WarmUpAttempts + repeat);

            using var playwright = await Playwright.CreateAsync();
            await using var browser = await playwright.Chromium.LaunchAsync(new()
            {
                ExecutablePath = chromium, Headless = true,
                Args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
            });
            var browsers = new Browsers(await SignInAsync(browser, baseUrl, AdminEmail), await SignInAsync(browser, baseUrl, ResearcherEmail), app.Services);

            foreach (var probe in Probes(queued, app.Services))
                table.Add("live", probe.Name, await MeasureAsync(browsers, probe, repeat), probe.Note);
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    private static IEnumerable<LiveProbe> Probes(IReadOnlyList<Run> queued, IServiceProvider portal)
    {
        // Progress of a run pushed by the server (as RunJob does per token) until B's Runs table shows it.
        var watched = queued[0];
        yield return new LiveProbe("run progress published in-process → browser B's Runs table shows it", ProbeRuns,
            "RunEvents.Publish stamped on the server clock → MutationObserver in B",
            (b, i) =>
            {
                double t0 = Now();
                b.Portal.GetRequiredService<RunEvents>().Publish(new RunUpdate(watched.Id, RunStatus.Running, i, watched.MaxNewTokens, null, null));
                return Task.FromResult(t0);
            },
            i => $"document.querySelector(\"[data-testid=progress-text][data-run='{watched.Id}']\")?.textContent.trim() === '{i} / {watched.MaxNewTokens} tokens'");

        // A change made in browser A (Cancel on a queued run: a database update, then RunEvents) until B shows it.
        yield return new LiveProbe("Cancel clicked in browser A → browser B shows the run Canceled", ProbeRuns,
            "click time in A (performance.timeOrigin + now) → MutationObserver in B; B reloads its page of runs",
            async (b, i) =>
            {
                var run = queued[1 + i];
                await b.A.EvaluateAsync("() => document.addEventListener('click', () => window.__attnActed = performance.timeOrigin + performance.now(), { capture: true, once: true })");
                await b.A.Locator($"tr:has([data-run='{run.Id}']) [data-testid=cancel]").ClickAsync();
                return await b.A.EvaluateAsync<double>("() => window.__attnActed");
            },
            i => $"document.querySelector(\"[data-testid=run-status][data-run='{queued[1 + i].Id}']\")?.textContent.includes('Canceled')");

        // A note written by A (through the service the annotation panel calls) until B's run view shows it: the live path
        // of the review (save with its revision, ReviewEvents, B's circuit reloads the run's annotations and re-renders).
        if (AnnotatedRun(portal) is { } annotated)
        {
            var author = Principal(portal, AdminEmail, Roles.Admin);
            yield return new LiveProbe("annotation saved by A → browser B's run view shows it (7B-sized run)", $"/runs/{annotated}",
                "AnnotationService.CreateAsync stamped on the server clock → MutationObserver in B",
                async (b, i) =>
                {
                    double t0 = Now();
                    await b.Portal.GetRequiredService<AnnotationService>().CreateAsync(author, AnnotationTarget.Run(annotated),
                        new AnnotationDraft(MarkGeometry.Note, $"live note {i}", null, new ViewState(0, null, null, null)));
                    return t0;
                },
                i => $"document.querySelector('[data-testid=annotation-panel]')?.textContent.includes('live note {i}')");
        }

        // A search typed into B's filter bar until B's table shows the new total; between two, Clear brings back every run.
        int Count(RunFilter filter)
        {
            using var scope = portal.CreateScope();
            return scope.ServiceProvider.GetRequiredService<RunSearch>().Matching(filter).Count();
        }
        int all = Count(RunFilter.None);
        var totals = RunSeeder.RareWords.ToDictionary(w => w, w => Count(new RunFilter { Text = w }));
        string Word(int i) => RunSeeder.RareWords[i % RunSeeder.RareWords.Length];
        yield return new LiveProbe($"search typed in B's filter bar → B's table shows the result ({all:N0} runs)", "/runs",
            "change event in B → URL, RunSearch (page + count), table re-rendered",
            async (b, i) =>
            {
                await b.B.EvaluateAsync("() => document.addEventListener('change', () => window.__attnActed = performance.timeOrigin + performance.now(), { capture: true, once: true })");
                var input = b.B.Locator("[data-testid=filter-text]");
                if (!await input.EvaluateAsync<bool>("e => e.matches('input')")) input = input.Locator("input").First;
                await input.FillAsync(Word(i));
                await input.PressAsync("Tab");
                return await b.B.EvaluateAsync<double>("() => window.__attnActed");
            },
            // Two words may match as many runs: the URL tells this search's result from the last one's.
            i => $"location.search.includes('q={Word(i)}') && document.querySelector('[data-testid=runs-total]')?.textContent.trim() === '{Total(totals[Word(i)])}'",
            async (b, _) =>
            {
                // Back to every run, through Blazor's own navigation (as a link would; the page stays, its circuit too).
                for (int attempt = 1; ; attempt++)
                {
                    await b.B.EvaluateAsync("() => Blazor.navigateTo('/runs')");
                    try
                    {
                        await b.B.WaitForFunctionAsync($"() => document.querySelector('[data-testid=runs-total]')?.textContent.trim() === '{Total(all)}'", null, new() { Timeout = 5000 });
                        return;
                    }
                    catch (TimeoutException) when (attempt < 3) { }
                }
            });
    }

    private static string Total(int n) => $"{n.ToString("N0", CultureInfo.InvariantCulture)} {(n == 1 ? "run" : "runs")}";

    /// <summary>Opens the probe's page in both browsers, warms up (until one change is seen: both circuits are live), then times <paramref name="repeat"/> changes.</summary>
    private static async Task<Stats> MeasureAsync(Browsers b, LiveProbe probe, int repeat)
    {
        await Task.WhenAll(b.A.GotoAsync(probe.Url), b.B.GotoAsync(probe.Url));
        int i = 1; // change 0 would be the state the page starts in
        for (int attempt = 0; ; attempt++)
        {
            if (await OnceAsync(b, probe, i++, timeoutMs: 3000) is not null) break;
            if (attempt == WarmUpAttempts) throw new TimeoutException($"{probe.Name}: no change was ever seen in browser B");
        }
        var times = new List<double>();
        for (int n = 0; n < repeat; n++)
            times.Add(await OnceAsync(b, probe, i++, SeenTimeoutMs) ?? throw new TimeoutException($"{probe.Name}: change {i - 1} not seen within {SeenTimeoutMs} ms"));
        return new Stats(times);
    }

    private static async Task<double?> OnceAsync(Browsers b, LiveProbe probe, int i, int timeoutMs)
    {
        if (probe.PrepareAsync is { } prepare) await prepare(b, i);
        await b.B.EvaluateAsync(WatchJs, new object[] { probe.SeenJs(i), timeoutMs });
        double acted = await probe.ActAsync(b, i);
        double seen = await b.B.EvaluateAsync<double>("() => window.__attnSeen");
        return seen < 0 ? null : seen - acted;
    }

    /// <summary>Resolves window.__attnSeen with the time (Unix ms) at which the expression first holds, or −1 after the timeout.</summary>
    private const string WatchJs = """
        ([expression, timeout]) => {
          const holds = new Function('return (' + expression + ');');
          window.__attnSeen = new Promise(resolve => {
            let observer, timer;
            const done = t => { observer.disconnect(); clearTimeout(timer); resolve(t); };
            const check = () => { try { if (holds()) done(performance.timeOrigin + performance.now()); } catch { } };
            observer = new MutationObserver(check);
            timer = setTimeout(() => done(-1), timeout);
            observer.observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
            check();
          });
        }
        """;

    private static double Now() => (DateTime.UtcNow - DateTime.UnixEpoch).TotalMilliseconds;

    private static async Task<IPage> SignInAsync(IBrowser browser, string baseUrl, string email)
    {
        var context = await browser.NewContextAsync(new() { BaseURL = baseUrl, ViewportSize = new() { Width = 1400, Height = 1000 } });
        context.SetDefaultTimeout(30_000);
        context.SetDefaultNavigationTimeout(60_000);
        var page = await context.NewPageAsync();
        await page.GotoAsync("/login?returnUrl=%2Fruns");
        await page.FillAsync("input[name=email]", email);
        await page.FillAsync("input[name=password]", Password);
        await page.ClickAsync("button[type=submit]");
        await page.WaitForURLAsync("**/runs");
        return page;
    }

    private static async Task AddResearcherAsync(IServiceProvider services)
    {
        using var scope = services.CreateScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<PortalUser>>();
        var user = new PortalUser { UserName = ResearcherEmail, Email = ResearcherEmail, EmailConfirmed = true };
        var created = await users.CreateAsync(user, Password);
        if (!created.Succeeded) throw new InvalidOperationException(string.Join("; ", created.Errors.Select(e => e.Description)));
        await users.AddToRoleAsync(user, Roles.Researcher);
    }

    /// <summary>Queued runs of the admin, newest of all, written after start-up so no job ever picks them up.</summary>
    /// <summary>A run with an artifact (the comparison benchmark's), for the annotation probe; null when there is none.</summary>
    private static Guid? AnnotatedRun(IServiceProvider services)
    {
        using var scope = services.CreateScope();
        return scope.ServiceProvider.GetRequiredService<PortalDbContext>().Runs
            .Where(r => r.ArtifactPath != null).OrderBy(r => r.CreatedUtc).Select(r => (Guid?)r.Id).FirstOrDefault();
    }

    private static System.Security.Claims.ClaimsPrincipal Principal(IServiceProvider services, string email, string role)
    {
        using var scope = services.CreateScope();
        var user = scope.ServiceProvider.GetRequiredService<UserManager<PortalUser>>().FindByEmailAsync(email).GetAwaiter().GetResult()
            ?? throw new InvalidOperationException($"no user {email}");
        return new(new System.Security.Claims.ClaimsIdentity(
        [
            new(System.Security.Claims.ClaimTypes.NameIdentifier, user.Id), new(System.Security.Claims.ClaimTypes.Name, email),
            new(System.Security.Claims.ClaimTypes.Role, role),
        ], "bench"));
    }

    private static async Task<IReadOnlyList<Run>> QueueIdleRunsAsync(IServiceProvider services, int count)
    {
        using var scope = services.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<PortalDbContext>();
        var admin = await scope.ServiceProvider.GetRequiredService<UserManager<PortalUser>>().FindByEmailAsync(AdminEmail) ?? throw new InvalidOperationException("no admin");
        var image = db.Images.OrderBy(i => i.CreatedUtc).First();
        var now = DateTime.UtcNow;
        var runs = Enumerable.Range(0, count).Select(i => new Run
        {
            Id = Guid.NewGuid(), ImageId = image.Id, ModelName = ProbeModel, Schedule = "standard", Question = $"Live probe {i}", Aspect = "pad",
            MaxNewTokens = 32, Status = RunStatus.Queued, OwnerId = admin.Id, BatchId = Guid.NewGuid(), CreatedUtc = now.AddTicks(-i),
        }).ToList();
        db.Runs.AddRange(runs);
        await db.SaveChangesAsync();
        return runs;
    }
}
