using System.Net;
using System.Net.Http.Json;
using AttnPortal.Data;
using AttnPortal.Web.Services;
using Microsoft.Extensions.DependencyInjection;

namespace AttnPortal.Tests.Portal;

/// <summary>Who gets what: signed-out requests get nothing, a Viewer reads but cannot upload or queue, only an Admin sees the job dashboard.</summary>
public sealed class PortalAccessTests(PortalAccessTests.Host host) : IClassFixture<PortalAccessTests.Host>
{
    /// <summary>One uploaded image and one finished run, so the signed-out requests below ask for things that exist.</summary>
    public sealed class Host : PortalHost
    {
        public Guid ImageId { get; private set; }
        public Guid RunId { get; private set; }

        protected override async Task SeedAsync()
        {
            using var researcher = await Factory.SignInAsync(PortalFactory.ResearcherEmail);
            ImageId = (await PortalHttp.UploadAsync(researcher, ("wide.png", File.ReadAllBytes(Fixture.Image("wide.png"))))).Single().Id;
            RunId = (await PortalHttp.QueueAsync(researcher, PortalHttp.Queue([ImageId], "What is here?", [PortalFactory.DemoModel]))).Single();
            var run = await PortalHttp.WaitFinishedAsync(researcher, RunId);
            if (run.Status != "Succeeded") throw new InvalidOperationException($"setup run {run.Status}: {run.Error}");
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
