using System.Diagnostics;
using System.Text.RegularExpressions;
using AttnPortal.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace AttnPortal.Tests.Portal;

/// <summary>
/// The portal on real Kestrel (127.0.0.1, a free port) driven by headless Chromium: sign in, upload, queue, watch the
/// run succeed, open the run view and see the photo, the heatmap and the head grid. Uses Debian's chromium package
/// (no Playwright browser download): <c>apt-get install -y chromium</c>; ATTNPORTAL_CHROMIUM overrides the path.
/// </summary>
[CollectionDefinition(nameof(BrowserEndToEnd), DisableParallelization = true)]
public sealed class BrowserEndToEnd;

// Alone, not beside the CPU-heavy engine tests: on CI's 2 cores the first (cold) Blazor render otherwise took over 15 s.
[Collection(nameof(BrowserEndToEnd))]
public sealed class BrowserEndToEndTests(ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(60);
    private BrowserPortal _portal = default!;

    public async Task InitializeAsync()
    {
        _portal = await BrowserPortal.StartAsync();
        Assert.Matches(@"^http://127\.0\.0\.1:\d+$", _portal.BaseUrl);
    }

    public async Task DisposeAsync() => await _portal.DisposeAsync();

    private Task<IPage> NewPageAsync() => _portal.NewPageAsync();

    /// <summary>Blazor's interactive circuit is up once its JS has initialised the file input (prerendered HTML does not react).</summary>
    private static Task WaitInteractiveAsync(IPage page) =>
        page.WaitForFunctionAsync("() => { const i = document.querySelector('[data-testid=dropzone] input[type=file]'); return i && i._blazorInputFileNextFileId !== undefined; }");

    private static Task<int> NaturalWidthAsync(ILocator image) => image.EvaluateAsync<int>("img => img.complete ? img.naturalWidth : 0");

    private async Task AssertLoadedAsync(ILocator image, string what)
    {
        await Assertions.Expect(image).ToBeVisibleAsync();
        var deadline = Stopwatch.StartNew();
        while (await NaturalWidthAsync(image) == 0)
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(15), $"{what} ({await image.GetAttributeAsync("src")}) did not load");
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task ResearcherQueuesARunAndSeesTheHeatmapAndTheHeadGrid()
    {
        var page = await NewPageAsync();

        // A signed-out visit to /queue goes to the sign-in form, which brings the researcher back to /queue.
        await page.GotoAsync("/queue");
        Assert.EndsWith("/login?ReturnUrl=%2Fqueue", page.Url);
        await page.FillAsync("input[name=email]", PortalFactory.ResearcherEmail);
        await page.FillAsync("input[name=password]", PortalFactory.Password);
        await page.ClickAsync("button[type=submit]");
        await page.WaitForURLAsync(new Regex("/queue$"));

        // New run: the image into the dropzone's file input, a question, the demo model (ticked: the only model).
        await WaitInteractiveAsync(page);
        await page.Locator("[data-testid=dropzone] input[type=file]").SetInputFilesAsync(Fixture.Image("wide.png"));
        await Assertions.Expect(page.Locator("[data-testid=uploaded-image]")).ToHaveCountAsync(1);
        await AssertLoadedAsync(page.Locator("[data-testid=uploaded-image] img"), "uploaded thumbnail");
        var question = page.Locator("[data-testid=question]");
        if (!await question.EvaluateAsync<bool>("e => e.matches('input, textarea')")) question = question.Locator("textarea, input").First;
        await question.FillAsync("Where is the red square?");
        await question.PressAsync("Tab"); // MudTextField commits its value on change
        var queue = page.Locator("[data-testid=queue]");
        await Assertions.Expect(queue).ToContainTextAsync("Queue 1 run(s)");

        var clock = Stopwatch.StartNew();
        await queue.ClickAsync();
        // Either the portal moves on to /runs or it says why not: wait for both, and fail with its message.
        var queueError = page.Locator("[data-testid=queue-error]");
        await page.WaitForFunctionAsync("() => location.pathname === '/runs' || document.querySelector('[data-testid=queue-error]') !== null");
        Assert.True(await queueError.CountAsync() == 0, $"queueing failed: {(await queueError.CountAsync() > 0 ? await queueError.InnerTextAsync() : "")}");
        await page.WaitForURLAsync(new Regex("/runs$"));

        // The live table: the one run goes to Succeeded; sample its progress bar on the way.
        var status = page.Locator("[data-testid=run-status]");
        await Assertions.Expect(status).ToHaveCountAsync(1);
        var progress = page.Locator("[data-testid=progress] [role=progressbar], [data-testid=progress][role=progressbar]").First;
        var seen = new List<string>();
        while (!(await status.InnerTextAsync()).Contains("Succeeded"))
        {
            string text = await status.InnerTextAsync();
            Assert.True(clock.Elapsed < RunTimeout, $"run still '{text}' after {RunTimeout}");
            Assert.DoesNotContain("Failed", text);
            string? value = await progress.GetAttributeAsync("aria-valuenow");
            if (value is not null && (seen.Count == 0 || seen[^1] != value)) seen.Add(value);
            await Task.Delay(25);
        }
        string finalValue = (await progress.GetAttributeAsync("aria-valuenow"))!;
        seen.Add(finalValue);
        Assert.Equal(100, double.Parse(finalValue, System.Globalization.CultureInfo.InvariantCulture));
        Guid runId = Guid.Parse((await status.GetAttributeAsync("data-run"))!);
        var run = _portal.Factory.WithDb(db => db.Runs.AsNoTracking().Single(r => r.Id == runId));
        Assert.Equal(RunStatus.Succeeded, run.Status);
        Assert.Equal("Where is the red square?", run.Question);

        // The run view.
        await page.Locator($"a[href='/runs/{runId}']").Last.ClickAsync();
        await page.WaitForURLAsync($"**/runs/{runId}");
        await AssertLoadedAsync(page.Locator("[data-testid=photo]"), "photo");
        await AssertLoadedAsync(page.Locator("[data-testid=heatmap]"), "heatmap");
        var queueToHeatmap = clock.Elapsed;
        await AssertLoadedAsync(page.Locator("[data-testid=head-grid]"), "head grid");
        await Assertions.Expect(page.Locator("[data-testid=token]")).ToHaveCountAsync(run.StepsDone);
        Assert.Equal(24, await NaturalWidthAsync(page.Locator("[data-testid=heatmap]"))); // one pixel per image patch
        // The heatmap lies over the photo: its box is inside the stage that holds the photo.
        var photoBox = (await page.Locator("[data-testid=photo]").BoundingBoxAsync())!;
        var heatBox = (await page.Locator("[data-testid=heatmap]").BoundingBoxAsync())!;
        Assert.True(heatBox.Width > 0 && heatBox.Height > 0);
        Assert.InRange(heatBox.X + heatBox.Width / 2, photoBox.X, photoBox.X + photoBox.Width);
        Assert.InRange(heatBox.Y + heatBox.Height / 2, photoBox.Y, photoBox.Y + photoBox.Height);

        // Opening a run view from scratch (a fresh page load).
        var open = Stopwatch.StartNew();
        await page.GotoAsync($"/runs/{runId}");
        await AssertLoadedAsync(page.Locator("[data-testid=heatmap]"), "heatmap");
        await AssertLoadedAsync(page.Locator("[data-testid=head-grid]"), "head grid");
        var openRunView = open.Elapsed;

        lock (_portal.Errors) Assert.True(_portal.Errors.Count == 0, "browser errors:\n" + string.Join("\n", _portal.Errors));
        output.WriteLine($"browser timings: click Queue -> heatmap visible {queueToHeatmap.TotalMilliseconds:F0} ms; " +
            $"open a run view (page load -> heatmap and head grid loaded) {openRunView.TotalMilliseconds:F0} ms; progress values seen: {string.Join(", ", seen)}");
    }

    [Fact]
    public async Task AnyresRunViewCyclesViewsWithVAndPicksHeadsOnNonSquareTiles()
    {
        var runId = await _portal.Factory.AddAnyresRunAsync();
        var page = await NewPageAsync();
        await page.GotoAsync($"/runs/{runId}");
        Assert.EndsWith("/login?ReturnUrl=%2Fruns%2F" + runId, page.Url, StringComparison.OrdinalIgnoreCase);
        await page.FillAsync("input[name=email]", PortalFactory.ViewerEmail);
        await page.FillAsync("input[name=password]", PortalFactory.Password);
        await page.ClickAsync("button[type=submit]");
        await page.WaitForURLAsync($"**/runs/{runId}");
        // The run view focuses itself once its circuit is interactive (keys before that would go nowhere).
        await page.WaitForFunctionAsync("() => document.activeElement?.dataset?.testid === 'run-view'");

        var heatmap = page.Locator("[data-testid=heatmap]");
        var heads = page.Locator("[data-testid=head-grid]");
        await Assertions.Expect(page.Locator("[data-testid=view-picker]")).ToBeVisibleAsync();
        await AssertLoadedAsync(heatmap, "tiles heatmap");
        await AssertLoadedAsync(heads, "tiles head grid");
        Assert.Equal(9, await NaturalWidthAsync(heatmap)); // the tiles first: 6 rows × 9 columns
        Assert.Equal(2 * 6 + 1, await heads.EvaluateAsync<int>("img => img.naturalHeight"));

        // A click on layer 1, head 2 of the 3 × 2 sprite of 9 × 6 tiles (1-px gaps), where a square tile would still be layer 0.
        var box = (await heads.BoundingBoxAsync())!;
        double sx = box.Width / (3 * 9 + 2), sy = box.Height / (2 * 6 + 1);
        await heads.ClickAsync(new() { Position = new() { X = (float)((2 * 10 + 4.5) * sx), Y = (float)(8.5 * sy) } });
        await Assertions.Expect(heatmap).ToHaveAttributeAsync("src", new Regex("layer=1&head=2&"));

        // v: the next view, "tile 0,0" (3 × 3), with the same layer and head; the head grid follows.
        await page.Keyboard.PressAsync("v");
        await Assertions.Expect(heatmap).ToHaveAttributeAsync("src", new Regex(@"\?view=tile%200%2C0&step=0&layer=1&head=2&"));
        await AssertLoadedAsync(heatmap, "tile heatmap");
        Assert.Equal(3, await NaturalWidthAsync(heatmap));
        await Assertions.Expect(heads).ToHaveAttributeAsync("src", new Regex(@"\?view=tile%200%2C0&"));
        // The tile lies on [20, 80) × [10, 70) of the 200 × 130 photo.
        var photo = (await page.Locator("[data-testid=photo]").BoundingBoxAsync())!;
        var tile = (await heatmap.BoundingBoxAsync())!;
        Assert.Equal(photo.X + photo.Width * 0.1, tile.X, 1.0);
        Assert.Equal(photo.Width * 0.3, tile.Width, 1.0);
        Assert.Equal(photo.Y + photo.Height * 10 / 130, tile.Y, 1.0);

        lock (_portal.Errors) Assert.True(_portal.Errors.Count == 0, "browser errors:\n" + string.Join("\n", _portal.Errors));
    }
    /// <summary>Signs a fresh browser context in as <paramref name="email"/> through the form and lands on <paramref name="path"/>.</summary>
    private async Task<IPage> SignedInPageAsync(string email, string path)
    {
        var page = await NewPageAsync();
        await page.GotoAsync(path);
        await page.FillAsync("input[name=email]", email);
        await page.FillAsync("input[name=password]", PortalFactory.Password);
        await page.ClickAsync("button[type=submit]");
        await page.WaitForURLAsync($"**{path}");
        return page;
    }

    [Fact]
    public async Task TwoPeopleReviewARunLiveAndAViewerOnlyReads()
    {
        var runId = await _portal.Factory.AddAnyresRunAsync(); // a finished run of wide.png (200 × 130)
        string path = $"/runs/{runId}";
        var a = await SignedInPageAsync(PortalFactory.ResearcherEmail, path);
        var b = await SignedInPageAsync(PortalFactory.AdminEmail, path);

        // Each sees the other (which also says both pages are interactive).
        await Assertions.Expect(a.Locator($"[data-testid=presence-user][data-user='{PortalFactory.AdminEmail}']")).ToBeVisibleAsync();
        await Assertions.Expect(b.Locator($"[data-testid=presence-user][data-user='{PortalFactory.ResearcherEmail}']")).ToBeVisibleAsync();

        // A drags a box from 25 % / 20 % to 75 % / 80 % of the photo and saves it with a label and Markdown text.
        await a.ClickAsync("[data-testid=tool-box]");
        var layer = a.Locator("svg[data-testid=annotation-layer]");
        await Assertions.Expect(layer).ToHaveAttributeAsync("data-tool", "Box");
        var area = (await layer.BoundingBoxAsync())!;
        await a.Mouse.MoveAsync(area.X + area.Width * 0.25f, area.Y + area.Height * 0.2f);
        await a.Mouse.DownAsync();
        await a.Mouse.MoveAsync(area.X + area.Width * 0.5f, area.Y + area.Height * 0.5f, new() { Steps = 4 });
        await a.Mouse.MoveAsync(area.X + area.Width * 0.75f, area.Y + area.Height * 0.8f, new() { Steps = 4 });
        await a.Mouse.UpAsync();
        var editor = a.Locator("[data-testid=annotation-editor]");
        await Assertions.Expect(editor).ToContainTextAsync(new Regex(@"box at \(\d+, \d+\), \d+ × \d+ px")); // checked in the database below
        await editor.Locator("textarea[data-testid=annotation-body]").FillAsync("The red square, **attended**");
        var grounded = editor.Locator("[data-testid=label-chip][data-label='grounded']");
        await grounded.ClickAsync();
        await Assertions.Expect(grounded).ToHaveClassAsync(new Regex(@"\bselected\b"));
        await editor.Locator("[data-testid=annotation-save]").ClickAsync();
        await Assertions.Expect(editor).ToHaveCountAsync(0);

        // B sees it appear without reloading: the mark over the photo and the card, label and rendered Markdown.
        await Assertions.Expect(b.Locator("[data-testid=annotation-mark][data-shape=Box]")).ToHaveCountAsync(1);
        var card = b.Locator("[data-testid=annotation]");
        await Assertions.Expect(card).ToContainTextAsync("The red square, attended");
        await Assertions.Expect(card.Locator("[data-testid=label-chip]")).ToHaveTextAsync("grounded");
        await Assertions.Expect(card.Locator("[data-testid=markdown] strong")).ToHaveTextAsync("attended");
        var saved = _portal.Factory.WithDb(db => db.Annotations.AsNoTracking().Include(x => x.Label).Include(x => x.Author).Single(x => x.RunId == runId));
        Assert.Equal(("grounded", PortalFactory.ResearcherEmail, AnnotationShape.Box), (saved.Label!.Name, saved.Author!.Email, saved.Shape));
        Assert.Equal(50, saved.X, 1.5);
        Assert.Equal(26, saved.Y, 1.5);
        Assert.Equal(100, saved.W, 1.5);
        Assert.Equal(78, saved.H, 1.5);

        // B comments; A sees the comment appear.
        await card.Locator("[data-testid=comment-body]").FillAsync("Agreed, on **every** token");
        await card.Locator("[data-testid=comment-add]").ClickAsync();
        await Assertions.Expect(a.Locator("[data-testid=comment]")).ToContainTextAsync("Agreed, on every token");

        // A viewer sees the annotation and its comment, and A sees the viewer arrive; the viewer has no controls.
        var viewer = await SignedInPageAsync(PortalFactory.ViewerEmail, path);
        await Assertions.Expect(a.Locator($"[data-testid=presence-user][data-user='{PortalFactory.ViewerEmail}']")).ToBeVisibleAsync();
        await Assertions.Expect(viewer.Locator($"[data-testid=presence-user][data-user='{PortalFactory.ResearcherEmail}']")).ToBeVisibleAsync();
        await Assertions.Expect(viewer.Locator("[data-testid=annotation-mark][data-shape=Box]")).ToHaveCountAsync(1);
        await Assertions.Expect(viewer.Locator("[data-testid=comment]")).ToContainTextAsync("Agreed, on every token");
        foreach (var control in new[] { "annotation-tools", "annotation-edit", "annotation-delete", "comment-body", "comment-add", "head-tag-add" })
            Assert.True(await viewer.Locator($"[data-testid={control}]").CountAsync() == 0, $"a viewer sees {control}");

        lock (_portal.Errors) Assert.True(_portal.Errors.Count == 0, "browser errors:\n" + string.Join("\n", _portal.Errors));
    }
}
