using AttnPortal.Data;

namespace AttnPortal.PortalBench;

/// <summary>
/// Fills a migrated portal database with finished runs (so that a portal started on it queues nothing): several models,
/// schedules and owners over half a year, batches of runs sharing one creation time, questions and answers drawn from
/// a small vocabulary (plus one rare word per run in 50), labelled annotations on one run in ten and head tags on two
/// models.
/// </summary>
public static class RunSeeder
{
    public static readonly string[] Models = ["llava-1.5-7b", "llava-onevision-qwen2-7b", "llava-next-mistral-7b", "demo-tiny-random"];
    public static readonly string[] Schedules = ["standard", "alternating", "alternating-cross"];
    public static readonly string[] Labels = ["grounded", "attention sink", "spurious", "object missed"];
    public static readonly string[] RareWords = ["zebra", "lighthouse", "violin", "cactus", "kayak", "origami", "tractor", "pelican", "lantern", "igloo"];
    public const string Tag = "localization head";
    private static readonly string[] Subjects = ["the cat", "a red square", "the person", "the car", "two dogs", "the sign", "a bicycle", "the table"];
    private static readonly string[] Asks = ["Where is {0}?", "What colour is {0}?", "Is {0} on the left?", "Describe {0}.", "How many of {0} are there?"];

    /// <param name="photo">An image file (relative to the data directory) that every seeded photo record points at.</param>
    /// <returns>The owners' user names.</returns>
    public static async Task<IReadOnlyList<string>> SeedAsync(PortalDbContext db, int count, string photo, int seed = 20261123)
    {
        var random = new Random(seed);
        var owners = Enumerable.Range(1, 6).Select(i => new PortalUser
        {
            UserName = $"researcher{i}@lab.bench", NormalizedUserName = $"RESEARCHER{i}@LAB.BENCH",
            Email = $"researcher{i}@lab.bench", NormalizedEmail = $"RESEARCHER{i}@LAB.BENCH", SecurityStamp = Guid.NewGuid().ToString(),
        }).ToList();
        db.Users.AddRange(owners);
        var images = Enumerable.Range(0, 40).Select(i => new ImageAsset
        {
            Id = Guid.NewGuid(), Sha256 = $"{i:x64}", FileName = $"photo{i:00}.png", ContentType = "image/png", Width = 640 + i, Height = 480,
            StoredPath = photo, CreatedUtc = DateTime.UtcNow.AddDays(-200),
        }).ToList();
        db.Images.AddRange(images);
        var labels = Labels.Select(name => new Label { Id = Guid.NewGuid(), Name = name, CreatedById = owners[0].Id, CreatedUtc = DateTime.UtcNow.AddDays(-200) }).ToList();
        db.Labels.AddRange(labels);
        foreach (var model in Models.Take(2))
            db.HeadTags.Add(new HeadTag
            {
                Id = Guid.NewGuid(), ModelName = model, Layer = 14, Head = 3, Tag = Tag, AuthorId = owners[1].Id,
                CreatedUtc = DateTime.UtcNow.AddDays(-100), UpdatedUtc = DateTime.UtcNow.AddDays(-100), Version = 1,
            });

        var start = DateTime.UtcNow.AddDays(-180);
        var step = TimeSpan.FromDays(179) / count;
        var created = start;
        for (int n = 0; n < count;)
        {
            int batch = Math.Min(random.Next(1, 7), count - n);
            created += step * batch;
            var image = images[random.Next(images.Count)];
            string question = string.Format(Asks[random.Next(Asks.Length)], Subjects[random.Next(Subjects.Length)]);
            for (int k = 0; k < batch; k++, n++)
            {
                string answer = $"I see {Subjects[random.Next(Subjects.Length)]}" + (random.Next(50) == 0 ? $" and a {RareWords[random.Next(RareWords.Length)]}" : "") + ".";
                var status = random.Next(20) switch { 0 => RunStatus.Failed, 1 => RunStatus.Canceled, _ => RunStatus.Succeeded };
                var run = new Run
                {
                    Id = Guid.NewGuid(), ImageId = image.Id, ModelName = Models[random.Next(Models.Length)], Schedule = Schedules[random.Next(Schedules.Length)],
                    Question = question, Aspect = "pad", MaxNewTokens = 32, Status = status, StepsDone = status == RunStatus.Succeeded ? 32 : random.Next(32),
                    GeneratedText = status == RunStatus.Succeeded ? answer : null, Error = status == RunStatus.Failed ? "out of memory" : null,
                    OwnerId = owners[random.Next(owners.Count)].Id, BatchId = Guid.NewGuid(), CreatedUtc = created,
                    StartedUtc = created.AddSeconds(5), FinishedUtc = created.AddSeconds(9),
                };
                db.Runs.Add(run);
                if (random.Next(10) == 0)
                    db.Annotations.Add(new Annotation
                    {
                        Id = Guid.NewGuid(), RunId = run.Id, Shape = AnnotationShape.Box, X = 10, Y = 20, W = 100, H = 80, Body = "seeded",
                        LabelId = labels[random.Next(labels.Count)].Id, AuthorId = run.OwnerId, CreatedUtc = created.AddMinutes(1),
                        UpdatedUtc = created.AddMinutes(1), Version = 1,
                    });
            }
        }
        await db.SaveChangesAsync();
        return owners.Select(o => o.UserName!).ToList();
    }
}
