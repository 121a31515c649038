using System.Net;
using System.Net.Http.Json;
using AttnPortal.Data;
using AttnPortal.Web.Services;
using Microsoft.Extensions.DependencyInjection;

namespace AttnPortal.Tests.Portal;

/// <summary>Who gets what: signed-out requests get nothing, a Viewer reads but cannot upload or queue, only an Admin sees the job dashboard.</summary>
public sealed class PortalAccessTests(PortalAccessTests.Host host) : IClassFixture<PortalAccessTests.Host>
{
    /// <summary>
    /// One uploaded image and one finished run, so the signed-out requests below ask for things that exist; and a run of
    /// the same image with an anyres-shaped artifact.
    /// </summary>
    public sealed class Host : PortalHost
    {
        public Guid ImageId { get; private set; }
        public Guid RunId { get; private set; }
        public Guid AnyresRunId { get; private set; }

        protected override async Task SeedAsync()
        {
            using var researcher = await Factory.SignInAsync(PortalFactory.ResearcherEmail);
            ImageId = (await PortalHttp.UploadAsync(researcher, ("wide.png", File.ReadAllBytes(Fixture.Image("wide.png"))))).Single().Id;
            RunId = (await PortalHttp.QueueAsync(researcher, PortalHttp.Queue([ImageId], "What is here?", [PortalFactory.DemoModel]))).Single();
            var run = await PortalHttp.WaitFinishedAsync(researcher, RunId);
            if (run.Status != "Succeeded") throw new InvalidOperationException($"setup run {run.Status}: {run.Error}");
            AnyresRunId = await Factory.AddAnyresRunAsync();
        }
    }

    private PortalFactory Factory => host.Factory;

    [Fact]
    public void HostUsesTheTestConfiguration()
    {
        // Guards the helper itself: the data directory, the database and the demo model are the test's, not appsettings.json's.
        var paths = Factory.Services.GetRequiredService<PortalPaths>();
        var options = Factory.Services.GetRequiredService<PortalOptions>();
        Assert.Equal(Path.GetFullPath(host.DataDirectory), paths.Root);
        Assert.Equal(Fixture.Checkpoint, paths.ModelPath(options.Model(PortalFactory.DemoModel)!));
        Assert.True(File.Exists(Factory.DatabaseFile));
    }

    [Fact]
    public async Task SignedOutPageRedirectsToLogin()
    {
        using var client = Factory.Anonymous();
        using var response = await client.GetAsync("/runs");
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        var location = response.Headers.Location!;
        Assert.Equal("/login", new Uri(new Uri("http://x"), location).AbsolutePath);
        Assert.Contains("ReturnUrl=%2Fruns", location.OriginalString, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task SignedOutApiGetsNothing()
    {
        using var client = Factory.Anonymous();
        foreach (var url in new[] { $"/api/runs/{host.RunId}/artifact", $"/api/images/{host.ImageId}", $"/api/runs/{host.RunId}",
                     $"/api/runs/{host.RunId}/heatmap.png", $"/api/runs/{host.RunId}/heads.png", $"/api/runs/{host.RunId}/overlay.png" })
        {
            using var response = await client.GetAsync(url);
            Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{url}: {(int)response.StatusCode}");
            Assert.Empty(await response.Content.ReadAsByteArrayAsync());
        }
        using var queue = await client.PostAsJsonAsync("/api/runs", PortalHttp.Queue([host.ImageId], "q", [PortalFactory.DemoModel]));
        Assert.Equal(HttpStatusCode.Unauthorized, queue.StatusCode);
        using var upload = await client.PostAsync("/api/images", PortalHttp.Files(("a.png", File.ReadAllBytes(Fixture.Image("wide.png")))));
        Assert.Equal(HttpStatusCode.Unauthorized, upload.StatusCode);

        // The same requests signed in do get the bytes (so the 401s above are about the cookie, not the URLs).
        using var researcher = await Factory.SignInAsync(PortalFactory.ResearcherEmail);
        Assert.Equal(File.ReadAllBytes(Fixture.Image("wide.png")), await researcher.GetByteArrayAsync($"/api/images/{host.ImageId}"));
        Assert.NotEmpty(await researcher.GetByteArrayAsync($"/api/runs/{host.RunId}/artifact"));
    }

    [Fact]
    public async Task RenderedViewsAreServedToReadersAndBadQueriesAreRefused()
    {
        using var viewer = await Factory.SignInAsync(PortalFactory.ViewerEmail);
        foreach (var view in new[] { "heatmap.png?step=0&cmap=viridis", "heatmap.png", "heads.png?step=1", "overlay.png?layer=2&head=3&opacity=0.5" })
        {
            using var response = await viewer.GetAsync($"/api/runs/{host.RunId}/{view}");
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{view}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            Assert.Equal("image/png", response.Content.Headers.ContentType?.MediaType);
            var png = await response.Content.ReadAsByteArrayAsync();
            var decoded = AttnPortal.Inference.Images.RgbImage.Decode(png, view);
            if (view.StartsWith("heatmap", StringComparison.Ordinal)) Assert.Equal((24, 24), (decoded.Width, decoded.Height)); // one pixel per patch
        }
        foreach (var (view, message) in new[] { ("heatmap.png?cmap=rainbow-unicorn", "unknown colormap"), ("heatmap.png?step=999", "999"), ("heads.png?step=-2", "-2"), ("heatmap.png?layer=3", "3") })
        {
            using var response = await viewer.GetAsync($"/api/runs/{host.RunId}/{view}");
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{view}: {(int)response.StatusCode}");
            Assert.Contains(message, await PortalHttp.ErrorOf(response));
        }
        using var missing = await viewer.GetAsync($"/api/runs/{Guid.NewGuid()}/heatmap.png");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        // A LLaVA-1.5 run has one view, "image"; the default.
        Assert.Equal(await viewer.GetByteArrayAsync($"/api/runs/{host.RunId}/heatmap.png?step=1"),
            await viewer.GetByteArrayAsync($"/api/runs/{host.RunId}/heatmap.png?step=1&view=image"));
    }

    [Fact]
    public async Task EachViewOfAnAnyresRunIsRenderedOnItsOwnGrid()
    {
        using var viewer = await Factory.SignInAsync(PortalFactory.ViewerEmail);
        string run = $"/api/runs/{host.AnyresRunId}";
        async Task<Inference.Images.RgbImage> Png(string query)
        {
            using var response = await viewer.GetAsync($"{run}/{query}");
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{query}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            return Inference.Images.RgbImage.Decode(await response.Content.ReadAsByteArrayAsync(), query);
        }
        foreach (var (query, width, height) in new[]
                 {
                     ("heatmap.png?view=tiles&step=0", 9, 6), ("heatmap.png?view=base", 4, 4), ("heatmap.png", 4, 4), // the first view
                     ("heatmap.png?view=tile%201%2C2&layer=1", 3, 3),
                     ("heads.png?view=tiles&step=2", 3 * 9 + 2, 2 * 6 + 1), ("heads.png?view=base", 3 * 4 + 2, 2 * 4 + 1),
                     ("overlay.png?view=tiles&step=1", 200, 130),
                 })
        {
            var png = await Png(query);
            Assert.True((width, height) == (png.Width, png.Height), $"{query}: {png.Width}×{png.Height}, expected {width}×{height}");
        }

        // The tiles overlay leaves the photo alone left of x = 20; the base view covers all of it.
        var photo = Inference.Images.RgbImage.Load(Fixture.Image("wide.png"));
        var tiles = await Png("overlay.png?view=tiles&opacity=1");
        var whole = await Png("overlay.png?view=base&opacity=1");
        static byte[] Pixel(Inference.Images.RgbImage i, int x, int y) => i.Pixels.AsSpan((y * i.Width + x) * 3, 3).ToArray();
        Assert.Equal(Pixel(photo, 5, 60), Pixel(tiles, 5, 60));
        Assert.NotEqual(Pixel(photo, 5, 60), Pixel(whole, 5, 60));
        Assert.NotEqual(Pixel(photo, 100, 60), Pixel(tiles, 100, 60));

        using var unknown = await viewer.GetAsync($"{run}/heatmap.png?view=tile%209%2C9");
        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
        string error = await PortalHttp.ErrorOf(unknown);
        Assert.Contains("unknown view 'tile 9,9'", error);
        Assert.Contains("'tiles'", error);
    }

    [Fact]
    public async Task RunViewOffersAViewChoiceOnlyWhenTheRunHasSeveral()
    {
        using var viewer = await Factory.SignInAsync(PortalFactory.ViewerEmail);
        var parser = new AngleSharp.Html.Parser.HtmlParser();
        var anyres = parser.ParseDocument(await viewer.GetStringAsync($"/runs/{host.AnyresRunId}"));
        Assert.NotNull(anyres.QuerySelector("[data-testid=view-picker]"));
        // The tiles (the whole image at full detail) come first, placed on their frame.
        var heat = anyres.QuerySelector("img[data-testid=heatmap]")!;
        Assert.StartsWith($"/api/runs/{host.AnyresRunId}/heatmap.png?view=tiles&", heat.GetAttribute("src"));
        Assert.Contains("left: 10%; top: 7.6923%; width: 90%; height: 92.3077%", heat.GetAttribute("style"));
        Assert.StartsWith($"/api/runs/{host.AnyresRunId}/heads.png?view=tiles&", anyres.QuerySelector("img[data-testid=head-grid]")?.GetAttribute("src"));
        Assert.Equal(Rendering.AnyresArtifact.Steps, anyres.QuerySelectorAll("[data-testid=token]").Length);

        var single = parser.ParseDocument(await viewer.GetStringAsync($"/runs/{host.RunId}"));
        Assert.NotNull(single.QuerySelector("img[data-testid=heatmap]"));
        Assert.Null(single.QuerySelector("[data-testid=view-picker]"));
    }

    [Fact]
    public async Task RunViewPageIsPrerenderedWithItsImages()
    {
        using var viewer = await Factory.SignInAsync(PortalFactory.ViewerEmail);
        var doc = new AngleSharp.Html.Parser.HtmlParser().ParseDocument(await viewer.GetStringAsync($"/runs/{host.RunId}"));
        Assert.Equal($"/api/images/{host.ImageId}", doc.QuerySelector("img[data-testid=photo]")?.GetAttribute("src"));
        Assert.StartsWith($"/api/runs/{host.RunId}/heatmap.png?", doc.QuerySelector("img[data-testid=heatmap]")?.GetAttribute("src"));
        Assert.StartsWith($"/api/runs/{host.RunId}/heads.png?", doc.QuerySelector("img[data-testid=head-grid]")?.GetAttribute("src"));
        Assert.Equal((await PortalHttp.GetRunAsync(viewer, host.RunId)).StepsDone, doc.QuerySelectorAll("[data-testid=token]").Length);

        string missing = await viewer.GetStringAsync($"/runs/{Guid.NewGuid()}");
        Assert.Contains("No such run.", missing);
    }

    [Fact]
    public async Task WrongPasswordDoesNotSignInAndRepeatedFailuresLockTheAccount()
    {
        const string email = "forgetful@portal.test";
        using (var scope = Factory.Services.CreateScope())
        {
            var users = scope.ServiceProvider.GetRequiredService<Microsoft.AspNetCore.Identity.UserManager<PortalUser>>();
            var user = new PortalUser { UserName = email, Email = email, EmailConfirmed = true };
            Assert.True((await users.CreateAsync(user, PortalFactory.Password)).Succeeded);
            Assert.True((await users.AddToRoleAsync(user, Roles.Researcher)).Succeeded);
        }
        using var client = Factory.Anonymous();
        using (var wrong = await PortalHttp.PostLoginAsync(client, email, "Wrong-password-1", "/queue"))
        {
            Assert.Equal(HttpStatusCode.Redirect, wrong.StatusCode);
            Assert.Equal("/login?error=invalid&returnUrl=%2Fqueue", wrong.Headers.Location?.OriginalString);
        }
        using (var response = await client.GetAsync("/runs"))
            Assert.Equal(HttpStatusCode.Redirect, response.StatusCode); // still signed out

        // Identity's default: the fifth failure locks the account, and then even the right password is refused.
        for (int i = 2; i <= 5; i++) (await PortalHttp.PostLoginAsync(client, email, "Wrong-password-1")).Dispose();
        using (var right = await PortalHttp.PostLoginAsync(client, email, PortalFactory.Password))
            Assert.StartsWith("/login?error=locked", right.Headers.Location?.OriginalString);
        using (var response = await client.GetAsync("/runs"))
            Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
    }

    [Fact]
    public async Task ExternalReturnUrlIsIgnored()
    {
        using var client = Factory.Anonymous();
        using var response = await PortalHttp.PostLoginAsync(client, PortalFactory.ViewerEmail, PortalFactory.Password, "//evil.example/phish");
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal("/", response.Headers.Location?.OriginalString);
    }

    [Fact]
    public async Task ViewerCanReadButNotUploadOrQueue()
    {
        using var viewer = await Factory.SignInAsync(PortalFactory.ViewerEmail);
        int runsBefore = Factory.WithDb(db => db.Runs.Count()), imagesBefore = Factory.WithDb(db => db.Images.Count());

        using var queue = await viewer.PostAsJsonAsync("/api/runs", PortalHttp.Queue([host.ImageId], "Where is the cat?", [PortalFactory.DemoModel]));
        Assert.Equal(HttpStatusCode.Forbidden, queue.StatusCode);
        using var upload = await viewer.PostAsync("/api/images", PortalHttp.Files(("tall.png", File.ReadAllBytes(Fixture.Image("tall-alpha.png")))));
        Assert.Equal(HttpStatusCode.Forbidden, upload.StatusCode);
        using var cancel = await viewer.PostAsync($"/api/runs/{host.RunId}/cancel", null);
        Assert.Equal(HttpStatusCode.Forbidden, cancel.StatusCode);
        Assert.Equal(runsBefore, Factory.WithDb(db => db.Runs.Count()));
        Assert.Equal(imagesBefore, Factory.WithDb(db => db.Images.Count()));

        using var page = await viewer.GetAsync("/queue");
        Assert.Equal(HttpStatusCode.Redirect, page.StatusCode);
        Assert.Equal("/denied", new Uri(new Uri("http://x"), page.Headers.Location!).AbsolutePath);

        // Reading is allowed.
        Assert.Equal("Succeeded", (await PortalHttp.GetRunAsync(viewer, host.RunId)).Status);
        using var runs = await viewer.GetAsync("/runs");
        Assert.Equal(HttpStatusCode.OK, runs.StatusCode);
    }

    [Fact]
    public async Task ResearcherCanOpenTheQueuePage()
    {
        using var researcher = await Factory.SignInAsync(PortalFactory.ResearcherEmail);
        using var page = await researcher.GetAsync("/queue");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        string html = await page.Content.ReadAsStringAsync();
        Assert.Contains("data-testid=\"dropzone\"", html);
        Assert.Contains(PortalFactory.DemoModel, html);
    }

    [Fact]
    public async Task HangfireDashboardIsForAdminsOnly()
    {
        using (var anonymous = Factory.Anonymous())
        using (var response = await anonymous.GetAsync("/hangfire"))
            Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);

        using (var researcher = await Factory.SignInAsync(PortalFactory.ResearcherEmail))
        using (var response = await researcher.GetAsync("/hangfire"))
        {
            Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
            Assert.DoesNotContain("Hangfire", await response.Content.ReadAsStringAsync());
        }

        using var admin = await Factory.SignInAsync(PortalFactory.AdminEmail);
        using var dashboard = await admin.GetAsync("/hangfire");
        Assert.Equal(HttpStatusCode.OK, dashboard.StatusCode);
        Assert.Contains("Hangfire Dashboard", await dashboard.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task StartupCreatedTheAdminFromConfiguration()
    {
        using var scope = Factory.Services.CreateScope();
        var users = scope.ServiceProvider.GetRequiredService<Microsoft.AspNetCore.Identity.UserManager<PortalUser>>();
        var admins = await users.GetUsersInRoleAsync(Roles.Admin);
        Assert.Equal(PortalFactory.AdminEmail, Assert.Single(admins).Email);
    }
}
