using System.Net;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace AttnPortal.Tests.Portal;

/// <summary>
/// The portal on real Kestrel (127.0.0.1, a free port, its own data directory) and Debian's headless Chromium (no
/// Playwright browser download: <c>apt-get install -y chromium</c>; ATTNPORTAL_CHROMIUM overrides the path), for the
/// browser tests. Every page it opens is its own browser context (its own sign-in), and every console error, page error
/// and HTTP error status of those pages is collected in <see cref="Errors"/>.
/// </summary>
public sealed class BrowserPortal : IAsyncDisposable
{
    private readonly Fixture.TempDir _dir = new();
    private IPlaywright? _playwright;
    private IBrowser? _browser;

    public static string ChromiumPath => Environment.GetEnvironmentVariable("ATTNPORTAL_CHROMIUM") is { Length: > 0 } p ? p : "/usr/bin/chromium";

    public PortalFactory Factory { get; }
    public string BaseUrl { get; private set; } = "";
    public List<string> Errors { get; } = [];

    private BrowserPortal() => Factory = new PortalFactory(_dir.Path);

    public static async Task<BrowserPortal> StartAsync()
    {
        if (!File.Exists(ChromiumPath))
            throw new InvalidOperationException($"The browser tests need Chromium at {ChromiumPath}. On Debian/Ubuntu: apt-get install -y chromium " +
                "(or set ATTNPORTAL_CHROMIUM to a Chromium executable). .ci/run installs it.");
        var portal = new BrowserPortal();
        try
        {
            portal.Factory.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
            await portal.Factory.StartAsync();
            portal.BaseUrl = portal.Factory.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
            portal._playwright = await Playwright.CreateAsync();
            portal._browser = await portal._playwright.Chromium.LaunchAsync(new()
            {
                ExecutablePath = ChromiumPath,
                Headless = true,
                Args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
            });
            return portal;
        }
        catch
        {
            await portal.DisposeAsync();
            throw;
        }
    }

    /// <summary>A page in a fresh browser context; its errors go to <paramref name="errors"/> (default <see cref="Errors"/>).</summary>
    public async Task<IPage> NewPageAsync(List<string>? errors = null, int height = 1000)
    {
        errors ??= Errors;
        var context = await _browser!.NewContextAsync(new() { BaseURL = BaseUrl, ViewportSize = new() { Width = 1400, Height = height } });
        context.SetDefaultTimeout(15_000);
        context.SetDefaultNavigationTimeout(60_000); // the first page of a fresh build renders cold
        var page = await context.NewPageAsync();
        // The portal has no favicon; Chromium's automatic request for it is the one 404 allowed.
        page.Console += (_, m) => { if (m.Type == "error" && !m.Location.Contains("/favicon.ico")) lock (errors) errors.Add($"console: {m.Text} ({m.Location})"); };
        page.PageError += (_, e) => { lock (errors) errors.Add($"page error: {e}"); };
        page.Response += (_, r) => { if (r.Status >= 400) lock (errors) errors.Add($"HTTP {r.Status}: {r.Request.Method} {r.Url}"); };
        return page;
    }

    public async ValueTask DisposeAsync()
    {
        if (_browser is not null) await _browser.DisposeAsync();
        _playwright?.Dispose();
        await Factory.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _dir.Dispose();
    }
}
