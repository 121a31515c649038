using AttnPortal.Data;
using Microsoft.EntityFrameworkCore;

namespace AttnPortal.Tests.Portal;

/// <summary>
/// A migrated SQLite file with a few hundred runs written straight through PortalDbContext: three models, three
/// schedules, three owners, every status, creation times over three weeks with whole batches sharing one time (so
/// paging must break ties by id), questions with LIKE wildcards in them, labelled annotations (one deleted, one on a
/// comparison) and head tags (one deleted). The seeded rows are kept in memory as the oracle the tests compare with.
/// </summary>
public sealed class SeededRuns : IAsyncLifetime
{
    public static readonly string[] Models = ["llava-1.5-7b", "onevision-7b", "next-mistral-7b"];
    public static readonly string[] Schedules = ["standard", "alternating", "alternating-cross"];
    public static readonly string[] Questions =
    [
        "What is in the picture?", "Where is the red square?", "Count the cats", "Is there a discount of 50% here?",
        "Read the label a_b on the box", "Path C:\\data\\x", "Describe the scene", "what colour is the CAR?",
        "Read a+b aloud", "Open C:data now",
    ];
    public static readonly DateTime Start = new(2026, 10, 25, 9, 0, 0);

    private readonly Fixture.TempDir _dir = new();
    public string DatabaseFile => _dir["search.db"];
    public List<PortalUser> Users { get; } = [];
    public List<Run> Runs { get; } = [];
    public Dictionary<Guid, string> LabelOfRun { get; } = []; // live annotations only
    public Label Grounded { get; private set; } = default!;
    public Label Sink { get; private set; } = default!;
    public const string Tag = "localization head";

    public PortalDbContext Open() => new(new DbContextOptionsBuilder<PortalDbContext>().UseSqlite($"Data Source={DatabaseFile}").Options);

    public async Task InitializeAsync()
    {
        await using var db = Open();
        await db.Database.MigrateAsync();
        foreach (var (name, email) in new[] { ("alice", "alice@lab.test"), ("bob", "bob@lab.test"), ("carol", "carol@lab.test") })
            Users.Add(new PortalUser { UserName = name, NormalizedUserName = name.ToUpperInvariant(), Email = email, NormalizedEmail = email.ToUpperInvariant() });
        db.Users.AddRange(Users);
        var images = Enumerable.Range(0, 4).Select(i => new ImageAsset
        {
            Id = Guid.NewGuid(), Sha256 = $"{i:x64}", FileName = $"photo{i}.png", ContentType = "image/png", Width = 200 + i, Height = 130,
            StoredPath = $"images/{i}.png", CreatedUtc = Start,
        }).ToList();
        db.Images.AddRange(images);

        var random = new Random(1234);
        int n = 0;
        for (int batch = 0; n < 300; batch++)
        {
            // Batches of 1 to 6 runs share a creation time, as runs queued together do.
            var created = Start.AddMinutes(batch * 97 + random.Next(0, 50)).AddTicks(random.Next(0, 3) * 1234567);
            int size = random.Next(1, 7);
            for (int k = 0; k < size && n < 300; k++, n++)
            {
                Runs.Add(new Run
                {
                    Id = Guid.NewGuid(), ImageId = images[n % images.Count].Id, ModelName = Models[random.Next(Models.Length)],
                    Schedule = Schedules[random.Next(Schedules.Length)], Question = Questions[random.Next(Questions.Length)],
                    GeneratedText = n % 5 == 0 ? null : n % 7 == 0 ? "A zebra next to 50 percent of a car" : "a cat",
                    Aspect = "pad", MaxNewTokens = 8, Status = (RunStatus)(n % 5), OwnerId = Users[random.Next(Users.Count)].Id,
                    BatchId = Guid.NewGuid(), CreatedUtc = created,
                });
            }
        }
        // The edges of a day: the last tick of 2026-11-01 and the first of 2026-11-02.
        Runs[10].CreatedUtc = new DateTime(2026, 11, 1, 23, 59, 59).AddTicks(9_999_999);
        Runs[11].CreatedUtc = new DateTime(2026, 11, 2);
        Runs[12].CreatedUtc = new DateTime(2026, 11, 1);
        db.Runs.AddRange(Runs);

        Grounded = new Label { Id = Guid.NewGuid(), Name = "grounded", CreatedById = Users[0].Id, CreatedUtc = Start };
        Sink = new Label { Id = Guid.NewGuid(), Name = "attention sink", CreatedById = Users[0].Id, CreatedUtc = Start };
        db.Labels.AddRange(Grounded, Sink);
        for (int i = 0; i < Runs.Count; i += 9)
        {
            var label = i % 2 == 0 ? Grounded : Sink;
            db.Annotations.Add(Box(Runs[i].Id, label.Id));
            LabelOfRun[Runs[i].Id] = label.Name;
        }
        var deleted = Box(Runs[1].Id, Grounded.Id); // a deleted annotation does not count
        deleted.DeletedUtc = Start;
        db.Annotations.Add(deleted);
        db.Annotations.Add(Box(Runs[2].Id, null)); // unlabelled
        var comparison = new Comparison { Id = Guid.NewGuid(), CreatedById = Users[0].Id, CreatedUtc = Start, RunKey = $"{Runs[3].Id},{Runs[4].Id}" };
        comparison.Runs.Add(new ComparisonRun { RunId = Runs[3].Id, Position = 0 });
        comparison.Runs.Add(new ComparisonRun { RunId = Runs[4].Id, Position = 1 });
        db.Comparisons.Add(comparison);
        var onComparison = Box(Runs[3].Id, Grounded.Id); // marks the comparison, not its runs
        (onComparison.RunId, onComparison.ComparisonId) = (null, comparison.Id);
        db.Annotations.Add(onComparison);

        db.HeadTags.Add(new HeadTag { Id = Guid.NewGuid(), ModelName = Models[1], Layer = 3, Head = 7, Tag = Tag, AuthorId = Users[1].Id, CreatedUtc = Start, UpdatedUtc = Start });
        db.HeadTags.Add(new HeadTag { Id = Guid.NewGuid(), ModelName = Models[2], Layer = 1, Head = 1, Tag = Tag, AuthorId = Users[1].Id, CreatedUtc = Start, UpdatedUtc = Start, DeletedUtc = Start });
        await db.SaveChangesAsync();
    }

    private Annotation Box(Guid runId, Guid? labelId) => new()
    {
        Id = Guid.NewGuid(), RunId = runId, Shape = AnnotationShape.Box, X = 10, Y = 20, W = 30, H = 40, LabelId = labelId,
        AuthorId = Users[0].Id, CreatedUtc = Start, UpdatedUtc = Start, Version = 1,
    };

    /// <summary>The portal's order: newest first, ties by id as SQLite orders the TEXT column (ordinal, upper-case hex).</summary>
    public static IEnumerable<Run> NewestFirst(IEnumerable<Run> runs) =>
        runs.OrderByDescending(r => r.CreatedUtc).ThenByDescending(r => r.Id.ToString().ToUpperInvariant(), StringComparer.Ordinal);

    public Task DisposeAsync()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _dir.Dispose();
        return Task.CompletedTask;
    }
}
