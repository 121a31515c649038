using System.Net;
using System.Security.Claims;
using System.Net.Http.Json;
using System.Text.Json;
using AngleSharp.Html.Parser;
using AttnPortal.Data;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace AttnPortal.Tests.Portal;

/// <summary>
/// The real portal (Program's top-level statements: PortalApp.Build, PortalStartup.RunAsync, RunAsync) on a TestServer,
/// with its own data directory and SQLite file, the demo model pointed at the fixture checkpoint, an admin made by
/// start-up from configuration, and a researcher and a viewer made with UserManager.
/// </summary>
public sealed class PortalFactory(string dataDirectory, IReadOnlyDictionary<string, string?>? settings = null) : WebApplicationFactory<Program>
{
    public const string Password = "Correct-horse-42";
    public const string AdminEmail = "admin@portal.test", ResearcherEmail = "researcher@portal.test", ViewerEmail = "viewer@portal.test";
    public const string DemoModel = "demo-tiny-random";
    private static readonly SemaphoreSlim StartGate = new(1, 1);

    public string DataDirectory { get; } = dataDirectory;
    public string DatabaseFile => Path.Combine(DataDirectory, "attnportal.db");

    /// <summary>The configuration every test host gets; <paramref name="extra"/> is layered on top.</summary>
    public static Dictionary<string, string?> Settings(string dataDirectory, IReadOnlyDictionary<string, string?>? extra = null)
    {
        var s = new Dictionary<string, string?>
        {
            ["Portal:DataDirectory"] = dataDirectory,
            ["Portal:Database"] = "Data Source=attnportal.db",
            ["Portal:Admin:Email"] = AdminEmail,
            ["Portal:Admin:Password"] = Password,
            ["Portal:Models:0:Name"] = DemoModel,
            ["Portal:Models:0:Path"] = Fixture.Checkpoint,
            ["Logging:LogLevel:Default"] = "Warning",
        };
        foreach (var (k, v) in extra ?? new Dictionary<string, string?>()) s[k] = v;
        return s;
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        // The test output holds appsettings.json, wwwroot/ and the static web assets manifest (PortalApp.Build picks
        // the same folder); MvcTestingAppManifest.json would otherwise point at AttnPortal.Web/, which has neither.
        builder.UseContentRoot(AppContext.BaseDirectory);
        // Host settings reach WebApplicationBuilder before PortalApp.Build reads the Portal section.
        foreach (var (k, v) in Settings(DataDirectory, settings)) builder.UseSetting(k, v);
    }

    /// <summary>Starts the host (migrations, roles, the configured admin, recovery) and adds the researcher and the viewer.</summary>
    public async Task StartAsync()
    {
        // Hosts of parallel test classes start one at a time: while a portal starts, Hangfire sets and reads back
        // process-wide statics (JobStorage.Current, JobActivator.Current), and WebApplicationFactory finds the host
        // being built through a process-wide DiagnosticListener. Once started, each host holds its own.
        await StartGate.WaitAsync();
        try { StartServer(); }
        finally { StartGate.Release(); }
        foreach (var (email, role) in new[] { (ResearcherEmail, Roles.Researcher), (ViewerEmail, Roles.Viewer) })
            await AddUserAsync(email, role);
    }

    /// <summary>A person with <paramref name="role"/> and the shared test password (nothing when they exist already).</summary>
    public async Task AddUserAsync(string email, string role)
    {
        using var scope = Services.CreateScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<PortalUser>>();
        if (await users.FindByEmailAsync(email) is not null) return;
        var user = new PortalUser { UserName = email, Email = email, EmailConfirmed = true };
        Check(await users.CreateAsync(user, Password), email);
        Check(await users.AddToRoleAsync(user, role), email);

        static void Check(IdentityResult r, string who)
        {
            if (!r.Succeeded) throw new InvalidOperationException($"{who}: {string.Join("; ", r.Errors.Select(e => e.Description))}");
        }
    }

    /// <summary>The signed-in principal of a person as the cookie would carry it: id, user name, roles.</summary>
    public async Task<ClaimsPrincipal> PrincipalAsync(string email)
    {
        using var scope = Services.CreateScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<PortalUser>>();
        var user = await users.FindByEmailAsync(email) ?? throw new InvalidOperationException($"no user {email}");
        var claims = new List<Claim> { new(ClaimTypes.NameIdentifier, user.Id), new(ClaimTypes.Name, user.UserName!) };
        claims.AddRange((await users.GetRolesAsync(user)).Select(r => new Claim(ClaimTypes.Role, r)));
        return new ClaimsPrincipal(new ClaimsIdentity(claims, "test"));
    }

    public HttpClient Anonymous() => CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = true });

    /// <summary>Signs in through the real /login form: its antiforgery token, the form post, the cookie it sets.</summary>
    public async Task<HttpClient> SignInAsync(string email)
    {
        var client = Anonymous();
        await PortalHttp.SignInAsync(client, email, Password);
        return client;
    }

    public T WithDb<T>(Func<PortalDbContext, T> query)
    {
        using var scope = Services.CreateScope();
        return query(scope.ServiceProvider.GetRequiredService<PortalDbContext>());
    }

    /// <summary>
    /// A finished run of wide.png, owned by the researcher, whose artifact is the hand-made anyres one
    /// (<see cref="Rendering.AnyresArtifact"/>): the engine cannot run an anyres model here.
    /// </summary>
    public async Task<Guid> AddAnyresRunAsync()
    {
        using var scope = Services.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<PortalDbContext>();
        var researcher = await scope.ServiceProvider.GetRequiredService<UserManager<PortalUser>>().FindByEmailAsync(ResearcherEmail)
            ?? throw new InvalidOperationException("start the portal first");
        var image = await scope.ServiceProvider.GetRequiredService<Web.Services.ImageStore>()
            .SaveAsync(File.ReadAllBytes(Fixture.Image("wide.png")), "wide.png", researcher.Id);
        var id = Guid.NewGuid();
        string artifact = Path.Combine("artifacts", $"{id}.safetensors");
        Rendering.AnyresArtifact.Write(scope.ServiceProvider.GetRequiredService<Web.Services.PortalPaths>().Resolve(artifact));
        var now = DateTime.UtcNow;
        db.Runs.Add(new Run
        {
            Id = id, ImageId = image.Id, ModelName = "llava-onevision (hand-made artifact)", Schedule = "standard", Question = "What is red?",
            Aspect = "pad", MaxNewTokens = Rendering.AnyresArtifact.Steps, Status = RunStatus.Succeeded, StepsDone = Rendering.AnyresArtifact.Steps,
            GeneratedText = "A red", ArtifactPath = artifact, OwnerId = researcher.Id, BatchId = Guid.NewGuid(),
            CreatedUtc = now, StartedUtc = now, FinishedUtc = now,
        });
        await db.SaveChangesAsync();
        return id;
    }
}

/// <summary>A portal host per test class: a fresh temporary data directory, removed at the end.</summary>
public class PortalHost : IAsyncLifetime
{
    private readonly Fixture.TempDir _dir = new();
    public PortalFactory Factory { get; private set; } = default!;
    public string DataDirectory => _dir.Path;

    protected virtual IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>();

    public async Task InitializeAsync()
    {
        Factory = new PortalFactory(_dir.Path, Settings);
        await Factory.StartAsync();
        await SeedAsync();
    }

    /// <summary>What a test class needs in its portal before its tests run.</summary>
    protected virtual Task SeedAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await Factory.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools(); // release the SQLite file before the directory goes
        _dir.Dispose();
    }
}

public sealed record RunInfo(Guid Id, string Status, int StepsDone, int MaxNewTokens, string? Error, string? GeneratedText, string ModelName, string Schedule);
public sealed record UploadedImage(Guid Id, string FileName, int Width, int Height, string Sha256);

/// <summary>HTTP helpers: sign-in through the form, uploads, queueing, polling a run.</summary>
public static class PortalHttp
{
    public static async Task SignInAsync(HttpClient client, string email, string password, string returnUrl = "/runs")
    {
        using var response = await PostLoginAsync(client, email, password, returnUrl);
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal(returnUrl, response.Headers.Location?.OriginalString); // a failed sign-in goes back to /login?error=...
    }

    /// <summary>GET /login, then POST its form (with its antiforgery token) to /account/login.</summary>
    public static async Task<HttpResponseMessage> PostLoginAsync(HttpClient client, string email, string password, string returnUrl = "/runs")
    {
        using var page = await client.GetAsync("/login");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        var doc = new HtmlParser().ParseDocument(await page.Content.ReadAsStringAsync());
        var form = doc.QuerySelector("form[action='/account/login']") ?? throw new InvalidOperationException("no sign-in form on /login");
        string token = form.QuerySelector("input[name='__RequestVerificationToken']")?.GetAttribute("value")
            ?? throw new InvalidOperationException("the sign-in form has no antiforgery token");
        return await client.PostAsync("/account/login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["email"] = email, ["password"] = password, ["returnUrl"] = returnUrl, ["__RequestVerificationToken"] = token,
        }));
    }

    public static MultipartFormDataContent Files(params (string Name, byte[] Data)[] files)
    {
        var form = new MultipartFormDataContent();
        foreach (var (name, data) in files)
        {
            var part = new ByteArrayContent(data);
            part.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("image/png");
            form.Add(part, "files", name);
        }
        return form;
    }

    public static async Task<UploadedImage[]> UploadAsync(HttpClient client, params (string Name, byte[] Data)[] files)
    {
        using var response = await client.PostAsync("/api/images", Files(files));
        Assert.True(response.IsSuccessStatusCode, $"upload: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        return (await response.Content.ReadFromJsonAsync<UploadedImage[]>())!;
    }

    public static object Queue(IEnumerable<Guid> images, string question, IEnumerable<string> models, string aspect = "pad") =>
        new { imageIds = images.ToArray(), question, models = models.ToArray(), schedules = new[] { "standard" }, aspect };

    public static async Task<Guid[]> QueueAsync(HttpClient client, object request)
    {
        using var response = await client.PostAsJsonAsync("/api/runs", request);
        Assert.True(response.IsSuccessStatusCode, $"queue: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        return (await response.Content.ReadFromJsonAsync<Guid[]>())!;
    }

    public static async Task<string> ErrorOf(HttpResponseMessage response)
    {
        string body = await response.Content.ReadAsStringAsync();
        using var json = JsonDocument.Parse(body);
        return json.RootElement.GetProperty("error").GetString() ?? throw new InvalidOperationException($"no error in {body}");
    }

    public static async Task<RunInfo> GetRunAsync(HttpClient client, Guid id) =>
        (await client.GetFromJsonAsync<RunInfo>($"/api/runs/{id}"))!;

    /// <summary>Polls GET /api/runs/{id} until the run has finished (Succeeded, Failed or Canceled).</summary>
    public static async Task<RunInfo> WaitFinishedAsync(HttpClient client, Guid id, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        RunInfo run;
        while (true)
        {
            run = await GetRunAsync(client, id);
            if (run.Status is "Succeeded" or "Failed" or "Canceled") return run;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"run {id} still {run.Status} ({run.StepsDone}/{run.MaxNewTokens}) after {timeout ?? TimeSpan.FromSeconds(60)}");
            await Task.Delay(100);
        }
    }
}
