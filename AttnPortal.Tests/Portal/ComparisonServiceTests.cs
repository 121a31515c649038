using AttnPortal.Data;
using AttnPortal.Web.Services;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;

namespace AttnPortal.Tests.Portal;

/// <summary>ComparisonService on a real, migrated SQLite file: one row per ordered set of runs, and clear refusals.</summary>
public sealed class ComparisonServiceTests : IDisposable
{
    private readonly Fixture.TempDir _dir = new();
    private readonly List<ServiceProvider> _providers = [];
    private readonly ComparisonService _service;
    private const string UserId = "user-1";

    // Ids whose text order is not the order the tests put them in, so pane order cannot come from the key by accident.
    private static readonly Guid R1 = Guid.Parse("00000000-0000-0000-0000-000000000001"), R2 = Guid.Parse("00000000-0000-0000-0000-000000000002"),
        R3 = Guid.Parse("00000000-0000-0000-0000-000000000003"), R4 = Guid.Parse("00000000-0000-0000-0000-000000000004"),
        R5 = Guid.Parse("00000000-0000-0000-0000-000000000005"), Queued = Guid.Parse("00000000-0000-0000-0000-00000000000a");

    public ComparisonServiceTests()
    {
        _service = new ComparisonService(Scopes());
        using var db = NewDb();
        db.Database.Migrate();
        db.Users.Add(new PortalUser { Id = UserId, UserName = "researcher@portal.test", Email = "researcher@portal.test" });
        var image = new ImageAsset { Id = Guid.NewGuid(), Sha256 = new string('a', 64), FileName = "wide.png", ContentType = "image/png", StoredPath = "images/a.png" };
        db.Images.Add(image);
        foreach (var (id, i) in new[] { R1, R2, R3, R4, R5, Queued }.Select((id, i) => (id, i)))
            db.Runs.Add(new Run
            {
                Id = id, ImageId = image.Id, ModelName = "demo", Schedule = i % 2 == 0 ? "standard" : "alternating", Question = "What is here?",
                Aspect = "pad", Status = id == Queued ? RunStatus.Queued : RunStatus.Succeeded, OwnerId = UserId, BatchId = Guid.NewGuid(),
                CreatedUtc = DateTime.UtcNow, ArtifactPath = id == Queued ? null : $"artifacts/{id}.safetensors",
            });
        db.SaveChanges();
    }

    private string ConnectionString => $"Data Source={_dir["portal.db"]};Pooling=False";

    /// <summary>A service provider with the portal's DbContext on the test's file (and any interceptors), as PortalApp registers it.</summary>
    private IServiceScopeFactory Scopes(params IInterceptor[] interceptors)
    {
        var provider = new ServiceCollection()
            .AddDbContext<PortalDbContext>(o => o.UseSqlite(ConnectionString).AddInterceptors(interceptors))
            .BuildServiceProvider();
        _providers.Add(provider);
        return provider.GetRequiredService<IServiceScopeFactory>();
    }

    private PortalDbContext NewDb() => new(new DbContextOptionsBuilder<PortalDbContext>().UseSqlite(ConnectionString).Options);

    private int Count<T>() where T : class { using var db = NewDb(); return db.Set<T>().Count(); }

    [Fact]
    public async Task SavingTheSameRunsTwiceGivesTheSameRowWithRunsInPaneOrder()
    {
        var first = await _service.GetOrCreateAsync([R3, R1, R2], UserId);
        var again = await _service.GetOrCreateAsync([R3, R1, R2], UserId);
        Assert.Equal(first.Id, again.Id);
        Assert.Equal($"{R3},{R1},{R2}", first.RunKey);
        Assert.Equal(1, Count<Comparison>());
        Assert.Equal(3, Count<ComparisonRun>());

        var found = await _service.FindAsync(first.Id);
        Assert.NotNull(found);
        Assert.Equal([R3, R1, R2], found.Runs.Select(r => r.RunId));
        Assert.Equal([0, 1, 2], found.Runs.Select(r => r.Position));
        Assert.All(found.Runs, r => Assert.NotNull(r.Run?.Image));
        Assert.Equal("researcher@portal.test", found.CreatedBy?.UserName);

        // Another order is another comparison (the panes differ).
        var reversed = await _service.GetOrCreateAsync([R2, R1, R3], UserId);
        Assert.NotEqual(first.Id, reversed.Id);
        Assert.Null(await _service.FindAsync(Guid.NewGuid()));
    }

    [Fact]
    public async Task WhenSomeoneSavesTheSameRunsFirstTheirRowIsReturned()
    {
        // Between this service's look-up and its insert, another one (another circuit) saves the same runs.
        Comparison? theirs = null;
        var other = new ComparisonService(Scopes());
        var racing = new ComparisonService(Scopes(new BeforeFirstInsert(async () => theirs = await other.GetOrCreateAsync([R1, R2], UserId))));

        var mine = await racing.GetOrCreateAsync([R1, R2], UserId);
        Assert.NotNull(theirs);
        Assert.Equal(theirs.Id, mine.Id);
        Assert.Equal([R1, R2], mine.Runs.Select(r => r.RunId));
        Assert.Equal(1, Count<Comparison>());
        Assert.Equal(2, Count<ComparisonRun>());
    }

    [Fact]
    public async Task BadRunListsAreRefusedWithClearErrorsAndNothingIsWritten()
    {
        async Task<string> Refused(IReadOnlyList<Guid> ids, string user = UserId) =>
            (await Assert.ThrowsAsync<ArgumentException>(() => _service.GetOrCreateAsync(ids, user))).Message;

        Assert.Equal("a comparison shows 2 to 4 runs; 1 was given", await Refused([R1]));
        Assert.Equal("a comparison shows 2 to 4 runs; 5 were given", await Refused([R1, R2, R3, R4, R5]));
        Assert.Equal($"run {R2} is given 2 times; a comparison shows distinct runs", await Refused([R2, R1, R2]));
        var unknown = Guid.NewGuid();
        Assert.Equal($"no run with id {unknown}", await Refused([R1, unknown]));
        Assert.Equal($"only runs with an attention artifact can be compared; run {Queued} (alternating) is Queued", await Refused([R1, Queued]));
        Assert.Equal("no user with id nobody", await Refused([R1, R2], "nobody"));
        Assert.Equal(0, Count<Comparison>());
        Assert.Equal(0, Count<ComparisonRun>());

        // The page checks the same rules without saving.
        Assert.Equal([R2, R1], (await _service.CheckRunsAsync([R2, R1])).Select(r => r.Id));
        await Assert.ThrowsAsync<ArgumentException>(() => _service.CheckRunsAsync([R1, Queued]));
    }

    [Fact]
    public void RunIdsAreParsedFromTheQueryInOrder()
    {
        Assert.Equal([R2, R1], ComparisonService.ParseRunIds($" {R2}, {R1},"));
        Assert.Contains("choose 2 to 4 runs", Assert.Throws<ArgumentException>(() => ComparisonService.ParseRunIds(null)).Message);
        Assert.Equal("'x1' is not a run id", Assert.Throws<ArgumentException>(() => ComparisonService.ParseRunIds($"{R1},x1")).Message);
        Assert.Equal($"{R1},{R2}", ComparisonService.KeyOf([R1, R2]));
    }

    /// <summary>Runs <paramref name="act"/> once, when a context is about to insert a comparison (after its look-up found none).</summary>
    private sealed class BeforeFirstInsert(Func<Task> act) : SaveChangesInterceptor
    {
        private int _fired;

        public override async ValueTask<InterceptionResult<int>> SavingChangesAsync(DbContextEventData eventData, InterceptionResult<int> result,
            CancellationToken cancellationToken = default)
        {
            if (eventData.Context!.ChangeTracker.Entries<Comparison>().Any(e => e.State == EntityState.Added) && Interlocked.Exchange(ref _fired, 1) == 0)
                await act();
            return result;
        }
    }

    public void Dispose()
    {
        foreach (var provider in _providers) provider.Dispose();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _dir.Dispose();
    }
}
