using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using AttnPortal.Data;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;

namespace AttnPortal.Tests.Portal;

/// <summary>Uploads and queueing through the HTTP API: what is refused (with a message and nothing stored) and what is stored once.</summary>
public sealed class PortalUploadAndQueueTests(PortalUploadAndQueueTests.Host host) : IClassFixture<PortalUploadAndQueueTests.Host>, IAsyncLifetime
{
    /// <summary>A 45 kB upload limit (wide.png is 41 kB, tall-alpha.png 50 kB) and a second model, so batches have two.</summary>
    public sealed class Host : PortalHost
    {
        public const string SecondModel = "demo-second";
        protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
        {
            ["Portal:Upload:MaxBytes"] = "45000",
            ["Portal:Models:0:MaxNewTokens"] = "2",
            ["Portal:Models:1:Name"] = SecondModel,
            ["Portal:Models:1:Path"] = Fixture.Checkpoint,
            ["Portal:Models:1:MaxNewTokens"] = "2",
        };
    }

    private PortalFactory Factory => host.Factory;
    private HttpClient _client = default!;

    public async Task InitializeAsync() => _client = await Factory.SignInAsync(PortalFactory.ResearcherEmail);

    public Task DisposeAsync()
    {
        _client.Dispose();
        return Task.CompletedTask;
    }

    private static byte[] Image(string name) => File.ReadAllBytes(Fixture.Image(name));
    private static string Sha(byte[] data) => Convert.ToHexStringLower(SHA256.HashData(data));
    private string[] StoredFiles() => Directory.GetFiles(Path.Combine(host.DataDirectory, "images"), "*", SearchOption.AllDirectories);

    private async Task AssertRefusedAsync(string fileName, byte[] data, string expectedMessage)
    {
        using var response = await _client.PostAsync("/api/images", PortalHttp.Files((fileName, data)));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        string error = await PortalHttp.ErrorOf(response);
        Assert.StartsWith(fileName + ":", error);
        Assert.Contains(expectedMessage, error);
        string sha = Sha(data);
        Assert.False(Factory.WithDb(db => db.Images.Any(i => i.Sha256 == sha)), $"{fileName} was stored in the database");
        Assert.DoesNotContain(StoredFiles(), f => Path.GetFileName(f).StartsWith(sha, StringComparison.Ordinal));
        Assert.DoesNotContain(StoredFiles(), f => f.EndsWith(".tmp", StringComparison.Ordinal));
    }

    [Fact]
    public Task TextFileNamedPngIsRefused() =>
        AssertRefusedAsync("notes.png", "these are my notes, not a picture\n"u8.ToArray(), "not a PNG, JPEG or WebP image");

    [Fact]
    public Task TruncatedPngIsRefused() =>
        // The PNG signature and header survive, so the sniffer accepts it and the decoder has to catch it.
        AssertRefusedAsync("cut.png", Image("wide.png")[..4000], "cut.png");

    [Fact]
    public Task CorruptPngIsRefused()
    {
        var data = Image("wide.png");
        for (int i = 100; i < data.Length - 20; i += 7) data[i] ^= 0x5A; // header intact, compressed data garbage
        return AssertRefusedAsync("garbled.png", data, "garbled.png");
    }

    [Fact]
    public async Task OversizedFileIsRefused()
    {
        var data = Image("tall-alpha.png"); // a valid image, 50 kB, over the 45 kB limit
        Assert.True(data.Length > 45000);
        await AssertRefusedAsync("tall-alpha.png", data, "upload limit");
    }

    [Fact]
    public async Task OneBadFileInABatchIsNamed()
    {
        using var response = await _client.PostAsync("/api/images", PortalHttp.Files(("small.webp", Image("small.webp")), ("readme.png", "# hello"u8.ToArray())));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.StartsWith("readme.png:", await PortalHttp.ErrorOf(response));
    }

    [Fact]
    public async Task SameImageUploadedTwiceIsStoredOnce()
    {
        var data = Image("rotated-exif6.jpg");
        var first = (await PortalHttp.UploadAsync(_client, ("holiday.jpg", data))).Single();
        var second = (await PortalHttp.UploadAsync(_client, ("holiday-copy.jpg", data))).Single();
        // and once more by another user
        using var admin = await Factory.SignInAsync(PortalFactory.AdminEmail);
        var third = (await PortalHttp.UploadAsync(admin, ("again.jpg", data))).Single();

        Assert.Equal(first.Id, second.Id);
        Assert.Equal(first.Id, third.Id);
        Assert.Equal(Sha(data), first.Sha256);
        Assert.Equal(1, Factory.WithDb(db => db.Images.Count(i => i.Sha256 == first.Sha256)));
        var stored = Assert.Single(StoredFiles(), f => Path.GetFileName(f).StartsWith(first.Sha256, StringComparison.Ordinal));
        Assert.Equal(data, File.ReadAllBytes(stored));
        // The file is 180×240 with EXIF orientation 6: the recorded size is the upright picture's.
        Assert.Equal((240, 180), (first.Width, first.Height));
    }

    [Fact]
    public async Task EmptyQuestionAndUnknownModelAreRefused()
    {
        var image = (await PortalHttp.UploadAsync(_client, ("small.webp", Image("small.webp")))).Single();
        int before = Factory.WithDb(db => db.Runs.Count());

        var cases = new (object Request, string Message)[]
        {
            (PortalHttp.Queue([image.Id], "   ", [PortalFactory.DemoModel]), "the question is empty"),
            (PortalHttp.Queue([image.Id], "What?", ["gpt-17"]), "unknown model 'gpt-17'"),
            (PortalHttp.Queue([image.Id], "What?", [PortalFactory.DemoModel, "gpt-17"]), "unknown model 'gpt-17'"),
            (PortalHttp.Queue([image.Id], "What?", []), "choose at least one model"),
            (PortalHttp.Queue([], "What?", [PortalFactory.DemoModel]), "choose at least one image"),
            (PortalHttp.Queue([Guid.NewGuid()], "What?", [PortalFactory.DemoModel]), "does not exist"),
            (PortalHttp.Queue([image.Id], "What?", [PortalFactory.DemoModel], aspect: "stretch"), "unknown aspect mode 'stretch'"),
            (PortalHttp.Queue([image.Id], new string('x', 2001), [PortalFactory.DemoModel]), "the limit is 2000"),
        };
        foreach (var (request, message) in cases)
        {
            using var response = await _client.PostAsJsonAsync("/api/runs", request);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Contains(message, await PortalHttp.ErrorOf(response));
        }
        Assert.Equal(before, Factory.WithDb(db => db.Runs.Count()));
    }

    [Fact]
    public async Task QueueCreatesEveryImageModelScheduleCombinationAtOnce()
    {
        var images = await PortalHttp.UploadAsync(_client, ("wide.png", Image("wide.png")), ("small.webp", Image("small.webp")));
        Assert.Equal(2, images.Length);
        var ids = await PortalHttp.QueueAsync(_client, PortalHttp.Queue(images.Select(i => i.Id), "  Where is the red square?  ",
            [PortalFactory.DemoModel, Host.SecondModel]));

        Assert.Equal(4, ids.Distinct().Count());
        var runs = Factory.WithDb(db => db.Runs.AsNoTracking().Where(r => ids.Contains(r.Id)).ToList());
        Assert.Equal(4, runs.Count);
        Assert.Single(runs.Select(r => r.BatchId).Distinct());
        Assert.Equal(
            (from i in images from m in new[] { PortalFactory.DemoModel, Host.SecondModel } select $"{i.Id}/{m}/standard").Order(),
            runs.Select(r => $"{r.ImageId}/{r.ModelName}/{r.Schedule}").Order());
        Assert.All(runs, r => Assert.Equal("Where is the red square?", r.Question));
        Assert.All(runs, r => Assert.Equal("pad", r.Aspect));
        Assert.All(runs, r => Assert.Equal(2, r.MaxNewTokens));
        Assert.Single(runs.Select(r => r.OwnerId).Distinct());

        // They are real jobs: every one of them finishes.
        foreach (var id in ids)
        {
            var run = await PortalHttp.WaitFinishedAsync(_client, id);
            Assert.True(run.Status == "Succeeded", $"{run.ModelName}: {run.Status} {run.Error}");
        }
    }

    [Fact]
    public async Task DatabaseIsARealSqliteFileOnDisk()
    {
        var image = (await PortalHttp.UploadAsync(_client, ("wide.png", Image("wide.png")))).Single();

        var header = new byte[16];
        using (var f = new FileStream(Factory.DatabaseFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite)) f.ReadExactly(header);
        Assert.Equal("SQLite format 3\0"u8.ToArray(), header);

        // A separate connection, outside the portal, sees the portal's rows.
        using var connection = new SqliteConnection($"Data Source={Factory.DatabaseFile};Mode=ReadOnly;Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT FileName FROM Images WHERE Id = $id";
        command.Parameters.AddWithValue("$id", image.Id.ToString().ToUpperInvariant());
        Assert.Equal("wide.png", command.ExecuteScalar() as string);
        command.CommandText = "SELECT COUNT(*) FROM AspNetUsers";
        command.Parameters.Clear();
        Assert.Equal(3L, command.ExecuteScalar());
        command.CommandText = "SELECT COUNT(*) FROM __EFMigrationsHistory";
        Assert.True((long)command.ExecuteScalar()! >= 1);
    }
}
